"""Widget factories: controls map to valid recipe sections; the explorer measures and redraws."""
from workbench.measure.point import PointMeter
from workbench.recipe import Recipe
from workbench.widgets import knob_explorer, prune_controls, quant_controls, section_from


def test_controls_give_valid_recipes():
    for method in ("magnitude", "wanda", "sparsegpt", "heads", "channels"):
        c = prune_controls(method=method, ratio=0.3)
        r = Recipe.from_json({"prune": section_from(c)})
        assert r.prune.ratio == 0.3
    q = quant_controls(bits=4)
    assert Recipe.from_json({"quant": section_from(q)}).quant.bits == 4


def test_explorer_adds_a_point_and_reports_bad_combinations(tiny, eval_steps):
    model, tok = tiny
    meter = PointMeter(model, tok, eval_steps[:3], latency_repeats=1)
    baseline = meter({})
    points = []
    box = knob_explorer(meter, "quant", "bits", baseline, points)
    box.controls["bits"].value = 8
    box.measure()
    assert len(points) == 1 and points[0].value("quant", "bits") == 8
    assert "step accuracy" in box.status.value
    box.controls["bits"].value = 4
    box.controls["activations"].value = "int8"  # impossible: int8 activations need 8-bit weights
    box.measure()
    assert len(points) == 1 and "activations" in box.status.value


def test_batching_explorer_resimulates_on_slider_change():
    from workbench.serve import BatchingConfig, ServiceModel, simulate
    from workbench.widgets import batching_explorer, batching_controls

    svc = ServiceModel((0.0, 0.0), ((1, 1.0),), (0.01, 0.0, 0.0), ((100, 10),))  # 100 ms per batch
    assert {k: w.value for k, w in batching_controls().items()} == BatchingConfig().to_json()
    live = [simulate(BatchingConfig(5, 8, 20), svc, 30, seed=1)]
    box = batching_explorer(svc, n_requests=300, live=live)
    assert box.report == simulate(BatchingConfig(), svc, 300, seed=0)
    assert "p50" in box.readout.value and "simulated" in box.readout.value
    box.controls["window_ms"].value = 50.0
    box.controls["max_batch"].value = 2
    box.controls["arrival_rate"].value = 4.0
    assert (box.report.window_ms, box.report.max_batch, box.report.arrival_rate) == (50.0, 2, 4.0)
    assert box.report == simulate(BatchingConfig(50, 2, 4), svc, 300, seed=0)
    assert f"{box.report.p50_ms:.0f} ms" in box.readout.value


def test_cache_explorer_measures_a_setting_and_refuses_impossible_ones(tiny, eval_steps):
    from workbench.cache import CacheConfig
    from workbench.widgets import cache_controls, cache_explorer

    assert {k: w.value for k, w in cache_controls().items()}.items() <= CacheConfig().__dict__.items()
    model, tok = tiny
    records = []
    box = cache_explorer(model, tok, eval_steps[:2], records)
    box.controls["policy"].value = "none"
    box.controls["prefix_capacity_mb"].value = 8
    box.measure()
    assert records == [] and "keeps no KV to reuse" in box.status.value
    box.controls["policy"].value = "int8"
    box.measure()
    assert len(records) == 1 and records[0].label == "int8 + prefix 8MB lru"
    assert "step accuracy" in box.status.value and records[0].prefix_hit_rate == 1.0
