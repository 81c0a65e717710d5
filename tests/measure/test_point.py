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


def test_point_round_trips_through_json(meter):
    import json

    from workbench.measure.point import Point

    p = meter({"quant": {"method": "rtn", "bits": 8}})
    assert Point.from_json(json.loads(json.dumps(p.to_json()))) == p
    assert p.memory_bytes == p.weight_bytes + p.kv_bytes and p.kv_bytes > 0


def test_cache_and_batching_sections_are_measured(meter):
    base = meter({})
    ticks = []
    p = meter({"cache": {"policy": "int8", "prefix_capacity_mb": 16}}, on_progress=lambda d, t: ticks.append((d, t)))
    assert p.label == "KV int8 + prefix"
    assert p.kv_bytes < 0.35 * base.kv_bytes  # int8 keys and values with per-token scales: ~3.8x fewer bytes
    assert p.cache["policy"] == "int8" and p.cache["prefix_hit_rate"] == 1.0
    assert "cache int8" in p.engine and p.kl == pytest.approx(0.0, abs=1e-6)  # same weights
    assert ticks[0] == (0, ticks[0][1]) and ticks[-1][0] == ticks[-1][1]  # progress reaches its total
    b = meter({"batching": {"window_ms": 5, "max_batch": 2, "arrival_rate": 2}})
    assert b.label == "batch<=2 5 ms"
    assert b.serving["max_batch"] == 2 and 0 < b.serving["p50_ms"] <= b.serving["p99_ms"]
    assert 1 <= b.serving["mean_batch"] <= 2 and b.step == base.step


def test_cancel_stops_a_measurement(meter):
    from workbench.measure.point import Cancelled

    def stop(done, total):
        if done >= 2:
            raise Cancelled

    with pytest.raises(Cancelled):
        meter({"quant": {"method": "rtn", "bits": 4}}, on_progress=stop)
