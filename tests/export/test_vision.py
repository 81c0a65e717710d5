"""Tests for workbench.export.vision and workbench.ort.vision: a Glm4v as three ONNX graphs, gated against PyTorch."""
from __future__ import annotations

import json

import onnx
import pytest
import torch

import workbench.export.vision as xv
from workbench.cli import main
from workbench.model import load_model, write_random_checkpoint
from workbench.model.vision import load_processor, screen_inputs
from workbench.ort.vision import OrtVisionLanguage, rope_index
from workbench.task import DEFAULT_EPISODES, load_steps

RTN4_ALL = {"quant": {"method": "rtn", "bits": 4, "group_size": 32, "scope": "all"}}


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    path = tmp_path_factory.mktemp("tiny-vl")
    write_random_checkpoint(path, "glm4v", max_image_tokens=24)
    return path


def test_rope_index_is_glm41vs(folder):
    model, _ = load_model(folder)
    proc = load_processor(folder)
    for step in load_steps(DEFAULT_EPISODES, limit=3):
        x = screen_inputs(proc, step)
        want, delta = model.model.get_rope_index(x["input_ids"], x["mm_token_type_ids"], x["image_grid_thw"])
        got, got_delta = rope_index(x["mm_token_type_ids"], x["image_grid_thw"])
        assert got.shape == tuple(want.shape) and (got == want.numpy()).all()
        assert got_delta == int(delta)


def _export(folder, out, *extra):
    return main(["export", "--model", str(folder), "--episodes", str(DEFAULT_EPISODES), "--limit", "3",
                 "--out", str(out), "--json", *extra])


def test_float_export_writes_three_graphs_that_pass_the_gate(folder, tmp_path, capsys):
    assert _export(folder, tmp_path / "f32") == 0
    manifest = json.loads(capsys.readouterr().out)
    assert manifest["format"] == xv.FORMAT and manifest["parity"]["passed"]
    assert manifest["parity"]["greedy_identical"] == 1.0 and manifest["parity"]["vision_rel"] < 1e-4
    assert manifest["parity"]["prefill_mean_kl"] < 1e-5
    assert set(manifest["graphs"].values()) <= set(manifest["files"])
    assert "preprocessor_config.json" in manifest["files"] and "genai" in manifest["runtime"]
    lat = manifest["metrics"]["latency"]
    assert lat["onnxruntime"]["vision_ms"] > 0 and lat["pytorch"]["decode_ms_per_token"] > 0
    assert main(["verify", str(tmp_path / "f32"), "--model", str(folder), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["passed"]
    vlm = OrtVisionLanguage(tmp_path / "f32")  # the folder alone runs: processor files and graphs
    proc = load_processor(tmp_path / "f32")
    gen = vlm.greedy(screen_inputs(proc, load_steps(DEFAULT_EPISODES, limit=1)[0]), proc.eos_token_id, 4)
    assert gen.vision_s > 0 and gen.image_tokens == int(torch.tensor(manifest["image_grid_thw"]).prod()) // 4
    with pytest.raises(ValueError, match="vision graph is written for"):
        vlm.encode(torch.zeros(vlm.patches + 4, 3 * 2 * 14 * 14))


def test_int4_export_packs_the_codes_of_the_text_decoder_and_with_scope_all_the_vision_tower(folder, tmp_path, capsys):
    assert _export(folder, tmp_path / "int4", "--recipe", json.dumps(RTN4_ALL)) == 0
    manifest = json.loads(capsys.readouterr().out)
    assert manifest["precision"]["kind"] == "int4" and manifest["parity"]["passed"]
    text = onnx.load(str(tmp_path / "int4" / "text.onnx"), load_external_data=False)
    nbits = [n for n in text.graph.node if n.op_type == "MatMulNBits"]
    layers = load_model(folder)[0].config.get_text_config().num_hidden_layers
    assert len(nbits) == 6 * layers  # q, k, v, o, gate_up, down per layer
    assert all(n.name.startswith("model.language_model.layers.") for n in nbits)
    vision = onnx.load(str(tmp_path / "int4" / "vision.onnx"))
    packed = [n.name for n in vision.graph.node if n.op_type == "MatMulNBits"]
    assert "model.visual.blocks.0.attn.qkv" in packed and "model.visual.merger.proj" in packed
    assert manifest["packed_matmuls"] == len(nbits) + len(packed)
    assert manifest["recipe"]["quant"]["scope"] == "all"
    assert _export(folder, tmp_path / "int4-language", "--recipe", json.dumps(
        {"quant": {**RTN4_ALL["quant"], "scope": "language"}})) == 0
    language = json.loads(capsys.readouterr().out)
    assert language["graph_bytes"]["vision.onnx"] > 1.3 * manifest["graph_bytes"]["vision.onnx"]  # conv, positions stay float
    assert language["graph_bytes"]["text.onnx"] == manifest["graph_bytes"]["text.onnx"]
    assert main(["verify", str(tmp_path / "int4"), "--model", str(folder)]) == 0  # the recipe rebuilt, the gate again
    assert "PASSED" in capsys.readouterr().out
    (tmp_path / "int4" / "text.onnx").write_bytes(b"changed")
    assert main(["verify", str(tmp_path / "int4"), "--model", str(folder)]) == 2
    assert "text.onnx" in capsys.readouterr().err


def test_a_failed_gate_leaves_nothing(folder, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(xv, "VISION_REL_TOL", -1.0)  # no graph can meet it
    assert _export(folder, tmp_path / "bad") == 1
    assert "vision features differ" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists() or not any((tmp_path / "bad").iterdir())
    assert main(["export", "--model", str(folder), "--out", str(tmp_path / "fused"), "--graph", "fused"]) == 2
    assert "three plain graphs" in capsys.readouterr().err
