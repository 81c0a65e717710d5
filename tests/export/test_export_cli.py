"""`workbench export` and `workbench verify`: exit 0 with a report, 1 on a failed gate, 2 with one line on bad input."""
import json

import pytest

from workbench.cli import main


def _err(capsys):
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("workbench: error:"), err
    return err


def test_export_then_verify(tmp_path, capsys):
    recipe = tmp_path / "int8.json"  # W8A8: PyTorch's int8 kernel keeps the latency runs short
    recipe.write_text(json.dumps({"quant": {"method": "rtn", "bits": 8, "group_size": 0, "activations": "int8"}}))
    out = tmp_path / "out"
    assert main(["export", "--recipe", str(recipe), "--out", str(out), "--limit", "3", "--json"]) == 0
    manifest = json.loads(capsys.readouterr().out)
    assert manifest["precision"]["kind"] == "int8-dynamic" and manifest["parity"]["passed"]
    assert main(["verify", str(out)]) == 0
    text = capsys.readouterr().out
    assert "parity gate (int8-dynamic): PASSED" in text and "onnxruntime" in text


@pytest.mark.parametrize("args, needle", [
    (["export", "--out", "{tmp}/o", "--recipe", "/nonexistent/r.json"], "recipe file not found"),
    (["export", "--out", "{tmp}/o", "--recipe", "{tmp}/bad.json"], "quant.bits 2 does not export"),
    (["export", "--out", "{tmp}/full"], "not empty"),
    (["export", "--out", "{tmp}/o", "--model", "/nonexistent/glm"], "does not exist"),
    (["verify", "{tmp}/nope"], "not found"),
    (["verify", "{tmp}/full"], "no manifest.json"),
])
def test_bad_input_exits_2_with_one_line(args, needle, tmp_path, capsys):
    (tmp_path / "bad.json").write_text(json.dumps({"quant": {"method": "rtn", "bits": 2}}))
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    assert main([a.replace("{tmp}", str(tmp_path)) for a in args]) == 2
    assert needle in _err(capsys)
    assert not (tmp_path / "o").exists()


def test_failed_gate_exits_1(tmp_path, capsys, monkeypatch):
    from test_gate_failures import break_graph

    break_graph(monkeypatch, 1.05)
    out = tmp_path / "out"
    assert main(["export", "--out", str(out), "--graph", "plain", "--limit", "2"]) == 1
    captured = capsys.readouterr()
    assert "parity gate (float32): FAILED" in captured.out
    last = captured.err.strip().splitlines()[-1]  # (transformers may print a loading bar first)
    assert last.startswith("workbench: error: parity gate failed") and "max |dlogit|" in last
    assert not out.exists()
