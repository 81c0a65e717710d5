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
    from workbench.widgets import MeasureBox

    assert isinstance(box, MeasureBox) and box.get_state()["_model_name"] == "VBoxModel"  # a real widget class
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
    from workbench.widgets import BatchingExplorer

    assert isinstance(box, BatchingExplorer) and box.get_state()["_model_name"] == "VBoxModel"
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


# --- the dashboard (notebook 05) -------------------------------------------------------------------
def _names(fig):
    return [t.name for t in fig.data]


def test_recipe_from_controls_leaves_default_sections_out():
    from workbench.widgets import dashboard_controls, recipe_from_controls

    c = dashboard_controls()
    assert recipe_from_controls(c) == {}
    c["prune.method"].value, c["prune.ratio"].value = "heads", 0.25
    c["cache.prefix_capacity_mb"].value = 16.0
    c["batching.on"].value = True
    r = recipe_from_controls(c)
    assert r["prune"] == {"method": "heads", "ratio": 0.25}  # structured: no pattern
    assert r["cache"]["policy"] == "full" and r["cache"]["prefix_capacity_mb"] == 16.0
    assert set(r["batching"]) == {"window_ms", "max_batch", "arrival_rate"} and "quant" not in r
    assert Recipe.from_json(r).to_json()["batching"]["max_batch"] == 8


def test_dashboard_measures_on_change_then_fetches_from_the_store(tmp_path, fake_meter):
    from workbench.store import ResultsStore
    from workbench.widgets import dashboard

    store = ResultsStore(tmp_path / "r.db")
    dash = dashboard(fake_meter, store=store, threaded=False)
    assert dash.baseline.recipe == {} and "baseline" in _names(dash.figure)
    assert dash.controls["prune.ratio"].disabled  # method "none": the ratio means nothing yet
    dash.apply({"prune": {"method": "magnitude", "ratio": 0.2}})
    assert not dash.controls["prune.ratio"].disabled
    calls = fake_meter.calls
    dash.controls["prune.ratio"].value = 0.4  # a slider move measures the new point ...
    assert fake_meter.calls == calls + 1 and dash.current.value("prune", "ratio") == 0.4
    assert "step accuracy" in dash.readout.value and "measured" in dash.readout.value
    dash.controls["prune.ratio"].value = 0.2  # ... and moving back fetches it
    assert fake_meter.calls == calls + 1 and "from the store" in dash.readout.value
    hand = next(t for t in dash.figure.data if t.name == "prune (hand)")
    assert len(hand.x) == 2 and any("magnitude" in h for h in hand.hovertext)
    assert any(t.name.startswith("Pareto front") for t in dash.figure.data)
    assert dash.moved == ("prune", "ratio") and len(dash.knob_view.data[0].x) == 2  # the per-knob view
    assert dash.selection.value and "<table" in dash.table.value  # the front is selected in the table
    dash.controls["quant.method"].value = "rtn"  # a valid recipe: measured
    n = fake_meter.calls
    dash.controls["quant.activations"].value = "int8"  # impossible with 4-bit weights: said, not measured
    assert fake_meter.calls == n and "needs quant.bits 8" in dash.readout.value
    # a new kernel: the same store gives every point back, nothing measured again
    again = dashboard(fake_meter, store=ResultsStore(store.path), threaded=False)
    assert fake_meter.calls == n and len(again.hand) == len(dash.hand)


def test_dashboard_shows_sweep_points_and_cancel_keeps_nothing(tmp_path, fake_meter):
    import threading

    from workbench.store import ResultsStore
    from workbench.sweep import parse_grid, run_grid
    from workbench.widgets import dashboard

    store = ResultsStore(tmp_path / "r.db")
    run_grid(fake_meter, parse_grid(["quant.bits=8,4"]), store, progress=False)
    dash = dashboard(fake_meter, store=store, threaded=True)
    assert len(dash.sweep) == 2 and "quant (sweep)" in _names(dash.figure)
    gate = threading.Event()

    class Slow:  # the same meter, but each measurement waits until it is cancelled
        fingerprint, data_hash, settings = fake_meter.fingerprint, fake_meter.data_hash, fake_meter.settings

        def __call__(self, recipe, on_progress=None):
            def tick(done, total):
                gate.set()
                while not dash.jobs.wait_cancel(0.01):
                    pass
                on_progress(done, total)
            return fake_meter(recipe, on_progress=tick)

    dash.meter = Slow()
    before = len(store)
    dash.controls["quant.method"].value = "gptq"
    assert gate.wait(10)
    dash.cancel_button.click()
    dash.wait(10)
    assert "cancelled" in dash.readout.value and len(store) == before


def test_dashboard_on_the_tiny_model(tiny, eval_steps, tmp_path):
    from workbench.store import ResultsStore
    from workbench.widgets import dashboard

    model, tok = tiny
    meter = PointMeter(model, tok, eval_steps[:3], latency_repeats=1)
    dash = dashboard(meter, store=ResultsStore(tmp_path / "r.db"), threaded=False)
    dash.apply({"cache": {"policy": "int8"}})
    assert dash.current.kv_bytes < dash.baseline.kv_bytes and "cache int8" in dash.current.engine
    marker = next(t for t in dash.figure.data if t.name == "cache (hand)").marker
    assert marker.size[0] > 10  # area follows memory


def test_dashboard_load_row_names_a_bad_path_and_loads_a_good_one(tiny, eval_steps, tmp_path):
    from workbench.store import ResultsStore
    from workbench.widgets import dashboard

    model, tok = tiny
    meter = PointMeter(model, tok, eval_steps[:2], latency_repeats=1)
    dash = dashboard(meter, store=ResultsStore(tmp_path / "r.db"), threaded=False)
    dash.episodes_path.value = str(tmp_path / "missing.jsonl")
    dash.load_button.click()
    assert "missing.jsonl" in dash.readout.value and dash.meter is meter  # said, and the old model kept
    dash.episodes_path.value, dash.limit.value = "", 2
    dash.load_button.click()
    assert dash.meter is not meter and len(dash.meter.steps) == 2
    assert dash.meter.fingerprint == meter.fingerprint and "baseline: step accuracy" in dash.readout.value


def test_dashboard_offers_the_embedded_models_by_name_and_any_folder(tmp_path, fake_meter):
    from workbench.model import EMBEDDED_MODELS
    from workbench.store import ResultsStore
    from workbench.widgets import dashboard

    dash = dashboard(fake_meter, store=ResultsStore(tmp_path / "r.db"), threaded=False)
    assert list(dash.model_path.options) == ["open-autoglm-tiny", "open-autoglm-tiny-vl"] == list(EMBEDDED_MODELS)
    assert not dash.model_path.ensure_option  # a folder or hub id may be typed in too


def test_export_button_hands_the_current_recipe_to_the_exporter(tmp_path, fake_meter, monkeypatch):
    import types

    import workbench.export
    from workbench.widgets import dashboard

    calls = []

    def fake_export(out, recipe, **kw):
        calls.append((out, recipe, kw))
        lat = types.SimpleNamespace(decode_ms_per_token=types.SimpleNamespace(median=1.5))
        return types.SimpleNamespace(path=out, latency_onnxruntime=lat)

    monkeypatch.setattr(workbench.export, "export_onnx", fake_export)
    dash = dashboard(fake_meter, threaded=False, export_dir=tmp_path)
    dash.apply({"quant": {"method": "rtn", "bits": 8}})
    dash.export_button.click()
    (out, recipe, kw), = calls
    assert recipe == dash.current.recipe and out.parent == tmp_path and out.name == "rtn-8b-g32"
    assert kw["calib"] is fake_meter.calib and kw["model"] is fake_meter.model  # the point's own data and model
    assert "parity gate passed" in dash.export_status.value and not dash.export_button.disabled


def test_export_button_writes_gguf_for_a_point_measured_on_llama_cpp(tmp_path, fake_meter, monkeypatch):
    """What the point measured is what the button writes: a llama.cpp point exports the GGUF file."""
    import dataclasses
    import types

    import workbench.export.gguf as gguf
    from workbench.widgets import dashboard

    calls = []

    def fake_gguf(out, recipe, **kw):
        calls.append(out)
        lat = types.SimpleNamespace(decode_ms_per_token=types.SimpleNamespace(median=0.9))
        return types.SimpleNamespace(path=out, latency_llamacpp=lat)

    monkeypatch.setattr(gguf, "export_gguf", fake_gguf)
    measure = fake_meter.__call__
    monkeypatch.setattr(type(fake_meter), "__call__", lambda self, recipe, **kw: dataclasses.replace(
        measure(recipe, **kw), engine="llama.cpp (F32 + Q4_0)"))
    dash = dashboard(fake_meter, threaded=False, export_dir=tmp_path)
    dash.apply({"quant": {"method": "rtn", "bits": 4}})
    dash.export_button.click()
    assert calls and "llama.cpp 0.90 ms/token" in dash.export_status.value


def test_dashboard_draws_points_at_a_target_with_their_interval(tmp_path, fake_meter, monkeypatch):
    """At a target the x axis is the latency measured there (a tiny stand-in shape here, to stay fast)."""
    import workbench.measure.target as target
    from workbench.store import ResultsStore
    from workbench.widgets import dashboard

    small = target.TargetShape("glm-edge-1.5b", 64, 2, 4, 2, 16, 128, 512)
    monkeypatch.setitem(target.TARGETS, "glm-edge-1.5b", small)
    store = ResultsStore(tmp_path / "r.db")
    dash = dashboard(fake_meter, store=store, threaded=False, target="glm-edge-1.5b")
    assert dash.get_state()["_model_name"] == "VBoxModel"  # nothing shadows the widget's own traits: it renders
    dash.apply({"quant": {"method": "rtn", "bits": 4, "group_size": 32}})
    assert "at glm-edge-1.5b" in dash.figure.layout.xaxis.title.text
    quant = next(t for t in dash.figure.data if t.name == "quant (hand)")
    assert quant.x[0] == dash._targets[dash._target_key(dash.current)]["decode_ms_per_token"]
    assert quant.error_y.array[0] > 0 and quant.error_y.arrayminus[0] > 0  # the Wilson interval
    dash.y_axis.value = "kl"
    assert "KL" in dash.figure.layout.yaxis.title.text
    dash.target.value = "tiny"
    assert "on this machine" in dash.figure.layout.xaxis.title.text
