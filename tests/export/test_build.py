"""export_onnx: baseline, int8, int4 and structurally pruned + int4 recipes pass the parity gate with
the stated bounds; the folder holds a checked decoder with KV cache, tokenizer, genai config, manifest."""
import json

import onnx
import pytest
import torch
from export_settings import FAST

from workbench.export import TOLERANCES, export_onnx
from workbench.export.folder import sha256

RECIPES = {
    "int8-dynamic": {"quant": {"method": "rtn", "bits": 8, "group_size": 0, "activations": "int8"}},
    "int8": {"quant": {"method": "rtn", "bits": 8, "group_size": 32}},
    "int4": {"quant": {"method": "rtn", "bits": 4, "group_size": 32}},
    "channels+int4": {"prune": {"method": "channels", "ratio": 0.5, "importance": "magnitude"},
                      "quant": {"method": "rtn", "bits": 4, "group_size": 32}},
}


def _ops(path):
    return {n.op_type for n in onnx.load(str(path), load_external_data=False).graph.node}


def _dims(value_info):
    return [d.dim_param or d.dim_value for d in value_info.type.tensor_type.shape.dim]


def test_baseline_folder_and_parity(baseline_export, tiny):
    r = baseline_export
    folder = r.path
    assert {"model.onnx", "tokenizer.json", "tokenizer_config.json", "genai_config.json",
            "manifest.json"} <= {p.name for p in folder.iterdir()}
    assert not [p for p in folder.parent.iterdir() if ".tmp-" in p.name]  # the staging folder is gone
    proto = onnx.load(str(folder / "model.onnx"))
    onnx.checker.check_model(proto, full_check=True)
    assert next(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")) >= 18
    inputs = {i.name: _dims(i) for i in proto.graph.input}
    outputs = {o.name: _dims(o) for o in proto.graph.output}
    layers = tiny[0].config.num_hidden_layers
    assert list(inputs)[:3] == ["input_ids", "attention_mask", "position_ids"]
    assert len(inputs) == 3 + 2 * layers and len(outputs) == 1 + 2 * layers
    assert inputs["input_ids"] == ["batch", "sequence"]  # dynamic batch and sequence
    assert inputs[f"past_key_values.{layers - 1}.value"] == ["batch", 2, "past_sequence", 32]
    assert outputs["logits"] == ["batch", "sequence", 2789]
    assert isinstance(outputs["present.0.key"][2], str)  # dynamic total length
    # float32: the stated bounds, and far inside them
    p = r.parity
    assert p.passed and p.precision == "float32"
    assert p.prefill.max_abs < 1e-3 and p.decode.max_abs < 1e-3
    assert p.prefill.mean_kl < 1e-6 and p.decode.mean_kl < 1e-6
    assert p.greedy_identical == 1.0 and p.prefill.top1_agreement == 1.0
    assert p.accuracy_onnxruntime == p.accuracy_pytorch
    assert p.accuracy_onnxruntime.type >= 0.5  # the tiny model acts sensibly on ONNX Runtime alone


def test_the_default_graph_is_the_measured_one(tiny):
    """Points are measured on the fused graph (engine ort), so an export without --graph writes it."""
    from workbench.export.build import default_graph

    model, _ = tiny
    assert default_graph(model) == "fused"
    assert default_graph(torch.nn.Linear(2, 2)) == "plain"


def test_manifest(baseline_export):
    m = json.loads((baseline_export.path / "manifest.json").read_text())
    assert m["format"] == "autoglm-workbench-onnx/1" and m["recipe"] == {} and m["graph"] == "fused"
    assert m["source"]["model"] == "open-autoglm-tiny" and len(m["source"]["fingerprint"]) == 16
    assert {"torch", "transformers", "onnx", "onnxruntime"} <= set(m["versions"])
    assert m["parity"]["passed"] is True
    lat = m["metrics"]["latency"]
    assert lat["onnxruntime"]["decode_ms_per_token"] > 0 and lat["pytorch"]["decode_ms_per_token"] > 0
    assert "onnxruntime" in lat["onnxruntime"]["engine"] and "pytorch" in lat["pytorch"]["engine"]
    assert m["metrics"]["accuracy"]["onnxruntime"]["n"] == FAST["accuracy_steps"]
    assert m["files"] == {p.name: sha256(p) for p in sorted(baseline_export.path.iterdir())
                          if p.name != "manifest.json"}


def test_genai_config(baseline_export, tiny):
    cfg = json.loads((baseline_export.path / "genai_config.json").read_text())
    dec = cfg["model"]["decoder"]
    model = tiny[0]
    assert dec["filename"] == "model.onnx" and dec["num_hidden_layers"] == model.config.num_hidden_layers
    assert dec["num_key_value_heads"] == 2 and dec["head_size"] == 32
    assert dec["inputs"]["position_ids"] == "position_ids"
    assert cfg["search"]["past_present_share_buffer"] is True  # the fused graph (the default) shares its KV buffer
    assert cfg["model"]["eos_token_id"] == tiny[1].eos_token_id


@pytest.mark.parametrize("name", list(RECIPES))
def test_quantized_exports_pass_the_gate(name, tiny, baseline_export, tmp_path):
    model, tok = tiny
    r = export_onnx(tmp_path / name, RECIPES[name], model=model, tokenizer=tok, graph="plain", **FAST)
    p, tol = r.parity, TOLERANCES[r.precision.kind]
    assert p.passed, p.summary()
    assert p.prefill.mean_kl <= tol.mean_kl and p.decode.mean_kl <= tol.mean_kl
    assert p.accuracy_onnxruntime.step >= p.accuracy_pytorch.step - tol.accuracy_drop
    assert p.accuracy_onnxruntime.type >= 0.5
    assert p.decode.top1_agreement >= 0.75  # decode follows the reference's tokens through the KV cache
    ops = _ops(r.path / "model.onnx")
    size = (r.path / "model.onnx").stat().st_size
    float_size = (baseline_export.path / "model.onnx").stat().st_size
    proto = onnx.load(str(r.path / "model.onnx"))
    # every precision: the workbench's own codes in MatMulNBits (W8A8: torch.ao's per-channel codes, blocks of 128)
    assert not {"DynamicQuantizeLinear", "MatMulInteger"} & ops
    nbits = [n for n in proto.graph.node if n.op_type == "MatMulNBits"]
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in nbits[0].attribute}
    block = 128 if r.precision.kind == "int8-dynamic" else 32
    assert attrs["bits"] == r.precision.bits and attrs["block_size"] == block and attrs["accuracy_level"] == 4
    assert len(nbits) == 6 * model.config.num_hidden_layers  # q, k, v, o, gate_up, down per layer
    assert "lm_head" in {n.name for n in proto.graph.node if n.op_type == "MatMul"}  # stays float
    assert size < (0.6 if r.precision.bits == 8 else 0.5) * float_size
    assert r.manifest["precision"]["method"] == "rtn"
    if name.startswith("channels"):  # the pruned shapes: half the MLP channels (384 of 768)
        down = next(n for n in nbits if n.name.startswith("model.layers.0.mlp.down_proj"))
        assert {a.name: a.i for a in down.attribute}["K"] == 384
        assert json.loads((r.path / "genai_config.json").read_text())["model"]["decoder"]["hidden_size"] == 256
    m = json.loads((r.path / "manifest.json").read_text())
    assert m["precision"]["kind"] == r.precision.kind and m["recipe"]["quant"]["bits"] == r.precision.bits


@pytest.mark.parametrize("graph", ["plain", "fused"])
def test_gptq_exports_as_gptq_and_the_folder_is_its_point(graph, tiny, tmp_path):
    """The recipe's own GPTQ codes are packed (not re-quantized): the gate's tight int4 bounds hold, the manifest
    names GPTQ, and re-measuring the folder gives the measured point's actions and step accuracy."""
    from workbench.calib import default_calibration
    from workbench.measure import DEFAULT_EPISODES
    from workbench.measure.accuracy import run_task_ort
    from workbench.measure.point import PointMeter
    from workbench.ort import OrtDecoder
    from workbench.task import load_steps

    model, tok = tiny
    calib = default_calibration(tok, n=8)
    recipe = {"quant": {"method": "gptq", "bits": 4, "group_size": 32}}
    r = export_onnx(tmp_path / graph, recipe, model=model, tokenizer=tok, graph=graph, calib=calib,
                    **dict(FAST, accuracy_steps=8))
    p, tol = r.parity, TOLERANCES["int4"]
    assert tol.mean_kl <= 1e-3 and tol.greedy_min >= 0.98  # the tightened int4 bounds
    assert p.passed and p.prefill.mean_kl <= 1e-3 and p.decode.mean_kl <= 1e-3 and p.greedy_identical >= 0.98
    assert r.manifest["precision"]["method"] == "gptq" and "round-to-nearest" not in r.manifest["precision"]["note"]
    steps = load_steps(DEFAULT_EPISODES, limit=8)
    point = PointMeter(model, tok, steps, calib, latency_repeats=1)(recipe)
    acc, preds, _ = run_task_ort(OrtDecoder(r.path / "model.onnx"), tok, steps, progress=False)
    assert acc.step == point.step and [x.output for x in preds] == [x.output for x in point.predictions]
