"""The batching conclusion: from a sweep's ServingReports at one arrival rate, does a batching window pay,
does its size matter, and which setting to recommend; plus the lines notebook 03 prints about it.

Pure functions over reports already measured or replayed (no model, no timing, no I/O).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass

from .config import BatchingConfig
from .report import ServingReport
from .service import ServiceModel


@dataclass(frozen=True)
class BatchingConclusion:
    """What a sweep says at one arrival rate (see `conclude_batching` for the rules)."""

    unbatched: ServingReport  # max batch 1 at the rate
    batched: tuple[ServingReport, ...]  # max batch > 1 at the same rate, by window
    window_ms: float  # the window judged against no batching
    span_ms: tuple[float, float]  # the windows compared with one another
    pays: bool  # the window raises throughput by more than min_gain and lowers p99
    window_matters: bool  # throughput or p99 differ by more than their tolerances across the span
    recommended: BatchingConfig  # no batching (window 0, max batch 1) unless batching pays

    @property
    def rate(self) -> float:
        return self.unbatched.arrival_rate

    def at(self, window_ms: float) -> ServingReport:
        """The batched report at `window_ms` (ValueError naming the windows there are, if none)."""
        for r in self.batched:
            if math.isclose(r.window_ms, window_ms):
                return r
        raise ValueError(f"no batched report at window {window_ms:g} ms and {self.rate:g} req/s; "
                         f"windows: {[r.window_ms for r in self.batched]}")

    def in_span(self) -> list[ServingReport]:
        lo, hi = self.span_ms
        return [r for r in self.batched if lo <= r.window_ms <= hi]

    def lines(self, batch_ms: float | None = None) -> list[str]:
        """The two "=>" sentences: whether the window pays, whether its size matters.

        Args:
            batch_ms: time of one batch-1 request (ms), to explain why the window matters little
                when it is far shorter than a batch; None leaves the reason out.
        """
        none, w = self.unbatched, self.at(self.window_ms)
        if self.pays:
            verdict = (f"=> a {self.window_ms:g} ms window raises throughput over no batching at {self.rate:g} "
                       f"req/s ({none.throughput_rps:.2f} -> {w.throughput_rps:.2f} req/s) while p99 stays bounded "
                       f"({w.p99_ms:.0f} ms vs {none.p99_ms:.0f} ms without batching)")
        else:
            verdict = (f"=> batching does not raise throughput here: {none.throughput_rps:.2f} req/s without, "
                       f"{w.throughput_rps:.2f} with a {self.window_ms:g} ms window (p99 {none.p99_ms:.0f} vs "
                       f"{w.p99_ms:.0f} ms)")
        out = [verdict]
        span = self.in_span()
        lo, hi = span[0], span[-1]
        facts = (f"windows of {lo.window_ms:g} to {hi.window_ms:g} ms give {lo.throughput_rps:.2f} to "
                 f"{hi.throughput_rps:.2f} req/s and p99 {lo.p99_ms:.0f} to {hi.p99_ms:.0f} ms (mean batch "
                 f"{lo.mean_batch:.2f} at {lo.window_ms:g} ms, {hi.mean_batch:.2f} at {hi.window_ms:g} ms)")
        if self.window_matters:
            out.append(f"=> the window's size matters at {self.rate:g} req/s: {facts}")
        else:
            why = ""
            if batch_ms is not None and batch_ms > hi.window_ms:
                why = (f"; a batch takes ~{batch_ms:.0f} ms, far longer than the window, so the batches form "
                       f"from the queue that builds meanwhile")
            out.append(f"=> the window itself matters little at {self.rate:g} req/s: {facts}{why}")
        out.append(f"=> recommended batching section: {json.dumps(self.recommended.to_json())}")
        return out


def _spread(values: list[float]) -> float:
    """max / min - 1 of positive figures (inf when the smallest is 0, 0 for fewer than two)."""
    if len(values) < 2:
        return 0.0
    lo = min(values)
    return max(values) / lo - 1 if lo > 0 else math.inf


def conclude_batching(unbatched: ServingReport, reports, *, window_ms: float = 5.0,
                      span_ms: tuple[float, float] = (0.0, 10.0), min_gain: float = 1.05,
                      p99_tolerance: float = 0.25) -> BatchingConclusion:
    """Decide whether batching pays at the unbatched report's arrival rate, and what to recommend.

    Rules:
    - pays: the report at `window_ms` has throughput > `min_gain` x the unbatched one and a lower p99;
    - window_matters: across the windows in `span_ms` (inclusive), throughput differs by more than
      `min_gain` - 1 (relative, max / min) or p99 by more than `p99_tolerance`;
    - recommended: if it pays, among the windows in the span whose throughput is within `min_gain` of the
      best, the one with the lowest p99 (ties: the shorter window), at its max batch; otherwise no
      batching (window 0, max batch 1).

    Args:
        unbatched: a report at max batch 1 (its arrival rate picks the batched reports).
        reports: ServingReports of a sweep (any rates; those at this rate with max batch > 1 are used).
        window_ms: the window to judge against no batching (must be among the reports).
        span_ms: the (low, high) windows to compare with one another (at least one report inside).
        min_gain: throughput ratio that counts as a gain (> 1).
        p99_tolerance: relative p99 spread under which window sizes count as alike (>= 0).
    Returns:
        BatchingConclusion.
    Raises:
        ValueError: unbatched has max batch > 1, bad thresholds, no report at `window_ms` or in the span.
    """
    if unbatched.max_batch != 1:
        raise ValueError(f"unbatched must be a max batch 1 report, got max batch {unbatched.max_batch}")
    if not min_gain > 1 or not p99_tolerance >= 0:
        raise ValueError(f"min_gain must be > 1 and p99_tolerance >= 0, got {min_gain!r}, {p99_tolerance!r}")
    if not span_ms[0] <= span_ms[1]:
        raise ValueError(f"span_ms must be (low, high) with low <= high, got {span_ms!r}")
    rate = unbatched.arrival_rate
    batched = tuple(sorted((r for r in reports if r.max_batch > 1 and math.isclose(r.arrival_rate, rate)),
                           key=lambda r: r.window_ms))
    draft = BatchingConclusion(unbatched, batched, float(window_ms), tuple(span_ms), False, False,
                               BatchingConfig(0.0, 1, rate))
    w = draft.at(window_ms)
    span = draft.in_span()
    if not span:
        raise ValueError(f"no batched report with a window in {span_ms} ms at {rate:g} req/s")
    pays = w.throughput_rps > min_gain * unbatched.throughput_rps and w.p99_ms < unbatched.p99_ms
    matters = (_spread([r.throughput_rps for r in span]) > min_gain - 1
               or _spread([r.p99_ms for r in span]) > p99_tolerance)
    recommended = draft.recommended
    if pays:
        best = max(r.throughput_rps for r in span)
        pick = min((r for r in span if r.throughput_rps * min_gain >= best), key=lambda r: (r.p99_ms, r.window_ms))
        recommended = BatchingConfig(pick.window_ms, pick.max_batch, rate)
    return BatchingConclusion(unbatched, batched, float(window_ms), tuple(span_ms), pays, matters, recommended)


def batching_summary(conclusion: BatchingConclusion, service: ServiceModel, capacities: dict[int, float],
                     live=(), replays=(), *, windows=(0, 2, 5, 10)) -> list[str]:
    """Notebook 03's closing facts: the sweep at the conclusion's rate, the live runs, the cost of a request
    alone and in the largest measured batch, the saturated capacities, then the conclusion's lines.

    Args:
        conclusion: from `conclude_batching`.
        service: the fitted ServiceModel (its measured batches give the per-request costs).
        capacities: saturated throughput per max batch (req/s), e.g. {1: capacity(service, 1), 8: ...}; needs 1.
        live: live ServingReports, printed with the replay of the same stream (`replays`, same order).
        replays: replays of the live runs' streams.
        windows: the windows of the sweep to print (those missing are skipped).
    Returns:
        Lines of text.
    """
    none, cap1, rate = conclusion.unbatched, capacities[1], conclusion.rate
    out = [f"{rate:g} req/s ({rate / cap1:.1f}x the unbatched capacity), {none.n} simulated requests:"]
    out.append(f"  no batching (max batch 1): throughput {none.throughput_rps:.2f} req/s, p50 {none.p50_ms:6.0f} ms, "
               f"p99 {none.p99_ms:6.0f} ms")
    for r in conclusion.batched:
        if any(math.isclose(r.window_ms, w) for w in windows):
            out.append(f"  max batch {r.max_batch}, window {r.window_ms:3.0f} ms: throughput {r.throughput_rps:.2f} "
                       f"req/s, p50 {r.p50_ms:6.0f} ms, p99 {r.p99_ms:6.0f} ms, mean batch {r.mean_batch:.2f}")
    for lv, rp in zip(live, replays):
        out.append(f"  {lv.label}: throughput {lv.throughput_rps:.2f} req/s, p50 {lv.p50_ms:.0f} ms, p99 "
                   f"{lv.p99_ms:.0f} ms (n={lv.n}; replay of the same stream: {rp.throughput_rps:.2f} req/s, "
                   f"p50 {rp.p50_ms:.0f} ms, p99 {rp.p99_ms:.0f} ms)")
    per, split = service.per_request_ms(), service.per_request_split_ms()
    batch_ms = per[1][0] if 1 in per else None
    if batch_ms is not None:
        b = max(per)
        out.append(f"a request costs {per[b][0]:.0f} ms in a batch of {b} vs {batch_ms:.0f} ms alone "
                   f"({per[b][0] / batch_ms:.2f}x): its decode falls from {split[1][1]:.0f} to {split[b][1]:.0f} ms, "
                   f"its prefill stays {split[1][0]:.0f} -> {split[b][0]:.0f} ms ({split[b][0] / per[b][0]:.0%} of "
                   f"the cost at batch {b}: one prompt at a time, compute-bound)")
    top = max(capacities)
    if top > 1:
        out.append(f"saturated throughput {cap1:.2f} req/s at max batch 1 vs {capacities[top]:.2f} at max batch "
                   f"{top} ({capacities[top] / cap1:.2f}x)")
    return out + conclusion.lines(batch_ms)
