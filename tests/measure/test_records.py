import pytest

from workbench.measure import Spread


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
