"""Cache policies on the tiny model: the issue's invariants and bounds.

- `full` and `none` give identical greedy actions;
- a prefix-cache hit gives the same logits as a cold prefill (float tolerance);
- int8 KV holds under 30% of the float32 bytes and keeps the actions;
- a sliding window larger than the sequence changes nothing; a small one holds at most `window`.
"""
import pytest
import torch
from random_glm import one_thread  # noqa: F401

from workbench.cache import CacheConfig, PrefixStore, generate, layer_kv, new_cache, warm_up
from workbench.measure.accuracy import encode_prompt
from workbench.model.generate import cache_bytes, prefill
from workbench.task import shared_prefix


@pytest.fixture(scope="module")
def prompts(tiny, eval_steps):
    _, tok = tiny
    return [encode_prompt(tok, s) for s in eval_steps[:8]]


def run(tiny, prompts, **cfg):
    model, tok = tiny
    config = CacheConfig(**cfg)
    return [generate(model, ids, tok.eos_token_id, config) for ids in prompts]


def test_full_and_none_give_identical_actions(tiny, prompts):
    full = run(tiny, prompts[:4], policy="full")
    none = run(tiny, prompts[:4], policy="none")
    assert [g.tokens for g in full] == [g.tokens for g in none]
    assert all(g.kv_bytes == 0 for g in none) and all(g.kv_bytes > 0 for g in full)


def test_int8_keeps_actions_with_under_30_percent_of_the_bytes(tiny, prompts):
    full = run(tiny, prompts, policy="full")
    int8 = run(tiny, prompts, policy="int8")
    same = sum(a.tokens == b.tokens for a, b in zip(full, int8))
    assert same >= len(prompts) - 1
    for a, b in zip(full, int8):
        assert b.kv_bytes < 0.3 * a.kv_bytes * (len(b.tokens) + b.prompt_tokens) / (len(a.tokens) + a.prompt_tokens) + 1


def test_sliding_window_larger_than_the_sequence_changes_nothing(tiny, prompts):
    full = run(tiny, prompts[:3], policy="full")
    wide = run(tiny, prompts[:3], policy="sliding", window=4096, sinks=4)
    assert [g.tokens for g in full] == [g.tokens for g in wide]


def test_sliding_window_holds_at_most_window_tokens(tiny, prompts):
    model, _ = tiny
    gens = run(tiny, prompts[:2], policy="sliding", window=64, sinks=4)
    cfg = model.config
    per_token = cfg.num_hidden_layers * 2 * cfg.num_key_value_heads * cfg.head_dim * 4
    assert all(g.kv_bytes == 64 * per_token for g in gens)


@pytest.mark.parametrize("policy", ["full", "int8"])
def test_prefix_hit_gives_the_logits_of_a_cold_prefill(tiny, prompts, policy):
    model, tok = tiny
    cfg = CacheConfig(policy=policy)
    ids = prompts[1]  # same episode as prompts[0]: shares system prompt, goal and app
    store = PrefixStore(64 * 2**20)
    cold = new_cache(cfg, model.config.num_hidden_layers)
    prefill(model, prompts[0], cold)
    store.insert(prompts[0][0], layer_kv(cold))
    n, kv = store.lookup(ids[0])
    assert n > 300  # at least the system prompt
    warm = new_cache(cfg, model.config.num_hidden_layers)
    for i, (k, v) in enumerate(kv):
        warm.update(k, v, i)
    hit_logits, _ = prefill(model, ids[:, n:], warm)
    cold_logits, cold_cache = prefill(model, ids, new_cache(cfg, model.config.num_hidden_layers))
    torch.testing.assert_close(hit_logits, cold_logits, atol=2e-4 if policy == "full" else 5e-2, rtol=0)
    assert cache_bytes(warm) == cache_bytes(cold_cache)


def test_generate_with_a_store_matches_without_and_counts_reuse(tiny, prompts):
    model, tok = tiny
    cfg = CacheConfig(policy="full", prefix_capacity_mb=64)
    store = PrefixStore.from_config(cfg)
    warm_up(model, tok, store, shared_prefix())
    system = len(tok.encode(shared_prefix(), add_special_tokens=False))
    cold = run(tiny, prompts[:4], policy="full")
    hot = [generate(model, ids, tok.eos_token_id, cfg, store) for ids in prompts[:4]]
    assert [g.tokens for g in hot] == [g.tokens for g in cold]
    assert all(g.reused_tokens >= system for g in hot)
    assert store.stats.hit_rate == 1.0 and store.stats.tokens_saved == sum(g.reused_tokens for g in hot)
    assert 0 < store.stats.bytes_held <= cfg.prefix_capacity_bytes
