"""Export of a vision-language model (Glm4v, AutoGLM-Phone-9B's architecture) as onnxruntime-genai lays
VLMs out: vision encoder, embedding and text decoder graphs (written by `workbench.ort.vision_graphs`,
run by `workbench.ort.vision`), gated against PyTorch and moved into place with a manifest.

    result = export_onnx("out/vl", {"quant": {"method": "rtn", "bits": 4}}, source="path/to/glm4v")

The gate runs the three graphs on screenshot steps against PyTorch (`precision.dequantized` of the
recipe's model): image features (max abs difference relative to the features' scale), the prefill
logits (mean KL at the last position) and greedy actions (token-identical share, a part after a
near-tie forgiven), with the text models' tolerances per precision. onnxruntime-genai has no glm4v
model type, so the folder is checked with plain ONNX Runtime and the manifest says that. Nothing is
left at DIR when anything fails.
"""
from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..measure.provenance import model_fingerprint
from ..model.generate import greedy_vl
from ..model.vision import with_tokens
from ..ort.contract import DecoderShape
from ..ort.graph import ACCURACY_LEVEL
from ..ort.vision import EMBEDDING_FILE, TEXT_FILE, VISION_FILE, OrtVisionLanguage
from ..ort.vision_graphs import GRAPH_FILES, VISION_ACCURACY_LEVEL, pack_graphs, write_graphs
from . import folder as fs
from .folder import ExportError
from .manifest import latency_json, library_versions
from .parity import TIE_MARGIN, TOLERANCES, parting
from .precision import dequantized

FORMAT = "autoglm-workbench-vlm-onnx/1"
VISION_REL_TOL = 1e-3  # image features: max |ONNX Runtime - PyTorch| / max |PyTorch|


@dataclass(frozen=True)
class VisionParity:
    """What the three-graph gate measured on screenshot steps, and its verdict."""

    precision: str
    steps: int
    vision_max_abs: float
    vision_rel: float
    prefill_mean_kl: float
    greedy_identical: float  # steps whose greedy tokens are identical
    greedy_identical_to_tie: float  # ... or identical up to where the reference met a near-tie (TIE_MARGIN)
    failures: tuple[str, ...] = ()
    outputs: list = field(default_factory=list, compare=False, repr=False)

    @property
    def passed(self) -> bool:
        return not self.failures

    def to_json(self) -> dict:
        d = asdict(self)
        d.pop("outputs")
        return {**d, "failures": list(self.failures), "passed": self.passed}

    def summary(self) -> str:
        return (f"three-graph gate ({self.precision}, {self.steps} screenshot steps): "
                f"{'PASSED' if self.passed else 'FAILED'}; vision features max |d| {self.vision_max_abs:.3g} "
                f"({self.vision_rel:.2g} of their scale), prefill mean KL {self.prefill_mean_kl:.3g}, greedy actions "
                f"identical on {self.greedy_identical:.3f} ({self.greedy_identical_to_tie:.3f} up to a near-tie)"
                + "".join(f"\n  FAIL: {f}" for f in self.failures))


def _margin(reference: nn.Module, x: dict, tokens: list[int]) -> float:
    """The reference's top-2 logit margin after the prompt and `tokens` (teacher-forced)."""
    top = reference(**with_tokens(x, tokens)).logits[0, -1].float().topk(2).values
    return float(top[0] - top[1])


@torch.no_grad()
def vision_gate(reference: nn.Module, vlm: OrtVisionLanguage, inputs: list[dict], eos_id: int, kind: str,
                max_new_tokens: int = 48) -> VisionParity:
    """The three graphs against the PyTorch reference on the steps' inputs (see module doc)."""
    tol = TOLERANCES[kind]
    max_abs = scale = kl = 0.0
    same, to_tie, outputs = 0, 0, []
    for x in inputs:
        want = torch.cat(reference.model.get_image_features(x["pixel_values"], x["image_grid_thw"],
                                                            return_dict=True).pooler_output)
        got = vlm.encode(x["pixel_values"])
        max_abs = max(max_abs, float(np.abs(got - want.numpy()).max()))
        scale = max(scale, float(want.abs().max()))
        logits, _, _ = vlm.prefill(x, got)
        ref = torch.log_softmax(reference(**x).logits[0, -1].float(), -1)
        kl += float((ref.exp() * (ref - torch.log_softmax(torch.from_numpy(logits[0, -1]), -1))).sum())
        a = greedy_vl(reference, x, eos_id, max_new_tokens).tokens
        b = vlm.greedy(x, eos_id, max_new_tokens).tokens
        same += a == b
        if a != b:
            to_tie += _margin(reference, x, a[:parting(a, b)]) < TIE_MARGIN
        outputs.append((a, b))
    n = len(inputs)
    rel, kl, share = max_abs / max(scale, 1e-12), kl / n, (same + to_tie) / n
    failures = []
    if rel > VISION_REL_TOL:
        failures.append(f"vision features differ by {rel:.3g} of their scale (bound {VISION_REL_TOL:g})")
    if kl > tol.mean_kl:
        failures.append(f"prefill mean KL {kl:.3g} > {tol.mean_kl:g}")
    if share < tol.greedy_min:
        failures.append(f"greedy actions identical (up to a near-tie) on {share:.3f} of steps (bound "
                        f"{tol.greedy_min:g})")
    return VisionParity(kind, n, max_abs, rel, kl, same / n, share, tuple(failures), outputs)


@dataclass(frozen=True)
class VisionExport:
    """A finished vision-language export: where, the gate's report, the manifest."""

    path: Path
    parity: VisionParity
    manifest: dict = field(compare=False, repr=False)


def export_vlm(out, qmodel: nn.Module, task, *, precision, recipe, source: dict, gate: dict | None = None,
               overwrite: bool = False, stages: dict | None = None, latency_repeats: int = 3) -> VisionExport:
    """Write the three graphs of a (quantized) Glm4v, gate them, and move the folder into place.

    Args:
        out: target folder (must not exist or be empty, unless `overwrite`).
        qmodel: the recipe's model (its quantized language-model layers are packed as they are).
        task: the gate steps as a `workbench.measure.vision.ScreenTask` (one screenshot grid); its processor's
            tokenizer, chat template and image processor go into the folder.
        precision: the export Precision; recipe: the Recipe; source: {"model", "fingerprint"}.
        gate: the gate's settings for the manifest (episodes, accuracy_steps, calibration), what verify re-runs.
        latency_repeats: timed repeats of the latency on both runtimes (typical step).
        overwrite: replace a non-empty `out`.
        stages: seconds of earlier stages, for the manifest.
    Raises:
        ExportError: screenshots of more than one grid. ExportGateError: the gate failed (nothing at `out`).
    """
    from ..measure.vision import measure_screen_latency, measure_screen_latency_ort

    out = Path(out).expanduser().resolve()
    fs.check_target(out, overwrite)
    processor, inputs = task.processor, task.inputs
    grids = {tuple(x["image_grid_thw"].reshape(-1).tolist()) for x in inputs}
    if len(grids) != 1:
        raise ExportError(f"the gate steps' screenshots have {len(grids)} patch grids {sorted(grids)}; the vision "
                          "graph is written for one (a phone's resolution): use screenshots of one size")
    stages = dict(stages or {})
    reference = dequantized(qmodel)
    with fs.staging(out) as tmp:
        t0 = time.perf_counter()
        write_graphs(reference, tmp, inputs[0]["image_grid_thw"], inputs[0]["pixel_values"])
        packed = pack_graphs(tmp, qmodel, precision.accuracy_level or ACCURACY_LEVEL)
        stages["graphs"] = time.perf_counter() - t0
        processor.tokenizer.save_pretrained(str(tmp))
        processor.image_processor.save_pretrained(str(tmp))
        t0 = time.perf_counter()
        vlm = OrtVisionLanguage(tmp)
        report = vision_gate(reference, vlm, inputs, processor.eos_token_id, precision.kind)
        stages["gate"] = time.perf_counter() - t0
        if not report.passed:
            from .build import ExportGateError

            raise ExportGateError(report, out)
        t0 = time.perf_counter()
        warmup = min(2, latency_repeats)
        lat_ort, vis_ort = measure_screen_latency_ort(vlm, task, repeats=latency_repeats, warmup=warmup,
                                                      engine=f"onnxruntime vision-language {precision.kind}")
        lat_pt, vis_pt = measure_screen_latency(qmodel, task, repeats=latency_repeats, warmup=warmup,
                                                engine=f"pytorch-eager {precision.kind}")
        del vlm
        stages["latency"] = time.perf_counter() - t0
        manifest = {
            "format": FORMAT, "recipe": recipe.to_json(), "precision": precision.to_json(),
            "graphs": {"vision": VISION_FILE, "embedding": EMBEDDING_FILE, "text": TEXT_FILE},
            "image_grid_thw": list(next(iter(grids))), "packed_matmuls": packed,
            "vision_accuracy_level": VISION_ACCURACY_LEVEL,
            "shape": asdict(DecoderShape.of(qmodel)),
            "source": {**source, "exported_fingerprint": model_fingerprint(reference)},
            "versions": library_versions(), "gate": gate or {},
            "metrics": {"latency": {"onnxruntime": {**latency_json(lat_ort), "vision_ms": vis_ort.median},
                                    "pytorch": {**latency_json(lat_pt), "vision_ms": vis_pt.median}},
                        "image_tokens": task.image_tokens},
            "parity": report.to_json(), "runtime": "onnxruntime (workbench.ort.vision); onnxruntime-genai has no "
                                                   "glm4v model type, so no genai_config.json is written",
            "graph_bytes": {f: (tmp / f).stat().st_size for f in (VISION_FILE, EMBEDDING_FILE, TEXT_FILE)},
            "export_seconds": {k: round(v, 1) for k, v in stages.items()},
        }
        manifest["files"] = fs.file_hashes(tmp)
        fs.write_json(tmp / fs.MANIFEST, manifest)
        fs.move_into_place(tmp, out)
    return VisionExport(out, report, manifest)


def export_vision_onnx(out, recipe, *, model, tokenizer, processor=None, source=None, name: str = "",
                       episodes=None, accuracy_steps: int = 32, overwrite: bool = False, calib_episodes=None,
                       calib=None, progress: bool = True) -> VisionExport:
    """`export_onnx` for a vision-language model: the recipe applied, three graphs written and gated.

    Args:
        out: target folder. recipe: a Recipe. model, tokenizer: the loaded Glm4v and its tokenizer.
        processor: its ScreenProcessor (None: read from `source` or the model's folder).
        source, name: where the model came from, how the manifest names it.
        episodes: screenshot episodes for the gate (default data/episodes/eval.jsonl); accuracy_steps: how many.
        overwrite: replace a non-empty `out`. calib_episodes, calib: calibration (default: screenshot steps
            of data/episodes/calib.jsonl, what a measured point uses).
        progress: show a progress line.
    """
    from ..calib import default_calibration
    from ..measure.vision import ScreenTask
    from ..model.vision import load_processor
    from ..task import DEFAULT_EPISODES, file_hash, load_steps
    from .precision import precision_of, recipe_model

    t0 = time.perf_counter()
    processor = processor or load_processor(source if source is not None else model.config._name_or_path)
    episodes = Path(episodes) if episodes is not None else DEFAULT_EPISODES
    task = ScreenTask(processor, load_steps(episodes, limit=accuracy_steps))
    precision = precision_of(recipe)
    if calib is None and recipe.changes_weights:
        calib = default_calibration(tokenizer, calib_episodes, processor=processor)
    qmodel = recipe_model(model.eval(), recipe, precision, calib)
    if progress:
        print(f"export vision-language {precision.kind}: three graphs and the gate on {len(task.steps)} screenshot steps")
    gate = {"episodes": str(episodes), "episodes_sha256": file_hash(episodes), "accuracy_steps": len(task.steps),
            "calib_episodes": str(calib_episodes) if calib_episodes else None,
            "calib_steps": len(calib) if calib is not None else None}
    return export_vlm(out, qmodel, task, precision=precision, recipe=recipe, overwrite=overwrite, gate=gate,
                      source={"model": name or str(source), "fingerprint": model_fingerprint(model)},
                      stages={"load": time.perf_counter() - t0})


def verify_vision(folder, manifest: dict, *, model=None, tokenizer=None, source=None, episodes=None):
    """`verify` of a vision-language folder: the files' hashes, the source model rebuilt with the recipe (its
    fingerprint must be the exported one), and the three-graph gate re-run on the manifest's steps.

    Returns:
        VisionExport with the new gate report (check `.parity.passed`).
    Raises:
        ExportError: changed files, the wrong source model, a missing episode file.
    """
    from ..calib import CALIB_STEPS, default_calibration
    from ..measure.vision import ScreenTask
    from ..model import load_model
    from ..model.vision import load_processor
    from ..recipe import Recipe
    from ..task import load_steps
    from .precision import Precision, recipe_model

    folder = Path(folder)
    changed = fs.changed_files(folder, manifest)
    if changed:
        raise ExportError(f"{', '.join(changed)} in {folder} changed since export (sha256 differs from "
                          "manifest.json); export the folder again")
    recipe, precision, gate = Recipe.from_json(manifest["recipe"]), Precision(**manifest["precision"]), manifest["gate"]
    if model is None:
        model, tokenizer = load_model(source if source is not None else manifest["source"]["model"])
    processor = load_processor(folder)
    calib = None
    if recipe.changes_weights:
        calib = default_calibration(tokenizer, gate.get("calib_episodes"), n=gate.get("calib_steps") or CALIB_STEPS,
                                    processor=processor)
    reference = dequantized(recipe_model(model.eval(), recipe, precision, calib))
    if model_fingerprint(reference) != manifest["source"]["exported_fingerprint"]:
        raise ExportError(f"the model given is not the one exported to {folder} (fingerprint differs); pass the "
                          "source checkpoint (--model)")
    path = Path(episodes or gate["episodes"])
    if not path.is_file():
        raise ExportError(f"the gate's episode file {path} is not here; pass episodes= (--episodes)")
    task = ScreenTask(processor, load_steps(path, limit=gate["accuracy_steps"]))
    report = vision_gate(reference, OrtVisionLanguage(folder), task.inputs, processor.eos_token_id, precision.kind)
    return VisionExport(folder, report, manifest)


def files_of(folder: str | os.PathLike) -> list[str]:
    """The graph files of a vision-language export folder (for listings)."""
    return [f for f in GRAPH_FILES if (Path(folder) / f).is_file()]
