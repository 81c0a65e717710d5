"""KV-cache knob: per-request policies (none, full, sliding + sinks, int8) and a prefix cache across requests.

    from workbench.cache import CacheConfig, PrefixStore, generate
    cfg = CacheConfig(policy="int8", prefix_capacity_mb=64)
    store = PrefixStore.from_config(cfg)
    gen = generate(model, ids, eos_id, cfg, store)    # Generation: tokens, prefill/decode times, KV bytes
"""
from .config import EVICTIONS, POLICIES, CacheConfig
from .layers import Int8Layer, SinkWindowLayer, dequantize_int8, quantize_int8
from .policy import generate, layer_kv, new_cache, warm_up
from .prefix import PrefixStats, PrefixStore

__all__ = ["CacheConfig", "EVICTIONS", "Int8Layer", "POLICIES", "PrefixStats", "PrefixStore",
           "SinkWindowLayer", "dequantize_int8", "generate", "layer_kv", "new_cache", "quantize_int8",
           "warm_up"]
