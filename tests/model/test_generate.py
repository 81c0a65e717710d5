"""Our generation loop: decode-one-token through the explicit cache equals recomputing everything."""
import torch
from random_glm import VOCAB

from workbench.model.generate import cache_bytes, decode_one, greedy, prefill

# model: tests/conftest.py's random GLM-4 (random biases and norms, so a dropped one would show), eos id 1


def test_decode_one_matches_a_full_forward(model):
    ids = torch.randint(2, VOCAB, (2, 9))
    logits, cache = prefill(model, ids[:, :6])
    for t in range(6, 9):
        logits = decode_one(model, ids[:, t:t + 1], cache)
        full = model(input_ids=ids[:, :t + 1]).logits[:, -1]
        assert torch.allclose(logits, full, atol=1e-5)


def test_greedy_equals_greedy_without_a_cache(model):
    ids = torch.randint(2, VOCAB, (1, 7))
    gen = greedy(model, ids, eos_id=1, max_new_tokens=10)
    seq = ids
    ref = []
    with torch.no_grad():
        for _ in range(10):
            tok = int(model(input_ids=seq).logits[0, -1].argmax())
            if tok == 1:
                break
            ref.append(tok)
            seq = torch.cat([seq, torch.tensor([[tok]])], 1)
    assert gen.tokens == ref
    assert gen.prompt_tokens == 7 and len(gen.decode_s) == len(gen.tokens)
    assert gen.prefill_s > 0 and all(t > 0 for t in gen.decode_s)


def test_cache_bytes_count_keys_and_values(model):
    cfg = model.config
    _, cache = prefill(model, torch.randint(2, VOCAB, (1, 5)))
    per_token = 2 * cfg.num_hidden_layers * cfg.num_key_value_heads * cfg.head_dim * 4
    assert cache_bytes(cache) == 5 * per_token
    decode_one(model, torch.tensor([[3]]), cache)
    assert cache_bytes(cache) == 6 * per_token
