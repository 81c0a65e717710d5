"""measure_cache on the tiny model: the record's bounds and the prefix cache's effect on prefill."""
import pytest
from random_glm import one_thread  # noqa: F401

from workbench.cache import CacheConfig
from workbench.measure.cache import measure_cache


@pytest.fixture(scope="module")
def episode_steps(eval_steps):
    return eval_steps[:12]  # three whole episodes, in order


def test_full_vs_prefix_vs_int8(tiny, episode_steps):
    model, tok = tiny
    full, preds_full = measure_cache(model, tok, episode_steps, CacheConfig(policy="full"), progress=False)
    hot, preds_hot = measure_cache(model, tok, episode_steps, CacheConfig(policy="full", prefix_capacity_mb=64),
                                   progress=False)
    int8, _ = measure_cache(model, tok, episode_steps, CacheConfig(policy="int8"), progress=False)
    assert [p.output for p in preds_full] == [p.output for p in preds_hot]  # reuse changes no action
    assert full.prefix_hit_rate == 0 and full.prefill_tokens_saved == 0 and full.prefix_bytes == 0
    assert hot.prefix_hit_rate == 1.0 and len(hot.hit_rate_history) == len(episode_steps)
    assert 0.4 < hot.prefill_tokens_saved_share < 0.9  # the system prompt alone is about half a prompt
    assert all(0.3 < r < 1 for r in hot.reused_history)
    assert 0 < hot.prefix_bytes <= 64 * 2**20
    assert int8.kv_bytes < 0.3 * full.kv_bytes and abs(int8.step - full.step) <= 1 / len(episode_steps)
    for rec in (full, hot, int8):
        assert rec.n == len(episode_steps) and 0 <= rec.step <= 1
        assert rec.prefill_ms.median > 0 and rec.decode_ms_per_token.median > 0
        assert rec.step_ms_mean > rec.prefill_ms_mean
    js = hot.to_json()
    assert js["policy"] == "full" and js["prefill_ms_per_step"] == hot.prefill_ms_mean
    assert "reused_history" not in js and js["label"] == "full + prefix 64MB lru"
