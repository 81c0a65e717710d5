"""Phone screens: a step's element boxes with the target and the model's action marked."""
from __future__ import annotations

import plotly.graph_objects as go

from ..task import Action, Step, try_parse

_SCREEN_W, _SCREEN_H = 1000, 1000


def _label(node) -> str:
    return node.text or node.content_desc or node.resource_id.rsplit("/", 1)[-1] or node.cls.rsplit(".", 1)[-1]


def screen_figure(step: Step, output: str | None = None, *, height: int = 620) -> go.Figure:
    """Draw a step's screen: element boxes with labels, the target and the model's action marked.

    Args:
        step: the task step (screen nodes, target action and box).
        output: the model's raw output for this step (None: target only).
        height: figure height in pixels (the phone's 0..999 square is drawn at a 9:16 aspect).
    Returns:
        go.Figure with y growing downward as on the phone.
    """
    fig = go.Figure()
    for node in step.screen:
        x1, y1, x2, y2 = node.bounds
        if (x2 - x1) * (y2 - y1) > 0.5 * _SCREEN_W * _SCREEN_H and not node.text:
            continue  # full-screen layout containers hide everything else
        interactive = node.clickable or node.editable or node.scrollable
        fig.add_shape(type="rect", x0=x1, y0=y1, x1=x2, y1=y2, layer="below",
                      line=dict(color="#4a78c2" if interactive else "#c7ccd4", width=1),
                      fillcolor="rgba(74,120,194,0.06)" if interactive else "rgba(0,0,0,0)")
    labelled = [n for n in step.screen if n.text or n.content_desc]
    fig.add_trace(go.Scatter(
        x=[n.center[0] for n in labelled], y=[n.center[1] for n in labelled], mode="text",
        text=[_label(n)[:18] for n in labelled], textfont=dict(size=10, color="#333"),
        hovertext=[f"{n.cls.rsplit('.', 1)[-1]} {_label(n)!r} {list(n.bounds)}" for n in labelled],
        hoverinfo="text", name="elements", showlegend=False))
    target = step.action
    if step.target_box is not None:
        x1, y1, x2, y2 = step.target_box
        fig.add_shape(type="rect", x0=x1, y0=y1, x1=x2, y1=y2, line=dict(color="#2ca02c", width=3))
    _mark(fig, target, "target", "#2ca02c", "circle-open")
    pred = try_parse(output) if output is not None else None
    if pred is not None:
        _mark(fig, pred, "model", "#d62728", "x")
    title = f"{step.goal}  |  step {step.step} in {step.app}"
    fig.update_layout(title=dict(text=title, font=dict(size=13)), height=height,
                      width=int(height * 9 / 16) + 160, margin=dict(l=10, r=10, t=50, b=10),
                      plot_bgcolor="white", legend=dict(orientation="h", y=-0.02))
    fig.update_xaxes(range=[0, 999], showgrid=False, zeroline=False, showticklabels=False)
    fig.update_yaxes(range=[999, 0], showgrid=False, zeroline=False, showticklabels=False)
    return fig


def _mark(fig: go.Figure, action: Action, name: str, color: str, symbol: str) -> None:
    """Add an action's point(s) to a screen figure (tap-like: one point; swipe: an arrow)."""
    if action.element is not None:
        fig.add_trace(go.Scatter(x=[action.element[0]], y=[action.element[1]], mode="markers",
                                 marker=dict(size=16, color=color, symbol=symbol, line=dict(width=3, color=color)),
                                 name=f"{name}: {action.type} {list(action.element)}"))
    elif action.start is not None and action.end is not None:
        fig.add_trace(go.Scatter(x=[action.start[0], action.end[0]], y=[action.start[1], action.end[1]],
                                 mode="lines+markers", line=dict(color=color, width=3),
                                 marker=dict(symbol=["circle", "arrow"], size=12, angleref="previous", color=color),
                                 name=f"{name}: Swipe {action.swipe_direction()}"))
    else:
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", marker=dict(color=color),
                                 name=f"{name}: {action.to_text()[:60]}"))
