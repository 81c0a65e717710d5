"""Tests for workbench.prune.sparsegpt: config checks, exact per-row / 2:4 sparsity, and that the
reconstruction makes each layer's output on the calibration inputs closer than magnitude pruning."""
from __future__ import annotations

import copy

import pytest
import torch

from workbench.calib import Hessian
from workbench.prune.base import mask_from_scores, prune_
from workbench.prune.sparsegpt import SparseGPTConfig, sparsegpt_prune
from workbench.select import selected_linears
from random_glm import one_thread  # noqa: F401  (autouse fixture; model, calib, layer_hessians: tests/conftest.py)


def output_error(delta: torch.Tensor, H: torch.Tensor) -> float:
    """||delta X||^2 up to the factor n/2, from H = 2/n X X^T: trace(delta H delta^T)."""
    delta = delta.double()
    return float(((delta @ H) * delta).sum())


@pytest.mark.parametrize("kwargs, field", [
    (dict(ratio=0.95), "prune.ratio"), (dict(pattern="1:4"), "prune.pattern"),
    (dict(ratio=0.6, pattern="2:4"), "prune.ratio must be 0.5 with prune.pattern '2:4'"),
    (dict(blocksize=0), "prune.blocksize"), (dict(blocksize=30), "prune.blocksize"),
    (dict(blocksize=64.0), "prune.blocksize"), (dict(damp=0), "prune.damp"), (dict(damp=2.0), "prune.damp"),
])
def test_config_rejects_bad_values(kwargs, field):
    with pytest.raises(ValueError, match=field):
        SparseGPTConfig(**kwargs)


def test_needs_calibration_data(model):
    with pytest.raises(ValueError, match="sparsegpt needs calibration data"):
        prune_(copy.deepcopy(model), SparseGPTConfig(), calib=[])


@pytest.mark.parametrize("config", [SparseGPTConfig(0.5), SparseGPTConfig(0.3, blocksize=32),
                                    SparseGPTConfig(pattern="2:4", blocksize=16)], ids=str)
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
        assert torch.isfinite(m.weight).all()
    before = dict(model.named_parameters())
    for name, p in pruned.named_parameters():  # embeddings, lm_head, norms, biases untouched
        if name.removesuffix(".weight") not in layers:
            assert torch.equal(p, before[name]), name


@pytest.mark.parametrize("pattern", ["unstructured", "2:4"])
def test_layer_output_error_below_magnitude(layer_hessians, pattern):
    """On every layer's calibration inputs, ||W X - W' X|| is smaller than magnitude pruning's."""
    ratios = []
    for name, (W, H) in layer_hessians.items():
        pruned = sparsegpt_prune(W, H, 0.5, pattern, blocksize=32)
        assert ((pruned == 0).sum(1) == W.shape[1] // 2).all()
        magnitude = W * mask_from_scores(W.abs(), 0.5, pattern)
        ours, theirs = output_error(pruned - W, H), output_error(magnitude - W, H)
        assert ours < theirs, (name, ours, theirs)
        ratios.append(ours / theirs)
    assert sum(ratios) / len(ratios) < 0.8, ratios


def test_model_outputs_closer_than_magnitude(model, calib):
    with torch.no_grad():
        ref = [model(input_ids=b).logits for b in calib]
    ours = copy.deepcopy(model)
    prune_(ours, SparseGPTConfig(0.5), calib=calib)
    magnitude = copy.deepcopy(model)
    for m in selected_linears(magnitude).values():
        m.weight.data.mul_(mask_from_scores(m.weight.abs(), 0.5))
    with torch.no_grad():
        err = {name: sum(float((m(input_ids=b).logits - r).norm()) for b, r in zip(calib, ref))
               for name, m in (("sparsegpt", ours), ("magnitude", magnitude))}
    assert err["sparsegpt"] < 0.7 * err["magnitude"], err


def test_dead_input_channel_is_handled():
    g = torch.Generator().manual_seed(0)
    W = torch.randn(16, 32, generator=g)  # (out, in)
    X = torch.randn(300, 32, generator=g)  # (tokens, in)
    X[:, 7] = 0
    stats = Hessian(32)
    stats.add_batch(X, None)
    pruned = sparsegpt_prune(W, stats.H, 0.5)
    assert torch.isfinite(pruned).all()
    assert (pruned[:, 7] == 0).all()  # dead column pruned first
    assert ((pruned == 0).sum(1) == 16).all()


def test_2_4_does_not_depend_on_blocksize(layer_hessians):
    """Lazy block updates are exact: the 2:4 result is the same for any block size."""
    W, H = layer_hessians["model.layers.1.mlp.down_proj"]
    results = [sparsegpt_prune(W, H, 0.5, "2:4", blocksize=b) for b in (4, 36, 128)]
    for other in results[1:]:
        assert torch.equal(other == 0, results[0] == 0)
        torch.testing.assert_close(other, results[0], rtol=1e-4, atol=1e-5)
