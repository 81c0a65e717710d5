"""The Pareto front of measured points: those no other point beats on every objective at once."""
from __future__ import annotations

MAXIMIZE, MINIMIZE = 1, -1
# The dashboard's and the sweep's objectives: step accuracy up, decode latency down, memory down.
OBJECTIVES = (("step accuracy", MAXIMIZE, lambda p: p.step),
              ("decode ms/token", MINIMIZE, lambda p: p.decode_ms.median),
              ("memory bytes", MINIMIZE, lambda p: p.memory_bytes))


def dominates(a, b, senses) -> bool:
    """Whether value vector `a` is at least as good as `b` everywhere and better somewhere."""
    better = False
    for x, y, s in zip(a, b, senses):
        if s * x < s * y:
            return False
        better |= s * x > s * y
    return better


def pareto_indices(values, senses) -> list[int]:
    """Indices of the non-dominated rows of `values` (a list of equal-length tuples), in input order.

    Args:
        values: one tuple of objective values per point.
        senses: MAXIMIZE or MINIMIZE per objective.
    """
    values = [tuple(v) for v in values]
    return [i for i, v in enumerate(values)
            if not any(dominates(w, v, senses) for j, w in enumerate(values) if j != i)]


def pareto_front(points, objectives=OBJECTIVES) -> list:
    """The points no other point dominates on `objectives` ((name, sense, getter) triples)."""
    points = list(points)
    values = [tuple(get(p) for _, _, get in objectives) for p in points]
    return [points[i] for i in pareto_indices(values, [s for _, s, _ in objectives])]


__all__ = ["MAXIMIZE", "MINIMIZE", "OBJECTIVES", "dominates", "pareto_front", "pareto_indices"]
