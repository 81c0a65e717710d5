"""Task accuracy: greedy actions on an episode file, scored by the AndroidControl step rules."""
from __future__ import annotations

import torch
from tqdm.auto import tqdm

from ..model.generate import MAX_NEW_TOKENS, greedy, model_device
from ..task import aggregate, render_prompt, score_step
from .records import AccuracyRecord, Prediction



def encode_prompt(tokenizer, step) -> torch.Tensor:
    """(1, T) token ids of a step's prompt (no special tokens added beyond the prompt's own)."""
    return torch.tensor([tokenizer.encode(render_prompt(step), add_special_tokens=False)])


def typical_prompt(tokenizer, steps) -> torch.Tensor:
    """(1, T) prompt of the step of median prompt length (what latency is measured at)."""
    lengths = sorted((encode_prompt(tokenizer, s).shape[1], i) for i, s in enumerate(steps))
    return encode_prompt(tokenizer, steps[lengths[len(lengths) // 2][1]])


@torch.no_grad()
def predict(model, tokenizer, step, cache=None, generate_fn=None):
    """Greedy action text for one step.

    Args:
        model, tokenizer: the model under test.
        step: a task Step.
        cache: an empty cache object (default DynamicCache).
        generate_fn: optional `fn(input_ids (1, T)) -> Generation` replacing plain greedy decoding
            (e.g. a cache policy with a prefix store).
    Returns:
        (output text, Generation with timings and KV bytes).
    """
    ids = encode_prompt(tokenizer, step)
    if model is not None:  # on the model's device (None: another engine decodes)
        ids = ids.to(model_device(model))
    if generate_fn is not None:
        gen = generate_fn(ids)
    else:
        gen = greedy(model, ids, tokenizer.eos_token_id, MAX_NEW_TOKENS, cache=cache)
    return tokenizer.decode(gen.tokens, skip_special_tokens=True), gen


@torch.no_grad()
def run_task(model, tokenizer, steps, *, progress: bool = True, cache_factory=None, generate_fn=None,
             generations: list | None = None, on_step=None):
    """Greedy-decode every step and score it.

    Args:
        model: causal LM in eval mode.
        tokenizer: its tokenizer (eos_token_id ends an action).
        steps: list of task Steps.
        progress: show a tqdm bar.
        cache_factory: zero-argument callable giving an empty cache per step (default DynamicCache).
        generate_fn: optional `fn(input_ids) -> Generation` used instead (see `predict`).
        generations: a list to which each step's Generation (timings, KV bytes) is appended.
        on_step: zero-argument callable run after each step (progress; it may raise to stop the run).
    Returns:
        (AccuracyRecord, list of Prediction, peak KV bytes, KV bytes per token at that peak).
    """
    preds, peak_kv, per_token = [], 0, 0.0
    for step in tqdm(steps, desc="evaluate", disable=not progress, mininterval=1):
        output, gen = predict(model, tokenizer, step, cache_factory() if cache_factory else None, generate_fn)
        if generations is not None:
            generations.append(gen)
        if gen.kv_bytes > peak_kv:
            peak_kv = gen.kv_bytes
            per_token = gen.kv_bytes / (gen.prompt_tokens + len(gen.tokens))
        preds.append(prediction(step, output))
        if on_step is not None:
            on_step()
    return accuracy_record(preds), preds, peak_kv, per_token


def prediction(step, output: str) -> Prediction:
    """One step's output scored by the AndroidControl step rules."""
    s = score_step(output, step.target, step.target_box)
    return Prediction(step.episode_id, step.step, output, step.target, s.parsed, s.type_ok, s.step_ok, s.exact)


def accuracy_record(preds) -> AccuracyRecord:
    """The task metrics of scored predictions."""
    scores = aggregate(preds)
    return AccuracyRecord(scores.n, scores.step, scores.type, scores.exact, scores.parse_failure)


def run_task_ort(decoder, tokenizer, steps, *, progress: bool = True, max_new_tokens: int = MAX_NEW_TOKENS,
                 on_step=None):
    """Greedy actions on ONNX Runtime for every step, scored by the task rules.

    Args:
        decoder: a workbench.ort.OrtDecoder.
        tokenizer: the model's tokenizer (eos_token_id ends an action).
        steps: task Steps.
        progress: show a tqdm bar.
        max_new_tokens: cap per action.
        on_step: zero-argument callable run after each step (it may raise to stop the run).
    Returns:
        (AccuracyRecord, list of Prediction, list of generated token lists).
    """
    eos, gens = tokenizer.eos_token_id, []
    rec, preds, _, _ = run_task(None, tokenizer, steps, progress=progress, generations=gens,
                                generate_fn=lambda ids: decoder.greedy(ids.numpy(), eos, max_new_tokens), on_step=on_step)
    return rec, preds, [g.tokens for g in gens]
