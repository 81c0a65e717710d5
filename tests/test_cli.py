"""`workbench evaluate`: the JSON report on the default model, and one-line errors with exit code 2."""
import json
import subprocess
import sys

import pytest

from workbench.cli import main


def run(*args):
    return subprocess.run([sys.executable, "-m", "workbench.cli", *args], capture_output=True, text=True,
                          timeout=600)


def test_evaluate_json_on_the_default_model():
    r = run("evaluate", "--limit", "8", "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert set(data) == {"accuracy", "latency", "memory", "provenance"}
    assert data["accuracy"]["n"] == 8
    assert 0.75 <= data["accuracy"]["type"] <= 1.0
    assert data["latency"]["decode_ms_per_token"] > 0
    assert data["provenance"]["model"] == "open-autoglm-tiny"


@pytest.mark.parametrize("args, needle", [
    (["--model", "/nonexistent/glm"], "does not exist"),
    (["--episodes", "/nonexistent/eval.jsonl"], "episode file not found"),
    (["--limit", "0"], "--limit must be >= 1"),
])
def test_bad_input_exits_2_with_one_line(args, needle, capsys):
    code = main(["evaluate", *args, "--json"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and err.startswith("workbench: error:")
    assert needle in err


def test_bad_episode_line_is_named(tmp_path, capsys):
    bad = tmp_path / "mine.jsonl"
    bad.write_text('{"episode_id": "e", "step": 0}\n')
    assert main(["evaluate", "--episodes", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "mine.jsonl line 1" in err and "missing field" in err


def test_evaluate_with_a_recipe_reports_the_packed_model(tmp_path):
    recipe = {"prune": {"method": "sparsegpt", "ratio": 0.3},
              "quant": {"method": "gptq", "bits": 4, "group_size": 32, "symmetric": True, "activations": "none"}}
    path = tmp_path / "recipe.json"
    path.write_text(json.dumps(recipe))
    base = json.loads(run("evaluate", "--limit", "4", "--json").stdout)
    r = run("evaluate", "--limit", "4", "--recipe", str(path), "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert recipe["quant"].items() <= data["provenance"]["recipe"]["quant"].items()  # plus the defaults
    assert data["provenance"]["recipe"]["prune"]["method"] == "sparsegpt"
    assert 0 <= data["accuracy"]["kl"] < 1.0 and data["accuracy"]["ppl"] >= 1.0
    # 4-bit codes and float16 scales for the decoder layers, the float32 embedding table unchanged
    assert data["memory"]["weight_bytes"] < 0.4 * base["memory"]["weight_bytes"]


def test_evaluate_with_cache_and_batching_sections(tmp_path):
    recipe = {"cache": {"policy": "int8", "prefix_capacity_mb": 32},
              "batching": {"window_ms": 5, "max_batch": 4, "arrival_rate": 2}}
    path = tmp_path / "recipe.json"
    path.write_text(json.dumps(recipe))
    r = run("evaluate", "--limit", "6", "--recipe", str(path), "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    cache, serving = data["cache"], data["serving"]
    assert cache["policy"] == "int8" and cache["prefix_hit_rate"] == 1.0  # the system prompt is preloaded
    assert 0 < cache["prefill_ms_per_step"] and 0 < cache["prefill_tokens_saved_share"] < 1
    # int8 with a float16 scale per token and head: (1 + 2/32) bytes per element instead of 4
    per_token = 4 * 2 * 2 * 32 * (1 + 2 / 32)  # layers x (K, V) x kv heads x head dim
    assert data["memory"]["kv_bytes_per_token"] == pytest.approx(per_token)
    assert data["memory"]["kv_bytes"] == cache["kv_bytes"]
    assert "cache int8" in data["latency"]["engine"]
    assert serving["window_ms"] == 5 and 1 <= serving["mean_batch"] <= 4
    assert 0 < serving["p50_ms"] <= serving["p99_ms"] and serving["throughput_rps"] > 0
    assert "kl" not in data["accuracy"]  # the weights are unchanged


@pytest.mark.parametrize("recipe, needle", [
    ({"quant": {"method": "rtn", "bitz": 4}}, "bitz"),
    ({"prune": {"method": "wanda", "ratio": 1.5}}, "ratio"),
    ({"quant": {"method": "rtn", "bits": 4, "activations": "int8"}}, "needs quant.bits 8"),
    ({"cache": {"policy": "none", "prefix_capacity_mb": 8}}, "keeps no KV to reuse"),
])
def test_bad_recipe_exits_2_naming_the_key(tmp_path, capsys, recipe, needle):
    path = tmp_path / "recipe.json"
    path.write_text(json.dumps(recipe))
    assert main(["evaluate", "--limit", "1", "--recipe", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and needle in err
