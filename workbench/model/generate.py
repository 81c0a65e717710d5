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
    vision_s: float = 0.0  # a vision-language step: encoding its screenshot (before prefill)
    image_tokens: int = 0


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
        logits = decode_one(model, torch.tensor([[token]], device=input_ids.device), cache)
        gen.decode_s.append(time.perf_counter() - t0)
        token = int(logits.argmax(-1))
    gen.kv_bytes = cache_bytes(cache)
    return gen


def model_device(model) -> torch.device:
    """Where a model's parameters live."""
    return next(model.parameters()).device


@torch.no_grad()
def encode_images(model, inputs: dict) -> dict:
    """A Glm4v step's screenshot through the vision tower: {"image": encoder outputs} for the forward."""
    return {"image": model.model.get_image_features(inputs["pixel_values"], inputs["image_grid_thw"],
                                                    return_dict=True)}


@torch.no_grad()
def prefill_vl(model, inputs: dict, encoded: dict, cache=None):
    """Prefill of a Glm4v prompt whose screenshot is already encoded (`encode_images`).

    Returns:
        (logits of the last position (1, V), cache). The model keeps the prompt's M-RoPE offset
        (`rope_deltas`), so `decode_one` numbers the next tokens as transformers' generate does.
    """
    cache = DynamicCache() if cache is None else cache
    keep = {k: inputs[k] for k in ("input_ids", "attention_mask", "image_grid_thw", "mm_token_type_ids")}
    out = model(**keep, mm_encoder_outputs=encoded, cache=cache, use_cache=True, logits_to_keep=1)
    return out.logits[:, -1, :], cache


@torch.no_grad()
def decode_one_vl(model, token: torch.Tensor, cache):
    """`decode_one` for Glm4v (its forward names the cache `cache`)."""
    return model(input_ids=token, cache=cache, use_cache=True).logits[:, -1, :]


def greedy_vl(model, inputs: dict, eos_id: int, max_new_tokens: int = MAX_NEW_TOKENS) -> Generation:
    """Greedy decoding of one Glm4v step (batch 1): vision encoding, prefill and decode timed apart.

    Args:
        model: a Glm4vForConditionalGeneration with its vision tower.
        inputs: the processor's tensors (input_ids, attention_mask, pixel_values, image_grid_thw,
            mm_token_type_ids), on the model's device.
        eos_id: end-of-sequence token id.
        max_new_tokens: cap on generated tokens.
    Returns:
        Generation with the new tokens (EOS excluded), vision / prefill / decode times and KV bytes.
    """
    sync = torch.cuda.synchronize if inputs["input_ids"].is_cuda else (lambda: None)
    t0 = time.perf_counter()
    encoded = encode_images(model, inputs)
    sync()
    vision_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    logits, cache = prefill_vl(model, inputs, encoded)
    token = int(logits.argmax(-1))
    gen = Generation([], inputs["input_ids"].shape[1], time.perf_counter() - t0, vision_s=vision_s,
                     image_tokens=int(inputs["mm_token_type_ids"].sum()))
    while token != eos_id and len(gen.tokens) < max_new_tokens:
        gen.tokens.append(token)
        t0 = time.perf_counter()
        logits = decode_one_vl(model, torch.tensor([[token]], device=inputs["input_ids"].device), cache)
        token = int(logits.argmax(-1))
        gen.decode_s.append(time.perf_counter() - t0)
    gen.kv_bytes = cache_bytes(cache)
    return gen
