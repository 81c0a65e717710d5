"""Pure plot functions: figures built from records, checked without a browser."""
import plotly.graph_objects as go

from workbench.plots import screen_figure


def _step(eval_steps, kind):
    return next(s for s in eval_steps if s.action.type == kind)


def test_screen_figure_marks_target_and_model(eval_steps):
    step = _step(eval_steps, "Tap")
    wrong = 'do(action="Tap", element=[5,5])'
    fig = screen_figure(step, wrong)
    assert isinstance(fig, go.Figure)
    names = [t.name for t in fig.data]
    assert any(n.startswith("target: Tap") for n in names)
    assert "model: Tap [5, 5]" in names
    target = next(t for t in fig.data if t.name.startswith("target"))
    assert (target.x[0], target.y[0]) == step.action.element
    # one rectangle per drawn element plus the green target box; y axis runs downward like the phone
    assert len(fig.layout.shapes) >= 8
    assert tuple(fig.layout.yaxis.range) == (999, 0)


def test_screen_figure_without_output_and_with_garbage(eval_steps):
    step = _step(eval_steps, "Swipe")
    fig = screen_figure(step)
    assert [t.name for t in fig.data][1].startswith("target: Swipe")
    assert len(fig.data) == 2
    assert len(screen_figure(step, "not an action").data) == 2  # unparseable output adds nothing


def test_screen_figure_for_a_non_pointing_action(eval_steps):
    step = _step(eval_steps, "Launch")
    fig = screen_figure(step, step.target)
    assert any(t.name.startswith('model: do(action="Launch"') for t in fig.data)
