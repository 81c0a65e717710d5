"""`export_onnx`: recipe -> verified deployable folder (plain or fused graph, float32 / int8 / int4).

    from workbench.export import export_onnx
    result = export_onnx("out/int4", {"quant": {"method": "rtn", "bits": 4, "group_size": 32}})
    result.parity.summary()

Steps: load the model; apply the recipe's prune and quant sections with the workbench's own knobs
(`precision.recipe_model`: the very model a measured point runs; structured pruning gives smaller
dense layers, so the graph has the pruned shapes); write the graph from it, its quantized codes
packed into MatMulNBits as they are (fused: written from the weights; plain: dynamo export of the
dequantized model, then each weight MatMul swapped for MatMulNBits); write tokenizer,
genai_config.json; run the parity gate against the same quantized model in PyTorch; measure latency
on ONNX Runtime and PyTorch; write the manifest with file hashes; move the folder into place. If the
gate fails, `ExportGateError` carries the report and nothing is left at DIR.
"""
from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

from ..measure.evaluate import DEFAULT_EPISODES, model_name
from ..measure.latency import measure_latency
from ..measure.provenance import model_fingerprint
from ..measure.records import LatencyRecord
from ..task import load_steps
from . import folder as fs
from .folder import ExportError
from .manifest import build_manifest
from .parity import ParityReport, parity_gate
from ..measure.accuracy import typical_prompt
from ..measure.latency import measure_ort_latency
from ..ort import DecoderShape, OrtDecoder
from .folder import check_model_file
from .precision import Precision, dequantized, pack_plain, precision_of, recipe_model
from .wrapper import export_plain

GRAPHS = ("plain", "fused")
EXPORTABLE = ("GlmForCausalLM", "Glm4ForCausalLM")
DEFAULT_NAME = "open-autoglm-tiny"


class ExportGateError(ExportError):
    """The parity gate failed: nothing was written at DIR; `.report` holds what was measured."""

    def __init__(self, report: ParityReport, out: Path):
        self.report = report
        super().__init__(f"parity gate failed, nothing written at {out}: " + "; ".join(report.failures))


@dataclass(frozen=True)
class ExportResult:
    """A finished export: where, what precision and graph, the gate's report, both runtimes' latency."""

    path: Path
    graph: str
    precision: Precision
    parity: ParityReport
    latency_onnxruntime: LatencyRecord
    latency_pytorch: LatencyRecord
    manifest: dict = field(compare=False, repr=False)

    @property
    def decode_speedup(self) -> float:
        """PyTorch eager decode ms/token over ONNX Runtime's (same recipe, same run)."""
        return self.latency_pytorch.decode_ms_per_token.median / self.latency_onnxruntime.decode_ms_per_token.median


def load_recipe(recipe):
    """A Recipe from what a user passes.

    Args:
        recipe: None (empty recipe), a Recipe, a dict, a JSON string or a path to a .json file.
    Returns:
        Recipe.
    Raises:
        RecipeError: naming the bad section or key and the allowed values.
    """
    from ..recipe import Recipe

    if recipe is None:
        return Recipe()
    return recipe if isinstance(recipe, Recipe) else Recipe.from_json(recipe)


def export_model(model, tokenizer, recipe, precision: Precision, calib_episodes=None, calib=None):
    """The model the graph is written from: the recipe's prune and quant sections applied (a copy).

    Args:
        model, tokenizer: the loaded baseline.
        recipe: Recipe.
        precision: its Precision.
        calib_episodes: calibration episodes (default data/episodes/calib.jsonl, its first CALIB_STEPS
            steps: what a measured point uses).
        calib: calibration batches to use instead (e.g. a PointMeter's, so the export is its point).
    Returns:
        The (pruned, quantized) model; `model` itself when the recipe changes no weights.
    """
    if recipe.changes_weights and calib is None:
        from ..calib import default_calibration

        calib = default_calibration(tokenizer, calib_episodes)
    return recipe_model(model, recipe, precision, calib)


def check_exportable(model) -> None:
    """Raises ExportError for architectures the export does not handle."""
    name = type(model).__name__
    if name not in EXPORTABLE:
        raise ExportError(f"{name} does not export: the ONNX path handles {', '.join(EXPORTABLE)} "
                          "(Glm4v's M-RoPE positions are not wired); export the text decoder of a GLM / GLM-4 checkpoint")


_GRAPHS: dict = {}  # (weights hash, graph) -> (DecoderShape, float graph bytes) exported in this process
_GRAPH_CACHE_BYTES = 256 << 20


def build_graph(model, path: Path, graph: str, precision: Precision) -> DecoderShape:
    """Write the graph of `model` to `path` ("plain": dynamo export, then MatMulNBits packed in;
    "fused": contrib operators, written from the weights), its quantized codes as they are.

    A small model's float graph is kept in memory for the rest of the process (keyed by a hash of
    all its weights), so exporting several precisions of one model runs the exporter once.
    """
    key = _weights_key(dequantized(model), f"{graph} {precision.to_json()}")
    if key in _GRAPHS:
        shape, data = _GRAPHS[key]
        path.write_bytes(data)
        return shape
    if graph == "plain":
        shape = export_plain(dequantized(model), path)
        if precision.quantized:
            pack_plain(str(path), model, precision.accuracy_level)
    else:
        from ..ort.graph import export_fused

        shape = export_fused(model, path, accuracy_level=precision.accuracy_level or 4)
    if key is not None and not Path(str(path) + ".data").exists():
        _GRAPHS[key] = (shape, path.read_bytes())
    return shape


def _weights_key(model, graph: str):
    """(sha256 of config and every tensor of a float model, graph) under _GRAPH_CACHE_BYTES, else None."""
    state = model.state_dict()
    if sum(t.numel() * t.element_size() for t in state.values()) > _GRAPH_CACHE_BYTES:
        return None
    h = hashlib.sha256(model.config.to_json_string(use_diff=False).encode())
    for name, t in state.items():
        h.update(f"{name}:{tuple(t.shape)}:{t.dtype}".encode())
        h.update(t.detach().reshape(-1).contiguous().view(torch.uint8).numpy().tobytes())
    return h.hexdigest(), graph


def default_graph(model) -> str:
    """The graph a point of `model` is measured on (engine `ort`), so the export writes what was measured:
    fused for the GLM text decoders the fused writer knows, else plain."""
    from ..ort.graph import FUSED_ARCHITECTURES

    return "fused" if type(model).__name__ in FUSED_ARCHITECTURES else "plain"


def export_onnx(out, recipe=None, *, model=None, tokenizer=None, source=None, graph: str | None = None,
                overwrite: bool = False, episodes=None, accuracy_steps: int = 32, parity_prompts: int = 4,
                decode_steps: int = 8, latency_repeats: int = 5, quantize_lm_head: bool = False,
                calib_episodes=None, calib=None, progress: bool = True) -> ExportResult:
    """Export a recipe to a verified ONNX folder (see module doc).

    Args:
        out: target folder DIR (must not exist or be empty, unless `overwrite`).
        recipe: Recipe, recipe dict / JSON string / path, or None (the baseline in float32).
        model, tokenizer: an already loaded baseline (default: load `source`).
        source: checkpoint folder or hub id (None: open-autoglm-tiny); ignored when `model` is given.
        graph: "plain" (dynamo export) or "fused" (GroupQueryAttention, RotaryEmbedding in attention,
            SkipSimplifiedLayerNormalization); None: the graph the workbench measures (`default_graph`).
        overwrite: replace a non-empty DIR.
        episodes: JSONL eval episodes for the gate (default data/episodes/eval.jsonl).
        accuracy_steps: eval steps whose greedy actions are compared and scored.
        parity_prompts: prompts for the logit comparison.
        decode_steps: decode steps through the KV cache per prompt.
        latency_repeats: timed repeats (after min(2, repeats) warm-ups) for each runtime's latency.
        quantize_lm_head: quantize the output projection too (see `precision`).
        calib_episodes: calibration episodes for methods that need them (their first CALIB_STEPS steps).
        calib: calibration batches to use instead (a PointMeter's `calib`, so the export is its point:
            the first steps of the calibration episodes, whose count the manifest records for verify).
        progress: show progress bars.
    Returns:
        ExportResult; for a vision-language model (Glm4v with its vision tower) a `vision.VisionExport` of
        three graphs (`workbench.export.vision`).
    Raises:
        ExportGateError: the gate failed (nothing at DIR). ExportError / RecipeError: bad input.
    """
    t_start = time.perf_counter()
    out = Path(out).expanduser().resolve()
    recipe = load_recipe(recipe)
    precision = precision_of(recipe, quantize_lm_head=quantize_lm_head)
    if graph is not None and graph not in GRAPHS:
        raise ExportError(f"graph must be one of {', '.join(GRAPHS)}, got {graph!r}")
    fs.check_target(out, overwrite)
    episodes = Path(episodes) if episodes is not None else DEFAULT_EPISODES
    steps = load_steps(episodes, limit=accuracy_steps)
    if model is None:
        from ..model import load_model

        model, tokenizer = load_model(source)
        name = str(source) if source is not None else DEFAULT_NAME
    elif tokenizer is None:
        raise ExportError("export_onnx(model=...) needs tokenizer= too")
    else:
        name = model_name(model)
    model.eval()
    from ..model.vision import is_vision_model

    if is_vision_model(model):
        from .vision import export_vision_onnx

        if graph not in (None, "plain"):
            raise ExportError("a vision-language model exports as three plain graphs (vision, embedding, text); "
                              "the fused graph is written for text decoders: use --graph plain")
        return export_vision_onnx(out, recipe, model=model, tokenizer=tokenizer, source=source, name=name,
                                  episodes=episodes, accuracy_steps=accuracy_steps, overwrite=overwrite,
                                  calib_episodes=calib_episodes, calib=calib, progress=progress)
    check_exportable(model)
    graph = graph or default_graph(model)
    base_fp = model_fingerprint(model)
    if calib is None and recipe.changes_weights:
        from ..calib import default_calibration

        calib = default_calibration(tokenizer, calib_episodes)
    qmodel = export_model(model, tokenizer, recipe, precision, calib=calib)
    stages = {"load": time.perf_counter() - t_start}
    bar = tqdm(total=4, desc=f"export {graph} {precision.kind}", disable=not progress,
               bar_format="{desc}: {n}/{total} {postfix}")
    bar.set_postfix_str("graph")
    with bar, fs.staging(out) as tmp:
        t0 = time.perf_counter()
        shape = build_graph(qmodel, tmp / fs.MODEL, graph, precision)
        stages["graph"] = time.perf_counter() - t0
        bar.update()
        check_model_file(tmp / fs.MODEL)
        fs.write_tokenizer(tokenizer, tmp)
        context = getattr(model.config.get_text_config(), "max_position_embeddings", 2048)
        fs.write_json(tmp / "genai_config.json", fs.genai_config(shape, tokenizer, context_length=context,
                                                                 share_buffer=graph == "fused"))
        bar.set_postfix_str("parity gate")
        t0 = time.perf_counter()
        reference = dequantized(qmodel)  # the same weights, without per-call unpacking
        decoder = OrtDecoder(tmp / fs.MODEL)
        report = parity_gate(reference, decoder, tokenizer, steps, precision.kind, prompts=parity_prompts,
                             decode_steps=decode_steps, progress=progress)
        stages["gate"] = time.perf_counter() - t0
        bar.update()
        if not report.passed:
            raise ExportGateError(report, out)
        bar.set_postfix_str("latency")
        t0 = time.perf_counter()
        prompt = typical_prompt(tokenizer, steps).numpy()
        engine = f"onnxruntime {graph} {precision.kind}"
        warmup = min(2, latency_repeats)
        lat_ort = measure_ort_latency(decoder, prompt, repeats=latency_repeats, warmup=warmup, engine=engine)
        lat_pt = measure_latency(qmodel, torch.from_numpy(prompt), repeats=latency_repeats, warmup=warmup,
                                 engine=f"pytorch-eager {precision.kind}")
        del decoder
        stages["latency"] = time.perf_counter() - t0
        bar.update()
        bar.set_postfix_str("manifest")
        manifest = build_manifest(
            recipe=recipe, precision=precision, graph=graph, shape=shape, episodes=episodes, report=report,
            source={"model": name, "fingerprint": base_fp, "exported_fingerprint": model_fingerprint(reference)},
            lat_ort=lat_ort, lat_pt=lat_pt, folder=tmp, stages=stages,
            gate=dict(accuracy_steps=accuracy_steps, parity_prompts=parity_prompts, decode_steps=decode_steps,
                      quantize_lm_head=quantize_lm_head, calib_episodes=str(calib_episodes) if calib_episodes else None,
                      calib_steps=len(calib) if calib is not None else None))
        fs.write_json(tmp / fs.MANIFEST, manifest)
        fs.move_into_place(tmp, out)
        bar.update()
        bar.set_postfix_str(f"written to {out}")
    return ExportResult(out, graph, precision, report, lat_ort, lat_pt, manifest)
