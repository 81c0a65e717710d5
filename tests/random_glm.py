"""A small random Glm4ForCausalLM for the calibration-based knob tests (Wanda, SparseGPT, GPTQ, calib),
and the one-thread fixture those column-by-column tests share.

    from random_glm import one_thread, tiny_glm4  # noqa: F401  (importing the fixture enables it)
"""
import pytest
import torch
import transformers

from workbench.model.synthetic import jitter_norms_and_biases_


def tiny_glm4(seed: int = 0, family: str = "glm4") -> torch.nn.Module:
    """Random Glm4ForCausalLM (hidden 64, 2 layers, GQA 4/2, partial RoPE) with random biases and norms;
    `family="glm"` gives the GLM-Edge architecture (GlmForCausalLM: no sandwich norms) at the same size."""
    torch.manual_seed(seed)
    config_cls, model_cls = {"glm4": (transformers.Glm4Config, transformers.Glm4ForCausalLM),
                             "glm": (transformers.GlmConfig, transformers.GlmForCausalLM)}[family]
    cfg = config_cls(
        vocab_size=100, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, head_dim=16, partial_rotary_factor=0.5, attention_bias=True,
        max_position_embeddings=128, pad_token_id=0, eos_token_id=1, bos_token_id=None,
        tie_word_embeddings=False)
    return jitter_norms_and_biases_(model_cls(cfg).eval(), norm_std=0.2, bias_std=0.1)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Column-by-column loops on tiny matrices run far faster on one thread (esp. on busy cores)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
