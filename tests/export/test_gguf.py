"""`workbench export --format gguf`: the recipe as a GGUF file, its gate on llama.cpp, verify, the CLI, and the
llama.cpp engine for points (skipped without llama-cpp-python, except the message that names the install)."""
import json
import sys

import pytest

from export_settings import FAST
from workbench.export import ExportError, ExportGateError, verify
from workbench.export.gguf import FORMAT, GGUF, TOLERANCES, export_gguf, gguf_precision
from workbench.recipe import Recipe

needs_llama = pytest.mark.skipif(
    __import__("importlib").util.find_spec("llama_cpp") is None,
    reason="llama-cpp-python is not installed (make llama builds it)")

INT4 = {"quant": {"method": "rtn", "bits": 4, "group_size": 32}}
GPTQ = {"quant": {"method": "gptq", "bits": 4, "group_size": 32}}
GATE = dict(FAST, accuracy_steps=8)


@pytest.fixture(scope="module")
def int4_export(tiny, tmp_path_factory):
    model, tok = tiny
    return export_gguf(tmp_path_factory.mktemp("gguf") / "int4", INT4, model=model, tokenizer=tok, **GATE)


@needs_llama
def test_int4_export_passes_the_gate_with_the_recipes_codes(int4_export):
    r = int4_export
    assert r.parity.passed and r.parity.engine == "llama.cpp"
    assert r.parity.greedy_identical >= 0.98
    assert r.written["exact"] and r.written["types"]["Q4_0"] == 24
    assert sorted(p.name for p in r.path.iterdir()) == ["manifest.json", GGUF, "tokenizer.json", "tokenizer_config.json"]
    m = json.loads((r.path / "manifest.json").read_text())
    assert m["format"] == FORMAT and Recipe.from_json(m["recipe"]) == Recipe.from_json(INT4) and set(m["files"]) == {GGUF, "tokenizer.json",
                                                                                "tokenizer_config.json"}
    assert m["parity"]["passed"] and m["versions"]["llama_cpp_python"] and "AVX" in m["machine"]["llama_cpp_system"]
    assert m["tokenizer_agreement"]["after_normalizer"] == 1.0  # llama.cpp's tokenizer, fed normalized text
    assert r.latency_llamacpp.decode_ms_per_token.median > 0 and r.decode_speedup > 0


@needs_llama
def test_float_and_gptq_exports_pass(tiny, tmp_path):
    model, tok = tiny
    f = export_gguf(tmp_path / "f32", None, model=model, tokenizer=tok, **GATE)
    assert f.parity.passed and f.written["types"] == {"F32": 54} and f.parity.greedy_identical == 1.0
    # 32 steps, the export's default: at 8, one step parting at a near-tie is 0.125 of step accuracy (measured on
    # an AMD EPYC: one of eight at a top-2 margin of 0.0023) against a bound of 0.05
    g = export_gguf(tmp_path / "gptq", GPTQ, model=model, tokenizer=tok, **{**GATE, "accuracy_steps": 32})
    assert g.parity.passed and g.written["exact"] and g.precision.method == "gptq"
    # GGUF keeps GPTQ's accuracy: llama.cpp's step accuracy within the gate's bound of the PyTorch GPTQ model
    assert g.parity.accuracy_onnxruntime.step >= g.parity.accuracy_pytorch.step - TOLERANCES["int4"].accuracy_drop


@needs_llama
def test_verify_reruns_the_gate_and_catches_changed_files(int4_export, tmp_path):
    import shutil

    v = verify(int4_export.path, progress=False, latency_repeats=1)
    assert v.passed and v.parity.engine == "llama.cpp"
    copy = tmp_path / "copy"
    shutil.copytree(int4_export.path, copy)
    with open(copy / GGUF, "r+b") as f:
        f.seek(-8, 2)
        f.write(b"\xff" * 8)
    with pytest.raises(ExportError, match="model.gguf .* changed since export"):
        verify(copy, progress=False)


@needs_llama
def test_failed_gate_writes_nothing(tiny, tmp_path, monkeypatch):
    from workbench.export import gguf as mod
    from workbench.export.parity import Tolerance

    model, tok = tiny
    monkeypatch.setitem(mod.TOLERANCES, "int4", Tolerance(None, 1e-12, True, 0.0, 1.0))
    with pytest.raises(ExportGateError, match="mean KL"):
        export_gguf(tmp_path / "out", INT4, model=model, tokenizer=tok, **GATE)
    assert list(tmp_path.iterdir()) == []


def test_refusals_name_the_fix(tiny, tmp_path, monkeypatch):
    from random_glm import random_glm

    model, tok = tiny
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    if __import__("importlib").util.find_spec("llama_cpp") is not None:
        with pytest.raises(ExportError, match="not empty"):
            export_gguf(tmp_path / "full", None, model=model, tokenizer=tok, **GATE)
        with pytest.raises(ExportError, match="Glm4v.* does not export to GGUF yet"):
            export_gguf(tmp_path / "vl", None, model=random_glm("glm4v"), tokenizer=tok, **GATE)
    monkeypatch.setitem(sys.modules, "llama_cpp", None)
    from workbench.llamacpp import LlamaCppMissing

    with pytest.raises(LlamaCppMissing, match="llama-cpp-python"):
        export_gguf(tmp_path / "none", None, model=model, tokenizer=tok, **GATE)
    assert not (tmp_path / "none").exists()


def test_low_bit_codes_have_a_gguf_precision():
    assert gguf_precision(Recipe.from_json({"quant": {"method": "rtn", "bits": 3, "group_size": 32}})).bits == 3
    assert gguf_precision(Recipe.from_json(INT4)).kind == "int4"


@needs_llama
def test_cli_export_gguf_and_evaluate_on_llama_cpp(tmp_path, capsys):
    from workbench.cli import main

    recipe = tmp_path / "int4.json"
    recipe.write_text(json.dumps(INT4))
    assert main(["export", "--format", "gguf", "--recipe", str(recipe), "--out", str(tmp_path / "dep"),
                 "--limit", "4", "--json"]) == 0
    manifest = json.loads(capsys.readouterr().out)
    assert manifest["format"] == FORMAT and manifest["gguf"]["types"]["Q4_0"] == 24
    assert main(["evaluate", "--engine", "llama.cpp", "--recipe", str(recipe), "--limit", "4", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["latency"]["engine"] == "llama.cpp (F32 + Q4_0)" and 0 <= report["accuracy"]["step"] <= 1
    assert report["memory"]["weight_bytes"] < 0.35 * 14.3e6


def test_cli_without_llama_cpp_names_the_install(tmp_path, capsys, monkeypatch):
    from workbench.cli import main

    monkeypatch.setitem(sys.modules, "llama_cpp", None)
    assert main(["evaluate", "--engine", "llama.cpp", "--limit", "2", "--json"]) == 2
    assert "llama.cpp is not installed" in capsys.readouterr().err
    assert main(["export", "--format", "gguf", "--out", str(tmp_path / "x")]) == 2
    assert "make llama" in capsys.readouterr().err


@needs_llama
def test_point_on_llama_cpp(tiny, eval_steps):
    from workbench.measure.point import PointMeter

    model, tok = tiny
    meter = PointMeter(model, tok, eval_steps[:6], engine="llama.cpp", latency_repeats=1)
    p = meter(INT4)
    assert p.engine == "llama.cpp (F32 + Q4_0)" and p.n == 6 and 0 <= p.step <= 1 and p.kl is not None
    assert meter.settings["llama_cpp_python"]
    cached = meter({"quant": {"method": "rtn", "bits": 4, "group_size": 32}, "cache": {"policy": "sliding",
                                                                                       "window": 256}})
    assert "not llama.cpp: KV cache" in cached.engine
