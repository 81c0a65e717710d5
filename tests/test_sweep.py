"""Sweeps: grid parsing and expansion, resumable grid and optuna runs in the results store, the CLI."""
import json

import pytest

from workbench.recipe import RecipeError
from workbench.store import ResultsStore, stored_points
from workbench.sweep import grid_recipes, parse_grid, recipe_from_values, run_grid, run_optuna


def test_parse_grid_reads_json_values_and_names_bad_axes():
    grid = parse_grid(["prune.ratio=0, 0.3,0.5", "quant.bits=8,4", "quant.symmetric=true,false", "prune.method=wanda"])
    assert grid == {"prune.ratio": [0, 0.3, 0.5], "quant.bits": [8, 4], "quant.symmetric": [True, False],
                    "prune.method": ["wanda"]}
    for bad, words in [("prune.ratio", "section.key=v1,v2"), ("ratio=0.3", "section.key=v1,v2"),
                       ("speed.x=1", "unknown section 'speed'"), ("quant.bits=", "no values")]:
        with pytest.raises(RecipeError, match=words):
            parse_grid([bad])


def test_recipe_from_values_defaults_methods_and_drops_none():
    assert recipe_from_values({"prune.ratio": 0.3}) == {"prune": {"ratio": 0.3, "method": "wanda"}}
    assert recipe_from_values({"prune.method": "none", "prune.ratio": 0.3, "quant.bits": 8}) == \
        {"quant": {"bits": 8, "method": "rtn"}}
    base = {"cache": {"policy": "int8"}}
    assert recipe_from_values({"quant.bits": 4}, base)["cache"] == {"policy": "int8"}
    assert base == {"cache": {"policy": "int8"}}  # not mutated
    assert recipe_from_values({"cache.policy": "full", "quant.bits": 8}) == {"quant": {"bits": 8, "method": "rtn"}}
    assert "cache" in recipe_from_values({"cache.policy": "full", "cache.prefix_capacity_mb": 16})


def test_grid_is_the_product_minus_impossible_combinations():
    recipes, skipped = grid_recipes(parse_grid(["quant.bits=16,8,4", "quant.activations=none,int8"]))
    assert len(recipes) == 4 and len(skipped) == 2  # int8 activations need 8-bit weights
    assert all("needs quant.bits 8" in why for _, why in skipped)
    recipes, _ = grid_recipes({"prune.method": ["none", "magnitude"], "prune.ratio": [0.2, 0.4]})
    assert recipes[0] == {} and len(recipes) == 3  # "none" twice is one (empty) recipe


def test_grid_fills_the_store_and_resumes(tmp_path, fake_meter):
    store = ResultsStore(tmp_path / "r.db")
    grid = parse_grid(["prune.ratio=0,0.3,0.6", "quant.bits=8,4"])
    first = run_grid(fake_meter, grid, store, name="g", progress=False)
    assert (len(first.points), first.measured, first.from_store) == (6, 6, 0)
    assert len(store) == 6 and {e.origin for e in store.entries()} == {"grid:g"}
    again = run_grid(fake_meter, grid, store, name="g", progress=False)  # e.g. after a killed run
    assert (again.measured, again.from_store, fake_meter.calls) == (0, 6, 6)
    assert again.points == first.points
    # the front: no point on it is beaten on all three objectives by any other point
    for p in first.pareto:
        assert not any(q.step >= p.step and q.decode_ms.median <= p.decode_ms.median
                       and q.memory_bytes <= p.memory_bytes and q != p and
                       (q.step, q.decode_ms.median, q.memory_bytes) != (p.step, p.decode_ms.median, p.memory_bytes)
                       for q in first.points)
    assert 1 <= len(first.pareto) < 6
    assert json.loads(json.dumps(first.to_json()))["measured"] == 6


def test_optuna_study_lives_in_the_store_file_and_resumes(tmp_path, fake_meter):
    optuna = pytest.importorskip("optuna")
    store = ResultsStore(tmp_path / "r.db")
    space = {"prune.ratio": (0.0, 0.6, 0.1), "quant.bits": [8, 4, 3], "quant.activations": ["none", "int8"]}
    result, study = run_optuna(fake_meter, store, n_trials=8, study_name="s", space=space, progress=False)
    assert len(study.trials) == 8
    assert len(result.points) + len(result.skipped) == 8 and result.pareto
    assert all("int8" in str(r) for r, _ in result.skipped)  # impossible combinations were pruned
    assert len(store) == len({json.dumps(p.recipe, sort_keys=True) for p in result.points})
    assert {e.origin for e in store.entries()} == {"optuna:s"}
    calls = fake_meter.calls
    result2, study2 = run_optuna(fake_meter, ResultsStore(store.path), n_trials=10, study_name="s", space=space,
                                 progress=False)
    assert len(study2.trials) == 10  # resumed: two more trials, not ten
    assert fake_meter.calls - calls <= 2
    names = optuna.study.get_all_study_names(storage=store.storage_url)
    assert names == ["s"] and len(stored_points(store, fake_meter)) == len(store)


def test_cli_sweep_prints_the_pareto_points(tmp_path, capsys):
    from workbench.cli import main

    db = tmp_path / "r.db"
    args = ["sweep", "--grid", "quant.bits=16,4", "--limit", "2", "--store", str(db), "--name", "cli", "--json"]
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["points"], out["measured"], out["store"]) == (2, 2, str(db))
    assert out["pareto"] and {"recipe", "step", "decode_ms_per_token", "memory_bytes"} <= set(out["pareto"][0])
    assert main(args) == 0 and json.loads(capsys.readouterr().out)["from_store"] == 2
    assert main(["sweep", "--grid", "quant=4", "--store", str(db)]) == 2
    assert "section.key=v1,v2" in capsys.readouterr().err
    assert main(["sweep", "--store", str(db)]) == 2
