"""Export of a vision-language model (Glm4v, AutoGLM-Phone-9B's architecture) as onnxruntime-genai lays
VLMs out: a vision encoder, an embedding and a text decoder graph (`workbench.ort.vision` runs them).

    result = export_vlm("out/vl", {"quant": {"method": "rtn", "bits": 4}}, source="path/to/glm4v")

- ``text.onnx``: the language model and lm_head on ``inputs_embeds`` with 3-axis M-RoPE ``position_ids``
  and the KV cache, exported by torch.onnx's dynamo exporter from the dequantized model (dynamic
  batch, sequence and past); the recipe's quantized codes of the language model are then packed
  into MatMulNBits as they are (`precision.pack_plain`), as for text models.
- ``embedding.onnx``: token embeddings with the image features written at the ``<|image|>`` tokens
  (dynamo, dynamic lengths).
- ``vision.onnx``: the vision tower at the screenshot grid of the gate's steps (fixed: a phone's
  screenshots have one resolution; the grid is in the manifest and the runtime refuses another).
  transformers' vision attention splits by data-dependent lengths, which the dynamo exporter
  cannot trace, so this graph is traced at that grid by the TorchScript exporter; its weight MatMuls
  are renamed after their modules, so with ``quant.scope`` "all" the tower's codes are packed into
  MatMulNBits as the text decoder's are.

The gate runs the three graphs on screenshot steps against PyTorch (`precision.dequantized` of the
recipe's model): image features (max abs difference relative to the features' scale), the prefill
logits (mean KL at the last position) and greedy actions (token-identical share), with the text
models' tolerances per precision. onnxruntime-genai has no glm4v model type, so the folder is checked
with plain ONNX Runtime and the manifest says that. Nothing is left at DIR when anything fails.
"""
from __future__ import annotations

import contextlib
import dataclasses
import io
import os
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn
from transformers import DynamicCache

from ..model.generate import greedy_vl
from ..ort.contract import EXTERNAL_DATA_BYTES, OPSET, DecoderShape
from ..ort.vision import EMBEDDING_FILE, TEXT_FILE, VISION_FILE, OrtVisionLanguage
from . import folder as fs
from .folder import ExportError
from .manifest import library_versions
from .parity import TOLERANCES
from .precision import dequantized, pack_plain
from .wrapper import tidy

FORMAT = "autoglm-workbench-vlm-onnx/1"
VISION_REL_TOL = 1e-3  # image features: max |ONNX Runtime - PyTorch| / max |PyTorch|
# Greedy tokens that part where the reference's top two logits are closer than this have met a near-tie,
# which MatMulNBits' int8 activations (or float rounding) may break either way: measured on the random
# tiny Glm4v, int4 g32 RTN flipped two of four steps at margins of 0.020 and 0.024. Such a step counts as
# identical up to the tie; a part at a wider margin is a failure.
TIE_MARGIN = 0.05
# The vision graph's MatMulNBits compute in float32 (accuracy_level 1), not with int8 activations (4, the
# text decoder's): with int8 activations the random tiny tower's image features moved by 2.0% of their scale
# (measured, int4 g32 RTN, scope all), 20x the features' bound, and greedy actions followed them.
VISION_ACCURACY_LEVEL = 1


class VisionGraph(nn.Module):
    """The vision tower at one patch grid: pixel_values -> image features (image tokens, hidden)."""

    def __init__(self, model: nn.Module, grid: torch.Tensor):
        super().__init__()
        self.visual = model.model.visual
        self.register_buffer("grid", grid, persistent=False)

    def forward(self, pixel_values):
        return self.visual(pixel_values, grid_thw=self.grid).pooler_output


class EmbeddingGraph(nn.Module):
    """input_ids (B, T), image_features (N, hidden) -> inputs_embeds, the i-th <|image|> token taking row i."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.embed = model.model.language_model.embed_tokens
        self.image_token_id = int(model.config.image_token_id)

    def forward(self, input_ids, image_features):
        embeds = self.embed(input_ids)
        mask = input_ids == self.image_token_id
        index = (torch.cumsum(mask.reshape(-1).long(), 0) - 1).clamp(min=0)
        picked = image_features[index].reshape(embeds.shape).to(embeds.dtype)
        return torch.where(mask[..., None], picked, embeds)


class TextGraph(nn.Module):
    """The language model and lm_head on inputs_embeds, M-RoPE positions (3, B, T) and a flat KV cache."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model  # named `model`, so the graph's MatMuls are named as model.named_modules() names them
        self.num_layers = DecoderShape.of(model).num_layers

    def forward(self, inputs_embeds, attention_mask, position_ids, *past):
        cache = DynamicCache(ddp_cache_data=[(past[2 * i], past[2 * i + 1]) for i in range(self.num_layers)],
                             config=self.model.config.get_text_config())
        out = self.model.model.language_model(inputs_embeds=inputs_embeds, attention_mask=attention_mask,
                                              position_ids=position_ids, cache=cache, use_cache=True)
        present = []
        for layer in cache.layers:
            present += [layer.keys, layer.values]
        return (self.model.lm_head(out.last_hidden_state), *present)


def name_vision_matmuls(path: Path, model: nn.Module) -> int:
    """Rename the vision graph's weight MatMuls after their modules (``/visual/blocks.0/attn/qkv/MatMul`` ->
    ``model.visual.blocks.0.attn.qkv``), as the dynamo graphs are named, so `pack_plain` finds them."""
    proto = onnx.load(str(path))
    modules = {n for n, m in model.named_modules() if n.startswith("model.visual.")}
    count = 0
    for node in proto.graph.node:
        if node.op_type == "MatMul" and node.name.startswith("/visual/") and node.name.endswith("/MatMul"):
            name = "model." + node.name[1:-len("/MatMul")].replace("/", ".")
            if name in modules:
                node.name, count = name, count + 1
    onnx.save(proto, str(path))
    return count


def pack_graphs(folder: Path, qmodel: nn.Module, precision) -> int:
    """Pack the quantized layers' codes into the text and vision graphs (MatMulNBits); returns how many."""
    if not precision.quantized:
        return 0
    name_vision_matmuls(folder / VISION_FILE, qmodel)
    quantized = [n for n, m in qmodel.named_modules() if type(m).__name__ == "PackedLinear"]
    packed = pack_plain(str(folder / TEXT_FILE), qmodel, precision, within=("model.language_model.", "lm_head"))
    if any(n.startswith("model.visual.") for n in quantized):
        vision = dataclasses.replace(precision, accuracy_level=VISION_ACCURACY_LEVEL)
        packed += pack_plain(str(folder / VISION_FILE), qmodel, vision, within=("model.visual.",))
    return packed


def _kv_names(layers: int, prefix: str) -> list[str]:
    return [f"{prefix}.{i}.{kv}" for i in range(layers) for kv in ("key", "value")]


def _quiet_export(*args, **kwargs):
    with torch.no_grad(), warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        return torch.onnx.export(*args, **kwargs)


def write_graphs(float_model: nn.Module, folder: Path, grid: torch.Tensor, pixel_values: torch.Tensor) -> None:
    """Write vision.onnx, embedding.onnx and text.onnx of a float Glm4v into `folder` (checked by onnx.checker)."""
    shape = DecoderShape.of(float_model)
    float_model = float_model.eval()
    _quiet_export(VisionGraph(float_model, grid).eval(), (pixel_values,), str(folder / VISION_FILE), dynamo=False,
                  opset_version=OPSET, input_names=["pixel_values"], output_names=["image_features"])
    batch, seq, tokens = torch.export.Dim("batch"), torch.export.Dim("sequence"), torch.export.Dim("image_tokens")
    ids = torch.randint(0, shape.vocab_size, (2, 3))
    program = _quiet_export(EmbeddingGraph(float_model).eval(), (ids, torch.randn(4, shape.hidden_size)),
                            dynamic_shapes={"input_ids": {0: batch, 1: seq}, "image_features": {0: tokens}},
                            input_names=["input_ids", "image_features"], output_names=["inputs_embeds"],
                            opset_version=OPSET, dynamo=True)
    tidy(program.model)
    program.save(str(folder / EMBEDDING_FILE))
    past, total = torch.export.Dim("past_sequence"), torch.export.Dim("total_sequence")
    kv = [torch.randn(2, shape.num_kv_heads, 5, shape.head_dim) for _ in range(2 * shape.num_layers)]
    example = (torch.randn(2, 3, shape.hidden_size), torch.ones(2, 8, dtype=torch.long),
               torch.arange(5, 8).expand(3, 2, 3).contiguous(), *kv)
    dynamic = {"inputs_embeds": {0: batch, 1: seq}, "attention_mask": {0: batch, 1: total},
               "position_ids": {1: batch, 2: seq}, "past": tuple({0: batch, 2: past} for _ in kv)}
    program = _quiet_export(TextGraph(float_model).eval(), example, dynamic_shapes=dynamic,
                            input_names=["inputs_embeds", "attention_mask", "position_ids",
                                         *_kv_names(shape.num_layers, "past_key_values")],
                            output_names=["logits", *_kv_names(shape.num_layers, "present")],
                            opset_version=OPSET, dynamo=True)
    tidy(program.model)
    large = sum(p.numel() * p.element_size() for p in float_model.parameters()) > EXTERNAL_DATA_BYTES
    program.save(str(folder / TEXT_FILE), external_data=large)
    for name in (VISION_FILE, EMBEDDING_FILE, TEXT_FILE):
        onnx.checker.check_model(str(folder / name), full_check=True)


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
    extra = torch.tensor([tokens], dtype=torch.long)
    y = dict(x, input_ids=torch.cat([x["input_ids"], extra], 1),
             mm_token_type_ids=torch.cat([x["mm_token_type_ids"], torch.zeros_like(extra, dtype=torch.int32)], 1))
    y["attention_mask"] = torch.ones_like(y["input_ids"])
    top = reference(**y).logits[0, -1].float().topk(2).values
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
            i = next((i for i, (p, q) in enumerate(zip(a, b)) if p != q), min(len(a), len(b)))
            to_tie += _margin(reference, x, a[:i]) < TIE_MARGIN
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


def export_vlm(out, qmodel: nn.Module, processor, inputs: list[dict], *, precision, recipe, source: dict,
               overwrite: bool = False, stages: dict | None = None) -> VisionExport:
    """Write the three graphs of a (quantized) Glm4v, gate them, and move the folder into place.

    Args:
        out: target folder (must not exist or be empty, unless `overwrite`).
        qmodel: the recipe's model (its quantized language-model layers are packed as they are).
        processor: its ScreenProcessor (tokenizer, chat template and image processor go into the folder).
        inputs: the gate steps' model inputs (`workbench.model.vision.screen_inputs`), one screenshot grid.
        precision: the export Precision; recipe: the Recipe; source: {"model", "fingerprint"}.
        overwrite: replace a non-empty `out`.
        stages: seconds of earlier stages, for the manifest.
    Raises:
        ExportError: screenshots of more than one grid. ExportGateError: the gate failed (nothing at `out`).
    """
    out = Path(out).expanduser().resolve()
    fs.check_target(out, overwrite)
    grids = {tuple(x["image_grid_thw"].reshape(-1).tolist()) for x in inputs}
    if len(grids) != 1:
        raise ExportError(f"the gate steps' screenshots have {len(grids)} patch grids {sorted(grids)}; the vision "
                          "graph is written for one (a phone's resolution): use screenshots of one size")
    stages = dict(stages or {})
    reference = dequantized(qmodel)
    with fs.staging(out) as tmp:
        t0 = time.perf_counter()
        write_graphs(reference, tmp, inputs[0]["image_grid_thw"], inputs[0]["pixel_values"])
        packed = pack_graphs(tmp, qmodel, precision)
        stages["graphs"] = time.perf_counter() - t0
        processor.tokenizer.save_pretrained(str(tmp))
        processor.image_processor.save_pretrained(str(tmp))
        t0 = time.perf_counter()
        report = vision_gate(reference, OrtVisionLanguage(tmp), inputs, processor.eos_token_id, precision.kind)
        stages["gate"] = time.perf_counter() - t0
        if not report.passed:
            from .build import ExportGateError

            raise ExportGateError(report, out)
        manifest = {
            "format": FORMAT, "recipe": recipe.to_json(), "precision": precision.to_json(),
            "graphs": {"vision": VISION_FILE, "embedding": EMBEDDING_FILE, "text": TEXT_FILE},
            "image_grid_thw": list(next(iter(grids))), "packed_matmuls": packed,
            "vision_accuracy_level": VISION_ACCURACY_LEVEL,
            "shape": asdict(DecoderShape.of(qmodel)), "source": source, "versions": library_versions(),
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
    from ..measure.provenance import model_fingerprint
    from ..model.vision import load_processor, screen_inputs
    from ..task import DEFAULT_EPISODES, load_steps
    from ..task.open_autoglm import earlier_apps
    from .precision import precision_of, recipe_model

    t0 = time.perf_counter()
    processor = processor or load_processor(source if source is not None else model.config._name_or_path)
    steps = load_steps(episodes if episodes is not None else DEFAULT_EPISODES, limit=accuracy_steps)
    apps = earlier_apps(steps)
    inputs = [screen_inputs(processor, s, apps=apps[(s.episode_id, s.step)]) for s in steps]
    precision = precision_of(recipe)
    if calib is None and recipe.changes_weights:
        calib = default_calibration(tokenizer, calib_episodes, processor=processor)
    qmodel = recipe_model(model.eval(), recipe, precision, calib)
    if progress:
        print(f"export vision-language {precision.kind}: three graphs and the gate on {len(steps)} screenshot steps")
    return export_vlm(out, qmodel, processor, inputs, precision=precision, recipe=recipe, overwrite=overwrite,
                      source={"model": name or str(source), "fingerprint": model_fingerprint(model)},
                      stages={"load": time.perf_counter() - t0})


def files_of(folder: str | os.PathLike) -> list[str]:
    """The graph files of a vision-language export folder (for listings)."""
    return [f for f in (VISION_FILE, EMBEDDING_FILE, TEXT_FILE) if (Path(folder) / f).is_file()]
