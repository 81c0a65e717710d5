"""Step-matching metrics of the phone-agent task (AndroidControl / AITW rules).

- type accuracy: the predicted action type equals the target's;
- step accuracy: type matches and the arguments match by the rule of the type:
  tap / long press / double tap inside the target box enlarged 1.2x about its center, or within
  0.04 normalized distance of the target point; typed text by case-insensitive containment (either
  way, non-empty); swipe by main-axis direction; launch by app name (case-insensitive);
  every other type by type alone;
- exact match: the canonical action text is identical;
- parse failure: the output is not an action of the grammar (counted, never raised).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from .grammar import TAP_LIKE, Action, try_parse

BOX_SCALE = 1.2
MAX_DISTANCE = 0.04  # normalized by the 1000-unit screen


@dataclass(frozen=True)
class StepScore:
    """Score of one prediction against its target."""

    parsed: bool
    type_ok: bool
    step_ok: bool
    exact: bool


def _in_box(point, box, scale: float = BOX_SCALE) -> bool:
    x1, y1, x2, y2 = box
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    hw, hh = (x2 - x1) * scale / 2, (y2 - y1) * scale / 2
    return abs(point[0] - cx) <= hw and abs(point[1] - cy) <= hh


def _near(a, b, limit: float = MAX_DISTANCE) -> bool:
    return math.hypot((a[0] - b[0]) / 1000, (a[1] - b[1]) / 1000) <= limit


def args_match(pred: Action, target: Action, target_box=None) -> bool:
    """Whether two actions of the same type match by the rule of that type."""
    if pred.type != target.type:
        return False
    if target.type in TAP_LIKE:
        return (target_box is not None and _in_box(pred.element, target_box)) or _near(
            pred.element, target.element)
    if target.type in ("Type", "Type_Name"):
        p, t = (pred.text or "").strip().lower(), (target.text or "").strip().lower()
        return bool(p) and bool(t) and (p in t or t in p)
    if target.type == "Swipe":
        return pred.swipe_direction() == target.swipe_direction()
    if target.type == "Launch":
        return (pred.app or "").strip().lower() == (target.app or "").strip().lower()
    return True


def score_step(output: str, target: str, target_box=None) -> StepScore:
    """Score one model output.

    Args:
        output: raw model text (may be malformed).
        target: the target action text.
        target_box: the target element's [x1, y1, x2, y2], for tap-like targets.
    Returns:
        StepScore.
    """
    want = try_parse(target)
    if want is None:
        raise ValueError(f"target is not a valid action: {target!r}")
    got = try_parse(output)
    if got is None:
        return StepScore(False, False, False, False)
    type_ok = got.type == want.type
    return StepScore(True, type_ok, type_ok and args_match(got, want, target_box),
                     got.to_text() == want.to_text())


@dataclass(frozen=True)
class TaskScores:
    """Aggregate task metrics over n steps (fractions in 0..1)."""

    n: int
    step: float
    type: float
    exact: float
    parse_failure: float


def aggregate(scores: list[StepScore]) -> TaskScores:
    """Means of the per-step scores."""
    n = len(scores)
    if n == 0:
        raise ValueError("no steps scored")
    return TaskScores(n, sum(s.step_ok for s in scores) / n, sum(s.type_ok for s in scores) / n,
                      sum(s.exact for s in scores) / n, sum(not s.parsed for s in scores) / n)
