"""Tests for workbench.prune.wanda: config checks, exact per-row / 2:4 sparsity, and that the
activation-aware score beats magnitude where some input channels carry large activations."""
from __future__ import annotations

import copy

import pytest
import torch

from workbench.calib import InputNorm
from workbench.prune.base import mask_from_scores, prune_
from workbench.prune.wanda import WandaConfig, wanda_mask
from workbench.select import selected_linears
from random_glm import one_thread, tiny_glm4  # noqa: F401  (one_thread: autouse; model, calib: tests/conftest.py)


@pytest.mark.parametrize("kwargs, field", [
    (dict(ratio=1.5), "prune.ratio"), (dict(ratio=-0.1), "prune.ratio"), (dict(ratio="half"), "prune.ratio"),
    (dict(pattern="4:8"), "prune.pattern"), (dict(pattern="2:4 "), "prune.pattern"),
    (dict(ratio=0.3, pattern="2:4"), "prune.ratio must be 0.5 with prune.pattern '2:4'"),
])
def test_config_rejects_bad_values(kwargs, field):
    with pytest.raises(ValueError, match=field):
        WandaConfig(**kwargs)


@pytest.mark.parametrize("calib_arg", [None, []])
def test_needs_calibration_data(model, calib_arg):
    with pytest.raises(ValueError, match="wanda needs calibration data"):
        prune_(copy.deepcopy(model), WandaConfig(), calib=calib_arg)


@pytest.mark.parametrize("config", [WandaConfig(0.5), WandaConfig(0.3), WandaConfig(pattern="2:4")],
                         ids=str)
def test_sparsity_is_exact_and_only_selected_weights_change(model, calib, config):
    pruned = copy.deepcopy(model)
    report = prune_(pruned, config, calib=calib)
    layers = selected_linears(pruned)
    assert [r.name for r in report] == list(layers)
    for name, m in layers.items():
        zero = m.weight == 0  # (out, in)
        if config.pattern == "2:4":
            assert (zero.reshape(m.out_features, -1, 4).sum(-1) == 2).all(), name
        else:
            assert (zero.sum(1) == int(m.in_features * config.ratio)).all(), name
        assert report[list(layers).index(name)].zeros == int(zero.sum())
        kept = selected_linears(model)[name].weight
        assert torch.equal(m.weight[~zero], kept[~zero])  # Wanda only masks, never updates
    before = dict(model.named_parameters())
    for name, p in pruned.named_parameters():  # embeddings, lm_head, norms, biases untouched
        if name.removesuffix(".weight") not in layers:
            assert torch.equal(p, before[name]), name


def test_score_beats_magnitude_with_high_norm_input_channels():
    """A few input channels 30x larger (one per group of 4): Wanda keeps their weights, magnitude
    drops about half of them."""
    g = torch.Generator().manual_seed(0)
    W = torch.randn(48, 64, generator=g)  # (out, in)
    X = torch.randn(512, 64, generator=g)  # (tokens, in)
    X[:, ::9] *= 30  # channels 0, 9, 18, ...: never two in one group of 4
    stats = InputNorm(64)
    stats.add_batch(X[None], None)
    for pattern in ("unstructured", "2:4"):
        err = {}
        for method, keep in (("wanda", wanda_mask(W, stats.norm(), 0.5, pattern)),
                             ("magnitude", mask_from_scores(W.abs(), 0.5, pattern))):
            err[method] = float((X @ (W * keep).T - X @ W.T).norm())
        assert err["wanda"] < 0.5 * err["magnitude"], (pattern, err)


def test_model_with_outlier_channels_keeps_outputs_closer_than_magnitude(calib):
    """Outlier features made by large RMSNorm gains (as real LLMs have): Wanda's logits stay closer."""
    model = tiny_glm4(seed=2)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(("input_layernorm.weight", "post_attention_layernorm.weight")):
                p[:3] = 25.0
        ref = [model(input_ids=b).logits for b in calib]
    wanda = copy.deepcopy(model)
    prune_(wanda, WandaConfig(0.5), calib=calib)
    magnitude = copy.deepcopy(model)
    for m in selected_linears(magnitude).values():
        m.weight.data.mul_(mask_from_scores(m.weight.abs(), 0.5))
    with torch.no_grad():
        err = {name: sum(float((m(input_ids=b).logits - r).norm()) for b, r in zip(calib, ref))
               for name, m in (("wanda", wanda), ("magnitude", magnitude))}
    assert err["wanda"] < 0.8 * err["magnitude"], err
