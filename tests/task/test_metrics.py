"""Tests of workbench.task.metrics: AndroidControl / AITW step matching, by hand cases."""
from __future__ import annotations

import pytest

from workbench.task.grammar import Action
from workbench.task.metrics import (
    BOX_SCALE, MAX_DISTANCE, StepScore, TaskScores, aggregate, args_match, score_step,
)

TAP_TYPES = ("Tap", "Long Press", "Double Tap")

# A wide box: center (500, 450), 200 x 100; enlarged 1.2x it spans x 380..620, y 390..510.
BIG_BOX = (400, 400, 600, 500)
# A small box: center (500, 450), 20 x 20; enlarged 1.2x it spans x 488..512, y 438..462.
SMALL_BOX = (490, 440, 510, 460)
CENTER = (500, 450)


def tap(kind, x, y):
    return Action(kind, element=(x, y)).to_text()


def test_constants_follow_the_design():
    assert BOX_SCALE == 1.2
    assert MAX_DISTANCE == 0.04


# (point, box, step_ok, why)
TAP_CASES = [
    ((500, 450), BIG_BOX, True, "center"),
    ((401, 401), BIG_BOX, True, "inside the box, near a corner"),
    ((600, 500), BIG_BOX, True, "on the box corner"),
    ((615, 450), BIG_BOX, True, "outside the box, inside only because of the 1.2x enlargement"),
    ((620, 450), BIG_BOX, True, "exactly on the enlarged right edge"),
    ((621, 450), BIG_BOX, False, "just beyond the enlarged right edge (121 units away)"),
    ((380, 450), BIG_BOX, True, "exactly on the enlarged left edge"),
    ((379, 450), BIG_BOX, False, "just beyond the enlarged left edge"),
    ((500, 510), BIG_BOX, True, "exactly on the enlarged bottom edge"),
    ((500, 511), BIG_BOX, False, "just beyond the enlarged bottom edge (61 units away)"),
    ((500, 390), BIG_BOX, True, "exactly on the enlarged top edge"),
    ((500, 389), BIG_BOX, False, "just beyond the enlarged top edge"),
    ((620, 510), BIG_BOX, True, "enlarged corner"),
    ((621, 511), BIG_BOX, False, "beyond the enlarged corner"),
    ((539, 450), SMALL_BOX, True, "outside the (enlarged) box but 39 units away"),
    ((540, 450), SMALL_BOX, True, "exactly 0.04 away"),
    ((541, 450), SMALL_BOX, False, "41 units away and outside the box"),
    ((500, 411), SMALL_BOX, True, "39 units above"),
    ((500, 409), SMALL_BOX, False, "41 units above"),
    ((528, 478), SMALL_BOX, True, "diagonal, 39.6 units away"),
    ((530, 480), SMALL_BOX, False, "diagonal, 42.4 units away"),
    ((900, 900), SMALL_BOX, False, "far away"),
    ((539, 450), None, True, "no box: distance rule alone, 39 units"),
    ((541, 450), None, False, "no box: distance rule alone, 41 units"),
    ((615, 450), None, False, "no box: enlargement does not apply"),
]


@pytest.mark.parametrize("kind", TAP_TYPES)
@pytest.mark.parametrize("point,box,ok,why", TAP_CASES, ids=[c[3] for c in TAP_CASES])
def test_tap_like_rule(kind, point, box, ok, why):
    score = score_step(tap(kind, *point), tap(kind, *CENTER), box)
    assert score.parsed and score.type_ok
    assert score.step_ok is ok, why
    assert score.exact is (point == CENTER)


@pytest.mark.parametrize("pred_kind", TAP_TYPES)
@pytest.mark.parametrize("target_kind", TAP_TYPES)
def test_tap_like_types_never_cross_match(pred_kind, target_kind):
    score = score_step(tap(pred_kind, *CENTER), tap(target_kind, *CENTER), BIG_BOX)
    same = pred_kind == target_kind
    assert score == StepScore(True, same, same, same)


def test_box_enlargement_is_about_the_center_not_the_origin():
    # box far from the origin: a scale about (0, 0) would move it, about its center must not
    box, target = (800, 800, 900, 900), tap("Tap", 850, 850)
    assert score_step(tap("Tap", 905, 850), target, box).step_ok      # 1.2x: x in 790..910
    assert not score_step(tap("Tap", 911, 850), target, box).step_ok  # 61 units away
    assert not score_step(tap("Tap", 850, 911), target, box).step_ok


@pytest.mark.parametrize("pred,target,ok", [
    ("hello", "hello", True),
    ("Hello World", "hello world", True),
    ("HELLO", "hello world", True),                     # prediction inside target
    ("say hello world now", "Hello World", True),       # target inside prediction
    ("  hello world  ", "hello world", True),
    ("I'll be late", "i'll BE late", True),
    ('say "hi"', 'SAY "HI" please', True),
    ("goodbye", "hello world", False),
    ("hello  world", "hello world", False),             # no normalisation inside the text
    ("", "hello", False),                               # empty text never matches
    ("   ", "hello", False),
    ("hello", "", False),
    ("", "", False),
])
def test_type_rule(pred, target, ok):
    for kind in ("Type", "Type_Name"):
        score = score_step(Action(kind, text=pred).to_text(), Action(kind, text=target).to_text())
        assert score.parsed and score.type_ok
        assert score.step_ok is ok
        assert score.exact is (pred == target)


def test_type_and_type_name_do_not_cross_match():
    score = score_step('do(action="Type_Name", text="Alice")', 'do(action="Type", text="Alice")')
    assert score == StepScore(True, False, False, False)


UP = Action("Swipe", start=(500, 800), end=(500, 200)).to_text()


@pytest.mark.parametrize("start,end,ok", [
    ((500, 800), (500, 200), True),          # identical
    ((400, 700), (400, 600), True),          # same direction, much shorter
    ((100, 999), (120, 0), True),            # same direction, longer, other column
    ((500, 200), (500, 800), False),         # opposite
    ((100, 500), (900, 500), False),         # right
    ((900, 500), (100, 500), False),         # left
    ((500, 500), (700, 300), False),         # tie goes to the horizontal axis
])
def test_swipe_rule(start, end, ok):
    pred = Action("Swipe", start=start, end=end).to_text()
    score = score_step(pred, UP)
    assert score.parsed and score.type_ok
    assert score.step_ok is ok
    assert score.exact is (pred == UP)


@pytest.mark.parametrize("pred,ok", [
    ("Settings", True), ("settings", True), ("SETTINGS", True), (" Settings ", True),
    ("Setting", False), ("Settings app", False), ("Clock", False),
])
def test_launch_rule(pred, ok):
    score = score_step(Action("Launch", app=pred).to_text(), 'do(action="Launch", app="Settings")')
    assert score.parsed and score.type_ok
    assert score.step_ok is ok
    assert score.exact is (pred == "Settings")


@pytest.mark.parametrize("pred,target,exact", [
    ('do(action="Back")', 'do(action="Back")', True),
    ('do(action="Home")', 'do(action="Home")', True),
    ('do(action="Wait", duration="2 seconds")', 'do(action="Wait", duration="2 seconds")', True),
    ('do(action="Wait", duration="5 seconds")', 'do(action="Wait", duration="2 seconds")', False),
    ('do(action="Wait")', 'do(action="Wait", duration="2 seconds")', False),
    ('finish(message="done")', 'finish(message="done")', True),
    ('finish(message="Sent the message.")', 'finish(message="done")', False),
    ('finish()', 'finish(message="done")', False),
    ('do(action="Note", message="a")', 'do(action="Note", message="b")', False),
    ('do(action="Take_over", message="a")', 'do(action="Take_over", message="a")', True),
    ('do(action="Interact")', 'do(action="Interact")', True),
    ('do(action="Call_API", instruction="x")', 'do(action="Call_API")', True),
])
def test_type_only_rule(pred, target, exact):
    assert score_step(pred, target) == StepScore(True, True, True, exact)


@pytest.mark.parametrize("pred,target", [
    ('do(action="Back")', 'do(action="Home")'),
    ('do(action="Home")', 'finish(message="done")'),
    ('finish(message="done")', 'do(action="Back")'),
    ('do(action="Tap", element=[500,450])', 'do(action="Type", text="hi")'),
    ('do(action="Type", text="Settings")', 'do(action="Launch", app="Settings")'),
    ('do(action="Swipe", start=[1,2], end=[3,4])', 'do(action="Tap", element=[1,2])'),
    ('do(action="Wait", duration="2 seconds")', 'do(action="Back")'),
])
def test_type_mismatch(pred, target):
    assert score_step(pred, target, BIG_BOX) == StepScore(True, False, False, False)


@pytest.mark.parametrize("pred,target,box", [
    ('<answer>do(action="Tap", element=[500,450])</answer>', 'do(action="Tap", element=[500,450])', BIG_BOX),
    ('<think>tap it</think><answer>do( action = "Tap", element = [500, 450] )</answer>',
     'do(action="Tap", element=[500,450])', BIG_BOX),
    ("do(action='Launch', app='Clock')", 'do(action="Launch", app="Clock")', None),
    ('finish(message="say \\"hi\\"")', "finish(message='say \"hi\"')", None),
])
def test_exact_compares_canonical_text(pred, target, box):
    assert score_step(pred, target, box) == StepScore(True, True, True, True)


def test_near_but_not_identical_is_step_correct_not_exact():
    s = score_step('do(action="Tap", element=[501,450])', 'do(action="Tap", element=[500,450])', BIG_BOX)
    assert s == StepScore(True, True, True, False)


@pytest.mark.parametrize("output", [
    "", "I will tap the send button.", 'do(action="Tap", element=[500,450]',
    'do(action="Tap", element=[1000,450])', 'do(action="Fly")', "<answer></answer>",
    "__import__('os').system('x')", 'do(action="Tap")',
])
def test_parse_failure_is_counted_not_raised(output):
    assert score_step(output, 'do(action="Tap", element=[500,450])', BIG_BOX) == \
        StepScore(False, False, False, False)


@pytest.mark.parametrize("target", [
    "", "tap(1,2)", 'do(action="Tap")', 'do(action="Tap", element=[1000,1])', "not an action",
])
def test_invalid_target_raises_value_error(target):
    with pytest.raises(ValueError, match="target"):
        score_step('do(action="Back")', target)


def test_args_match_requires_same_type():
    assert not args_match(Action("Tap", element=CENTER), Action("Long Press", element=CENTER), BIG_BOX)
    assert args_match(Action("Tap", element=CENTER), Action("Tap", element=CENTER), None)


def test_aggregate_hand_made():
    scores = [
        StepScore(True, True, True, True),      # exact
        StepScore(True, True, True, False),     # step-correct
        StepScore(True, True, False, False),    # right type, wrong args
        StepScore(True, False, False, False),   # wrong type
        StepScore(False, False, False, False),  # parse failure
    ]
    assert aggregate(scores) == TaskScores(n=5, step=2 / 5, type=3 / 5, exact=1 / 5, parse_failure=1 / 5)


@pytest.mark.parametrize("n_ok,n_fail", [(1, 0), (0, 1), (3, 1), (7, 9)])
def test_aggregate_fractions(n_ok, n_fail):
    scores = [StepScore(True, True, True, True)] * n_ok + [StepScore(False, False, False, False)] * n_fail
    agg = aggregate(scores)
    n = n_ok + n_fail
    assert agg.n == n
    assert agg.step == agg.type == agg.exact == pytest.approx(n_ok / n)
    assert agg.parse_failure == pytest.approx(n_fail / n)
    for v in (agg.step, agg.type, agg.exact, agg.parse_failure):
        assert 0.0 <= v <= 1.0


def test_aggregate_empty_raises():
    with pytest.raises(ValueError):
        aggregate([])


def test_aggregate_of_scored_outputs():
    target, box = 'do(action="Tap", element=[500,450])', BIG_BOX
    outputs = ['do(action="Tap", element=[500,450])', 'do(action="Tap", element=[610,450])',
               'do(action="Tap", element=[900,900])', 'do(action="Back")', "garbage"]
    agg = aggregate([score_step(o, target, box) for o in outputs])
    assert (agg.n, agg.exact, agg.step, agg.type, agg.parse_failure) == (5, 0.2, 0.4, 0.6, 0.2)


def test_ordering_invariant():
    # step-correct implies type-correct implies parsed; exact implies step-correct
    outputs = ['do(action="Tap", element=[500,450])', 'do(action="Tap", element=[610,450])',
               'do(action="Long Press", element=[500,450])', "x", 'finish(message="x")']
    for o in outputs:
        s = score_step(o, 'do(action="Tap", element=[500,450])', BIG_BOX)
        assert s.parsed >= s.type_ok >= s.step_ok >= s.exact
