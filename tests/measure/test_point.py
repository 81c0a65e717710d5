"""PointMeter: a recipe measured against the baseline on fixed steps; the baseline is its own zero."""
import pytest

from workbench.measure.point import PointMeter


@pytest.fixture(scope="module")
def meter(tiny, eval_steps):
    model, tok = tiny
    return PointMeter(model, tok, eval_steps[:6], latency_repeats=2, engine="pytorch")


@pytest.fixture(scope="module")
def ort_meter(tiny, eval_steps):
    from workbench.calib import default_calibration

    model, tok = tiny
    return PointMeter(model, tok, eval_steps[:12], default_calibration(tok, n=8), latency_repeats=2)  # engine "ort"


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
    assert "dequant" in p.engine  # says which kernel ran (PyTorch eager)


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


def test_onnxruntime_is_the_default_engine_and_measures_the_fused_graph(ort_meter, meter):
    base = ort_meter({})
    assert base.engine == "onnxruntime-fused (float32)" and base.kl == pytest.approx(0.0, abs=1e-6)
    assert base.step == PointMeter(meter.model, meter.tokenizer, ort_meter.steps, engine="pytorch")({}).step
    p = ort_meter({"quant": {"method": "rtn", "bits": 4, "group_size": 32}})
    assert p.engine == "onnxruntime-fused (MatMulNBits int4 block 32)"
    assert p.weight_bytes < 0.5 * base.weight_bytes  # what the graph stores: codes, float32 scales, float head
    assert 0 < p.kl < 1e-2 and p.exact is not None and len(p.predictions) == 12
    lo, hi = p.step_interval
    assert lo <= p.step <= hi and hi - lo > 0.2  # 12 steps say little: the interval is wide


@pytest.mark.parametrize("recipe, why", [
    ({"quant": {"method": "rtn", "bits": 3, "group_size": 32}}, "3-bit weights have no ONNX Runtime CPU kernel"),
    ({"cache": {"policy": "sliding", "window": 256, "sinks": 4}}, "runs in PyTorch only"),
])
def test_what_onnxruntime_cannot_run_is_measured_in_pytorch_and_says_so(ort_meter, recipe, why):
    p = ort_meter(recipe)
    assert p.engine.startswith("pytorch-eager") and "not onnxruntime: " in p.engine and why in p.engine


def test_an_ort_point_is_what_the_exported_folder_runs(ort_meter, tmp_path):
    """Export the point's recipe (fused graph), re-measure the folder: the same actions, the same accuracy."""
    from workbench.export import export_onnx
    from workbench.measure.accuracy import run_task_ort
    from workbench.ort import OrtDecoder

    recipe = {"prune": {"method": "channels", "ratio": 0.25}, "quant": {"method": "rtn", "bits": 4, "group_size": 32}}
    point = ort_meter(recipe)
    r = export_onnx(tmp_path / "int4", recipe, model=ort_meter.model, tokenizer=ort_meter.tokenizer, graph="fused",
                    calib=ort_meter.calib, accuracy_steps=2, parity_prompts=1, decode_steps=2, latency_repeats=1,
                    progress=False)
    acc, preds, _ = run_task_ort(OrtDecoder(r.path / "model.onnx"), ort_meter.tokenizer, ort_meter.steps,
                                 progress=False)
    assert acc.step == point.step and acc.type == point.type
    assert [p.output for p in preds] == [p.output for p in point.predictions]
    assert r.manifest["precision"]["method"] == "rtn" and r.parity.passed


def test_a_bfloat16_model_is_measured_in_pytorch_and_says_so(tiny, eval_steps):
    import copy

    import torch

    model, tok = tiny
    half = copy.deepcopy(model).to(torch.bfloat16)
    p = PointMeter(half, tok, eval_steps[:2], latency_repeats=1)({}, fidelity=False)  # engine "ort" asked for
    assert p.engine.startswith("pytorch-eager") and "a bfloat16 model has no ONNX Runtime CPU graph" in p.engine
