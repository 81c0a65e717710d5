"""`verify`: re-run the parity gate and the ONNX Runtime measurement on an existing export folder.

The PyTorch side is rebuilt from the manifest: the source model (or the one passed in) with the
recipe applied by the workbench's knobs, as the export did. Its (dequantized) weights must have the
fingerprint the manifest recorded, and every file the manifest's sha256.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..measure.evaluate import DEFAULT_EPISODES
from ..measure.records import LatencyRecord
from ..measure.provenance import model_fingerprint
from ..task import file_hash, load_steps
from . import folder as fs
from ..measure.accuracy import typical_prompt
from ..measure.latency import measure_ort_latency
from ..ort import OrtDecoder
from .build import DEFAULT_NAME, export_model, load_recipe
from .folder import ExportError, check_model_file
from .parity import ParityReport, parity_gate
from .precision import Precision, dequantized


@dataclass(frozen=True)
class VerifyResult:
    """A re-run gate on a folder: the new report, ONNX Runtime latency now, and the manifest's figures."""

    path: Path
    parity: ParityReport
    latency_onnxruntime: LatencyRecord
    manifest: dict = field(compare=False, repr=False)

    @property
    def passed(self) -> bool:
        return self.parity.passed


def _episodes(manifest: dict, episodes) -> Path:
    if episodes is not None:
        return Path(episodes)
    gate = manifest.get("gate", {})
    recorded = Path(gate.get("episodes", DEFAULT_EPISODES))
    if recorded.is_file():
        return recorded
    if DEFAULT_EPISODES.is_file() and file_hash(DEFAULT_EPISODES) == gate.get("episodes_sha256"):
        return DEFAULT_EPISODES
    raise ExportError(f"the gate's episode file {recorded} is not here; pass episodes= (--episodes)")


def _vision_manifest(folder: Path) -> dict | None:
    """The manifest of a vision-language export folder, or None (any other folder, read by read_manifest)."""
    import json

    from .vision import FORMAT

    try:
        data = json.loads((folder / fs.MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) and data.get("format") == FORMAT else None


def rebuild_reference(folder: Path, manifest: dict, *, model=None, tokenizer=None, source=None, vision: bool = True):
    """The PyTorch side of a folder's gate, rebuilt from its manifest: files unchanged, the source model (or the
    one passed in) with the recipe applied by the knobs as at export, its fingerprint the recorded one.

    Returns:
        (Precision, tokenizer, the dequantized reference model).
    Raises:
        ExportError: files changed since export, no source to load, or the model is not the one exported.
    """
    changed = fs.changed_files(folder, manifest)
    if changed:
        raise ExportError(f"{', '.join(changed)} in {folder} changed since export (sha256 differs from "
                          "manifest.json); export the folder again")
    recipe = load_recipe(manifest["recipe"])
    precision = Precision(**manifest["precision"])
    gate = manifest.get("gate", {})
    if model is None:
        from ..model import load_model

        src = source if source is not None else manifest["source"]["model"]
        if src == "in-memory model":
            raise ExportError(f"{folder} was exported from an in-memory model; pass model= and tokenizer=")
        model, tokenizer = load_model(None if src == DEFAULT_NAME else src, vision=vision)
    elif tokenizer is None:
        raise ExportError("verify(model=...) needs tokenizer= too")
    model.eval()
    calib = None
    if recipe.changes_weights:
        from ..calib import CALIB_STEPS, default_calibration

        calib = default_calibration(tokenizer, gate.get("calib_episodes"), n=gate.get("calib_steps") or CALIB_STEPS)
    reference = dequantized(export_model(model, tokenizer, recipe, precision, calib=calib))
    expected = manifest["source"]["exported_fingerprint"]
    if model_fingerprint(reference) != expected:
        raise ExportError(f"the model given is not the one exported to {folder} (fingerprint "
                          f"{model_fingerprint(reference)} != {expected}); pass the source checkpoint (--model)")
    return precision, tokenizer, reference


def verify(path, *, model=None, tokenizer=None, source=None, episodes=None, latency_repeats: int = 5,
           progress: bool = True) -> VerifyResult:
    """Re-run the parity gate and the ONNX Runtime latency measurement on an export folder.

    Args:
        path: the export folder.
        model, tokenizer: the baseline it was exported from (default: the manifest's source, loaded).
        source: checkpoint folder or hub id to load instead of the manifest's.
        episodes: eval episodes (default: the manifest's file).
        latency_repeats: timed repeats after min(2, repeats) warm-ups.
        progress: show progress bars.
    Returns:
        VerifyResult (check `.passed`); for a vision-language folder a `vision.VisionExport` with the
        re-run three-graph gate (check `.parity.passed`).
    Raises:
        ExportError: folder, manifest or model.onnx missing or corrupt, files changed since export,
            or the model is not the one exported.
    """
    folder = Path(path).expanduser()
    from .gguf import read_gguf_manifest, verify_gguf

    gguf_manifest = read_gguf_manifest(folder)
    if gguf_manifest is not None:  # a GGUF folder: its gate runs on llama.cpp (workbench.export.gguf)
        return verify_gguf(folder, gguf_manifest, model=model, tokenizer=tokenizer, source=source, episodes=episodes,
                           latency_repeats=latency_repeats, progress=progress)
    vision = _vision_manifest(folder)
    if vision is not None:  # a vision-language folder: its own gate (workbench.export.vision)
        from .vision import verify_vision

        return verify_vision(folder, vision, model=model, tokenizer=tokenizer, source=source, episodes=episodes)
    manifest = fs.read_manifest(folder)
    check_model_file(folder / fs.MODEL)
    precision, tokenizer, reference = rebuild_reference(folder, manifest, model=model, tokenizer=tokenizer,
                                                        source=source)
    gate = manifest.get("gate", {})
    steps = load_steps(_episodes(manifest, episodes), limit=gate.get("accuracy_steps", 32))
    decoder = OrtDecoder(folder / fs.MODEL)
    report = parity_gate(reference, decoder, tokenizer, steps, precision.kind,
                         prompts=gate.get("parity_prompts", 4), decode_steps=gate.get("decode_steps", 8),
                         progress=progress)
    lat = measure_ort_latency(decoder, typical_prompt(tokenizer, steps).numpy(), repeats=latency_repeats,
                              warmup=min(2, latency_repeats),
                              engine=manifest["metrics"]["latency"]["onnxruntime"]["engine"])
    return VerifyResult(folder, report, lat, manifest)
