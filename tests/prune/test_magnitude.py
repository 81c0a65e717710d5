"""Magnitude pruning: exact per-row / 2:4 sparsity, the smallest |W| removed, nothing else touched."""
import copy

import pytest
import torch

from workbench.model.synthetic import random_model
from workbench.prune import METHODS, LayerSparsity, MagnitudeConfig, prune_
from workbench.select import selected_linears


@pytest.fixture(scope="module")
def base():
    """A random GLM-4, every parameter random (so a touched bias, norm or embedding row would show)."""
    return random_model("glm4", vocab_size=100)


def pruned(base, config, **kw):
    model = copy.deepcopy(base)
    report = prune_(model, config, **kw)
    return model, report


CONFIGS = [MagnitudeConfig(0.5), MagnitudeConfig(0.3), MagnitudeConfig(0.9), MagnitudeConfig(0.5, "2:4")]


@pytest.mark.parametrize("config", CONFIGS, ids=str)
def test_sparsity_is_exact_for_every_selected_layer(base, config):
    model, report = pruned(base, config)
    layers = selected_linears(model)
    assert len(layers) == 2 * 6  # q, k, v, o, gate_up, down per decoder layer; not lm_head
    for name, m in layers.items():
        w = m.weight
        if config.pattern == "2:4":
            zeros = (w.reshape(w.shape[0], -1, 4) == 0).sum(-1)  # (out, in/4)
            assert torch.all(zeros == 2), name
        else:
            zeros = (w == 0).sum(1)  # (out,)
            assert torch.all(zeros == int(w.shape[1] * config.ratio)), name
    assert all(isinstance(r, LayerSparsity) for r in report)
    assert {r.name for r in report} == set(layers)
    expected = 0.5 if config.pattern == "2:4" else config.ratio
    for r in report:
        assert abs(r.sparsity - expected) <= 1 / 64 + 1e-9  # int() per row of >= 64 inputs


@pytest.mark.parametrize("config", CONFIGS, ids=str)
def test_the_smallest_magnitudes_are_removed(base, config):
    model, _ = pruned(base, config)
    before = selected_linears(base)
    for name, m in selected_linears(model).items():
        w0, w = before[name].weight.abs(), m.weight
        gone = w == 0
        if config.pattern == "2:4":  # within each group of 4
            w0, gone = w0.reshape(w0.shape[0], -1, 4), gone.reshape(w0.shape[0], -1, 4)
        biggest_gone = torch.where(gone, w0, torch.zeros_like(w0)).amax(-1)
        smallest_kept = torch.where(gone, torch.full_like(w0, float("inf")), w0).amin(-1)
        assert torch.all(biggest_gone <= smallest_kept), name
        assert torch.equal(w[~(w == 0)], before[name].weight[~(w == 0)])  # kept weights unchanged


@pytest.mark.parametrize("config", CONFIGS, ids=str)
def test_embeddings_lm_head_norms_and_biases_are_untouched(base, config):
    model, _ = pruned(base, config)
    ref = dict(base.named_parameters())
    for name, p in model.named_parameters():
        if not name.endswith("proj.weight"):
            assert torch.equal(p, ref[name]), name
    assert not (model.lm_head.weight == 0).any()
    assert not (model.model.embed_tokens.weight == 0).any()


def test_ratio_zero_changes_nothing(base):
    model, report = pruned(base, MagnitudeConfig(0.0))
    for (n, p), (_, q) in zip(model.named_parameters(), base.named_parameters()):
        assert torch.equal(p, q), n
    assert all(r.zeros == 0 for r in report)


def test_filter_fn_limits_the_layers(base):
    model, report = pruned(base, MagnitudeConfig(0.5), filter_fn=lambda m, n: n.endswith("mlp.down_proj"))
    assert [r.name for r in report] == ["model.layers.0.mlp.down_proj", "model.layers.1.mlp.down_proj"]
    assert (model.model.layers[0].mlp.down_proj.weight == 0).float().mean() == 0.5
    assert torch.equal(model.model.layers[0].self_attn.q_proj.weight, base.model.layers[0].self_attn.q_proj.weight)


def test_pruned_model_still_runs_and_changes_logits(base):
    model, _ = pruned(base, MagnitudeConfig(0.5))
    ids = torch.randint(2, 100, (1, 12))
    with torch.no_grad():
        a, b = base(input_ids=ids).logits, model(input_ids=ids).logits
    assert torch.isfinite(b).all()
    assert not torch.allclose(a, b)


@pytest.mark.parametrize("kwargs, field", [
    (dict(ratio=1.5), "prune.ratio"), (dict(ratio=-0.1), "prune.ratio"), (dict(ratio="0.5"), "prune.ratio"),
    (dict(ratio=True), "prune.ratio"), (dict(pattern="1:2"), "prune.pattern"),
    (dict(ratio=0.3, pattern="2:4"), "prune.ratio"),
])
def test_config_validation_names_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        MagnitudeConfig(**kwargs)


def test_method_name_and_frozen_config():
    assert METHODS["magnitude"] is MagnitudeConfig
    with pytest.raises(AttributeError):
        MagnitudeConfig().ratio = 0.1  # frozen
