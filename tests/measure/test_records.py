"""Measurement records: the timing spread and the Wilson interval of a success rate."""
import math
import statistics

import pytest

from workbench.measure import Spread
from workbench.measure.records import wilson_interval


@pytest.mark.parametrize("values, median, p90", [
    ([5.0], 5.0, 5.0),
    ([1.0, 2.0, 3.0], 2.0, 3.0),
    ([float(i) for i in range(1, 11)], 5.5, 9.0),
    ([10.0, 1.0, 4.0, 3.0], 3.5, 10.0),
])
def test_spread_median_and_p90(values, median, p90):
    s = Spread.of(values)
    assert s.median == pytest.approx(median)
    assert s.p90 == pytest.approx(p90)
    assert s.n == len(values)
    assert min(values) <= s.median <= s.p90 <= max(values)


def test_spread_rejects_empty():
    with pytest.raises(ValueError):
        Spread.of([])


def _textbook_wilson(x, n, confidence):
    z = statistics.NormalDist().inv_cdf((1 + confidence) / 2)
    p = x / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return centre - half, centre + half


def test_wilson_interval_on_known_counts():
    assert wilson_interval(8, 10) == pytest.approx(_textbook_wilson(8, 10, 0.90))
    low, high = wilson_interval(8, 10, 0.95)
    assert (round(low, 3), round(high, 3)) == (0.490, 0.943)  # the published 95% interval for 8 of 10
    assert wilson_interval(9, 12) == pytest.approx(_textbook_wilson(9, 12, 0.90))
    assert wilson_interval(8, 10, 0.99)[0] < wilson_interval(8, 10, 0.90)[0]  # more confidence, wider


def test_wilson_interval_narrows_with_n():
    widths = [high - low for low, high in (wilson_interval(n // 2, n) for n in (4, 10, 40, 100, 1000))]
    assert widths == sorted(widths, reverse=True) and widths[-1] < 0.06


@pytest.mark.parametrize("n", [1, 5, 12, 100])
def test_wilson_interval_edges_and_bounds(n):
    low, high = wilson_interval(0, n)
    assert low == 0.0 and 0 < high < 1
    low, high = wilson_interval(n, n)
    assert high == 1.0 and 0 < low < 1
    for x in range(n + 1):
        low, high = wilson_interval(x, n)
        assert 0.0 <= low <= x / n <= high <= 1.0


def test_wilson_interval_with_no_trials_and_bad_input():
    assert wilson_interval(0, 0) == (0.0, 1.0)
    with pytest.raises(ValueError):
        wilson_interval(11, 10)
    with pytest.raises(ValueError):
        wilson_interval(1, 10, confidence=1.0)
