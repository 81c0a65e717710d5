"""The workbench's own quantized weights packed, as they are, into ONNX Runtime `MatMulNBits` initializers.

onnxruntime-genai's builder writes pre-quantized (AWQ / GPTQ) checkpoints this way; we do the same
with the codes our RTN and GPTQ produced, so the exported graph computes with exactly the weights
that were measured (nothing is re-quantized). `MatMulNBits` (com.microsoft) computes
Y = A @ dequant(B)^T with, per output row n and block b of `block_size` input columns:

    W[n, b*bs:(b+1)*bs] = (q[n, b*bs:(b+1)*bs] - zero_point[n, b]) * scale[n, b]

Layout (K inputs, N outputs, `k_blocks = ceil(K / block_size)`):
    B            uint8 (N, k_blocks, block_size * bits / 8)  codes, 4 bits: two per byte, low nibble first
    scales       float32 (N * k_blocks,)
    zero_points  uint8 (N * ceil(k_blocks * bits / 8),), 4 bits packed as B; omitted when every zero
                 point is 2^(bits-1), the kernel's default (our symmetric grid).
Our group sizes 32 / 64 / 128 are the block size; per-channel grids (group 0) are written as blocks
of 128 with the row's scale and zero repeated (the same weights). torch.ao's W8A8 layers (int8 codes,
one scale per row) are written as 8-bit codes shifted by 128.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

NBITS = (4, 8)  # widths with a CPU kernel
PER_CHANNEL_BLOCK = 128


@dataclass(frozen=True)
class LinearCodes:
    """A quantized Linear as integer codes: W = (q - zero) * scale per row and group.

    q: uint8 (N, K); scale: float32 (N, groups); zero: uint8 (N, groups); bits; group_size
    (input columns per group, K for one group per row); bias: float32 (N,) or None.
    """

    q: np.ndarray
    scale: np.ndarray
    zero: np.ndarray
    bits: int
    group_size: int
    bias: np.ndarray | None = None

    @property
    def shape(self) -> tuple[int, int]:
        return self.q.shape


def is_ao_linear(module: nn.Module) -> bool:
    """Whether `module` is a torch.ao (W8A8 dynamic int8) Linear."""
    from ..quant.report import is_dynamic_int8

    return is_dynamic_int8(module) and type(module).__name__ == "Linear"


def is_quantized(module: nn.Module) -> bool:
    """Whether `module` is a quantized Linear that `codes_of` reads (PackedLinear or W8A8)."""
    from ..quant import PackedLinear

    return isinstance(module, PackedLinear) or is_ao_linear(module)


def codes_of(module: nn.Module) -> LinearCodes | None:
    """The codes a quantized layer computes with, or None for a float layer.

    Args:
        module: an nn.Linear (None), a workbench PackedLinear, or a torch.ao dynamic int8 Linear.
    Returns:
        LinearCodes.
    Raises:
        ValueError: a layer type that holds weights but is neither (e.g. bfloat16).
    """
    from ..quant import PackedLinear

    if type(module) is nn.Linear:
        return None
    bias = getattr(module, "bias", None)
    if callable(bias):  # torch.ao layers expose bias() as a method
        bias = bias()
    bias = None if bias is None else bias.detach().float().numpy()
    if isinstance(module, PackedLinear):
        n, k = module.out_features, module.in_features
        groups = k // (module.group_size or k)
        zero = module.zero.expand(n, groups) if module.zero.numel() == 1 else module.zero
        return LinearCodes(module.codes().numpy(), module.scale.float().numpy(), zero.numpy().astype(np.uint8),
                           module.bits, module.group_size or k, bias)
    if is_ao_linear(module):
        w = module.weight()  # per-channel qint8
        q = (w.int_repr().to(torch.int16) + 128).to(torch.uint8).numpy()
        scale = w.q_per_channel_scales().float().numpy()[:, None]
        zero = (w.q_per_channel_zero_points().to(torch.int16) + 128).to(torch.uint8).numpy()[:, None]
        return LinearCodes(q, scale, zero, 8, q.shape[1], bias)
    raise ValueError(f"{type(module).__name__} layers have no MatMulNBits form: ONNX Runtime runs 4- and 8-bit "
                     "codes (PackedLinear, W8A8) and float Linears")


def concat_rows(parts: list[LinearCodes]) -> LinearCodes:
    """One layer whose output rows are those of `parts` in order (q, k, v -> qkv); same bits and groups."""
    first = parts[0]
    if any((p.bits, p.group_size, p.shape[1]) != (first.bits, first.group_size, first.shape[1]) for p in parts):
        raise ValueError("layers fused into one MatMulNBits need the same bits, group size and inputs")
    bias = None if all(p.bias is None for p in parts) else np.concatenate(
        [p.bias if p.bias is not None else np.zeros(p.shape[0], np.float32) for p in parts])
    return LinearCodes(*(np.concatenate([getattr(p, f) for p in parts]) for f in ("q", "scale", "zero")),
                       first.bits, first.group_size, bias)


@dataclass(frozen=True)
class NBitsWeight:
    """MatMulNBits initializers and attributes (see module doc)."""

    B: np.ndarray
    scales: np.ndarray
    zero_points: np.ndarray | None
    K: int
    N: int
    bits: int
    block_size: int


def _pack_rows(a: np.ndarray, bits: int) -> np.ndarray:
    """(N, M) codes < 2^bits -> (N, M * bits / 8) bytes, 4 bits low nibble first (M even)."""
    return a.astype(np.uint8) if bits == 8 else (a[:, 0::2] | (a[:, 1::2] << 4)).astype(np.uint8)


def _unpack_rows(b: np.ndarray, bits: int) -> np.ndarray:
    if bits == 8:
        return b.copy()
    out = np.empty((b.shape[0], b.shape[1] * 2), np.uint8)
    out[:, 0::2], out[:, 1::2] = b & 0xF, b >> 4
    return out


def block_size(codes: LinearCodes) -> int:
    """The MatMulNBits block of these codes: their group size, or 128 for one group per row.

    Raises:
        ValueError: a group size that is no power of two >= 16.
    """
    group, k = codes.group_size, codes.shape[1]
    block = group if group < k else PER_CHANNEL_BLOCK
    if block & (block - 1) or block < 16:
        raise ValueError(f"group size {group} is no MatMulNBits block size (a power of two >= 16)")
    return block


def to_nbits(codes: LinearCodes) -> NBitsWeight:
    """Pack codes into MatMulNBits form (bit for bit: `from_nbits` gives them back).

    Args:
        codes: LinearCodes of 4 or 8 bits.
    Returns:
        NBitsWeight.
    Raises:
        ValueError: another width, or a group size the kernel does not take.
    """
    if codes.bits not in NBITS:
        raise ValueError(f"{codes.bits}-bit weights have no ONNX Runtime CPU kernel (MatMulNBits runs "
                         f"{' and '.join(map(str, NBITS))} bits)")
    n, k = codes.shape
    group, block = codes.group_size, block_size(codes)
    scale, zero = codes.scale, codes.zero
    if block != group:  # one group per row: the row's grid repeated per block
        blocks = -(-k // block)
        scale, zero = np.repeat(scale, blocks, 1), np.repeat(zero, blocks, 1)
    blocks = scale.shape[1]
    q = codes.q
    if blocks * block > k:  # the last block padded with its zero point (dequantizes to 0, never read)
        q = np.concatenate([q, np.repeat(zero[:, -1:], blocks * block - k, 1)], 1)
    B = _pack_rows(q, codes.bits).reshape(n, blocks, block * codes.bits // 8)
    default = 2 ** (codes.bits - 1)
    zp = None
    if not (zero == default).all():
        zpad = np.concatenate([zero, np.zeros((n, blocks % 2), np.uint8)], 1) if codes.bits == 4 else zero
        zp = _pack_rows(zpad, codes.bits).reshape(-1)
    return NBitsWeight(np.ascontiguousarray(B), scale.astype(np.float32).reshape(-1), zp, k, n, codes.bits, block)


def from_nbits(w: NBitsWeight) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The codes, scales and zero points (N, K), (N, k_blocks), (N, k_blocks) a MatMulNBits weight holds."""
    blocks = w.B.shape[1]
    q = _unpack_rows(w.B.reshape(w.N, -1), w.bits)[:, : w.K]
    if w.zero_points is None:
        zero = np.full((w.N, blocks), 2 ** (w.bits - 1), np.uint8)
    else:
        zero = _unpack_rows(w.zero_points.reshape(w.N, -1), w.bits)[:, :blocks]
    return q, w.scales.reshape(w.N, blocks), zero


def nbits_bytes(w: NBitsWeight) -> int:
    """Bytes the initializers store."""
    return w.B.nbytes + w.scales.nbytes + (0 if w.zero_points is None else w.zero_points.nbytes)


__all__ = ["LinearCodes", "NBITS", "NBitsWeight", "block_size", "codes_of", "concat_rows", "is_ao_linear", "is_quantized", "from_nbits", "nbits_bytes", "to_nbits"]
