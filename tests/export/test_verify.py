"""verify: re-runs the gate on an existing folder; refuses missing, changed or corrupt folders."""
import json
import shutil

import pytest
from random_glm import tiny_glm4

from workbench.export import ExportError, verify


@pytest.fixture
def copy(baseline_export, tmp_path):
    dst = tmp_path / "copy"
    shutil.copytree(baseline_export.path, dst)
    return dst


def test_verify_reruns_the_gate(baseline_export, tiny):
    model, tok = tiny
    v = verify(baseline_export.path, model=model, tokenizer=tok, latency_repeats=2, progress=False)
    assert v.passed
    before = baseline_export.parity
    assert v.parity.prefill.positions == before.prefill.positions  # the same prompts as at export
    assert v.parity.prefill.max_abs < 1e-3 and v.parity.greedy_identical == 1.0
    assert v.parity.accuracy_onnxruntime == before.accuracy_onnxruntime
    assert v.latency_onnxruntime.decode_ms_per_token.median > 0


def test_verify_loads_the_source_from_the_manifest(copy):
    assert verify(copy, latency_repeats=1, progress=False).passed


def test_missing_folder(tmp_path):
    with pytest.raises(ExportError, match="not found.*workbench export"):
        verify(tmp_path / "nope")


def test_folder_without_manifest(copy):
    (copy / "manifest.json").unlink()
    with pytest.raises(ExportError, match="no manifest.json"):
        verify(copy)


def test_corrupt_model(copy):
    data = (copy / "model.onnx").read_bytes()
    (copy / "model.onnx").write_bytes(data[: len(data) // 3])
    with pytest.raises(ExportError, match="model.onnx is corrupt.*export the folder again"):
        verify(copy)


def test_changed_file(copy):
    cfg = json.loads((copy / "genai_config.json").read_text())
    cfg["search"]["top_k"] = 50
    (copy / "genai_config.json").write_text(json.dumps(cfg))
    with pytest.raises(ExportError, match="genai_config.json .* changed since export"):
        verify(copy)


def test_other_model_is_refused(copy, tiny):
    with pytest.raises(ExportError, match="not the one exported"):
        verify(copy, model=tiny_glm4(), tokenizer=tiny[1])
