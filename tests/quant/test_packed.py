"""Packed storage: exact pack/unpack, byte counts, and PackedLinear / BF16Linear numerics."""
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from workbench.measure.memory import weight_bytes
from workbench.quant import BF16Linear, PackedLinear, grid, pack, pack_linear_, unpack
from workbench.quant.packed import packed_nbytes

SHAPES = [(1, 1), (1, 7), (3, 5), (7, 13), (5, 8), (64, 128), (33, 96)]


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("bits", [2, 3, 4, 8])
def test_pack_unpack_exact(bits, shape):
    q = torch.randint(0, 2 ** bits, shape, dtype=torch.uint8, generator=_gen(bits))
    p = pack(q, bits)
    assert p.dtype == torch.uint8 and p.dim() == 1
    assert p.numel() == math.ceil(q.numel() * bits / 8) == packed_nbytes(q.numel(), bits)
    assert torch.equal(unpack(p, bits, shape), q)


@pytest.mark.parametrize("bits", [2, 3, 4, 8])
def test_pack_extreme_codes(bits):
    q = torch.tensor([[0, 2 ** bits - 1] * 9], dtype=torch.uint8)  # (1, 18)
    assert torch.equal(unpack(pack(q, bits), bits, q.shape), q)


def test_pack_layout_is_low_bits_first():
    assert pack(torch.tensor([[1, 2]], dtype=torch.uint8), 4).tolist() == [0x21]
    assert pack(torch.tensor([[1, 2, 3, 0]], dtype=torch.uint8), 2).tolist() == [0b00111001]
    codes = torch.arange(8, dtype=torch.uint8)[None]  # 3-bit 0..7 -> one 24-bit little-endian word
    word = sum(i << (3 * i) for i in range(8))
    assert pack(codes, 3).tolist() == [word & 255, (word >> 8) & 255, word >> 16]


def test_pack_rejects_bad_input():
    with pytest.raises(ValueError, match="< 2\\^4"):
        pack(torch.tensor([[16]], dtype=torch.uint8), 4)
    with pytest.raises(ValueError, match="uint8"):
        pack(torch.tensor([[1]], dtype=torch.int32), 4)
    with pytest.raises(ValueError, match="bits must be one of"):
        pack(torch.zeros(2, 2, dtype=torch.uint8), 5)
    with pytest.raises(ValueError, match="expected 2 uint8 bytes"):
        unpack(torch.zeros(3, dtype=torch.uint8), 4, (1, 4))


def _linear(out_f=64, in_f=128, seed=0):
    lin = nn.Linear(in_f, out_f)
    with torch.no_grad():
        lin.weight.copy_(torch.randn(out_f, in_f, generator=_gen(seed)) * 0.05)
        lin.bias.copy_(torch.randn(out_f, generator=_gen(seed + 1)) * 0.1)
    return lin


def _packed(lin, bits, group_size, symmetric=True):
    scale, zero = grid.fit(lin.weight.detach(), bits, group_size, symmetric)
    q = grid.quantize(lin.weight.detach(), scale, zero, bits, group_size)
    return PackedLinear.from_codes(q, scale, zero, bits, group_size, lin.bias), (q, scale, zero)


CASES = [(8, 32), (8, 0), (4, 32), (4, 128), (4, 0), (3, 32), (2, 32)]
# output SQNR floors (dB) vs the float layer on N(0, 1) inputs; measured symmetric
# 45.0 / 43.5 / 20.3 / 18.6 / 18.6 / 13.2 / 3.9, asymmetric 0.9-4.3 dB higher
OUT_FLOOR = {(8, 32): 43.5, (8, 0): 42, (4, 32): 19, (4, 128): 17, (4, 0): 17, (3, 32): 12,
             (2, 32): 3}


@pytest.mark.parametrize("symmetric", [True, False])
@pytest.mark.parametrize("bits,group_size", CASES)
def test_forward_is_linear_of_dequantized_weight(bits, group_size, symmetric):
    lin = _linear()
    layer, (q, scale, zero) = _packed(lin, bits, group_size, symmetric)
    x = torch.randn(2, 5, 128, generator=_gen(7))  # (B, T, in)
    w = grid.dequantize(q, layer.scale.float(), zero, group_size)  # the grid as stored
    with torch.no_grad():
        y = layer(x)
        assert y.shape == (2, 5, 64)
        torch.testing.assert_close(y, F.linear(x, w, lin.bias), atol=1e-6, rtol=1e-6)
        assert torch.equal(layer.codes(), q)
        assert grid.sqnr_db(lin(x), y) > OUT_FLOOR[bits, group_size]


@pytest.mark.parametrize("bits,group_size", CASES)
def test_packed_bytes(bits, group_size):
    lin = _linear()
    layer, _ = _packed(lin, bits, group_size)
    n_groups = 128 // (group_size or 128)
    expect = math.ceil(64 * 128 * bits / 8) + 64 * n_groups * 2 + 1 + 64 * 4  # codes, fp16 scales, shared zero, bias
    assert weight_bytes(layer) == expect
    assert layer.scale.dtype == torch.float16 and layer.zero.shape == (1, 1)
    asym, _ = _packed(lin, bits, group_size, symmetric=False)
    assert asym.zero.shape == (64, n_groups)
    assert weight_bytes(asym) == expect - 1 + 64 * n_groups


def test_forward_caches_nothing():
    layer, _ = _packed(_linear(), 4, 32)
    before = weight_bytes(layer)
    keys = set(layer.state_dict())
    with torch.no_grad():
        layer(torch.randn(3, 128))
    assert weight_bytes(layer) == before and set(layer.state_dict()) == keys == {"qweight", "scale", "zero", "bias"}
    assert not any(isinstance(v, torch.Tensor) for v in vars(layer).values())
    assert layer.kernel == "dequant-fp32"


def test_float16_scale_costs_little():
    lin = _linear()
    w = lin.weight.detach()
    scale, zero = grid.fit(w, 8, 32)
    q = grid.quantize(w, scale, zero, 8, 32)
    exact = grid.sqnr_db(w, grid.dequantize(q, scale, zero, 32))
    stored = grid.sqnr_db(w, grid.dequantize(q, scale.half().float(), zero, 32))
    assert abs(exact - stored) < 0.1  # float16 scale rounding, relative 2^-11


def test_out_of_range_scales_stay_float32():
    q = torch.zeros(4, 32, dtype=torch.uint8)
    zero = torch.full((4, 1), 8.0)
    for s in (1e6, 1e-7):
        layer = PackedLinear.from_codes(q, torch.full((4, 1), s), zero, 4, 0)
        assert layer.scale.dtype == torch.float32
        assert torch.allclose(layer.dequantize(), torch.full((4, 32), -8 * s))


def test_from_codes_validates():
    q = torch.zeros(4, 32, dtype=torch.uint8)
    s, z = torch.ones(4, 1), torch.full((4, 1), 8.0)
    with pytest.raises(ValueError, match="codes must lie in"):
        PackedLinear.from_codes(q + 16, s, z, 4)
    with pytest.raises(ValueError, match="zero points must be integers"):
        PackedLinear.from_codes(q, s, z + 0.5, 4)
    with pytest.raises(ValueError, match="scale and zero must have shape \\(4, 2\\)"):
        PackedLinear.from_codes(q, s, z, 4, 16)
    with pytest.raises(ValueError, match="does not divide in_features 32"):
        PackedLinear.from_codes(q, s, z, 4, 24)


@pytest.mark.parametrize("symmetric", [True, False])
def test_state_dict_round_trip(symmetric):
    layer, _ = _packed(_linear(), 3, 32, symmetric)
    fresh = PackedLinear(128, 64, 3, 32, bias=True, shared_zero=symmetric)
    fresh.load_state_dict(layer.state_dict())
    x = torch.randn(4, 128)
    with torch.no_grad():
        assert torch.equal(fresh(x), layer(x))


def test_pack_linear_replaces_in_place():
    model = nn.Sequential(_linear(16, 32), nn.ReLU(), _linear(8, 16, seed=3))
    ref = model[2]
    x = torch.randn(5, 32)
    with torch.no_grad():
        y_ref = model(x)
    scale, zero = grid.fit(ref.weight.detach(), 8, 0)
    q = grid.quantize(ref.weight.detach(), scale, zero, 8, 0)
    new = pack_linear_(model, "2", q, scale, zero, 8, 0)
    assert model[2] is new and isinstance(new, PackedLinear)
    assert torch.equal(new.bias, ref.bias)
    with torch.no_grad():
        assert grid.sqnr_db(y_ref, model(x)) > 35
    with pytest.raises(ValueError, match="0: codes have shape"):
        pack_linear_(model, "0", q, scale, zero, 8, 0)


def test_bf16_linear_halves_storage():
    lin = _linear()
    layer = BF16Linear(lin)
    assert layer.weight.dtype == torch.bfloat16 and layer.bias.dtype == torch.float32
    assert weight_bytes(layer) == 64 * 128 * 2 + 64 * 4
    x = torch.randn(3, 128)
    with torch.no_grad():
        y = layer(x)
        assert y.dtype == torch.float32
        assert grid.sqnr_db(lin(x), y) > 40  # bf16 keeps 8 mantissa bits: ~50 dB
