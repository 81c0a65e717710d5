"""Batched greedy generation: single prefills merged into a left-padded batch cache, per-request EOS,
and equality with batch-1 greedy."""
import pytest
import torch
from random_glm import one_thread  # noqa: F401  (autouse fixture)
from transformers import DynamicCache

from workbench.measure.accuracy import MAX_NEW_TOKENS as MEASURED_CAP
from workbench.measure.accuracy import encode_prompt, predict
from workbench.serve import MAX_NEW_TOKENS, generate_batch, merge_caches


def _cache(length: int, seed: int, layers: int = 2) -> DynamicCache:
    g = torch.Generator().manual_seed(seed)
    return DynamicCache(ddp_cache_data=[(torch.randn(1, 2, length, 4, generator=g),
                                         torch.randn(1, 2, length, 4, generator=g)) for _ in range(layers)])


def test_merge_left_pads_keys_values_and_mask():
    caches = [_cache(3, 0), _cache(1, 1), _cache(2, 2)]
    merged, mask = merge_caches(caches, [3, 1, 2], room=4)
    assert mask.tolist() == [[1, 1, 1], [0, 0, 1], [0, 1, 1]]
    for layer, got in enumerate(merged.layers):
        assert got.keys.shape == got.values.shape == (3, 2, 3, 4) and got.get_seq_length() == 3
        for i, t in enumerate((3, 1, 2)):  # right-aligned, exact, zeros on the left
            assert torch.equal(got.keys[i, :, 3 - t:], caches[i].layers[layer].keys[0])
            assert torch.equal(got.values[i, :, 3 - t:], caches[i].layers[layer].values[0])
            assert not got.keys[i, :, :3 - t].any() and not got.values[i, :, :3 - t].any()
        # a decode step writes its column in place in the preallocated buffer
        buf = got.buf_k.data_ptr()
        k, v = got.update(torch.ones(3, 2, 1, 4), torch.full((3, 2, 1, 4), 2.0))
        assert k.shape == (3, 2, 4, 4) and got.buf_k.data_ptr() == buf
        assert (k[:, :, -1] == 1).all() and (v[:, :, -1] == 2).all()
        got.batch_select_indices(torch.tensor([1, 2]))  # row 0 finished
        got.drop_left(1)  # column 0 is padding in both rows left
        assert got.keys.shape == (2, 2, 3, 4) and got.get_seq_length() == 3
        assert torch.equal(got.keys[1, :, :2], caches[2].layers[layer].keys[0])
    with pytest.raises(RuntimeError, match="full"):
        merged.layers[0].update(torch.ones(2, 2, 4, 4), torch.ones(2, 2, 4, 4))


def _spread_steps(eval_steps, tok, n):
    """n steps of different prompt lengths (shortest to longest), so the batch really pads."""
    by_len = sorted(eval_steps[:60], key=lambda s: encode_prompt(tok, s).shape[1])
    return [by_len[round(i * (len(by_len) - 1) / (n - 1))] for i in range(n)]


def test_batched_greedy_equals_batch_one(tiny, eval_steps):
    model, tok = tiny
    assert MAX_NEW_TOKENS == MEASURED_CAP
    steps = _spread_steps(eval_steps, tok, 6)
    lengths = [encode_prompt(tok, s).shape[1] for s in steps]
    assert max(lengths) - min(lengths) > 150  # real padding in the merged cache
    single = [predict(model, tok, s)[1].tokens for s in steps]
    res = generate_batch(model, [encode_prompt(tok, s) for s in steps], tok.eos_token_id)
    same = sum(a == b for a, b in zip(res.tokens, single))
    # Each prefill is the batch-1 call, so every first token is the batch-1 token; the batched decode
    # over the left-padded cache reproduced batch 1 exactly here (6 of 6 when written, and 24 of 24 of
    # the first eval steps in batches of 8), but a float reassociation in the batched matmuls could
    # still flip a near-tie argmax, so the bound allows one divergent request, and every request must
    # agree on its first tokens.
    assert same >= 5, (same, res.tokens, single)
    assert all(a[:4] == b[:4] for a, b in zip(res.tokens, single))
    assert res.prompt_tokens == lengths
    alone = generate_batch(model, [encode_prompt(tok, steps[0])], tok.eos_token_id)
    assert alone.tokens == [single[0]]  # a batch of one is batch 1


def test_rows_stop_at_their_own_eos(tiny, eval_steps):
    model, tok = tiny
    steps = _spread_steps(eval_steps, tok, 4)
    res = generate_batch(model, [encode_prompt(tok, s) for s in steps], tok.eos_token_id)
    n_new = [len(t) for t in res.tokens]
    assert all(tok.eos_token_id not in t for t in res.tokens)
    # a row with g tokens ended by EOS leaves after g decode steps; rows only ever leave
    assert res.active == [sum(g >= k for g in n_new) for k in range(1, max(n_new) + 1)]
    # the cache holds the longest prompt still decoding plus the decoded tokens (padding cut off)
    assert res.context == [max(p for p, g in zip(res.prompt_tokens, n_new) if g >= k) + k
                           for k in range(1, max(n_new) + 1)]
    assert len(res.decode_s) == max(n_new) and all(t > 0 for t in res.decode_s)
    order = sorted(range(4), key=lambda i: n_new[i])
    assert [res.finish_s[i] for i in order] == sorted(res.finish_s)  # fewer tokens, earlier answer
    assert res.seconds == max(res.finish_s) >= res.prefill_s > sum(res.prefill_each_s) > 0
    assert len(res.prefill_each_s) == 4 and res.prefill_s >= res.merge_s > 0
    assert res.new_tokens == sum(n_new)


def test_token_cap(tiny, eval_steps):
    model, tok = tiny
    res = generate_batch(model, [encode_prompt(tok, s) for s in eval_steps[:2]], tok.eos_token_id,
                         max_new_tokens=3)
    assert [len(t) for t in res.tokens] == [3, 3]
    assert res.active == [2, 2]  # capped rows need no decode step after their last token
    with pytest.raises(ValueError):
        generate_batch(model, [[1, 2], []], tok.eos_token_id)
