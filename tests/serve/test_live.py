"""Live mode: real threads, the real model, wall-clock latencies within bounds."""
import pytest
from random_glm import one_thread  # noqa: F401  (autouse fixture)

from workbench.serve import BatchingConfig, poisson_arrivals, serve_live


@pytest.mark.parametrize("config", [BatchingConfig(5, 4, 20), BatchingConfig(0, 1, 10)])
def test_live_smoke_with_bounds(tiny, eval_steps, config):
    model, tok = tiny
    n = 6
    rep = serve_live(model, tok, eval_steps[:4], config, n, seed=2, progress=False)
    assert rep.mode == "live" and rep.n == n and [r.index for r in rep.requests] == list(range(n))
    scheduled = poisson_arrivals(n, config.arrival_rate, 2)
    for r, t in zip(rep.requests, scheduled):
        assert t - 1e-3 <= r.arrival_s <= t + 0.25  # the arrival thread is on time (a busy CPU may lag)
        assert r.arrival_s <= r.start_s < r.finish_s
        assert r.latency_s >= r.finish_s - r.start_s > 0.01  # latency >= service time of the real model
        assert 0 < r.new_tokens <= 48
        assert 1 <= r.batch_size <= config.max_batch
    by_batch = {}
    for r in rep.requests:
        by_batch.setdefault(r.batch, []).append(r)
    for batch in by_batch.values():  # a batch starts once, when its window closed or it filled
        assert len({r.start_s for r in batch}) == 1 and len(batch) == batch[0].batch_size
        first = min(r.arrival_s for r in batch)
        assert batch[0].start_s >= first
        if len(batch) < config.max_batch and batch[0].start_s > first + config.window_ms / 1e3 + 0.05:
            # the window was long over: only a busy server explains the wait
            assert any(o.finish_s >= batch[0].start_s - 0.05 for o in rep.requests if o.batch < batch[0].batch)
    assert 1 <= rep.mean_batch <= config.max_batch
    assert rep.p99_ms >= rep.p50_ms > 10
    assert 0 <= rep.queue_wait_share < 1
    assert rep.throughput_rps > 0 and rep.tokens_per_s > rep.throughput_rps
