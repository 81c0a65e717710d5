"""The Pareto front: hand cases for dominance in both senses, ties (interval overlap too) and single points."""
from dataclasses import dataclass

import pytest

from workbench.measure.pareto import (KL_OBJECTIVES, MAXIMIZE, MINIMIZE, OBJECTIVES, Objective, compare, dominates,
                                      pareto_front, pareto_indices, step_interval)
from workbench.measure.records import Spread, wilson_interval

SENSES = (MAXIMIZE, MINIMIZE)  # accuracy up, latency down


def test_dominates_needs_better_somewhere_and_worse_nowhere():
    assert dominates((0.9, 10), (0.8, 12), SENSES)
    assert dominates((0.9, 10), (0.9, 12), SENSES)
    assert not dominates((0.9, 10), (0.9, 10), SENSES)  # equal: neither dominates
    assert not dominates((0.9, 12), (0.8, 10), SENSES)  # a trade-off


def test_front_of_hand_made_points():
    values = [(0.90, 10), (0.85, 5), (0.80, 6), (0.70, 2), (0.90, 12), (0.60, 2)]
    assert pareto_indices(values, SENSES) == [0, 1, 3]
    assert pareto_indices([(0.5, 1)], SENSES) == [0]
    assert pareto_indices([], SENSES) == []
    assert pareto_indices([(0.5, 1), (0.5, 1)], SENSES) == [0, 1]  # duplicates both stay


def test_front_of_points_uses_the_three_objectives(fake_meter):
    a = fake_meter({})  # most accurate, slowest, biggest
    b = fake_meter({"quant": {"method": "rtn", "bits": 4}})  # as accurate, faster, smaller: dominates a
    c = fake_meter({"prune": {"method": "wanda", "ratio": 0.5}, "quant": {"method": "rtn", "bits": 4}})
    assert b.step == a.step and b.decode_ms.median < a.decode_ms.median
    points = [(name, sense, get) for name, sense, get in OBJECTIVES]  # plain triples: point estimates only
    assert pareto_front([a, b, c], points) == [b, c]
    # by interval: c's 0.775 of 10 overlaps b's 0.9 of 10, so c (faster, smaller) ties b on accuracy and wins
    assert pareto_front([a, b, c]) == [c]


@dataclass(frozen=True)
class Stand:
    """A stand-in point: step accuracy on n steps with its 90% Wilson interval, latency, memory, KL."""

    step: float
    n: int
    ms: float = 10.0
    memory_bytes: int = 1000
    kl: float = 0.0

    @property
    def step_interval(self):
        return wilson_interval(round(self.step * self.n), self.n)

    @property
    def decode_ms(self):
        return Spread(self.ms, self.ms * 1.1, 3)


def test_objectives_unpack_as_triples_and_carry_an_interval():
    assert [s for _, s, _ in OBJECTIVES] == [MAXIMIZE, MINIMIZE, MINIMIZE]
    assert OBJECTIVES[0].interval is step_interval and OBJECTIVES[1].interval is None
    assert Objective("x", MINIMIZE, abs).interval is None


def test_compare_ties_overlapping_intervals_in_both_senses():
    assert compare((0.5, 0.9), (0.3, 0.6), MAXIMIZE) == 0
    assert compare((0.7, 0.9), (0.3, 0.6), MAXIMIZE) == 1 and compare((0.3, 0.6), (0.7, 0.9), MAXIMIZE) == -1
    assert compare((0.7, 0.9), (0.3, 0.6), MINIMIZE) == -1 and compare(0.2, (0.3, 0.6), MINIMIZE) == 1
    assert compare(2, 2, MAXIMIZE) == 0 and compare(3, 2, MAXIMIZE) == 1
    assert not dominates(((0.5, 0.9), 10), ((0.3, 0.6), 10), (MAXIMIZE, MINIMIZE))  # overlap, equal latency
    assert dominates(((0.3, 0.6), 9), ((0.5, 0.9), 10), (MAXIMIZE, MINIMIZE))  # tie, faster


def test_an_overlapping_accuracy_gain_alone_does_not_dominate():
    base, pruned = Stand(8 / 12, 12), Stand(9 / 12, 12)
    (_, bh), (pl, _) = base.step_interval, pruned.step_interval
    assert pl < bh  # the intervals overlap
    front = pareto_front([base, pruned])
    assert front == [base, pruned]  # neither beats the other: the baseline stays on the front


def test_an_interval_wholly_above_dominates():
    base, better = Stand(0.5, 100), Stand(0.8, 100)
    assert better.step_interval[0] > base.step_interval[1]
    assert pareto_front([base, better]) == [better]


def test_ties_are_ties_a_faster_point_within_the_interval_dominates():
    slow, fast = Stand(0.75, 12, ms=20.0), Stand(0.667, 12, ms=10.0)
    assert pareto_front([slow, fast]) == [fast]  # accuracy tied, latency better, memory equal
    assert pareto_front([slow, fast], [tuple(o) for o in OBJECTIVES]) == [slow, fast]  # by point estimate


def test_a_sweep_inside_the_baselines_interval_keeps_the_baseline_on_the_front():
    base = Stand(0.6, 20)
    sweep = [Stand(s, 20) for s in (0.65, 0.7, 0.75, 0.55)]
    assert all(p.step_interval[0] <= base.step_interval[1] for p in sweep)
    front = pareto_front([*sweep, base])
    assert base in front and front == [*sweep, base]


def test_four_tuple_objectives_and_the_kl_front():
    objectives = (("step", MAXIMIZE, lambda p: p.step, lambda p: p.step_interval),
                  ("ms", MINIMIZE, lambda p: p.decode_ms.median, None))
    a, b = Stand(0.75, 12, ms=20.0), Stand(0.667, 12, ms=10.0)
    assert pareto_front([a, b], objectives) == [b]
    low_kl, high_kl = Stand(0.5, 10, kl=0.01), Stand(0.9, 10, kl=0.2)
    assert pareto_front([low_kl, high_kl], KL_OBJECTIVES) == [low_kl]  # KL down, no interval
    assert [o[0] for o in KL_OBJECTIVES][1:] == [o[0] for o in OBJECTIVES][1:]


def test_step_interval_falls_back_to_step_and_n():
    @dataclass
    class Bare:
        step: float
        n: int

    assert step_interval(Bare(0.8, 10)) == pytest.approx(wilson_interval(8, 10))
    assert step_interval(Stand(0.75, 12)) == Stand(0.75, 12).step_interval
