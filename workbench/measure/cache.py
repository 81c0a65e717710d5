"""Measure a KV-cache setting on agent episodes: accuracy, KV bytes, prefill / decode / step time, prefix reuse.

Steps run in file order (episode after episode, as an agent sends them), one request at a time,
so a prefix cache sees the same stream a server would: the shared system prompt on every step and
each episode's goal and history growing.
"""
from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass

import torch

from ..cache import CacheConfig, PrefixStore, generate, warm_up
from ..task import shared_prefix
from .accuracy import MAX_NEW_TOKENS, encode_prompt, run_task
from .records import Spread


@dataclass(frozen=True)
class CacheRecord:
    """One cache setting measured on n steps (PyTorch eager, batch 1); times in ms.

    `prefill_ms` / `step_ms` are spreads over the steps (median, p90); `*_mean` are means over
    the steps, the figure the prefix cache is judged by. `kv_bytes` is the most any one request
    held; `prefix_bytes` the most the prefix store held.
    """

    label: str
    config: dict
    n: int
    step: float
    type: float
    kv_bytes: int
    kv_bytes_per_token: float
    prefill_ms: Spread
    prefill_ms_mean: float
    decode_ms_per_token: Spread
    step_ms: Spread
    step_ms_mean: float
    prefix_hit_rate: float
    prefill_tokens_saved: int
    prefill_tokens_saved_share: float
    prefix_bytes: int
    hit_rate_history: tuple = ()  # prefix hit rate after each step
    reused_history: tuple = ()  # share of each step's prompt whose KV came from the prefix cache
    engine: str = "pytorch-eager"

    def to_json(self) -> dict:
        """The report's `cache` section (docs/design.md section 5 names first, then the rest)."""
        d = asdict(self)
        d.pop("hit_rate_history")
        d.pop("reused_history")
        for k in ("prefill_ms", "decode_ms_per_token", "step_ms"):
            d[k] = d[k]["median"]
        return {"policy": self.config["policy"], "prefix_hit_rate": self.prefix_hit_rate,
                "prefill_ms_per_step": self.prefill_ms_mean, **d}


@torch.no_grad()
def measure_cache(model, tokenizer, steps, config: CacheConfig, *, progress: bool = True,
                  warmup_steps: int = 2, on_step=None) -> tuple[CacheRecord, list]:
    """Greedy-decode every step under a cache setting and measure it.

    Args:
        model, tokenizer: the model under test (eval mode).
        steps: task Steps in episode order.
        config: the CacheConfig.
        progress: show a progress bar.
        warmup_steps: steps run first, untimed and without touching the prefix store.
        on_step: zero-argument callable run after each measured step (may raise to stop the run).
    Returns:
        (CacheRecord, list of Prediction).
    """
    eos = tokenizer.eos_token_id
    for s in steps[:warmup_steps]:  # warm the kernels, not the store
        generate(model, encode_prompt(tokenizer, s), eos, CacheConfig(policy=config.policy,
                 window=config.window, sinks=config.sinks), None, MAX_NEW_TOKENS)
    store = PrefixStore.from_config(config)
    if config.warmup:
        warm_up(model, tokenizer, store, shared_prefix())
    gens: list = []
    acc, preds, kv_peak, per_token = run_task(
        model, tokenizer, steps, progress=progress, generations=gens, on_step=on_step,
        generate_fn=lambda ids: generate(model, ids, eos, config, store, MAX_NEW_TOKENS))
    prefill = [g.prefill_s * 1e3 for g in gens]
    decode = [statistics.median(g.decode_s) * 1e3 for g in gens if g.decode_s]
    step_ms = [(g.prefill_s + sum(g.decode_s)) * 1e3 for g in gens]
    stats = store.stats if store is not None else None
    rec = CacheRecord(
        label=config.label, config=asdict(config), n=acc.n, step=acc.step, type=acc.type,
        kv_bytes=kv_peak, kv_bytes_per_token=per_token,
        prefill_ms=Spread.of(prefill), prefill_ms_mean=statistics.fmean(prefill),
        decode_ms_per_token=Spread.of(decode), step_ms=Spread.of(step_ms), step_ms_mean=statistics.fmean(step_ms),
        prefix_hit_rate=stats.hit_rate if stats else 0.0,
        prefill_tokens_saved=stats.tokens_saved if stats else 0,
        prefill_tokens_saved_share=stats.saved_share if stats else 0.0,
        prefix_bytes=stats.peak_bytes if stats else 0,
        hit_rate_history=tuple(stats.hit_rate_history) if stats else (),
        reused_history=tuple(g.reused_tokens / g.prompt_tokens for g in gens))
    return rec, preds
