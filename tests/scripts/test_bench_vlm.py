"""scripts/bench_vlm.py prints one row per engine and recipe, with the vision tower's bytes shrinking only for scope all."""
import json

import bench_vlm


def test_rows_cover_both_engines_and_the_scopes(capsys):
    assert bench_vlm.main(["--steps", "2", "--repeats", "1", "--max-image-tokens", "16", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert [(r["engine"], r["recipe"]) for r in rows] == [(e, n) for e in ("ort", "pytorch") for n in bench_vlm.RECIPES]
    by = {(r["engine"], r["recipe"]): r for r in rows}
    for engine in ("ort", "pytorch"):
        assert by[engine, "int4 language"]["vision_bytes_vs_float32"] == 1.0
        assert by[engine, "int4 all"]["vision_bytes_vs_float32"] < 0.8
        assert by[engine, "float32"]["kl"] == 0.0 or by[engine, "float32"]["kl"] < 1e-6
        assert all(by[engine, n]["vision_ms"] > 0 for n in bench_vlm.RECIPES)
    assert by["ort", "float32"]["ran_on"].startswith("onnxruntime-vision-language")
