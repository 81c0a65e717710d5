"""Serving records: per-request timings and the p50/p99 / throughput report of one batching setting."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .config import BatchingConfig


@dataclass(frozen=True)
class RequestRecord:
    """One request's life in seconds from the stream's start: arrival, batch start, its answer."""

    index: int
    arrival_s: float
    start_s: float
    finish_s: float
    batch: int  # index of the batch that served it
    batch_size: int
    new_tokens: int

    @property
    def latency_s(self) -> float:
        return self.finish_s - self.arrival_s

    @property
    def wait_s(self) -> float:
        return self.start_s - self.arrival_s


@dataclass(frozen=True)
class ServingReport:
    """Latency and throughput of one batching setting, measured live or replayed by simulation."""

    mode: str  # "live" (threads, real model) or "replay" (simulation over measured service times)
    window_ms: float
    max_batch: int
    arrival_rate: float
    n: int
    p50_ms: float
    p99_ms: float
    throughput_rps: float  # answered requests / (last answer - first arrival)
    tokens_per_s: float  # generated tokens over the same span
    mean_batch: float  # mean requests per batch
    queue_wait_share: float  # mean over requests of (wait in queue) / latency
    requests: list[RequestRecord] = field(default_factory=list, compare=False, repr=False)

    def to_json(self) -> dict:
        """The evaluate report's ``serving`` section (docs/design.md section 5 names first)."""
        return {"window_ms": self.window_ms, "p50_ms": self.p50_ms, "p99_ms": self.p99_ms,
                "throughput_rps": self.throughput_rps, "mean_batch": self.mean_batch,
                "max_batch": self.max_batch, "arrival_rate": self.arrival_rate, "n": self.n,
                "tokens_per_s": self.tokens_per_s, "queue_wait_share": self.queue_wait_share,
                "mode": self.mode}

    @property
    def label(self) -> str:
        return (f"{self.mode}: window {self.window_ms:g} ms, max batch {self.max_batch}, "
                f"{self.arrival_rate:g} req/s")


def build_report(mode: str, config: BatchingConfig, requests: list[RequestRecord]) -> ServingReport:
    """Summarise per-request records into a ServingReport.

    Args:
        mode: "live" or "replay".
        config: the batching setting that produced the records.
        requests: one record per answered request.
    Returns:
        ServingReport (percentiles by linear interpolation; NaN figures when there are no requests).
    """
    requests = sorted(requests, key=lambda r: r.index)
    if not requests:
        nan = float("nan")
        return ServingReport(mode, config.window_ms, config.max_batch, config.arrival_rate, 0,
                             nan, nan, nan, nan, nan, nan, [])
    lat = np.array([r.latency_s for r in requests])  # (n,)
    span = max(r.finish_s for r in requests) - min(r.arrival_s for r in requests)
    sizes = {r.batch: r.batch_size for r in requests}
    share = np.mean([r.wait_s / r.latency_s if r.latency_s > 0 else 0.0 for r in requests])
    return ServingReport(
        mode, float(config.window_ms), config.max_batch, float(config.arrival_rate), len(requests),
        float(np.percentile(lat, 50) * 1e3), float(np.percentile(lat, 99) * 1e3),
        len(requests) / span, sum(r.new_tokens for r in requests) / span,
        float(np.mean(list(sizes.values()))), float(share), requests)
