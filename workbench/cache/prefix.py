"""A prefix cache across requests: KV of earlier prompts, reused for the longest shared token prefix.

Every agent step starts with the same system prompt, and the steps of one episode share the goal
and the history so far. The store keeps the KV of recent prompts (per layer, (1, kv, T, d)), finds
for a new prompt the entry with the longest common token prefix, and hands back that many
positions, so prefill only runs the new tokens. Capacity is in bytes; when full, entries are
evicted by LRU (least recently used), LFU (fewest hits, then LRU) or TTL (unused for `ttl_s`, then
LRU). The store counts lookups, hits, prefill tokens saved and bytes held.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch


@dataclass(eq=False)
class _Entry:
    ids: torch.Tensor  # (T,) prompt tokens
    kv: list  # per layer (keys, values), each (1, kv_heads, T, head_dim)
    nbytes: int
    last_used: float
    hits: int = 0


@dataclass
class PrefixStats:
    """What the store did: lookups, hits (a prefix of >= `min_match` tokens reused), tokens saved."""

    lookups: int = 0
    hits: int = 0
    tokens_requested: int = 0
    tokens_saved: int = 0
    evictions: int = 0
    bytes_held: int = 0
    peak_bytes: int = 0
    entries: int = 0
    hit_rate_history: list = field(default_factory=list)  # hit rate after each lookup

    @property
    def hit_rate(self) -> float:
        return self.hits / self.lookups if self.lookups else 0.0

    @property
    def saved_share(self) -> float:
        """Share of prompt tokens whose prefill was skipped."""
        return self.tokens_saved / self.tokens_requested if self.tokens_requested else 0.0


class PrefixStore:
    """KV of earlier prompts, matched by longest common token prefix.

    Args:
        capacity_bytes: most bytes of KV held; an entry larger than this is not kept.
        eviction: "lru", "lfu" or "ttl".
        ttl_s: time to live of an unused entry for "ttl".
        min_match: shortest shared prefix that counts as a hit (shorter ones are recomputed).
        clock: time source (seconds), replaceable in tests.
    """

    def __init__(self, capacity_bytes: int, eviction: str = "lru", ttl_s: float = 60.0,
                 min_match: int = 16, clock=time.monotonic):
        if eviction not in ("lru", "lfu", "ttl"):
            raise ValueError(f"eviction must be lru, lfu or ttl, got {eviction!r}")
        self.capacity_bytes, self.eviction, self.ttl_s = capacity_bytes, eviction, ttl_s
        self.min_match, self.clock = min_match, clock
        self.entries: list[_Entry] = []
        self.stats = PrefixStats()

    @classmethod
    def from_config(cls, config) -> "PrefixStore | None":
        """The store a CacheConfig asks for (None when prefix_capacity_mb is 0)."""
        if not config.prefix_capacity_mb:
            return None
        return cls(config.prefix_capacity_bytes, config.eviction, config.ttl_s)

    def lookup(self, ids: torch.Tensor) -> tuple[int, list | None]:
        """The longest stored prefix of `ids` (T,).

        Returns:
            (n matched tokens, per-layer (keys, values) sliced to n) or (0, None) below `min_match`.
        """
        self._expire()
        self.stats.lookups += 1
        self.stats.tokens_requested += len(ids)
        best, best_n = None, 0
        for e in self.entries:
            n = min(len(e.ids), len(ids))
            diff = (e.ids[:n] != ids[:n]).nonzero()
            n = int(diff[0]) if len(diff) else n
            if n > best_n:
                best, best_n = e, n
        if best is None or best_n < self.min_match:
            self.stats.hit_rate_history.append(self.stats.hit_rate)
            return 0, None
        best.hits += 1
        best.last_used = self.clock()
        self.stats.hits += 1
        self.stats.tokens_saved += best_n
        self.stats.hit_rate_history.append(self.stats.hit_rate)
        return best_n, [(k[:, :, :best_n], v[:, :, :best_n]) for k, v in best.kv]

    def insert(self, ids: torch.Tensor, kv: list) -> bool:
        """Keep the KV of prompt `ids` (T,); per-layer (keys, values) of shape (1, kv, >= T, d).

        Returns:
            whether it was kept (False when one entry alone exceeds the capacity or it is known).
        """
        kv = [(k[:, :, :len(ids)], v[:, :, :len(ids)]) for k, v in kv]
        nbytes = sum(t.numel() * t.element_size() for pair in kv for t in pair)
        if nbytes > self.capacity_bytes:
            return False
        for e in self.entries:
            if len(e.ids) >= len(ids) and torch.equal(e.ids[:len(ids)], ids):
                e.last_used = self.clock()
                return False  # already covered by a longer (or equal) entry
        # an entry that is a prefix of the new one is superseded by it
        self.entries = [e for e in self.entries if not (len(e.ids) < len(ids) and torch.equal(ids[:len(e.ids)], e.ids))]
        new = _Entry(ids.clone(), kv, nbytes, self.clock())
        self.entries.append(new)
        while self.bytes_held > self.capacity_bytes:  # the new entry itself is never the victim
            self.entries.remove(min((e for e in self.entries if e is not new), key=self._rank))
            self.stats.evictions += 1
        self._update_bytes()
        return True

    @property
    def bytes_held(self) -> int:
        return sum(e.nbytes for e in self.entries)

    def _rank(self, e: _Entry):
        """Eviction order: the smallest rank goes first."""
        if self.eviction == "lfu":
            return (e.hits, e.last_used)
        return (e.last_used,)

    def _expire(self) -> None:
        if self.eviction != "ttl":
            return
        now = self.clock()
        kept = [e for e in self.entries if now - e.last_used <= self.ttl_s]
        self.stats.evictions += len(self.entries) - len(kept)
        self.entries = kept
        self._update_bytes()

    def _update_bytes(self) -> None:
        self.stats.bytes_held = self.bytes_held
        self.stats.peak_bytes = max(self.stats.peak_bytes, self.stats.bytes_held)
        self.stats.entries = len(self.entries)
