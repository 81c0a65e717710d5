"""The manifest.json of an export folder: recipe, source fingerprint, versions, metrics, parity, file hashes."""
from __future__ import annotations

import os
import platform
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path

from ..measure.provenance import versions
from ..measure.records import LatencyRecord
from ..task import file_hash
from . import folder as fs


def latency_json(rec: LatencyRecord) -> dict:
    """A LatencyRecord as the manifest stores it.

    Args:
        rec: the record (milliseconds).
    Returns:
        dict with engine, median and p90 of prefill and decode, tokens/s, prompt length, repeats, threads.
    """
    return {"engine": rec.engine, "prefill_ms": rec.prefill_ms.median, "prefill_ms_p90": rec.prefill_ms.p90,
            "decode_ms_per_token": rec.decode_ms_per_token.median,
            "decode_ms_per_token_p90": rec.decode_ms_per_token.p90, "tokens_per_s": rec.tokens_per_s,
            "prompt_tokens": rec.prompt_tokens, "repeats": rec.prefill_ms.n, "threads": rec.threads}


def library_versions() -> dict:
    """Versions that shape the export: `measure.provenance.versions()` plus onnx, onnxscript, onnxruntime-genai."""
    import onnx
    import onnxscript

    v = dict(versions(), onnx=onnx.__version__, onnxscript=onnxscript.__version__)
    try:
        import onnxruntime_genai

        v["onnxruntime_genai"] = onnxruntime_genai.__version__
    except ImportError:
        pass
    return v


def build_manifest(*, recipe, precision, graph: str, shape, source: dict, episodes: Path, report, lat_ort: LatencyRecord,
                   lat_pt: LatencyRecord, folder: Path, stages: dict, gate: dict) -> dict:
    """The manifest of a finished export (written last, so `files` covers every other file).

    Args:
        recipe: the Recipe; precision: the Precision; graph: "plain" or "fused"; shape: DecoderShape.
        source: {"model", "fingerprint", "exported_fingerprint"}.
        episodes: the gate's episode file.
        report: the ParityReport; lat_ort, lat_pt: latency on ONNX Runtime and PyTorch (same run).
        folder: the staging folder holding the other files.
        stages: seconds per export stage.
        gate: the gate's settings (accuracy_steps, parity_prompts, decode_steps, ...).
    Returns:
        The manifest dict.
    """
    parity = report.to_json()
    return {
        "format": fs.FORMAT,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "recipe": recipe.to_json(),
        "graph": graph,
        "precision": precision.to_json(),
        "shape": asdict(shape),
        "source": source,
        "versions": library_versions(),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "threads": lat_ort.threads},
        "gate": {"episodes": str(episodes), "episodes_sha256": file_hash(episodes), **gate},
        "parity": parity,
        "metrics": {
            "accuracy": {"onnxruntime": parity["accuracy_onnxruntime"], "pytorch": parity["accuracy_pytorch"]},
            "latency": {"onnxruntime": latency_json(lat_ort), "pytorch": latency_json(lat_pt),
                        "decode_speedup": lat_pt.decode_ms_per_token.median / lat_ort.decode_ms_per_token.median},
            "model_bytes": sum(p.stat().st_size for p in folder.iterdir() if p.name.startswith(fs.MODEL)),
        },
        "export_seconds": {k: round(v, 1) for k, v in stages.items()},
        "files": fs.file_hashes(folder),
    }
