"""The `workbench evaluate` report: a model (and optionally a recipe) measured on an episode file.

It goes through the same `PointMeter` as the dashboard and sweeps, so the CLI, the notebooks and
the plot report the same figures for the same recipe; `--target` adds latency and memory at a
deployment shape (`workbench.measure.target`).
"""
from __future__ import annotations

from pathlib import Path

from ..model import load_model
from ..model.vision import is_vision_model, load_processor
from ..task import DEFAULT_CALIB, DEFAULT_EPISODES, file_hash, load_steps
from .memory import peak_rss_bytes
from .point import PointMeter
from .provenance import model_fingerprint, provenance
from .records import AccuracyRecord, LatencyRecord, MemoryRecord, Report



def evaluate(source=None, episodes=None, *, model=None, tokenizer=None, limit: int | None = None,
             recipe=None, calib_episodes=None, progress: bool = True, latency_repeats: int = 5,
             engine: str = "pytorch", target: str | None = None, store=None,
             context_tokens: int | None = None, processor=None, dtype="float32", device="cpu",
             vision: bool = True) -> Report:
    """Measure a model on the phone-agent task.

    Args:
        source: model folder or hub id (None: open-autoglm-tiny); ignored when `model` is given.
        episodes: JSONL episode file (None: data/episodes/eval.jsonl).
        model, tokenizer: an already loaded model (e.g. an optimized one) and its tokenizer.
        limit: evaluate only the first `limit` steps.
        recipe: a Recipe (or recipe JSON / path) applied to a copy of the model; the report then
            measures the optimized model and adds `kl` and `ppl` against the unoptimized one.
        calib_episodes: calibration episodes for methods that need them (default calib.jsonl).
        progress: show progress bars.
        latency_repeats: timed repeats for latency (after 2 warm-ups).
        engine: "pytorch" (eager, the parity reference) or "ort" (the fused ONNX graph the export
            writes, on ONNX Runtime; recipes it cannot run fall back to PyTorch and say so).
        target: a deployment shape ("glm-edge-1.5b", "autoglm-phone-9b"; None or "tiny": none) whose
            latency and memory the report's `target` section gives.
        store: a ResultsStore caching target measurements (None: measure every time).
        context_tokens: the context memory at the target is computed for (default 25,480).
        processor: the processor of an already loaded vision-language `model` (a loaded folder's is read).
        dtype, device: how `source` is loaded ("float32", "bfloat16", "float16"; "cpu", "cuda").
        vision: a Glm4v `source`: with its vision tower on screenshots (True) or its language model alone.
    Returns:
        Report with accuracy (and its 90% Wilson interval), latency (batch 1, a prompt of median
        length), memory, provenance and, as asked, cache, serving and target sections.
    """
    from ..recipe import Recipe

    episodes = Path(episodes) if episodes is not None else DEFAULT_EPISODES
    steps = load_steps(episodes, limit=limit)
    if recipe is not None:  # a bad recipe is reported before the model is loaded
        recipe = recipe if isinstance(recipe, Recipe) else Recipe.from_json(recipe)
    if target not in (None, "tiny"):
        from .target import target_shape

        target_shape(target)  # an unknown target is named before anything runs
    if model is None:
        model, tokenizer = load_model(source, dtype=dtype, device=device, vision=vision)
        name = str(source) if source is not None else "open-autoglm-tiny"
    elif tokenizer is None:
        raise ValueError("evaluate(model=...) needs tokenizer= too")
    else:
        name = model_name(model)
    if processor is None and is_vision_model(model):
        processor = load_processor(source if source is not None else model.config._name_or_path)
    calib = None
    if recipe is not None and recipe.changes_weights:
        from ..calib import default_calibration

        calib = default_calibration(tokenizer, calib_episodes, processor=processor)
    meter = PointMeter(model, tokenizer, steps, calib, latency_repeats=latency_repeats, progress=progress,
                       engine=engine, processor=processor)
    point = meter(recipe or Recipe(), fidelity=recipe is not None and recipe.changes_weights)
    accuracy = AccuracyRecord(point.n, point.step, point.type, point.exact, point.parse_failure, point.kl, point.ppl)
    latency = LatencyRecord(point.prefill_ms, point.decode_ms, point.prompt_tokens, point.engine, point.threads,
                            point.vision_ms)
    vision = meter.screens is not None
    memory = MemoryRecord(point.weight_bytes, point.kv_bytes, point.kv_bytes_per_token, peak_rss_bytes(),
                          point.vision_weight_bytes if vision else None, point.image_tokens if vision else None)
    prov = dict(provenance(model, name, str(episodes), file_hash(episodes)), prompt_mode=point.prompt_mode,
                device=str(next(model.parameters()).device), dtype=str(next(model.parameters()).dtype).removeprefix("torch."))
    if recipe is not None:
        prov = dict(prov, recipe=recipe.to_json(), base_model_fingerprint=model_fingerprint(model))
    target_json = None
    if target not in (None, "tiny"):
        from .target import measure_target

        kwargs = {} if context_tokens is None else {"context_tokens": context_tokens}
        target_json = measure_target(recipe or Recipe(), target, store=store, progress=progress, **kwargs).to_json()
    return Report(accuracy, latency, memory, prov, point.predictions, point.cache, point.serving, target_json)


def model_name(model) -> str:
    """How a loaded model is named in reports: "open-autoglm-tiny" or the folder it came from."""
    path = getattr(getattr(model, "config", None), "_name_or_path", "") or "in-memory model"
    return "open-autoglm-tiny" if Path(path).name == "open-autoglm-tiny" else path


__all__ = ["DEFAULT_CALIB", "DEFAULT_EPISODES", "evaluate", "model_name"]
