"""A deliberately broken export (a perturbed weight in the graph) fails the gate and leaves nothing
at DIR; a non-empty DIR is refused unless told; bad recipes are named."""
import numpy as np
import onnx
import pytest
from export_settings import FAST
from onnx import numpy_helper

import workbench.export.build as build
from workbench.export import ExportError, ExportGateError, export_onnx


def perturb(path, scale=1.05):
    """Scale the first layer's q_proj weight in an exported graph by `scale` (in place; MatMulNBits: its scales)."""
    proto = onnx.load(str(path))
    node = next(n for n in proto.graph.node if n.name == "model.layers.0.self_attn.q_proj")
    init = next(t for t in proto.graph.initializer if t.name == node.input[2 if node.op_type == "MatMulNBits" else 1])
    init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init) * np.float32(scale), init.name))
    onnx.save(proto, str(path))


def break_graph(monkeypatch, scale):
    """Make every export perturb its float graph right after building it."""
    real = build.build_graph

    def build_then_perturb(model, path, graph, precision):
        shape = real(model, path, graph, precision)
        perturb(path, scale)
        return shape

    monkeypatch.setattr(build, "build_graph", build_then_perturb)


@pytest.mark.parametrize("recipe, scale", [
    (None, 1.05),  # 5% on one matrix: far outside the float32 bounds
    ({"quant": {"method": "rtn", "bits": 4, "group_size": 32}}, 2.0),  # int4 bounds are wider
], ids=["float32", "int4"])
def test_perturbed_weight_fails_and_leaves_nothing(recipe, scale, monkeypatch, tiny, tmp_path):
    break_graph(monkeypatch, scale)
    model, tok = tiny
    out = tmp_path / "broken"
    with pytest.raises(ExportGateError) as info:
        export_onnx(out, recipe, model=model, tokenizer=tok, graph="plain", **FAST)  # perturb() edits a plain graph
    report = info.value.report
    assert not report.passed and report.failures
    if recipe is None:
        assert report.prefill.max_abs > 1e-3  # far outside the float32 bound
        assert any("max |dlogit|" in f for f in report.failures)
    assert "nothing written" in str(info.value)
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []  # no staging folder left behind


def test_non_empty_dir_is_refused_then_overwritten(tiny, tmp_path):
    model, tok = tiny
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(ExportError, match="not empty.*--overwrite"):
        export_onnx(out, None, model=model, tokenizer=tok, **FAST)
    assert (out / "keep.txt").read_text() == "mine"
    r = export_onnx(out, None, model=model, tokenizer=tok, overwrite=True, **FAST)
    assert r.parity.passed and not (out / "keep.txt").exists() and (out / "model.onnx").is_file()


@pytest.mark.parametrize("recipe, needle", [
    ({"quant": {"method": "rtn", "bits": 3, "group_size": 32}}, "quant.bits 3 does not export"),
    ({"quant": {"method": "rtn", "bitz": 4}}, "bitz"),
    ({"prune": {"method": "heads", "ratio": 1.5}}, "ratio"),
])
def test_bad_recipe_is_named_before_any_work(recipe, needle, tmp_path):
    with pytest.raises(ValueError, match=needle):
        export_onnx(tmp_path / "x", recipe, progress=False)
    assert not (tmp_path / "x").exists()


def test_unknown_graph(tmp_path):
    with pytest.raises(ExportError, match="graph must be one of plain, fused"):
        export_onnx(tmp_path / "x", None, graph="fancy", progress=False)
