"""The baseline measurement: task accuracy, latency and memory of a model on an episode file."""
from __future__ import annotations

import dataclasses
from pathlib import Path

from ..cache import new_cache
from ..model import load_model
from ..task import file_hash, load_steps
from .accuracy import run_task, typical_prompt
from .cache import measure_cache
from .fidelity import kl_and_ppl, target_ids, target_logprobs
from .latency import measure_latency
from .memory import peak_rss_bytes, weight_bytes
from .provenance import model_fingerprint, provenance
from .records import MemoryRecord, Report

DEFAULT_EPISODES = Path(__file__).resolve().parents[2] / "data" / "episodes" / "eval.jsonl"
DEFAULT_CALIB = DEFAULT_EPISODES.with_name("calib.jsonl")
SERVICE_STEPS = 16  # steps whose batches are timed to fit the service-time model of a batching section
SIMULATED_REQUESTS = 2000  # requests in the replayed Poisson stream


def evaluate(source=None, episodes=None, *, model=None, tokenizer=None, limit: int | None = None,
             recipe=None, calib_episodes=None, progress: bool = True, latency_repeats: int = 5) -> Report:
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
    Returns:
        Report with accuracy, latency (PyTorch eager, batch 1, a prompt of median length),
        memory and provenance.
    """
    episodes = Path(episodes) if episodes is not None else DEFAULT_EPISODES
    steps = load_steps(episodes, limit=limit)
    if recipe is not None:  # a bad recipe is reported before the model is loaded
        from ..recipe import Recipe  # noqa: PLC0415

        recipe = recipe if isinstance(recipe, Recipe) else Recipe.from_json(recipe)
    if model is None:
        model, tokenizer = load_model(source)
        name = str(source) if source is not None else "open-autoglm-tiny"
    elif tokenizer is None:
        raise ValueError("evaluate(model=...) needs tokenizer= too")
    else:
        name = _name(model)
    model.eval()
    if recipe is not None:
        return _evaluate_recipe(model, tokenizer, steps, recipe, calib_episodes, name, episodes,
                                progress, latency_repeats)
    accuracy, preds, kv_peak, kv_per_token = run_task(model, tokenizer, steps, progress=progress)
    latency = measure_latency(model, typical_prompt(tokenizer, steps), repeats=latency_repeats)
    memory = MemoryRecord(weight_bytes(model), kv_peak, kv_per_token, peak_rss_bytes())
    prov = provenance(model, name, str(episodes), file_hash(episodes))
    return Report(accuracy, latency, memory, prov, preds)


def _name(model) -> str:
    path = getattr(getattr(model, "config", None), "_name_or_path", "") or "in-memory model"
    return "open-autoglm-tiny" if Path(path).name == "open-autoglm-tiny" else path


def _evaluate_recipe(base, tokenizer, steps, recipe, calib_episodes, name, episodes, progress,
                     latency_repeats) -> Report:
    from ..calib import calibration_batches
    from ..recipe import Recipe, apply_recipe

    recipe = recipe if isinstance(recipe, Recipe) else Recipe.from_json(recipe)
    model = base
    if recipe.changes_weights:
        calib = calibration_batches(tokenizer, load_steps(calib_episodes or DEFAULT_CALIB))
        model, _ = apply_recipe(base, recipe, calib=calib)
    report = evaluate(episodes=episodes, model=model, tokenizer=tokenizer, limit=len(steps),
                      progress=progress, latency_repeats=latency_repeats)
    accuracy, latency, memory = report.accuracy, report.latency, report.memory
    cache = serving = None
    if recipe.changes_weights:
        ref = target_logprobs(base, tokenizer, steps, progress=progress)
        got = target_logprobs(model, tokenizer, steps, progress=progress)
        kl, ppl = kl_and_ppl(ref, got, [target_ids(tokenizer, s) for s in steps])
        accuracy = dataclasses.replace(accuracy, kl=kl, ppl=ppl)
    if recipe.cache is not None:  # accuracy and KV under the policy, steps in episode order
        rec, _ = measure_cache(model, tokenizer, steps, recipe.cache, progress=progress)
        accuracy = dataclasses.replace(accuracy, step=rec.step, type=rec.type)
        memory = dataclasses.replace(memory, kv_bytes=rec.kv_bytes, kv_bytes_per_token=rec.kv_bytes_per_token)
        cache = rec.to_json()
        layers = model.config.num_hidden_layers
        latency = measure_latency(model, typical_prompt(tokenizer, steps), repeats=latency_repeats,
                                  cache_factory=lambda: new_cache(recipe.cache, layers))
        latency = dataclasses.replace(latency, engine=f"{latency.engine}, cache {recipe.cache.label}")
    if recipe.batching is not None:  # replay over service times measured on this model
        from ..serve import measure_service_times, simulate  # noqa: PLC0415

        service = measure_service_times(model, tokenizer, steps[:SERVICE_STEPS], recipe.batching.timed_batch_sizes,
                                        progress=progress)
        serving = simulate(recipe.batching, service, n_requests=SIMULATED_REQUESTS).to_json()
    prov = dict(report.provenance, model=name, recipe=recipe.to_json(),
                base_model_fingerprint=model_fingerprint(base))
    return dataclasses.replace(report, accuracy=accuracy, latency=latency, memory=memory, cache=cache,
                               serving=serving,
                               provenance=prov)


__all__ = ["DEFAULT_EPISODES", "evaluate"]
