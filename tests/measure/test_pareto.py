"""The Pareto front: hand cases for dominance in both senses, ties and single points."""
from workbench.measure.pareto import MAXIMIZE, MINIMIZE, dominates, pareto_front, pareto_indices

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
    front = pareto_front([a, b, c])
    assert front == [b, c]
