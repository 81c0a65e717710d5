"""`export_gguf`: recipe -> verified GGUF folder for llama.cpp (the same recipe the ONNX export writes).

    from workbench.export.gguf import export_gguf
    result = export_gguf("deploy/gguf", {"quant": {"method": "gptq", "bits": 4, "group_size": 32}})
    result.parity.summary()

Steps, as `export_onnx`: load the model; apply the recipe's prune and quant sections with the
workbench's own knobs (`precision.recipe_model`: GPTQ stays GPTQ, structured pruning gives the smaller
shapes); write model.gguf from it, its codes packed into the GGUF blocks that hold them
(`workbench.llamacpp.blocks`); run the parity gate with llama.cpp (llama-cpp-python) against the same
quantized model in PyTorch, fed the same token ids; measure latency on both; write the manifest
(recipe, GGUF types and whether every weight is exact, gate, latency, how often llama.cpp's own
tokenizer reproduces the Hugging Face ids, sha256 of every file); move the folder into place. If the
gate fails, `ExportGateError` carries the report and nothing is left at DIR.

Folder: model.gguf (weights, hyper-parameters, tokenizer), tokenizer.json / tokenizer_config.json
(the exact ids: GGUF has no form for a tokenizer.json normalizer), manifest.json.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

from ..measure.accuracy import typical_prompt
from ..measure.evaluate import DEFAULT_EPISODES, model_name
from ..measure.latency import measure_latency, measure_ort_latency
from ..measure.provenance import model_fingerprint
from ..measure.records import LatencyRecord
from ..task import file_hash, load_steps
from . import folder as fs
from .build import DEFAULT_NAME, ExportGateError, export_model, load_recipe
from .folder import ExportError
from .manifest import latency_json, library_versions
from .parity import ParityReport, Tolerance, parity_gate
from .precision import Precision, dequantized, precision_of

FORMAT = "autoglm-workbench-gguf/1"
GGUF = "model.gguf"

# llama.cpp keeps the KV cache in float16 and quantizes a quantized matmul's activations to Q8_0 blocks,
# so float32 logits are not bit-close. Measured on open-autoglm-tiny, 32 gate steps (mean KL prefill /
# decode; all greedy actions identical): F32 2.8e-7 / 1e-10 (max |dlogit| 0.014); Q4_0 RTN 9.5e-5 / 3e-7;
# Q4_0 GPTQ 8.9e-5 / 3e-7; Q8_0 1.0e-4 / 1e-7.
TOLERANCES = {
    "float32": Tolerance(max_abs=None, mean_kl=1e-5, greedy_identical=False, accuracy_drop=0.05, greedy_min=0.98),
    "float16": Tolerance(max_abs=None, mean_kl=1e-4, greedy_identical=False, accuracy_drop=0.05, greedy_min=0.98),
    "int8": Tolerance(max_abs=None, mean_kl=1e-3, greedy_identical=False, accuracy_drop=0.05, greedy_min=0.98),
    "int8-dynamic": Tolerance(max_abs=None, mean_kl=2e-2, greedy_identical=False, accuracy_drop=0.1),
    "int4": Tolerance(max_abs=None, mean_kl=1e-3, greedy_identical=False, accuracy_drop=0.05, greedy_min=0.98),
}


@dataclass(frozen=True)
class GGUFExport:
    """A finished GGUF export: where, the precision, what was written, the gate's report, both runtimes' latency."""

    path: Path
    precision: Precision
    written: dict
    parity: ParityReport
    latency_llamacpp: LatencyRecord
    latency_pytorch: LatencyRecord
    manifest: dict = field(compare=False, repr=False)

    @property
    def decode_speedup(self) -> float:
        """PyTorch eager decode ms/token over llama.cpp's (same recipe, same run)."""
        return self.latency_pytorch.decode_ms_per_token.median / self.latency_llamacpp.decode_ms_per_token.median


def gguf_precision(recipe, *, quantize_lm_head: bool = False) -> Precision:
    """The precision of a recipe in GGUF: as `precision_of`, and 3- / 2-bit codes too (Q4_0 holds them)."""
    q = getattr(recipe, "quant", None)
    if q is not None and q.bits in (3, 2):
        method = type(q).__name__.replace("Config", "").lower()
        return Precision("int4", q.bits, q.group_size, q.symmetric, 0, quantize_lm_head, method,
                         f"{q.bits}-bit codes in 4-bit GGUF blocks (Q4_0 where symmetric)")
    return precision_of(recipe, quantize_lm_head=quantize_lm_head)


def tolerance_kind(precision: Precision, float_type: str) -> str:
    return "float16" if precision.kind == "float32" and float_type == "f16" else precision.kind


def tokenizer_agreement(decoder, tokenizer, steps) -> dict:
    """How often llama.cpp's own tokenizer gives the Hugging Face ids of the gate prompts: on the text as
    is, and after the tokenizer.json normalizer (what a llama.cpp user would apply first)."""
    from ..ort import encode

    norm = getattr(tokenizer.backend_tokenizer, "normalizer", None)
    raw = normalized = 0
    for s in steps:
        ids = encode(tokenizer, s)[0].tolist()
        text = tokenizer.decode(ids)
        raw += decoder.tokenize(text) == ids
        normalized += decoder.tokenize(norm.normalize_str(text) if norm is not None else text) == ids
    n = max(len(steps), 1)
    return {"prompts": len(steps), "as_is": raw / n, "after_normalizer": normalized / n}


def export_gguf(out, recipe=None, *, model=None, tokenizer=None, source=None, overwrite: bool = False,
                episodes=None, accuracy_steps: int = 32, parity_prompts: int = 4, decode_steps: int = 8,
                latency_repeats: int = 5, float_type: str = "f32", quantize_lm_head: bool = False,
                calib_episodes=None, calib=None, threads: int | None = None, progress: bool = True) -> GGUFExport:
    """Export a recipe to a verified GGUF folder (see module doc).

    Args:
        out: target folder DIR (must not exist or be empty, unless `overwrite`).
        recipe: Recipe, recipe dict / JSON string / path, or None (the baseline, float).
        model, tokenizer: an already loaded baseline (default: load `source`).
        source: checkpoint folder (None: open-autoglm-tiny); ignored when `model` is given.
        overwrite: replace a non-empty DIR.
        episodes: JSONL eval episodes for the gate (default data/episodes/eval.jsonl).
        accuracy_steps, parity_prompts, decode_steps: the gate's size (as `export_onnx`).
        latency_repeats: timed repeats for each runtime's latency.
        float_type: "f32" or "f16" for float weights.
        quantize_lm_head: quantize the output projection too (see `precision`).
        calib_episodes, calib: calibration for methods that need it (as `export_onnx`).
        threads: llama.cpp threads (default: torch's).
        progress: show progress bars.
    Returns:
        GGUFExport.
    Raises:
        ExportGateError: the gate failed (nothing at DIR). ExportError / RecipeError: bad input.
        LlamaCppMissing: llama-cpp-python is not installed (the gate needs it; nothing written).
    """
    from ..llamacpp import GGUFWriteError, LlamaCppDecoder, check_writable, llama_cpp, write_gguf

    t_start = time.perf_counter()
    llama_cpp()  # fail before any work when llama.cpp is not installed
    out = Path(out).expanduser().resolve()
    recipe = load_recipe(recipe)
    precision = gguf_precision(recipe, quantize_lm_head=quantize_lm_head)
    fs.check_target(out, overwrite)
    episodes = Path(episodes) if episodes is not None else DEFAULT_EPISODES
    steps = load_steps(episodes, limit=accuracy_steps)
    if model is None:
        from ..model import load_model

        model, tokenizer = load_model(source, vision=False)
        name = str(source) if source is not None else DEFAULT_NAME
    elif tokenizer is None:
        raise ExportError("export_gguf(model=...) needs tokenizer= too")
    else:
        name = model_name(model)
    model.eval()
    try:
        check_writable(model)
    except GGUFWriteError as exc:
        raise ExportError(str(exc)) from None
    base_fp = model_fingerprint(model)
    if calib is None and recipe.changes_weights:
        from ..calib import default_calibration

        calib = default_calibration(tokenizer, calib_episodes)
    qmodel = export_model(model, tokenizer, recipe, precision, calib=calib)
    stages = {"load": time.perf_counter() - t_start}
    bar = tqdm(total=4, desc=f"export gguf {precision.kind}", disable=not progress,
               bar_format="{desc}: {n}/{total} {postfix}")
    with bar, fs.staging(out) as tmp:
        bar.set_postfix_str("gguf")
        t0 = time.perf_counter()
        try:
            written = write_gguf(qmodel, tokenizer, tmp / GGUF, float_type=float_type, name=Path(name).name)
        except GGUFWriteError as exc:
            raise ExportError(str(exc)) from None
        fs.write_tokenizer(tokenizer, tmp)
        stages["gguf"] = time.perf_counter() - t0
        bar.update()
        bar.set_postfix_str("parity gate")
        t0 = time.perf_counter()
        reference = dequantized(qmodel)
        decoder = LlamaCppDecoder(tmp / GGUF, threads=threads)
        kind = tolerance_kind(precision, float_type)
        report = parity_gate(reference, decoder, tokenizer, steps, kind, prompts=parity_prompts,
                             decode_steps=decode_steps, tolerance=TOLERANCES[kind], progress=progress, engine="llama.cpp")
        agreement = tokenizer_agreement(decoder, tokenizer, steps[:parity_prompts])
        stages["gate"] = time.perf_counter() - t0
        bar.update()
        if not report.passed:
            decoder.close()
            raise ExportGateError(report, out)
        bar.set_postfix_str("latency")
        t0 = time.perf_counter()
        prompt = typical_prompt(tokenizer, steps).numpy()
        warmup = min(2, latency_repeats)
        lat_cpp = measure_ort_latency(decoder, prompt, repeats=latency_repeats, warmup=warmup,
                                      engine=f"llama.cpp {written.label}")
        lat_pt = measure_latency(qmodel, torch.from_numpy(prompt), repeats=latency_repeats, warmup=warmup,
                                 engine=f"pytorch-eager {precision.kind}")
        decoder.close()
        stages["latency"] = time.perf_counter() - t0
        bar.update()
        bar.set_postfix_str("manifest")
        manifest = _manifest(recipe, precision, float_type, written, name, base_fp, reference, episodes, report,
                             agreement, lat_cpp, lat_pt, tmp, stages,
                             dict(accuracy_steps=accuracy_steps, parity_prompts=parity_prompts,
                                  decode_steps=decode_steps, quantize_lm_head=quantize_lm_head,
                                  calib_episodes=str(calib_episodes) if calib_episodes else None,
                                  calib_steps=len(calib) if calib is not None else None))
        fs.write_json(tmp / fs.MANIFEST, manifest)
        fs.move_into_place(tmp, out)
        bar.update()
        bar.set_postfix_str(f"written to {out}")
    return GGUFExport(out, precision, manifest["gguf"], report, lat_cpp, lat_pt, manifest)


def _manifest(recipe, precision, float_type, written, name, base_fp, reference, episodes, report, agreement,
              lat_cpp, lat_pt, folder, stages, gate) -> dict:
    import platform
    import os
    from datetime import datetime, timezone

    from importlib.metadata import version as dist_version

    from ..llamacpp import system_info, version

    parity = report.to_json()
    return {
        "format": FORMAT,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "recipe": recipe.to_json(),
        "precision": precision.to_json(),
        "gguf": dict(written.to_json(), float_type=float_type, tensors={k: {"type": t.qtype.name, "exact": t.exact,
                     "max_abs": t.max_abs} for k, t in written.tensors.items()}),
        "source": {"model": name, "fingerprint": base_fp, "exported_fingerprint": model_fingerprint(reference)},
        "versions": dict(library_versions(), llama_cpp_python=version(), gguf=dist_version("gguf")),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "threads": lat_cpp.threads,
                    "llama_cpp_system": system_info()},
        "gate": {"episodes": str(episodes), "episodes_sha256": file_hash(episodes), "engine": "llama.cpp", **gate},
        "parity": parity,
        "tokenizer_agreement": agreement,
        "metrics": {
            "accuracy": {"llama.cpp": parity["accuracy_onnxruntime"], "pytorch": parity["accuracy_pytorch"]},
            "latency": {"llama.cpp": latency_json(lat_cpp), "pytorch": latency_json(lat_pt),
                        "decode_speedup": lat_pt.decode_ms_per_token.median / lat_cpp.decode_ms_per_token.median},
            "model_bytes": (folder / GGUF).stat().st_size,
        },
        "export_seconds": {k: round(v, 1) for k, v in stages.items()},
        "files": fs.file_hashes(folder),
    }


def read_gguf_manifest(folder: Path) -> dict | None:
    """The manifest of a GGUF export folder, or None (any other folder)."""
    import json

    try:
        data = json.loads((Path(folder) / fs.MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) and data.get("format") == FORMAT else None


def verify_gguf(folder, manifest: dict, *, model=None, tokenizer=None, source=None, episodes=None,
                latency_repeats: int = 5, progress: bool = True, threads: int | None = None):
    """Re-run the GGUF folder's gate and llama.cpp latency (as `verify` for ONNX folders).

    Returns:
        VerifyResult (its `latency_onnxruntime` holds llama.cpp's latency).
    Raises:
        ExportError: files changed since export, or the model is not the one exported.
    """
    from ..llamacpp import LlamaCppDecoder
    from .verify import VerifyResult, _episodes, rebuild_reference

    folder = Path(folder)
    precision, tokenizer, reference = rebuild_reference(folder, manifest, model=model, tokenizer=tokenizer,
                                                        source=source, vision=False)
    gate = manifest.get("gate", {})
    steps = load_steps(_episodes(manifest, episodes), limit=gate.get("accuracy_steps", 32))
    decoder = LlamaCppDecoder(folder / GGUF, threads=threads)
    kind = tolerance_kind(precision, manifest["gguf"].get("float_type", "f32"))
    report = parity_gate(reference, decoder, tokenizer, steps, kind, prompts=gate.get("parity_prompts", 4),
                         decode_steps=gate.get("decode_steps", 8), tolerance=TOLERANCES[kind], progress=progress, engine="llama.cpp")
    lat = measure_ort_latency(decoder, typical_prompt(tokenizer, steps).numpy(), repeats=latency_repeats,
                              warmup=min(2, latency_repeats),
                              engine=manifest["metrics"]["latency"]["llama.cpp"]["engine"])
    decoder.close()
    return VerifyResult(folder, report, lat, manifest)


__all__ = ["FORMAT", "GGUF", "GGUFExport", "TOLERANCES", "export_gguf", "gguf_precision", "read_gguf_manifest",
           "tokenizer_agreement", "verify_gguf"]
