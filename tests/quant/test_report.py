"""What a weight quantizer reports (workbench/quant/report.py): bytes as stored, SQNR, the kernel that runs,
and the layer kinds it tells apart (float, PackedLinear, BF16Linear, torch.ao's dynamic int8 Linear)."""
import copy
import math

import pytest
import torch
from torch import nn

from workbench.quant import PackedLinear, QuantReport, RTNConfig, effective_weight, layer_sqnr, quantize_
from workbench.quant.packed import BF16Linear
from workbench.quant.report import is_dynamic_int8, kernel_of, layer_record, module_bytes
from workbench.select import selected_linears

W8A8 = RTNConfig(bits=8, group_size=0, activations="int8")
_CACHE = {}


def quantized(model, config):
    """(quantized copy of tests/conftest.py's `model`, its QuantReport); cached per config: do not mutate."""
    if config not in _CACHE:
        q = copy.deepcopy(model)
        _CACHE[config] = q, quantize_(q, config)
    return _CACHE[config]


def test_float_linear_bytes_are_its_parameters():
    lin = nn.Linear(64, 96)
    assert module_bytes(lin) == (64 * 96 + 96) * 4
    assert module_bytes(nn.Linear(64, 96, bias=False)) == 64 * 96 * 4
    assert kernel_of(lin) == "fp32" and not is_dynamic_int8(lin)
    assert torch.equal(effective_weight(lin), lin.weight)


@pytest.mark.parametrize("group_size", [32, 0])
def test_4_bit_stores_fewer_bytes_layer_by_layer(model, group_size):
    q, report = quantized(model, RTNConfig(bits=4, group_size=group_size))
    assert isinstance(report, QuantReport) and report.method == "rtn"
    assert [r.name for r in report.layers] == list(selected_linears(model))
    for r in report.layers:
        after = q.get_submodule(r.name)
        assert isinstance(after, PackedLinear)
        assert r.bytes_after == module_bytes(after) < r.bytes_before == module_bytes(model.get_submodule(r.name))
        assert r.bytes_after < r.bytes_before / 4  # 4-bit codes plus scales, against float32
        assert (r.bits, r.group_size, r.kernel) == (4, group_size, "dequant-fp32")
    assert report.bytes_before == sum(r.bytes_before for r in report.layers) > report.bytes_after
    assert report.kernels == ("dequant-fp32",)
    assert len(report.table()) == len(report.layers) and report.table()[0]["name"] == report.layers[0].name


def test_sqnr_grows_with_bits(model):
    per_bits = {bits: layer_sqnr(model, quantized(model, RTNConfig(bits=bits, group_size=32))[0])
                for bits in (2, 3, 4, 8)}
    names = list(selected_linears(model))
    for lo, hi in zip((2, 3, 4), (3, 4, 8)):
        assert list(per_bits[lo]) == names
        assert all(per_bits[hi][n] > per_bits[lo][n] for n in names), (lo, hi)
    mean = {b: sum(s.values()) / len(s) for b, s in per_bits.items()}
    assert mean[8] > mean[4] + 15 > mean[2] + 15  # ~6 dB a bit
    _, report = quantized(model, RTNConfig(bits=4, group_size=32))
    assert report.sqnr_db == pytest.approx(per_bits[4], abs=1e-3)  # the report and layer_sqnr agree


def test_unchanged_weights_have_infinite_sqnr(model):
    assert all(math.isinf(s) for s in layer_sqnr(model, model).values())


def test_w8a8_layer_is_dynamic_int8_and_packed_is_not(model):
    q8, report8 = quantized(model, W8A8)
    q4, _ = quantized(model, RTNConfig(bits=4, group_size=32))
    name = report8.layers[0].name
    w8a8, packed, before = q8.get_submodule(name), q4.get_submodule(name), model.get_submodule(name)
    assert is_dynamic_int8(w8a8) and kernel_of(w8a8) == "torch-int8-dynamic"
    assert not is_dynamic_int8(packed) and not is_dynamic_int8(before)
    assert report8.kernels == ("torch-int8-dynamic",)
    # int8 values + per-channel scales and zero points + the float32 bias: about a quarter of float32
    out, inp = before.weight.shape
    assert module_bytes(w8a8) >= out * inp + out * 4
    assert module_bytes(w8a8) < module_bytes(before) / 3
    w = effective_weight(w8a8)
    assert w.shape == before.weight.shape and w.dtype == torch.float32
    assert 10 * torch.log10(before.weight.pow(2).sum() / (before.weight - w).pow(2).sum()) > 30  # 8-bit SQNR


def test_effective_weight_of_a_packed_layer_is_its_dequantized_codes(model):
    q, _ = quantized(model, RTNConfig(bits=4, group_size=32))
    packed = q.get_submodule("model.layers.0.mlp.down_proj")
    assert torch.equal(effective_weight(packed), packed.dequantize(torch.float32))


def test_layer_record_compares_a_float_layer_with_its_replacement(model):
    q, _ = quantized(model, RTNConfig(bits=4, group_size=32))
    name = "model.layers.1.self_attn.q_proj"
    before, after = model.get_submodule(name), q.get_submodule(name)
    rec = layer_record(name, before, after, 4, 32)
    assert (rec.name, rec.kernel, rec.bits, rec.group_size) == (name, "dequant-fp32", 4, 32)
    assert rec.bytes_before == module_bytes(before) > rec.bytes_after == module_bytes(after)
    assert 0 < rec.weight_sqnr_db < 60 and 0 < rec.output_sqnr_db < 60
    assert layer_record(name, before, after, 4, 32) == rec  # the random input is seeded
    same = layer_record(name, before, copy.deepcopy(before), 32, 0)
    assert math.isinf(same.weight_sqnr_db) and same.bytes_before == same.bytes_after
    bf16 = layer_record(name, before, BF16Linear(before), 16, -1)
    assert bf16.kernel == "bf16" and bf16.bytes_after < bf16.bytes_before and bf16.weight_sqnr_db > 40
