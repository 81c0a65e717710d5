"""Replay mode: simulate the dynamic batcher over the fitted service times (a discrete-event
simulation), so a sweep over windows and arrival rates takes seconds instead of minutes.

The service times come from ``workbench.serve.service`` (measured once on the real model, then fitted);
request i of a stream is step i modulo the step count, as in live mode.
"""
from __future__ import annotations

import math
import statistics

from tqdm.auto import tqdm

from .arrivals import poisson_arrivals
from .config import BatchingConfig
from .report import RequestRecord, ServingReport, build_report
from .service import BatchSample, ServiceModel, fit_service, measure_service_times  # noqa: F401  (their old home)


def simulate(config: BatchingConfig, service: ServiceModel, n_requests: int, seed: int = 0, *,
             arrivals=None) -> ServingReport:
    """Discrete-event simulation of the dynamic batcher over the fitted service times.

    Same rule as live mode: when the server is free it takes the first queued request (or waits for
    the next arrival); the batch closes when `window_ms` has passed since that request arrived or
    `max_batch` requests have arrived, but never before the server is free; it holds every request
    arrived by then, up to `max_batch`.

    Args:
        config: batching window, max batch and arrival rate.
        service: fitted ServiceModel (request i is service.profile[i % len(profile)]).
        n_requests: requests in the stream.
        seed: seed of the arrival times (the same seed as a live run replays its stream).
        arrivals: explicit arrival times in seconds (overrides the Poisson stream; n_requests of them).
    Returns:
        ServingReport (mode "replay") with per-request records.
    """
    arr = list(arrivals) if arrivals is not None else poisson_arrivals(n_requests, config.arrival_rate, seed)
    if len(arr) != n_requests:
        raise ValueError(f"got {len(arr)} arrival times for n_requests={n_requests}")
    window, cap, prof = config.window_ms / 1e3, config.max_batch, service.profile
    records, i, free, k = [], 0, 0.0, 0
    while i < n_requests:
        full_at = arr[i + cap - 1] if i + cap - 1 < n_requests else math.inf
        close = max(free, arr[i], min(arr[i] + window, full_at))
        j = i
        while j < n_requests and j - i < cap and arr[j] <= close:
            j += 1
        mix = [prof[r % len(prof)] for r in range(i, j)]
        finish = service.batch_finish_s([p for p, _ in mix], [g for _, g in mix])
        for r, f, (_, g) in zip(range(i, j), finish, mix):
            records.append(RequestRecord(r, arr[r], close, close + f, k, j - i, g))
        free, i, k = close + max(finish), j, k + 1
    return build_report("replay", config, records)


def sweep(service: ServiceModel, windows_ms, arrival_rates, *, max_batch: int = 8, n_requests: int = 2000,
          seed: int = 0, progress: bool = True) -> list[ServingReport]:
    """Simulate every (window, arrival rate) pair.

    Args:
        service: fitted ServiceModel.
        windows_ms: batching windows to try.
        arrival_rates: arrival rates (requests/s) to try.
        max_batch: largest batch.
        n_requests: requests per simulated stream.
        seed: seed of the arrival streams (one stream per rate, shared by all windows).
        progress: show a tqdm bar.
    Returns:
        ServingReports, rate-major.
    """
    grid = [(r, w) for r in arrival_rates for w in windows_ms]
    return [simulate(BatchingConfig(float(w), max_batch, float(r)), service, n_requests, seed)
            for r, w in tqdm(grid, desc="simulate", disable=not progress, mininterval=1)]


def capacity(service: ServiceModel, max_batch: int) -> float:
    """Requests per second the batcher sustains when its queue never empties (all arrive at once).

    Args:
        service: fitted ServiceModel.
        max_batch: largest batch.
    Returns:
        Throughput of the saturated server over the request mix (requests/s).
    """
    n = len(service.profile) * max_batch  # whole batches over whole passes of the mix
    return simulate(BatchingConfig(0.0, max_batch, 1.0), service, n, arrivals=[0.0] * n).throughput_rps


def service_drift(report: ServingReport, service: ServiceModel) -> float:
    """How much slower a live run's batches were than the service model predicts for them.

    Separates the two reasons a replay can miss a live run: the service times (this ratio) and
    the queueing (which the replay reproduces exactly when the ratio is 1).

    Args:
        report: a live ServingReport (request i was step i % len(service.profile)).
        service: the ServiceModel to check.
    Returns:
        Median over the report's batches of measured / predicted batch service time (1.0: exact).
    """
    batches: dict[int, list[RequestRecord]] = {}
    for r in report.requests:
        batches.setdefault(r.batch, []).append(r)
    prof = service.profile
    ratios = []
    for rs in batches.values():
        mix = [prof[r.index % len(prof)] for r in rs]
        predicted = max(service.batch_finish_s([p for p, _ in mix], [g for _, g in mix]))
        ratios.append((max(r.finish_s for r in rs) - rs[0].start_s) / predicted)
    return statistics.median(ratios) if ratios else float("nan")
