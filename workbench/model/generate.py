"""Our generation loop: an explicit KV cache, prefill and decode-one-token as separate, timed phases.

Like gpt-fast, the cache is an object the caller holds (a transformers ``DynamicCache`` here;
the cache knob swaps in other policies), so each phase can be timed and the cache measured.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch
from transformers import DynamicCache

MAX_NEW_TOKENS = 48  # tokens an action may take: the longest target action is ~40


class RecomputeCache:
    """The `none` policy: keep no KV; every new token recomputes the whole sequence (the reference
    for why caching matters). Holds only the token ids so far."""

    recompute = True

    def __init__(self):
        self.ids = None  # (B, T)
        self.layers = ()


@torch.no_grad()
def prefill(model, input_ids: torch.Tensor, cache=None):
    """Run the prompt through the model, filling the cache.

    Args:
        model: a causal LM taking (input_ids, past_key_values, use_cache).
        input_ids: (B, T) prompt tokens.
        cache: cache to extend; a new DynamicCache when None.
    Returns:
        (logits of the last position (B, V), cache).
    """
    cache = DynamicCache() if cache is None else cache
    if getattr(cache, "recompute", False):
        cache.ids = input_ids
        return model(input_ids=input_ids, use_cache=False, logits_to_keep=1).logits[:, -1, :], cache
    out = model(input_ids=input_ids, past_key_values=cache, use_cache=True, logits_to_keep=1)
    return out.logits[:, -1, :], out.past_key_values


@torch.no_grad()
def decode_one(model, token: torch.Tensor, cache):
    """Feed one token per sequence (B, 1) and return next-token logits (B, V); the cache grows by one."""
    if getattr(cache, "recompute", False):
        cache.ids = torch.cat([cache.ids, token], dim=1)
        return model(input_ids=cache.ids, use_cache=False, logits_to_keep=1).logits[:, -1, :]
    out = model(input_ids=token, past_key_values=cache, use_cache=True)
    return out.logits[:, -1, :]


def cache_bytes(cache) -> int:
    """Bytes held by a cache's key and value tensors (a layer with `tensors()` lists its own)."""
    total = 0
    for layer in getattr(cache, "layers", ()):
        held = layer.tensors() if hasattr(layer, "tensors") else (getattr(layer, "keys", None),
                                                                   getattr(layer, "values", None))
        for t in held:
            if isinstance(t, torch.Tensor):
                total += t.numel() * t.element_size()
    return total


@dataclass
class Generation:
    """One greedy generation: new tokens and per-phase wall times (seconds)."""

    tokens: list[int]
    prompt_tokens: int
    prefill_s: float
    decode_s: list[float] = field(default_factory=list)
    kv_bytes: int = 0
    reused_tokens: int = 0  # prompt tokens whose KV came from a prefix cache


def greedy(model, input_ids: torch.Tensor, eos_id: int, max_new_tokens: int = 48,
           cache=None, after_prefill=None) -> Generation:
    """Greedy decoding of one prompt (batch 1), stopping at EOS.

    Args:
        model: causal LM.
        input_ids: (1, T) prompt.
        eos_id: end-of-sequence token id.
        max_new_tokens: cap on generated tokens.
        cache: a cache object (policy of the cache knob), empty or holding a reused prefix of
            the prompt (then `input_ids` are the remaining tokens); DynamicCache when None.
        after_prefill: optional callback(cache), run untimed right after prefill.
    Returns:
        Generation with the new tokens (EOS excluded), timings and the peak cache bytes.
    """
    t0 = time.perf_counter()
    logits, cache = prefill(model, input_ids, cache)
    gen = Generation([], input_ids.shape[1], time.perf_counter() - t0)
    if after_prefill is not None:
        after_prefill(cache)
    token = int(logits.argmax(-1))
    while token != eos_id and len(gen.tokens) < max_new_tokens:
        gen.tokens.append(token)
        t0 = time.perf_counter()
        logits = decode_one(model, torch.tensor([[token]]), cache)
        gen.decode_s.append(time.perf_counter() - t0)
        token = int(logits.argmax(-1))
    gen.kv_bytes = cache_bytes(cache)
    return gen
