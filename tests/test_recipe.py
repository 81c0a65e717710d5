"""Recipe JSON: the docs/design.md section 5 names, validation messages, and apply never mutating the baseline."""
import json

import pytest
import torch

from workbench.recipe import Recipe, RecipeError, apply_recipe

DESIGN_EXAMPLE = {
    "prune": {"method": "wanda", "ratio": 0.5, "pattern": "unstructured"},
    "quant": {"method": "gptq", "bits": 4, "group_size": 32, "symmetric": True, "activations": "none"},
    "cache": {"policy": "sliding", "window": 256, "sinks": 4, "prefix_capacity_mb": 0, "eviction": "lru"},
    "batching": {"window_ms": 5, "max_batch": 8, "arrival_rate": 20},
}


def test_design_example_round_trips():
    r = Recipe.from_json(DESIGN_EXAMPLE)
    out = r.to_json()
    for section, body in DESIGN_EXAMPLE.items():
        assert {k: out[section][k] for k in body} == body
    assert Recipe.from_json(json.dumps(out)) == r


def test_missing_sections_mean_leave_as_is():
    assert Recipe.from_json({}).is_empty
    serving = Recipe.from_json({"cache": {"policy": "int8"}, "batching": {}})
    assert not serving.is_empty and not serving.changes_weights
    assert serving.cache.policy == "int8" and serving.batching.max_batch == 8
    r = Recipe.from_json({"quant": {"method": "rtn", "bits": 8}})
    assert r.prune is None and r.quant.bits == 8


def test_from_file_and_missing_file(tmp_path):
    path = tmp_path / "r.json"
    path.write_text(json.dumps(DESIGN_EXAMPLE))
    assert Recipe.from_json(path) == Recipe.from_json(DESIGN_EXAMPLE)
    with pytest.raises(RecipeError, match="not found"):
        Recipe.from_json(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(RecipeError, match="invalid JSON"):
        Recipe.from_json(bad)


@pytest.mark.parametrize("data, needle", [
    ({"prun": {}}, "unknown recipe section 'prun'"),
    ({"prune": {"method": "random"}}, "prune.method must be one of magnitude, wanda, sparsegpt, heads, channels"),
    ({"quant": {"method": "awq"}}, "quant.method must be one of rtn, gptq"),
    ({"prune": {"method": "wanda", "ratio": 0.5, "sparsity": 0.5}}, "unknown key prune.sparsity"),
    ({"prune": {"method": "magnitude", "ratio": 1.5}}, "prune.ratio"),
    ({"prune": {"method": "wanda", "pattern": "4:8"}}, "prune.pattern"),
    ({"quant": {"method": "rtn", "bits": 5}}, "quant.bits"),
    ({"quant": {"method": "rtn", "bits": 4, "group_size": 48}}, "quant.group_size"),
    ({"quant": {"method": "rtn", "bits": 4, "activations": "int8"}}, "activations"),
    ({"quant": {"method": "rtn", "bits": 4, "activations": "fp8"}}, "quant.activations"),
    ({"quant": "rtn"}, "must be an object"),
    ({"cache": {"policy": "paged"}}, "cache.policy must be one of none, full, sliding, int8"),
    ({"cache": {"policy": "full", "capacity": 3}}, "unknown key cache.capacity (allowed: policy, window"),
    ({"cache": {"policy": "sliding", "prefix_capacity_mb": 64}}, "needs policy full or int8"),
    ({"batching": {"window_ms": -1}}, "batching.window_ms"),
    ({"batching": {"max_batch": 0}}, "batching.max_batch must be an integer in 1..64"),
    ({"batching": {"window_ms": 5, "rate": 3}}, "unknown key batching.rate"),
    ({"batching": []}, "must be an object"),
    ([1, 2], "JSON object"),
])
def test_bad_recipes_name_the_key(data, needle):
    with pytest.raises(RecipeError) as info:
        Recipe.from_json(data)
    assert needle in str(info.value)


def test_apply_never_mutates_the_baseline(tiny):
    model, tok = tiny
    before = {k: v.clone() for k, v in model.state_dict().items()}
    new, reports = apply_recipe(model, Recipe.from_json({"prune": {"method": "magnitude", "ratio": 0.5},
                                                         "quant": {"method": "rtn", "bits": 4}}))
    assert new is not model and set(reports) == {"prune", "quant"}
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    ids = torch.tensor([tok.encode('do(action="Back")', add_special_tokens=False)])
    with torch.no_grad():
        assert not torch.allclose(new(input_ids=ids).logits, model(input_ids=ids).logits)
