"""PointMeter: a recipe measured against the baseline on fixed steps; the baseline is its own zero."""
import pytest

from workbench.measure.point import PointMeter


@pytest.fixture(scope="module")
def meter(tiny, eval_steps):
    model, tok = tiny
    return PointMeter(model, tok, eval_steps[:6], latency_repeats=2)


def test_baseline_point_has_zero_kl(meter):
    p = meter({})
    assert p.label == "baseline" and p.n == 6
    assert p.kl == pytest.approx(0.0, abs=1e-6)
    assert 0 < p.decode_ms.median <= p.decode_ms.p90
    assert p.engine == "pytorch-eager"


def test_quantized_point_is_smaller_and_drifts(meter, tiny):
    base = meter({})
    p = meter({"quant": {"method": "rtn", "bits": 4, "group_size": 32}})
    assert p.label == "rtn 4b g32"
    assert p.weight_bytes < 0.4 * base.weight_bytes
    assert p.kl > 0
    assert p.value("quant", "bits") == 4 and p.value("prune", "ratio") is None
    assert "dequant" in p.engine  # says which kernel ran
