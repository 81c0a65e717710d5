"""The dashboard and the knob controls on a vision-language model: the scope toggle reaches the recipe."""
from workbench.measure.point import PointMeter
from workbench.model import load_model, write_random_checkpoint
from workbench.model.vision import load_processor
from workbench.recipe import Recipe
from workbench.task import DEFAULT_EPISODES, load_steps
from workbench.widgets import dashboard, prune_controls, quant_controls, section_from


def test_scope_controls_write_the_recipe_key_only_when_it_is_not_the_default():
    q = quant_controls(bits=4)
    assert "scope" not in section_from(q)
    q["scope"].value = "all"
    assert Recipe.from_json({"quant": section_from(q)}).quant.scope == "all"
    heads = prune_controls(method="heads", ratio=0.25)
    heads["scope"].value = "all"  # structured pruning keeps to the language model: the key is left out
    assert Recipe.from_json({"prune": section_from(heads)}).prune.scope == "language"


def test_the_dashboard_measures_a_vision_tower_recipe(tmp_path):
    write_random_checkpoint(tmp_path, "glm4v", max_image_tokens=16)
    model, tok = load_model(tmp_path)
    meter = PointMeter(model, tok, load_steps(DEFAULT_EPISODES, limit=2), processor=load_processor(tmp_path),
                       latency_repeats=1, engine="pytorch")
    dash = dashboard(meter, threaded=False)
    assert dash.controls["quant.scope"].disabled  # quant method "none"
    dash.apply({"quant": {"method": "rtn", "bits": 4, "group_size": 32, "scope": "all"}})
    assert not dash.controls["quant.scope"].disabled and dash.controls["quant.scope"].value == "all"
    assert "+vision" in dash.current.label
    assert dash.current.vision_weight_bytes < dash.baseline.vision_weight_bytes
