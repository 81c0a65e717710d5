"""Tests for workbench.model.synthetic: each family's random checkpoint loads back with the same logits."""
from __future__ import annotations

import pytest
import torch

from workbench.model import DEFAULT_MODEL, SUPPORTED_ARCHITECTURES, load_model
from workbench.model.synthetic import FAMILIES, random_config, random_model, write_random_checkpoint

needs_tiny = pytest.mark.skipif(not (DEFAULT_MODEL / "tokenizer.json").is_file(),
                                reason=f"open-autoglm-tiny's tokenizer missing ({DEFAULT_MODEL})")
ACTION = 'do(action="Tap", element=[500,870])'


def test_families_are_the_supported_architectures():
    assert set(FAMILIES.values()) == set(SUPPORTED_ARCHITECTURES)


@needs_tiny
@pytest.mark.parametrize("family", list(FAMILIES))
def test_checkpoint_loads_back_with_the_same_logits(family, tmp_path):
    original = write_random_checkpoint(tmp_path, family)
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= {p.name for p in tmp_path.iterdir()}
    model, tok = load_model(tmp_path)
    assert type(model).__name__ == FAMILIES[family]
    assert model.config.architectures == [FAMILIES[family]]
    text = model.config.get_text_config()
    assert text.vocab_size == len(tok)  # the tiny model's tokenizer: task prompts tokenize
    assert tok.decode(tok(ACTION, add_special_tokens=False)["input_ids"]) == ACTION
    ids = tok(ACTION, return_tensors="pt")["input_ids"]  # (1, T)
    with torch.no_grad():
        want = original(input_ids=ids).logits
        got = model(input_ids=ids).logits
    assert got.shape == (1, ids.shape[1], len(tok))
    assert torch.equal(got, want)
    assert want.std().item() > 0.1  # random weights, not a degenerate constant model


@pytest.mark.parametrize("family", list(FAMILIES))
def test_shapes_keep_the_real_ratios(family):
    text = random_config(family, vocab_size=100).get_text_config()
    head_dim = getattr(text, "head_dim", None) or text.hidden_size // text.num_attention_heads
    assert text.intermediate_size / text.hidden_size == pytest.approx(13696 / 4096, rel=0.05)
    assert text.intermediate_size % 32 == 0 and text.hidden_size % 32 == 0  # quantization groups of 32 fit
    assert text.num_attention_heads * head_dim == text.hidden_size
    assert text.num_attention_heads > text.num_key_value_heads  # grouped-query attention
    if family == "glm4v":
        assert sum(text.rope_parameters["mrope_section"]) == head_dim // 4  # rotary pairs at factor 0.5
    wider = random_config(family, vocab_size=100, hidden_size=2 * text.hidden_size, num_layers=3)
    assert wider.get_text_config().num_attention_heads == 2 * text.num_attention_heads
    assert wider.get_text_config().num_hidden_layers == 3


def test_every_parameter_is_random_and_seeded():
    a = random_model("glm4", vocab_size=64)
    params = dict(a.named_parameters())
    for name, p in params.items():
        centre = 1.0 if "norm" in name else 0.0
        assert (p - centre).abs().max().item() > 1e-3, name  # no bias left at 0, no norm left at 1
    state = torch.random.get_rng_state()
    b = random_model("glm4", vocab_size=64)
    assert torch.equal(torch.random.get_rng_state(), state)  # the global RNG is left as it was
    assert all(torch.equal(p, params[n]) for n, p in b.named_parameters())
    c = random_model("glm4", vocab_size=64, seed=1)
    assert not torch.equal(c.lm_head.weight, a.lm_head.weight)


def test_bad_arguments():
    with pytest.raises(ValueError, match="glm, glm4, glm4v"):
        random_config("llama", vocab_size=64)
    with pytest.raises(ValueError, match="multiple of 128"):
        random_config("glm4v", vocab_size=64, hidden_size=64)


@needs_tiny
def test_vocab_smaller_than_the_tokenizer(tmp_path):
    with pytest.raises(ValueError, match="smaller than the tokenizer"):
        write_random_checkpoint(tmp_path / "ckpt", "glm4", vocab_size=10)
    assert not (tmp_path / "ckpt").exists()
