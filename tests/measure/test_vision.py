"""Tests for workbench.measure.vision through PointMeter and evaluate: a Glm4v on screenshot steps."""
from __future__ import annotations

import dataclasses
import json

import pytest
import torch
from PIL import Image

from workbench.calib import screen_batches
from workbench.cli import main
from workbench.model import load_model, write_random_checkpoint
from workbench.model.vision import load_processor
from workbench.measure.point import PointMeter
from workbench.recipe import RecipeError
from workbench.task import DEFAULT_CALIB, DEFAULT_EPISODES, load_steps, save_steps

RTN4 = {"method": "rtn", "bits": 4, "group_size": 32}


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """(model folder, episode file with screenshots, meter over its 3 steps)."""
    root = tmp_path_factory.mktemp("vl")
    write_random_checkpoint(root / "model", "glm4v", max_image_tokens=16)
    shots = root / "shots"
    shots.mkdir()
    steps = []
    for i, s in enumerate(load_steps(DEFAULT_EPISODES, limit=3) + load_steps(DEFAULT_CALIB, limit=2)):
        Image.new("RGB", (180, 400), (40 * i, 255 - 40 * i, 128)).save(shots / f"{i}.png")
        steps.append(dataclasses.replace(s, screenshot=shots / f"{i}.png"))
    save_steps(steps[:3], root / "eval.jsonl")
    model, tok = load_model(root / "model")
    proc = load_processor(root / "model")
    calib = screen_batches(proc, steps[3:])
    meters = {engine: PointMeter(model, tok, steps[:3], calib, processor=proc, latency_repeats=1, engine=engine)
              for engine in ("ort", "pytorch")}
    return root, meters


@pytest.mark.parametrize("engine", ["ort", "pytorch"])
def test_a_point_of_the_vision_language_model_splits_vision_and_counts_the_tower(setup, engine):
    p = setup[1][engine]({}, fidelity=False)
    assert p.prompt_mode == "open-autoglm" and p.n == 3
    assert p.vision_ms.median > 0 and p.prefill_ms.median > 0 and p.decode_ms.median > 0
    assert 0 < p.vision_weight_bytes < p.weight_bytes
    assert 4 <= p.image_tokens <= 16 and p.prompt_tokens > p.image_tokens
    assert p.engine.startswith({"ort": "onnxruntime-vision-language", "pytorch": "pytorch-eager"}[engine])
    again = type(p).from_json(json.loads(json.dumps(p.to_json())))
    assert again.vision_ms == p.vision_ms and again.vision_weight_bytes == p.vision_weight_bytes


def test_the_onnx_graphs_measure_what_pytorch_measures(setup):
    ort, pt = setup[1]["ort"]({"quant": RTN4}), setup[1]["pytorch"]({"quant": RTN4})
    assert ort.kl == pytest.approx(pt.kl, rel=0.1, abs=1e-3)  # the same codes; int8 activations differ slightly
    assert abs(ort.weight_bytes - pt.weight_bytes) < 0.02 * pt.weight_bytes  # what the graphs store


@pytest.mark.parametrize("engine", ["ort", "pytorch"])
def test_scope_language_keeps_the_vision_tower_and_scope_all_shrinks_it(setup, engine):
    meter = setup[1][engine]
    base = meter({}, fidelity=False)
    lang = meter({"quant": RTN4})
    full = meter({"quant": {**RTN4, "scope": "all"}})
    assert lang.vision_weight_bytes == base.vision_weight_bytes
    assert lang.weight_bytes < base.weight_bytes
    assert full.vision_weight_bytes < 0.75 * base.vision_weight_bytes
    assert full.weight_bytes < lang.weight_bytes
    assert lang.kl is not None and lang.kl >= 0 and full.kl >= 0
    assert "+vision" in full.label and "+vision" not in lang.label


def test_calibrated_methods_run_on_screenshot_steps_and_refuse_the_vision_tower(setup):
    meter = setup[1]["pytorch"]
    p = meter({"quant": {"method": "gptq", "bits": 4, "group_size": 32}})
    assert p.vision_weight_bytes == meter({}, fidelity=False).vision_weight_bytes and p.kl >= 0
    with pytest.raises(ValueError, match="not the vision tower"):
        meter({"quant": {"method": "gptq", "bits": 4, "scope": "all"}})
    with pytest.raises(RecipeError, match="without cache and batching"):
        meter({"cache": {"policy": "int8"}})


def test_evaluate_json_reports_vision_latency_bytes_and_the_prompt_mode(setup, capsys):
    root, _ = setup
    args = ["evaluate", "--model", str(root / "model"), "--episodes", str(root / "eval.jsonl"), "--limit", "2",
            "--json"]
    assert main(args) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["latency"]["vision_ms"] > 0 and data["memory"]["vision_weight_bytes"] > 0
    assert data["memory"]["image_tokens"] >= 4
    assert data["provenance"]["prompt_mode"] == "open-autoglm"
    assert data["provenance"]["dtype"] == "float32" and data["provenance"]["device"] == "cpu"
    assert main(args + ["--recipe", json.dumps({"quant": {**RTN4, "scope": "all"}})]) == 0
    quant = json.loads(capsys.readouterr().out)
    assert quant["memory"]["vision_weight_bytes"] < data["memory"]["vision_weight_bytes"]
    save_steps([dataclasses.replace(s, screenshot=None) for s in load_steps(root / "eval.jsonl")], root / "tree.jsonl")
    assert main(["evaluate", "--model", str(root / "model"), "--episodes", str(root / "tree.jsonl")]) == 2
    assert "has no screenshot" in capsys.readouterr().err
    assert main(args + ["--dtype", "bfloat16", "--recipe", json.dumps({"quant": {"method": "gptq", "bits": 4}})]) == 0
    half = json.loads(capsys.readouterr().out)  # every knob and the calibration in bfloat16
    assert half["provenance"]["dtype"] == "bfloat16" and half["accuracy"]["kl"] >= 0
    assert half["memory"]["vision_weight_bytes"] == data["memory"]["vision_weight_bytes"] // 2  # float32 -> bf16
    assert main(args[:-1] + ["--text-only", "--json"]) == 0  # the language model alone, on the tree
    text = json.loads(capsys.readouterr().out)
    assert text["provenance"]["prompt_mode"] == "text" and "vision_weight_bytes" not in text["memory"]
    if not torch.cuda.is_available():
        assert main(args + ["--device", "cuda"]) == 2
        assert "sees no CUDA GPU; use --device cpu" in capsys.readouterr().err
