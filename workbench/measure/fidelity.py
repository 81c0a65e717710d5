"""Fidelity to a reference model on the target actions: mean token KL divergence and perplexity.

Protocol (state it next to every figure): teacher-forced on prompt + target action + EOS;
token-level, over the target tokens only; KL(reference || candidate) in nats per token;
perplexity = exp(mean negative log-likelihood of the target tokens under the candidate).
"""
from __future__ import annotations

import math

import numpy as np

import torch
from tqdm.auto import tqdm

from ..task import render_prompt


@torch.no_grad()
def target_logprobs(model, tokenizer, steps, *, progress: bool = True, on_step=None) -> list[torch.Tensor]:
    """Log-probabilities the model assigns at each target position.

    Args:
        model: causal LM.
        tokenizer: its tokenizer.
        steps: task Steps.
        progress: show a tqdm bar.
        on_step: zero-argument callable run after each step (progress; it may raise to stop the run).
    Returns:
        One (n_target, V) float32 tensor of log-softmax per step; the target ids are in
        `target_ids(tokenizer, step)`.
    """
    out = []
    for step in tqdm(steps, desc="logprobs", disable=not progress, mininterval=1):
        prompt = tokenizer.encode(render_prompt(step), add_special_tokens=False)
        target = target_ids(tokenizer, step)
        ids = torch.tensor([prompt + target], device=next(model.parameters()).device)
        logits = model(input_ids=ids).logits[0, len(prompt) - 1:-1].float().cpu()  # (n_target, V)
        out.append(torch.log_softmax(logits, -1))
        if on_step is not None:
            on_step()
    return out


def task_and_logprobs_ort(decoder, tokenizer, steps, *, progress: bool = False, on_step=None):
    """Greedy actions and target log-probabilities on ONNX Runtime, one prefill per step for both.

    The teacher-forced target (the `target_logprobs` protocol) is run from the prompt's KV cache
    after prefill, before greedy decoding continues from the same cache.

    Args:
        decoder: a workbench.ort.OrtDecoder.
        tokenizer: the model's tokenizer.
        steps: task Steps.
        progress: show a tqdm bar.
        on_step: zero-argument callable run after each step (it may raise to stop the run).
    Returns:
        (AccuracyRecord, list of Prediction, list of Generation, list of (n_target, V) log-softmax tensors).
    """
    from .accuracy import run_task

    eos, gens, logprobs, pending = tokenizer.eos_token_id, [], [], list(steps)

    def score(last, past, n):
        target = target_ids(tokenizer, pending[len(logprobs)])
        rows = [last[None]]
        if len(target) > 1:
            forced, _ = decoder.run(np.array([target[:-1]], np.int64), past, n)  # (1, T - 1, V)
            rows.append(forced[0])
        logprobs.append(torch.log_softmax(torch.from_numpy(np.concatenate(rows)).float(), -1))

    rec, preds, _, _ = run_task(None, tokenizer, steps, progress=progress, generations=gens, on_step=on_step,
                                generate_fn=lambda ids: decoder.greedy(ids.numpy(), eos, on_prefill=score))
    return rec, preds, gens, logprobs


def target_ids(tokenizer, step) -> list[int]:
    """Token ids of the target action followed by EOS."""
    return tokenizer.encode(step.target, add_special_tokens=False) + [tokenizer.eos_token_id]


def kl_and_ppl(reference: list[torch.Tensor], candidate: list[torch.Tensor], targets: list[list[int]]):
    """Mean token KL(reference || candidate) and the candidate's target perplexity.

    Args:
        reference, candidate: per-step (n_target, V) log-probabilities.
        targets: per-step target token ids.
    Returns:
        (kl, ppl).
    """
    kl_sum, nll_sum, n = 0.0, 0.0, 0
    for ref, cand, tgt in zip(reference, candidate, targets, strict=True):
        kl_sum += float((ref.exp() * (ref - cand)).sum())
        nll_sum += float(-cand[torch.arange(len(tgt)), torch.tensor(tgt)].sum())
        n += len(tgt)
    return kl_sum / n, math.exp(nll_sum / n)
