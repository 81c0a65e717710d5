"""Round-to-nearest on a tiny random GLM-4: stored bytes, logits SQNR, kernels, config validation."""
import copy

import pytest
import torch
from torch import nn
from torch.ao.nn.quantized.dynamic import Linear as DynamicInt8Linear

from workbench.measure.memory import weight_bytes
from workbench.model.generate import decode_one, prefill
from workbench.quant import BF16Linear, PackedLinear, RTNConfig, grid, layer_sqnr, quantize_
from workbench.select import default_filter, selected_linears


@pytest.fixture(scope="module")
def base(model):
    """tests/conftest.py's random GLM-4 (random biases and norms: dropped ones would show), ids, its logits."""
    ids = torch.randint(2, 100, (2, 16), generator=torch.Generator().manual_seed(1))  # (B, T)
    with torch.no_grad():
        logits = model(input_ids=ids).logits  # (B, T, V)
    return model, ids, logits


_CACHE = {}


def _apply(base, config):
    """(quantized copy, report, logits SQNR in dB vs float); cached per config: do not mutate."""
    if config not in _CACHE:
        model, ids, ref = base
        q = copy.deepcopy(model)
        report = quantize_(q, config)
        with torch.no_grad():
            logits = q(input_ids=ids).logits
        _CACHE[config] = q, report, grid.sqnr_db(ref, logits)
    return _CACHE[config]


def _bias_bytes(m):
    return 0 if m.bias is None else m.bias.numel() * 4


W8A8 = RTNConfig(bits=8, group_size=0, activations="int8")
# (config, layer type, kernel, logits SQNR floor in dB vs the float model)
CASES = [
    (RTNConfig(bits=16), BF16Linear, "bf16", 38.0),
    (RTNConfig(bits=8, group_size=32), PackedLinear, "dequant-fp32", 36.0),
    (RTNConfig(bits=8, group_size=0), PackedLinear, "dequant-fp32", 34.0),
    (RTNConfig(bits=4, group_size=32), PackedLinear, "dequant-fp32", 12.0),
    (RTNConfig(bits=4, group_size=64, symmetric=False), PackedLinear, "dequant-fp32", 11.0),
    (RTNConfig(bits=4, group_size=0), PackedLinear, "dequant-fp32", 10.0),
    (RTNConfig(bits=3, group_size=32), PackedLinear, "dequant-fp32", 4.0),
    (RTNConfig(bits=2, group_size=32, symmetric=False), PackedLinear, "dequant-fp32", 0.0),
    (W8A8, DynamicInt8Linear, "torch-int8-dynamic", 28.0),
    (RTNConfig(bits=8, group_size=0, symmetric=False, activations="int8"), DynamicInt8Linear,
     "torch-int8-dynamic", 28.0),
]


@pytest.mark.parametrize("config,layer_type,kernel,floor", CASES, ids=[repr(c[0]) for c in CASES])
def test_rtn_layers_kernel_and_logits(base, config, layer_type, kernel, floor):
    model, _, _ = base
    names = list(selected_linears(model))
    q, report, sqnr = _apply(base, config)
    assert [r.name for r in report.layers] == names and len(names) == 12
    assert all(isinstance(q.get_submodule(n), layer_type) for n in names)
    assert report.kernels == (kernel,)
    assert sqnr > floor, f"logits SQNR {sqnr:.1f} dB"
    # lm_head and embeddings are untouched by default
    assert type(q.lm_head) is nn.Linear and torch.equal(q.lm_head.weight, model.lm_head.weight)
    assert torch.equal(q.model.embed_tokens.weight, model.model.embed_tokens.weight)
    # the report's SQNRs agree with layer_sqnr and bound the layer outputs
    table = layer_sqnr(model, q)
    for r in report.layers:
        assert r.weight_sqnr_db == pytest.approx(table[r.name], abs=1e-4)
        assert r.output_sqnr_db > floor


def _expected_packed_bytes(model, bits, group_size, symmetric):
    total = 0
    for m in selected_linears(model).values():
        n_groups = m.in_features // (group_size or m.in_features)
        zeros = 1 if symmetric else m.out_features * n_groups
        total += -(-m.out_features * m.in_features * bits // 8) + m.out_features * n_groups * 2 + zeros
        total += _bias_bytes(m)  # float32 bias (q, k, v only in GLM-4)
    return total


@pytest.mark.parametrize("config", [RTNConfig(8, 32), RTNConfig(8, 0), RTNConfig(4, 32),
                                    RTNConfig(4, 64, False), RTNConfig(3, 32), RTNConfig(2, 32)],
                         ids=repr)
def test_weight_bytes_are_packed_bytes(base, config):
    model = base[0]
    q, report, _ = _apply(base, config)
    layers_fp32 = sum(m.weight.numel() * 4 + _bias_bytes(m) for m in selected_linears(model).values())
    expect = _expected_packed_bytes(model, config.bits, config.group_size, config.symmetric)
    assert report.bytes_before == layers_fp32 and report.bytes_after == expect
    assert weight_bytes(q) == weight_bytes(model) - layers_fp32 + expect
    # weights alone: bits/32 of fp32, plus scale (and zero) overhead of at most 1 bit per weight
    weights = sum(m.weight.numel() for m in selected_linears(model).values())
    ratio = (expect - sum(_bias_bytes(m) for m in selected_linears(model).values())) / (weights * 4)
    assert config.bits / 32 < ratio < (config.bits + 1) / 32


def test_bf16_storage_halves(base):
    model = base[0]
    q, report, _ = _apply(base, RTNConfig(bits=16))
    layers = selected_linears(model).values()
    halved = sum(m.weight.numel() * 2 for m in layers)
    assert report.bytes_after == halved + sum(_bias_bytes(m) for m in layers)
    assert weight_bytes(model) - weight_bytes(q) == halved


def test_logits_sqnr_decreases_with_bits(base):
    s = [_apply(base, RTNConfig(bits=b, group_size=32))[2] for b in (16, 8, 4, 3, 2)]
    assert s == sorted(s, reverse=True) and s[1] - s[2] > 15, s


def test_w8a8_is_the_int8_kernel_and_restores_engine(base):
    before = torch.backends.quantized.engine
    q, report, sqnr = _apply(base, W8A8)
    assert torch.backends.quantized.engine == before
    layer = q.model.layers[0].mlp.down_proj
    assert isinstance(layer, DynamicInt8Linear) and layer.weight().dtype == torch.qint8
    assert layer.weight().qscheme() == torch.per_channel_affine  # torch stores symmetric as affine
    assert not layer.weight().q_per_channel_zero_points().any()  # ... with zero points 0
    assert sqnr > 20
    # stored bytes: int8 weights, a float64 scale and an int64 zero point per channel, and a float32
    # bias (qnnpack stores zeros for a layer without one)
    for r in report.layers:
        m = base[0].get_submodule(r.name)
        assert r.bytes_after == m.out_features * (m.in_features + 8 + 8 + 4)
        assert r.bytes_before == m.out_features * m.in_features * 4 + _bias_bytes(m)


def test_w8a8_weight_bytes(base):
    q, report, _ = _apply(base, W8A8)
    assert weight_bytes(q) == weight_bytes(base[0]) - report.bytes_before + report.bytes_after


@pytest.mark.parametrize("config", [RTNConfig(4, 32), W8A8], ids=repr)
def test_cached_decode_matches_full_forward(base, config):
    q, _, _ = _apply(base, config)
    ids = base[1][:1]  # (1, T)
    with torch.no_grad():
        full = q(input_ids=ids).logits[0, -1]  # (V,)
        _, cache = prefill(q, ids[:, :-1])
        step = decode_one(q, ids[:, -1:], cache)  # (1, V)
    assert grid.sqnr_db(full, step.reshape(-1)) > (60 if config.activations == "none" else 25)


def test_filter_fn_selects_layers(base):
    model = base[0]
    only_mlp = lambda m, n: default_filter(m, n) and ".mlp." in n  # noqa: E731
    q = copy.deepcopy(model)
    report = quantize_(q, RTNConfig(4, 32), filter_fn=only_mlp)
    assert {r.name.rsplit(".", 1)[1] for r in report.layers} == {"gate_up_proj", "down_proj"}
    assert type(q.model.layers[0].self_attn.q_proj) is nn.Linear
    with_head = lambda m, n: isinstance(m, nn.Linear)  # noqa: E731
    report = quantize_(copy.deepcopy(model), RTNConfig(8, 0), filter_fn=with_head)
    assert report.layers[-1].name == "lm_head" and report.layers[-1].bytes_after < 100 * 64 * 4 / 3


def test_group_size_must_divide_every_layer(base):
    model = base[0]
    q = copy.deepcopy(model)
    with pytest.raises(ValueError, match="group_size 128 does not divide in_features 64 of layer "
                                         "model.layers.0.self_attn.q_proj"):
        quantize_(q, RTNConfig(4, 128))
    assert type(q.model.layers[1].mlp.down_proj) is nn.Linear  # nothing was half-done
    quantize_(copy.deepcopy(model), RTNConfig(bits=16, group_size=128))  # no grid: fine


@pytest.mark.parametrize("kwargs,field", [
    (dict(bits=5), "quant.bits must be one of 16, 8, 4, 3, 2, got 5"),
    (dict(bits=True), "quant.bits"),
    (dict(bits=8.0), "quant.bits"),
    (dict(group_size=48), "quant.group_size must be one of 0, 32, 64, 128"),
    (dict(symmetric="yes"), "quant.symmetric must be true or false"),
    (dict(activations="fp8"), "quant.activations must be one of none, int8"),
    (dict(bits=4, activations="int8"), "quant.activations 'int8' needs quant.bits 8"),
])
def test_bad_configs_name_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field.replace("(", "\\(")):
        RTNConfig(**kwargs)


def test_config_is_frozen():
    with pytest.raises(Exception):
        RTNConfig().bits = 4
