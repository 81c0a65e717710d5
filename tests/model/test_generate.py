"""Our generation loop: decode-one-token through the explicit cache equals recomputing everything."""
import pytest
import torch
from transformers import Glm4Config, Glm4ForCausalLM

from workbench.model.generate import cache_bytes, decode_one, greedy, prefill


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    cfg = Glm4Config(vocab_size=64, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                     num_key_value_heads=2, head_dim=8, intermediate_size=80, partial_rotary_factor=0.5,
                     attention_bias=True, pad_token_id=0, eos_token_id=1, bos_token_id=None)
    m = Glm4ForCausalLM(cfg).eval()
    with torch.no_grad():  # random biases and norms, so a dropped one would show
        for name, p in m.named_parameters():
            p.add_(torch.randn_like(p) * (0.05 if "norm" in name else 0.02))
    return m


def test_decode_one_matches_a_full_forward(model):
    ids = torch.randint(2, 64, (2, 9))
    logits, cache = prefill(model, ids[:, :6])
    for t in range(6, 9):
        logits = decode_one(model, ids[:, t:t + 1], cache)
        full = model(input_ids=ids[:, :t + 1]).logits[:, -1]
        assert torch.allclose(logits, full, atol=1e-5)


def test_greedy_equals_greedy_without_a_cache(model):
    ids = torch.randint(2, 64, (1, 7))
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
    _, cache = prefill(model, torch.randint(2, 64, (1, 5)))
    per_token = 2 * cfg.num_hidden_layers * cfg.num_key_value_heads * cfg.head_dim * 4
    assert cache_bytes(cache) == 5 * per_token
    decode_one(model, torch.tensor([[3]]), cache)
    assert cache_bytes(cache) == 6 * per_token
