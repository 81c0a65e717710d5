"""GGUF block packing (workbench.llamacpp.blocks): the recipe's codes bit for bit, read back with the `gguf`
package's own reference dequantization."""
import numpy as np
import pytest
import torch
from gguf import GGMLQuantizationType as GGML

from workbench.llamacpp import float_tensor, pack_codes, read_back, weights_of
from workbench.ort.nbits import LinearCodes
from workbench.quant import grid


def codes(bits, group, symmetric=True, shape=(8, 128), seed=0, scale_dtype=torch.float16):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(shape, generator=g)
    scale, zero = grid.fit(w, bits, group, symmetric)
    scale = scale.to(scale_dtype).float()  # as PackedLinear stores it
    q = grid.quantize(w, scale, zero, bits, group)
    return LinearCodes(q.numpy(), scale.numpy(), zero.numpy().astype(np.uint8), bits, group or shape[1])


@pytest.mark.parametrize("bits,group", [(4, 32), (4, 64), (4, 128), (4, 0), (3, 32), (2, 32)])
def test_symmetric_low_bit_codes_are_q4_0_exactly(bits, group):
    c = codes(bits, group)
    t = pack_codes(c)
    assert t.qtype == GGML.Q4_0 and t.exact and t.max_abs == 0.0
    assert t.data.dtype == np.uint8 and t.data.shape == (8, 128 // 32 * 18)
    np.testing.assert_array_equal(read_back(t), weights_of(c))


def test_q4_0_block_layout():
    """One block by hand: d as little-endian float16, then element j in the low nibble and j + 16 in the high one."""
    q = np.arange(32, dtype=np.uint8)[None] % 15 + 1  # codes 1..15, zero 8 -> u = q
    c = LinearCodes(q, np.array([[0.5]], np.float32), np.array([[8]], np.uint8), 4, 32)
    t = pack_codes(c)
    assert t.data[0, :2].tobytes() == np.float16(0.5).tobytes()
    u = q[0]
    np.testing.assert_array_equal(t.data[0, 2:], u[:16] | (u[16:] << 4))
    np.testing.assert_array_equal(read_back(t)[0], (q[0].astype(np.float32) - 8) * 0.5)


def test_symmetric_8_bit_codes_are_q8_0_exactly():
    c = codes(8, 32)
    t = pack_codes(c)
    assert t.qtype == GGML.Q8_0 and t.exact and t.data.shape == (8, 4 * 34)
    np.testing.assert_array_equal(read_back(t), weights_of(c))
    block = t.data[0, :34]
    assert block[:2].tobytes() == np.float16(c.scale[0, 0]).tobytes()
    np.testing.assert_array_equal(block[2:].view(np.int8), c.q[0, :32].astype(np.int16) - c.zero[0, 0])


def test_asymmetric_4_bit_codes_stay_4_bit_as_q4_1():
    c = codes(4, 32, symmetric=False)
    t = pack_codes(c)
    assert t.qtype == GGML.Q4_1 and t.data.shape == (8, 4 * 20)
    u = np.concatenate([t.data[0, 4:20] & 0xF, t.data[0, 4:20] >> 4])
    np.testing.assert_array_equal(u, c.q[0, :32])  # the codes themselves, unchanged
    # only the offset m = -zero * scale is rounded to float16: within half an f16 ulp of |m|
    bound = float(np.abs(c.zero * c.scale).max()) * 2.0 ** -11 * 1.01
    assert 0.0 <= t.max_abs <= bound
    np.testing.assert_allclose(read_back(t), weights_of(c), atol=bound)


def test_wide_8_bit_codes_are_requantized_and_the_difference_measured():
    c = codes(8, 32, symmetric=False)
    c = LinearCodes(c.q, c.scale, np.zeros_like(c.zero), 8, 32)  # q - zero up to 255: no int8 block holds it
    t = pack_codes(c)
    assert t.qtype == GGML.Q8_0 and not t.exact
    assert t.max_abs == pytest.approx(float(np.abs(read_back(t) - weights_of(c)).max()))
    assert t.max_abs <= float(np.abs(weights_of(c)).max()) / 127  # within one Q8_0 step


def test_groups_smaller_than_a_block_are_float32():
    c = codes(4, 16)
    t = pack_codes(c)
    assert t.qtype == GGML.F32 and t.exact and "16 columns" in t.how
    np.testing.assert_array_equal(read_back(t), weights_of(c))


def test_float32_scales_that_float16_cannot_hold_are_measured():
    c = codes(4, 32, scale_dtype=torch.float32)
    c = LinearCodes(c.q, c.scale * (1 + 2.0 ** -14), c.zero, 4, 32)  # not float16 values
    t = pack_codes(c)
    assert t.qtype == GGML.Q4_0 and not t.exact and 0.0 < t.max_abs < 1e-2


def test_float_tensors():
    w = np.random.default_rng(0).standard_normal((4, 64)).astype(np.float32)
    f32, f16 = float_tensor(w), float_tensor(w, GGML.F16)
    assert f32.exact and f32.qtype == GGML.F32 and f32.nbytes == w.nbytes
    assert f16.qtype == GGML.F16 and f16.nbytes == w.nbytes // 2 and 0.0 < f16.max_abs < 4e-3
    with pytest.raises(ValueError, match="F32 or F16"):
        float_tensor(w, GGML.Q4_0)
