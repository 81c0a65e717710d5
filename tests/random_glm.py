"""Random GLMs for the tests, built on workbench.model.synthetic, and the one-thread fixture.

    from random_glm import random_glm, tiny_glm4  # tests/ is on pytest's pythonpath
    from random_glm import one_thread  # noqa: F401  (importing the autouse fixture enables it in that module)

`random_glm` is `random_config`'s model (hidden 64, 8 / 2 heads of 8, MLP 224, vocab 100) with transformers'
own initialisation and random norms and biases (`jitter_norms_and_biases_`, so a transform or an export
that drops one changes the logits; the embedding's padding row stays 0: for every parameter random use
`workbench.model.synthetic.random_model`); a test that needs a special shape passes the fields
(`head_dim=16`). `tiny_glm4` is the shape the calibration-based knob tests (Wanda, SparseGPT, GPTQ, calib,
RTN, fused graph) were tuned on; tests/conftest.py's `model`, `calib` and `layer_hessians` fixtures are
built from it and `random_batches`.
"""
import pytest
import torch
import transformers

from workbench.model.synthetic import FAMILIES, jitter_norms_and_biases_, random_config

VOCAB = 100  # token ids 0 (pad) and 1 (eos) are special; the tests draw ids from 2..VOCAB-1
TINY_SHAPE = dict(num_attention_heads=4, num_key_value_heads=2, head_dim=16, intermediate_size=128,
                  max_position_embeddings=128)


def random_glm(family: str = "glm4", *, seed: int = 0, vocab_size: int = VOCAB, num_layers: int = 2,
               norm_std: float = 0.2, bias_std: float = 0.1, **shape) -> torch.nn.Module:
    """A random model of `family` ("glm", "glm4", "glm4v"; see workbench.model.synthetic), eval mode, float32.

    Args:
        family: a key of workbench.model.synthetic.FAMILIES.
        seed: seeds the global RNG (as `torch.manual_seed`) before the weights are drawn.
        vocab_size, num_layers: as random_config; pad id 0, eos id 1.
        norm_std, bias_std: the spread of the jittered norm weights (around 1) and biases (around 0).
        **shape: text-config fields that override random_config's (e.g. num_attention_heads=4, head_dim=16,
            intermediate_size=128, hidden_size=32).
    """
    config = random_config(family, vocab_size=vocab_size, num_layers=num_layers, pad_token_id=0, eos_token_id=1)
    text = config.get_text_config()
    for key, value in shape.items():
        if not hasattr(text, key):
            raise TypeError(f"{type(text).__name__} has no field {key!r}")
        setattr(text, key, value)
    torch.manual_seed(seed)
    model = getattr(transformers, FAMILIES[family])(config).eval()
    return jitter_norms_and_biases_(model, norm_std=norm_std, bias_std=bias_std)


def tiny_glm4(seed: int = 0, family: str = "glm4") -> torch.nn.Module:
    """Random Glm4ForCausalLM (hidden 64, 2 layers, GQA 4/2 heads of 16, MLP 128, partial RoPE) with random
    biases and norms; `family="glm"` gives the GLM-Edge architecture (GlmForCausalLM: no sandwich norms)."""
    return random_glm(family, seed=seed, **TINY_SHAPE)


def random_batches(lengths=(9, 17, 12, 20), vocab_size: int = VOCAB, seed: int = 1) -> list[torch.Tensor]:
    """Calibration batches of random token ids, one (1, T) tensor per length (a seeded generator of its own)."""
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(2, vocab_size, (1, t), generator=g) for t in lengths]


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Column-by-column loops on tiny matrices run far faster on one thread (esp. on busy cores)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
