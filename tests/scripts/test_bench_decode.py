"""scripts/bench_decode.py --json on open-autoglm-tiny: the row fields issue 19 names, the KV sweep, llama.cpp rows."""
import importlib.util
import json

import pytest

import bench_decode

FIELDS = {"runtime", "precision", "ms_per_token", "ms_per_token_p90", "tokens_per_s", "weight_bytes_per_token",
          "gb_per_s", "pct_bandwidth", "prefill_ms"}


def test_json_rows(capsys):
    args = ["--tiny", "--graphs", "fused", "--precisions", "int4", "--no-pytorch", "--repeats", "1", "--tokens", "2",
            "--past", "16", "--kv-sweep", "16", "--json"]
    if importlib.util.find_spec("llama_cpp") is not None:
        args.append("--llama-cpp")
    assert bench_decode.main(args) == 0
    out = capsys.readouterr().out
    data = json.loads(out[out.index("{"):])
    assert data["bandwidth_gb_per_s"]["readings"] and data["cpu"] and data["kv"] == "shared"
    runtimes = {r["runtime"] for r in data["rows"]}
    assert {"onnxruntime fused", "onnxruntime fused (past 16, kv shared)",
            "onnxruntime fused (past 16, kv separate)"} <= runtimes
    if "--llama-cpp" in args:
        assert "llama.cpp" in runtimes
    for r in data["rows"]:
        assert FIELDS <= set(r) and r["ms_per_token"] > 0 and 0 < r["weight_bytes_per_token"] < 8e6
        assert r["tokens_per_s"] == 1000 / r["ms_per_token"] and r["pct_bandwidth"] > 0


def test_profile_rows(capsys):
    """--profile: each fused row (and each KV-sweep row) carries ONNX Runtime's per-operator split of a step."""
    assert bench_decode.main(["--tiny", "--graphs", "fused", "--precisions", "int4", "--no-pytorch", "--repeats", "1",
                              "--tokens", "2", "--past", "16", "--kv-sweep", "32", "--profile", "--json"]) == 0
    out = capsys.readouterr().out
    assert "MatMulNBits" in out[:out.index("{")]  # the table is printed as the run goes
    rows = json.loads(out[out.index("{"):])["rows"]
    assert len(rows) == 3
    for r in rows:
        ops = {p["op"]: p for p in r["profile"]}
        assert {"MatMulNBits", "GroupQueryAttention"} <= set(ops)
        assert sum(p["share"] for p in r["profile"]) == pytest.approx(1.0)
        assert all(p["ms"] > 0 for p in r["profile"])
