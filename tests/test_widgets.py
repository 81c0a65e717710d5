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
