"""Tests for workbench.quant.gptq: config checks, codes and grid consistent with the weights, and
lower layer-output error than round-to-nearest on the calibration inputs."""
from __future__ import annotations

import copy

import pytest
import torch

from workbench.calib import Hessian
from workbench.quant import grid
from workbench.quant.base import quantize_
from workbench.quant.gptq import GPTQConfig, gptq_quantize
from workbench.quant.packed import PackedLinear
from workbench.select import selected_linears
from random_glm import one_thread  # noqa: F401  (autouse fixture; model, calib, layer_hessians: tests/conftest.py)


def output_error(delta: torch.Tensor, H: torch.Tensor) -> float:
    """||delta X||^2 up to the factor n/2, from H = 2/n X X^T: trace(delta H delta^T)."""
    delta = delta.double()
    return float(((delta @ H) * delta).sum())


@pytest.mark.parametrize("kwargs, field", [
    (dict(bits=16), "quant.bits"), (dict(bits=5), "quant.bits"), (dict(bits=4.0), "quant.bits"),
    (dict(group_size=48), "quant.group_size"), (dict(group_size=-1), "quant.group_size"),
    (dict(symmetric="yes"), "quant.symmetric"), (dict(act_order=1), "quant.act_order"),
    (dict(damp=0.0), "quant.damp"), (dict(blocksize=0), "quant.blocksize"),
])
def test_config_rejects_bad_values(kwargs, field):
    with pytest.raises(ValueError, match=field):
        GPTQConfig(**kwargs)


def test_needs_calibration_data(model):
    with pytest.raises(ValueError, match="gptq needs calibration data"):
        quantize_(copy.deepcopy(model), GPTQConfig(), calib=None)


@pytest.mark.parametrize("bits, group_size, symmetric, act_order", [
    (4, 32, True, False), (3, 32, True, False), (4, 32, False, True), (3, 0, True, True),
    (4, 0, False, False), (3, 32, False, True),
])
def test_layer_output_error_below_rtn(layer_hessians, bits, group_size, symmetric, act_order):
    """On every layer's calibration inputs, ||W X - W' X|| is smaller than round-to-nearest's."""
    ratios = []
    for name, (W, H) in layer_hessians.items():
        q, scale, zero = gptq_quantize(W, H, bits, group_size, symmetric, act_order=act_order, blocksize=48)
        assert q.dtype == torch.uint8 and int(q.max()) <= 2 ** bits - 1
        deq = grid.dequantize(q, scale, zero, group_size)
        assert torch.isfinite(deq).all()
        ours = output_error(deq - W, H)
        rtn = output_error(grid.fake_quantize(W, bits, group_size, symmetric) - W, H)
        assert ours < rtn, (name, ours, rtn)
        ratios.append(ours / rtn)
    assert sum(ratios) / len(ratios) < 0.8, ratios


@pytest.mark.parametrize("config", [GPTQConfig(bits=4, group_size=32), GPTQConfig(bits=3, act_order=True),
                                    GPTQConfig(bits=2, group_size=0, symmetric=False),
                                    GPTQConfig(bits=8, group_size=0)], ids=str)
def test_transform_stores_layers_packed(model, calib, config):
    quantized = copy.deepcopy(model)
    report = quantize_(quantized, config, calib=calib)
    names = list(selected_linears(model))
    assert report.method == "gptq" and [r.name for r in report.layers] == names
    assert report.kernels == ("dequant-fp32",)
    floor = {8: 35.0, 4: 12.0, 3: 6.0, 2: 1.0}[config.bits]  # dB, Gaussian-ish weights
    for r in report.layers:
        m, orig = quantized.get_submodule(r.name), model.get_submodule(r.name)
        assert isinstance(m, PackedLinear) and (m.bits, m.group_size) == (config.bits, config.group_size)
        q = m.codes()
        assert q.shape == orig.weight.shape and int(q.max()) <= 2 ** config.bits - 1
        assert torch.isfinite(m.dequantize()).all()
        assert r.weight_sqnr_db == pytest.approx(grid.sqnr_db(orig.weight, m.dequantize()), rel=1e-6)
        assert r.weight_sqnr_db > floor and r.output_sqnr_db > floor - 6, r
        assert (m.bias is None) == (orig.bias is None) and (m.bias is None or torch.equal(m.bias, orig.bias))
        # stored size: codes at `bits` per weight plus float16 scales, well under float32's 32 bits
        assert r.bytes_after < r.bytes_before * (config.bits + 2) / 32, r
    before = dict(model.named_parameters())
    for name, p in quantized.named_parameters():  # embeddings, lm_head, norms untouched
        if name.rsplit(".", 1)[0] not in names:
            assert torch.equal(p, before[name]), name


def test_refuses_already_quantized_layers(model, calib):
    quantized = copy.deepcopy(model)
    quantize_(quantized, GPTQConfig(bits=4), calib=calib)
    with pytest.raises(ValueError, match="PackedLinear, not a float nn.Linear"):
        quantize_(quantized, GPTQConfig(bits=4), calib=calib, filter_fn=lambda m, name: name.endswith("_proj"))


def test_packed_model_computes_with_the_calibrated_weights(model, calib):
    """The packed layers compute exactly what float layers holding their dequantized weights compute."""
    quantized = copy.deepcopy(model)
    quantize_(quantized, GPTQConfig(bits=4, group_size=32), calib=calib)
    floats = copy.deepcopy(model)
    with torch.no_grad():
        for name, m in selected_linears(floats).items():
            m.weight.copy_(quantized.get_submodule(name).dequantize())
        for b in calib:
            torch.testing.assert_close(quantized(input_ids=b).logits, floats(input_ids=b).logits,
                                       rtol=1e-5, atol=1e-5)


def test_model_outputs_closer_than_rtn(model, calib):
    with torch.no_grad():
        ref = [model(input_ids=b).logits for b in calib]
    ours = copy.deepcopy(model)
    quantize_(ours, GPTQConfig(bits=3, group_size=32), calib=calib)
    rtn = copy.deepcopy(model)
    for m in selected_linears(rtn).values():
        m.weight.data = grid.fake_quantize(m.weight.data, 3, 32)
    with torch.no_grad():
        err = {name: sum(float((m(input_ids=b).logits - r).norm()) for b, r in zip(calib, ref))
               for name, m in (("gptq", ours), ("rtn", rtn))}
    assert err["gptq"] < 0.7 * err["rtn"], err


@pytest.mark.parametrize("act_order", [False, True])
@pytest.mark.parametrize("dead", [[10], list(range(32, 64))], ids=["one", "whole-group"])
def test_dead_input_channels_are_damped(act_order, dead):
    g = torch.Generator().manual_seed(0)
    W = torch.randn(16, 64, generator=g)  # (out, in)
    X = torch.randn(400, 64, generator=g) @ (torch.eye(64) + 0.3 * torch.randn(64, 64, generator=g))
    X[:, dead] = 0  # dead input channels: diag(H) == 0
    stats = Hessian(64)
    stats.add_batch(X, None)
    assert (torch.diag(stats.H)[dead] == 0).all()
    q, scale, zero = gptq_quantize(W, stats.H, 4, 32, act_order=act_order, damp=0.01)
    deq = grid.dequantize(q, scale, zero, 32)
    assert torch.isfinite(deq).all() and torch.isfinite(scale).all()
    assert (deq[:, dead] == 0).all()  # weights of inputs that are always zero do not matter
    ours = float((X @ (deq - W).T).norm())
    rtn = float((X @ (grid.fake_quantize(W, 4, 32) - W).T).norm())
    assert ours < rtn, (ours, rtn)


@pytest.mark.parametrize("act_order", [False, True])
def test_result_does_not_depend_on_blocksize(layer_hessians, act_order):
    """Lazy block updates and the per-group grid fit on current weights are exact for any block size."""
    W, H = layer_hessians["model.layers.1.mlp.down_proj"]  # (64, 128)
    results = [gptq_quantize(W, H, 3, 32, act_order=act_order, blocksize=b) for b in (1, 48, 128)]
    q0, s0, z0 = results[0]
    for q, s, z in results[1:]:
        assert (q == q0).float().mean() > 0.995  # a float tie may round the other way
        torch.testing.assert_close(s, s0)
        assert torch.equal(z, z0)
