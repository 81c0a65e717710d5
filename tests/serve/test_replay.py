"""Replay mode: the batching rule of the simulator on hand-made service times, the cost-model fit,
and a service-time measurement on the real model."""
import dataclasses

import numpy as np
import pytest
from random_glm import one_thread  # noqa: F401  (autouse fixture)

from workbench.serve import (BatchingConfig, BatchSample, ServiceModel, capacity, fit_service,
                             measure_service_times, service_drift, simulate)


def constant_service(batch_s: float = 0.1, new_tokens: int = 10) -> ServiceModel:
    """Every batch takes batch_s whatever its size: no prefill cost, new_tokens decode steps of equal time."""
    return ServiceModel((0.0, 0.0), ((1, 1.0),), (batch_s / new_tokens, 0.0, 0.0), ((100, new_tokens),))


def test_hand_computed_case():
    # 100 ms per batch, window 50 ms, max batch 3
    arrivals = [0.0, 0.01, 0.02, 0.03, 0.2, 0.21, 0.5]
    rep = simulate(BatchingConfig(50, 3, 10), constant_service(), 7, arrivals=arrivals)
    rq = rep.requests
    # batch 0 fills at 0.02 (before the window ends at 0.05); request 3 waits for the server (free at 0.12)
    # and goes alone, its window long over; 4 and 5 go together when 4's window ends (0.25); 6 at 0.55
    assert [r.batch for r in rq] == [0, 0, 0, 1, 2, 2, 3]
    assert [r.batch_size for r in rq] == [3, 3, 3, 1, 2, 2, 1]
    assert [r.start_s for r in rq] == pytest.approx([0.02, 0.02, 0.02, 0.12, 0.25, 0.25, 0.55])
    lat = [0.12, 0.11, 0.10, 0.19, 0.15, 0.14, 0.15]
    assert [r.latency_s for r in rq] == pytest.approx(lat)
    assert rep.p50_ms == pytest.approx(140.0)
    assert rep.p99_ms == pytest.approx(np.percentile(lat, 99) * 1e3)
    assert rep.mean_batch == pytest.approx(7 / 4)
    assert rep.throughput_rps == pytest.approx(7 / 0.65)
    assert rep.tokens_per_s == pytest.approx(70 / 0.65)
    waits = [0.02, 0.01, 0.0, 0.09, 0.05, 0.04, 0.05]
    assert rep.queue_wait_share == pytest.approx(np.mean([w / x for w, x in zip(waits, lat)]))
    assert rep.mode == "replay" and rep.to_json()["mean_batch"] == rep.mean_batch
    assert set(rep.to_json()) >= {"window_ms", "p50_ms", "p99_ms", "throughput_rps", "mean_batch"}


def test_window_zero_at_low_rate_serves_one_at_a_time():
    rep = simulate(BatchingConfig(0, 8, 0.2), constant_service(), 200, seed=0)
    assert rep.mean_batch <= 1.02
    assert rep.p50_ms == pytest.approx(100.0)  # an idle server answers in the service time
    assert rep.queue_wait_share < 0.01


def test_huge_window_fills_every_batch():
    rep = simulate(BatchingConfig(1e6, 8, 20), constant_service(), 40, seed=0)
    assert {r.batch_size for r in rep.requests} == {8} and rep.mean_batch == 8
    for r in rep.requests:  # each batch closes when its 8th request arrives (the server is faster)
        assert r.start_s == rep.requests[r.batch * 8 + 7].arrival_s


@pytest.mark.parametrize("window_ms", [0, 5, 50])
def test_saturated_server_batches_from_the_queue(window_ms):
    # far above capacity: the queue never empties, so batches are full whatever the window
    rep = simulate(BatchingConfig(window_ms, 4, 1000), constant_service(), 400, seed=1)
    assert rep.mean_batch > 3.9
    assert rep.throughput_rps == pytest.approx(40, rel=0.02)  # 4 requests per 100 ms
    assert capacity(constant_service(), 4) == pytest.approx(40)


def test_same_seed_same_report_and_latency_bounds():
    svc = constant_service()
    a, b = (simulate(BatchingConfig(5, 8, 15), svc, 300, seed=7) for _ in range(2))
    assert a == b and a.requests == b.requests
    assert service_drift(a, svc) == pytest.approx(1.0)  # a replay matches its own service model
    assert service_drift(a, constant_service(batch_s=0.05)) == pytest.approx(2.0)
    assert all(r.latency_s >= 0.1 - 1e-12 and r.start_s >= r.arrival_s for r in a.requests)
    assert 1 <= a.mean_batch <= 8


def test_batch_finish_times_follow_the_decode_steps():
    svc = ServiceModel((0.0, 0.0), ((1, 1.0),), (0.01, 0.001, 0.0), ((100, 3),), max_new_tokens=5)
    # requests with 0 (EOS first), 2 and 5 (capped: 4 decode steps) generated tokens; prefill free;
    # decode steps with 2, 2, 1, 1 rows at 10 ms + 1 ms per row
    f = svc.batch_finish_s([100, 100, 100], [0, 2, 5])
    assert f == pytest.approx([0.0, 0.012 + 0.012, 0.012 + 0.012 + 0.011 + 0.011])
    assert svc.decode_steps(5) == 4 and svc.decode_steps(4) == 4


def test_prefill_per_prompt_and_decode_context_of_the_rows_left():
    # prefill 0.1 s per 1k tokens + 0.2 s per (1k tokens)^2 per prompt, k = 1 alone and 1.5 for 2
    # (interpolated: 1.25 for 3); decode 1 ms per row per 1k cache columns
    svc = ServiceModel((0.1, 0.2), ((1, 1.0), (2, 1.5)), (0.0, 0.0, 0.001), ((500, 2),))
    assert svc.prefill_one_s(500) == pytest.approx(0.05 + 0.05)
    assert svc.prefill_s([500]) == pytest.approx(0.1)
    assert svc.prefill_s([500, 1000]) == pytest.approx(1.5 * (0.1 + 0.3))
    assert svc.scale(3) == pytest.approx(2.0)  # extrapolated beyond the largest measured size
    prefill = svc.prefill_s([1000, 500])
    f = svc.batch_finish_s([1000, 500], [1, 3])
    # step 1: both rows, the cache as wide as the longest prompt + 1; then the 1000-token row has left
    # and the cache is the 500-token prompt + the step
    step1, step2, step3 = 2 * 1.001e-3, 0.502e-3, 0.503e-3
    assert f == pytest.approx([prefill + step1, prefill + step1 + step2 + step3])


def test_fit_recovers_a_known_cost_model():
    truth = ServiceModel((0.05, 0.15), ((1, 1.0), (2, 1.02), (4, 1.05)), (0.003, 0.0007, 0.0002), ((600, 4),))
    rng = np.random.default_rng(0)
    samples = []
    for b in (1, 2, 4):
        for _ in range(6):
            prompts = tuple(int(x) for x in rng.integers(500, 1100, b))
            news = tuple(int(x) for x in rng.integers(2, 8, b))
            steps = [truth.decode_steps(g) for g in news]
            active = tuple(sum(s >= k for s in steps) for k in range(1, max(steps) + 1))
            context = tuple(max(p for p, s in zip(prompts, steps) if s >= k) + k for k in range(1, max(steps) + 1))
            decode = tuple(truth.decode_step_s(a, c) for a, c in zip(active, context))
            samples.append(BatchSample(b, max(prompts), prompts, news, truth.prefill_s(prompts), decode, active,
                                       max(truth.batch_finish_s(prompts, news)),
                                       tuple(truth.prefill_one_s(p) for p in prompts), context))
    fit = fit_service(samples, truth.profile)
    assert fit.prefill_coef == pytest.approx(truth.prefill_coef, rel=1e-6)
    assert dict(fit.prefill_scale) == pytest.approx(dict(truth.prefill_scale), rel=1e-6)
    assert fit.decode_coef == pytest.approx(truth.decode_coef, rel=1e-6)
    assert fit.fit_error() < 1e-6
    assert fit.prefill_s([800] * 8) == pytest.approx(truth.prefill_s([800] * 8), rel=1e-4)  # extrapolated
    # without per-request prefills the fit falls back to the batch totals (sums of the features)
    bare = [BatchSample(*dataclasses.astuple(s)[:8]) for s in samples if s.batch_size == 1]
    assert fit_service(bare, truth.profile).prefill_coef == pytest.approx(truth.prefill_coef, rel=1e-6)


def test_measured_service_times(tiny, eval_steps):
    model, tok = tiny
    svc = measure_service_times(model, tok, eval_steps[:4], (1, 2), progress=False)
    assert [s.batch_size for s in svc.samples] == [1, 1, 1, 1, 2, 2]
    assert len(svc.profile) == 4 and all(p > 500 and 0 < g <= 48 for p, g in svc.profile)
    assert all(c >= 0 for c in svc.prefill_coef + svc.decode_coef)
    assert all(s.seconds >= s.prefill_s >= sum(s.prefill_each_s) > 0 for s in svc.samples)
    assert [len(s.prefill_each_s) for s in svc.samples] == [1, 1, 1, 1, 2, 2]
    assert all(len(s.context) == len(s.decode_s) == len(s.active) for s in svc.samples)
    # the prefill phase is the single prefills plus a small merge: k(B) ~ 1 (the single-prefill fit is
    # shared by all sizes, so timing noise moves k a few percent either way)
    assert all(0.8 < k < 1.3 for _, k in svc.prefill_scale), svc.prefill_scale
    assert svc.fit_error() < 0.35  # a bound, not a target: the model fits its own batches
    per = svc.per_request_ms()
    assert set(per) == {1, 2} and all(0 < m <= p90 for m, p90 in per.values())
    split = svc.per_request_split_ms()
    assert set(split) == {1, 2} and all(p > 0 and d > 0 for p, d in split.values())
    rep = simulate(BatchingConfig(5, 2, 2), svc, 50, seed=0)
    assert rep.p50_ms >= 0.9 * min(s.seconds for s in svc.samples) * 1e3
