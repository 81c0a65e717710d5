"""The KV-cache knob's config: the per-request cache policy and the cross-request prefix cache.

    {"policy": "sliding", "window": 256, "sinks": 4, "prefix_capacity_mb": 64, "eviction": "lru"}

is the recipe's `cache` section; every key is a field of `CacheConfig`. Impossible combinations
(a prefix cache with `none`, which keeps no KV to reuse, or with `sliding`, which drops the prefix
it would reuse) are rejected here, with the fix in the message.
"""
from __future__ import annotations

from dataclasses import dataclass

POLICIES = ("none", "full", "sliding", "int8")
EVICTIONS = ("lru", "lfu", "ttl")


@dataclass(frozen=True)
class CacheConfig:
    """One KV-cache setting.

    Attributes:
        policy: `none` (recompute the whole sequence every token), `full` (keep every token),
            `sliding` (keep `sinks` first tokens + the last `window - sinks`; StreamingLLM),
            `int8` (keys and values stored as int8 with one scale per token and head).
        window: tokens kept by `sliding` (sinks included).
        sinks: attention-sink tokens kept at the start by `sliding`.
        prefix_capacity_mb: capacity of the cross-request prefix cache in MiB (0: off).
        eviction: `lru`, `lfu` or `ttl` (entries unused for `ttl_s` seconds go first, then LRU).
        ttl_s: time to live for `ttl` eviction.
        warmup: preload the shared system prompt into the prefix cache before the first request.
    """

    policy: str = "full"
    window: int = 256
    sinks: int = 4
    prefix_capacity_mb: float = 0.0
    eviction: str = "lru"
    ttl_s: float = 60.0
    warmup: bool = True

    def __post_init__(self):
        if self.policy not in POLICIES:
            raise ValueError(f"cache.policy must be one of {', '.join(POLICIES)}, got {self.policy!r}")
        if self.eviction not in EVICTIONS:
            raise ValueError(f"cache.eviction must be one of {', '.join(EVICTIONS)}, got {self.eviction!r}")
        if not (isinstance(self.window, int) and self.window >= 2):
            raise ValueError(f"cache.window must be an integer >= 2 tokens, got {self.window!r}")
        if not (isinstance(self.sinks, int) and 0 <= self.sinks < self.window):
            raise ValueError(f"cache.sinks must be an integer in 0..window-1 ({self.window - 1}), got {self.sinks!r}")
        if not (isinstance(self.prefix_capacity_mb, (int, float)) and 0 <= self.prefix_capacity_mb <= 65536):
            raise ValueError(f"cache.prefix_capacity_mb must be in 0..65536 (0: off), got {self.prefix_capacity_mb!r}")
        if not (isinstance(self.ttl_s, (int, float)) and self.ttl_s > 0):
            raise ValueError(f"cache.ttl_s must be > 0 seconds, got {self.ttl_s!r}")
        if self.prefix_capacity_mb and self.policy in ("none", "sliding"):
            why = "keeps no KV to reuse" if self.policy == "none" else "drops the prefix it would reuse"
            raise ValueError(f"cache.prefix_capacity_mb > 0 needs policy full or int8: policy "
                             f"{self.policy!r} {why} (set prefix_capacity_mb to 0 or change the policy)")

    @property
    def prefix_capacity_bytes(self) -> int:
        return int(self.prefix_capacity_mb * 2**20)

    @property
    def label(self) -> str:
        """Short name for plots, e.g. `sliding 256/4 + prefix 64MB`."""
        name = {"sliding": f"sliding {self.window}/{self.sinks}"}.get(self.policy, self.policy)
        return name + (f" + prefix {self.prefix_capacity_mb:g}MB {self.eviction}" if self.prefix_capacity_mb else "")
