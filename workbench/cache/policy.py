"""Cache policies -> cache objects, and greedy generation through a policy and a prefix store.

    cache = new_cache(CacheConfig(policy="int8"), num_layers=4)
    gen = generate(model, ids, eos_id, CacheConfig(policy="full", prefix_capacity_mb=64), store)

`new_cache` looks the policy up in `POLICIES` (name -> factory); `generate` is our explicit
prefill / decode-one loop (workbench.model.generate.greedy) with the longest stored prefix loaded
into the cache first, so prefill runs only the new tokens, and the prompt's KV stored afterwards.
"""
from __future__ import annotations

import time

import torch
from transformers import DynamicCache
from transformers.cache_utils import Cache

from ..model.generate import Generation, RecomputeCache, cache_bytes, greedy
from .config import CacheConfig
from .layers import Int8Layer, SinkWindowLayer
from .prefix import PrefixStore

POLICIES = {
    "none": lambda cfg, n: RecomputeCache(),
    "full": lambda cfg, n: DynamicCache(),
    "sliding": lambda cfg, n: Cache(layers=[SinkWindowLayer(cfg.window, cfg.sinks) for _ in range(n)]),
    "int8": lambda cfg, n: Cache(layers=[Int8Layer() for _ in range(n)]),
}


def new_cache(config: CacheConfig, num_layers: int):
    """An empty cache object of the config's policy for a model of `num_layers` layers."""
    return POLICIES[config.policy](config, num_layers)


def layer_kv(cache) -> list:
    """Per-layer (keys, values) float tensors (1, kv, T, d) held by a full or int8 cache."""
    out = []
    for layer in cache.layers:
        out.append(layer.dense() if hasattr(layer, "dense") else (layer.keys, layer.values))
    return out


@torch.no_grad()
def generate(model, input_ids: torch.Tensor, eos_id: int, config: CacheConfig,
             store: PrefixStore | None = None, max_new_tokens: int = 48) -> Generation:
    """Greedy generation of one prompt (batch 1) under a cache policy, reusing a stored prefix.

    Args:
        model: causal LM.
        input_ids: (1, T) prompt.
        eos_id: end-of-sequence id.
        config: the CacheConfig (policy, window, sinks).
        store: prefix store (None: no reuse across requests).
        max_new_tokens: cap on new tokens.
    Returns:
        Generation; `prefill_s` covers loading the stored prefix and prefilling the rest;
        `reused_tokens` says how many prompt tokens came from the store.
    """
    cache = new_cache(config, model.config.num_hidden_layers)
    reused = 0
    t0 = time.perf_counter()
    if store is not None:
        reused, kv = store.lookup(input_ids[0])
        reused = min(reused, input_ids.shape[1] - 1)  # the last prompt token must run: it gives the logits
        for i, (k, v) in enumerate(kv or ()):
            cache.update(k[:, :, :reused], v[:, :, :reused], i)
    setup_s = time.perf_counter() - t0

    def keep_prompt(c):  # called right after prefill, before decoding grows the cache
        if store is not None:
            store.insert(input_ids[0], layer_kv(c))

    gen = greedy(model, input_ids[:, reused:], eos_id, max_new_tokens, cache=cache, after_prefill=keep_prompt)
    gen.prefill_s += setup_s
    gen.prompt_tokens = input_ids.shape[1]
    gen.reused_tokens = reused
    gen.kv_bytes = max(gen.kv_bytes, cache_bytes(cache))
    return gen


def warm_up(model, tokenizer, store: PrefixStore | None, prefix_text: str) -> None:
    """Preload the KV of a shared prefix (the system prompt) into the store."""
    if store is None:
        return
    ids = torch.tensor(tokenizer.encode(prefix_text, add_special_tokens=False))
    cache = DynamicCache()
    with torch.no_grad():
        model(input_ids=ids[None], past_key_values=cache, use_cache=True)
    store.insert(ids, layer_kv(cache))
