"""The workbench's quantized codes packed into MatMulNBits: bit for bit, and the same function on ONNX Runtime."""
import numpy as np
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper
from torch import nn

from workbench.ort.nbits import codes_of, concat_rows, from_nbits, nbits_bytes, to_nbits
from workbench.quant import PackedLinear, RTNConfig, quantize_
from workbench.quant import grid

GRIDS = [(bits, group, sym) for bits in (4, 8) for group in (0, 32, 64, 128) for sym in (True, False)]


def packed(out_f, in_f, bits, group, symmetric, seed=0):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(out_f, in_f, generator=g) * torch.linspace(0.2, 3.0, in_f)  # uneven columns
    scale, zero = grid.fit(w, bits, group, symmetric)
    q = grid.quantize(w, scale, zero, bits, group)
    return PackedLinear.from_codes(q, scale, zero, bits, group, torch.randn(out_f, generator=g))


def run_nbits(w, x: np.ndarray, accuracy_level: int = 0) -> np.ndarray:
    inits = [numpy_helper.from_array(w.B, "B"), numpy_helper.from_array(w.scales, "S")]
    if w.zero_points is not None:
        inits.append(numpy_helper.from_array(w.zero_points, "Z"))
    node = helper.make_node("MatMulNBits", ["x", *(t.name for t in inits)], ["y"], domain="com.microsoft", K=w.K,
                            N=w.N, bits=w.bits, block_size=w.block_size, accuracy_level=accuracy_level)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x.shape))],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [*x.shape[:-1], w.N])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18), helper.make_opsetid("com.microsoft", 1)])
    model.ir_version = 10
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {"x": x})[0]


@pytest.mark.parametrize("bits,group,symmetric", GRIDS)
def test_round_trip_is_bit_for_bit(bits, group, symmetric):
    layer = packed(24, 256, bits, group, symmetric)
    codes = codes_of(layer)
    w = to_nbits(codes)
    q, scale, zero = from_nbits(w)
    blocks = w.B.shape[1]
    assert w.block_size == (group or 128) and blocks * w.block_size == 256
    reps = blocks // codes.scale.shape[1]  # per channel: the row's grid repeated per block
    assert np.array_equal(q, layer.codes().numpy())
    assert np.array_equal(scale, np.repeat(layer.scale.float().numpy(), reps, 1))
    want_zero = np.broadcast_to(layer.zero.numpy(), (24, codes.scale.shape[1]))
    assert np.array_equal(zero, np.repeat(want_zero, reps, 1))
    assert (w.zero_points is None) == symmetric  # symmetric: the kernel's default zero point 2^(bits-1)


@pytest.mark.parametrize("bits,group,symmetric", [(4, 32, True), (4, 128, False), (8, 0, True), (4, 0, False)])
def test_onnxruntime_computes_the_packed_layer(bits, group, symmetric):
    layer = packed(40, 256, bits, group, symmetric, seed=1)
    x = torch.randn(1, 5, 256)
    w = to_nbits(codes_of(layer))
    want = (x @ layer.dequantize().T).numpy()  # bias is added by a separate Add in the graphs
    got = run_nbits(w, x.numpy())
    assert np.abs(got - want).max() <= 1e-4 * np.abs(want).max()
    got4 = run_nbits(w, x.numpy(), accuracy_level=4)  # int8 activations: close, not exact
    assert np.abs(got4 - want).max() <= 0.03 * np.abs(want).max()


def test_per_channel_rows_that_are_no_multiple_of_the_block_are_padded():
    layer = packed(8, 200, 4, 0, False, seed=2)  # K = 200: blocks of 128, the last one padded
    w = to_nbits(codes_of(layer))
    assert w.B.shape == (8, 2, 64) and w.K == 200
    assert np.array_equal(from_nbits(w)[0], layer.codes().numpy())
    x = torch.randn(1, 3, 200)
    assert np.allclose(run_nbits(w, x.numpy()), (x @ layer.dequantize().T).numpy(), atol=1e-4, rtol=1e-4)


def test_w8a8_codes_are_torch_ao_int8_shifted():
    model = nn.Sequential(nn.Linear(64, 16))
    quantize_(model, RTNConfig(bits=8, group_size=0, activations="int8"), filter_fn=lambda m, n: isinstance(m, nn.Linear))
    ao = model[0]
    c = codes_of(ao)
    w = ao.weight()
    assert np.array_equal(c.q.astype(np.int16) - 128, w.int_repr().numpy())
    deq = (c.q.astype(np.float32) - c.zero) * c.scale
    assert np.allclose(deq, w.dequantize().numpy(), atol=1e-6)
    assert np.allclose(c.bias, ao.bias().detach().numpy())


def test_qkv_rows_concatenate_and_float_layers_have_no_codes():
    q, k = packed(16, 64, 4, 32, True, 3), packed(8, 64, 4, 32, True, 4)
    both = concat_rows([codes_of(q), codes_of(k)])
    assert both.shape == (24, 64) and np.array_equal(both.q[16:], k.codes().numpy())
    assert codes_of(nn.Linear(4, 4)) is None
    with pytest.raises(ValueError, match="same bits"):
        concat_rows([codes_of(q), codes_of(packed(8, 64, 8, 32, True))])


def test_three_bit_codes_are_refused_and_bytes_are_counted():
    with pytest.raises(ValueError, match="3-bit weights have no ONNX Runtime CPU kernel"):
        to_nbits(codes_of(packed(8, 64, 3, 32, True)))
    w = to_nbits(codes_of(packed(32, 256, 4, 32, False)))
    assert nbits_bytes(w) == 32 * 256 // 2 + 32 * 8 * 4 + 32 * 8 // 2  # codes, float32 scales, packed zero points
