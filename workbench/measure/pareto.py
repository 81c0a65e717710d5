"""The Pareto front of measured points: those no other point beats on every objective at once.

An objective may be measured with an interval (step accuracy on a few steps is): two points whose
intervals overlap are tied on it, so a point is better there only when its interval lies wholly
beyond the other's. Ties are ties.
"""
from __future__ import annotations

from .records import wilson_interval

MAXIMIZE, MINIMIZE = 1, -1
CONFIDENCE = 0.90  # of the step-accuracy intervals the front compares


class Objective(tuple):
    """An objective: unpacks as (name, sense, getter); `interval` is None or point -> (low, high).

    With an interval getter the front compares intervals (overlap: a tie) instead of getter values.
    """

    def __new__(cls, name: str, sense: int, get, interval=None):
        obj = super().__new__(cls, (name, sense, get))
        obj.interval = interval
        return obj


def step_interval(point, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """A point's Wilson interval for step accuracy: its `step_interval`, else one from `step` and `n`.

    Args:
        point: anything with `.step` (fraction) and `.n` (steps), optionally `.step_interval`.
        confidence: coverage of the interval computed when the point carries none.
    Returns:
        (low, high) in [0, 1].
    """
    given = getattr(point, "step_interval", None)
    if given is not None:
        return tuple(given)
    return wilson_interval(round(point.step * point.n), point.n, confidence)


def _decode_ms(point) -> float:
    return point.decode_ms.median


def _memory(point) -> int:
    return point.memory_bytes


# The dashboard's and the sweep's objectives: step accuracy up (by interval), decode latency down, memory down.
OBJECTIVES = (Objective("step accuracy", MAXIMIZE, lambda p: p.step, step_interval),
              Objective("decode ms/token", MINIMIZE, _decode_ms),
              Objective("memory bytes", MINIMIZE, _memory))
# The same with fidelity as the accuracy axis: KL to the baseline down (a point estimate, no interval).
KL_OBJECTIVES = (Objective("KL to the baseline", MINIMIZE, lambda p: p.kl), *OBJECTIVES[1:])


def _target_decode_ms(point) -> float:
    return point.target["decode_ms_per_token"]


def _target_memory(point) -> int:
    return point.target.get("memory_bytes_at_context", point.memory_bytes)


def objectives_for(y: str = "step", target: bool = False) -> tuple:
    """The front's objectives: accuracy ("step", by interval) or fidelity ("kl") up, and latency and
    memory down, on this machine or, with `target`, at the points' deployment shape
    (`point.target`: decode ms/token and memory at its context)."""
    if y not in ("step", "kl"):
        raise ValueError(f"y must be 'step' or 'kl', got {y!r}")
    first = (OBJECTIVES if y == "step" else KL_OBJECTIVES)[0]
    if not target:
        return (first, *OBJECTIVES[1:])
    return (first, Objective("target decode ms/token", MINIMIZE, _target_decode_ms),
            Objective("target memory bytes", MINIMIZE, _target_memory))


def _span(value, sense) -> tuple[float, float]:
    """A value or (low, high) interval as an interval in "bigger is better" units."""
    low, high = value if isinstance(value, tuple) else (value, value)
    return tuple(sorted((sense * low, sense * high)))


def compare(x, y, sense) -> int:
    """1 if `x` is better than `y`, -1 if worse, 0 if tied; intervals ((low, high)) tie when they overlap.

    Args:
        x, y: numbers, or (low, high) intervals (a number against an interval counts as a zero-width one).
        sense: MAXIMIZE or MINIMIZE.
    Returns:
        1, 0 or -1.
    """
    (x_low, x_high), (y_low, y_high) = _span(x, sense), _span(y, sense)
    if x_low > y_high:
        return 1
    if x_high < y_low:
        return -1
    return 0


def dominates(a, b, senses) -> bool:
    """Whether value vector `a` is at least as good as `b` everywhere and better somewhere.

    Args:
        a, b: one value per objective; a value may be a (low, high) interval, compared by `compare`
            (overlapping intervals are equal).
        senses: MAXIMIZE or MINIMIZE per objective.
    Returns:
        True when `a` dominates `b`.
    """
    better = False
    for x, y, s in zip(a, b, senses):
        c = compare(x, y, s)
        if c < 0:
            return False
        better |= c > 0
    return better


def pareto_indices(values, senses) -> list[int]:
    """Indices of the non-dominated rows of `values` (a list of equal-length tuples), in input order.

    Args:
        values: one tuple of objective values (numbers or (low, high) intervals) per point.
        senses: MAXIMIZE or MINIMIZE per objective.
    Returns:
        The indices no other row dominates.
    """
    values = [tuple(v) for v in values]
    return [i for i, v in enumerate(values)
            if not any(dominates(w, v, senses) for j, w in enumerate(values) if j != i)]


def _value(objective, point):
    interval = objective[3] if len(objective) > 3 else getattr(objective, "interval", None)
    return tuple(interval(point)) if interval is not None else objective[2](point)


def pareto_front(points, objectives=OBJECTIVES) -> list:
    """The points no other point dominates on `objectives`, in input order.

    Args:
        points: measured points (duck-typed: whatever the objectives' getters read).
        objectives: Objective entries, or (name, sense, getter) / (name, sense, getter, interval_getter_or_None)
            tuples; an objective with an interval getter is compared by interval (overlap: a tie).
    Returns:
        The non-dominated points.
    """
    points = list(points)
    values = [tuple(_value(o, p) for o in objectives) for p in points]
    return [points[i] for i in pareto_indices(values, [o[1] for o in objectives])]


__all__ = ["CONFIDENCE", "KL_OBJECTIVES", "MAXIMIZE", "MINIMIZE", "OBJECTIVES", "Objective", "compare", "dominates",
           "objectives_for", "pareto_front", "pareto_indices", "step_interval"]
