"""The recipe's own integer codes packed into GGUF block formats, exactly where a format holds them.

llama.cpp's legacy blocks cover 32 input columns with one float16 scale:

    Q4_0  18 bytes: d (f16), 16 bytes of 4-bit codes u (element j low nibble, j + 16 high): w = (u - 8) * d
    Q4_1  20 bytes: d (f16), m (f16), 16 bytes as Q4_0:                                    w = u * d + m
    Q8_0  34 bytes: d (f16), 32 int8 codes s:                                              w = s * d

Our layers compute w = (q - zero) * scale per row and group (`workbench.ort.nbits.LinearCodes`, the
codes RTN / GPTQ / W8A8 produced). Which block holds them, by what the codes are:

| codes                                                 | GGUF  | exact?                              |
|-------------------------------------------------------|-------|-------------------------------------|
| q - zero in [-8, 7] (symmetric 4, 3 and 2 bits)       | Q4_0  | yes: u = q - zero + 8, d = scale    |
| q - zero in [-128, 127] (symmetric 8 bits, W8A8)      | Q8_0  | yes: s = q - zero, d = scale        |
| other codes of <= 4 bits (asymmetric grids)           | Q4_1  | u = q; m = -zero * scale in f16     |
| other 8-bit codes                                     | Q8_0  | re-quantized from the weight        |
| groups that are not whole 32-column blocks            | F32   | yes (the dequantized weight)        |

A group of 64 or 128 columns (or a whole row, per channel) is written as 2, 4 or K / 32 blocks with
the group's scale repeated: the same weights. "exact" also needs the scale to be a float16 value (the
workbench stores scales in float16, so it is, unless a layer's scales overflowed float16). Every
packing reports the largest difference between the weights llama.cpp reads (dequantized with the
`gguf` package's own reference code) and the layer's, so what is not exact is measured.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from gguf import GGMLQuantizationType as GGML
from gguf.quants import dequantize as gguf_dequantize
from gguf.quants import quantize as gguf_quantize

from ..ort.nbits import LinearCodes

BLOCK = 32  # input columns per legacy GGUF block


@dataclass(frozen=True)
class GGUFTensor:
    """A weight as GGUF stores it.

    data: the bytes (uint8 (N, K / 32 * block bytes)) of a block format, or the float array (N, K);
    qtype: its GGMLQuantizationType; shape: (N, K) in PyTorch order; exact: whether llama.cpp reads
    the very weights the layer computes with; max_abs: the largest |difference| (0.0 when exact);
    how: one line saying how the codes were written.
    """

    data: np.ndarray
    qtype: GGML
    shape: tuple[int, int]
    exact: bool
    max_abs: float
    how: str

    @property
    def nbytes(self) -> int:
        return int(self.data.nbytes)


def weights_of(codes: LinearCodes) -> np.ndarray:
    """(N, K) float32 weights a layer's codes compute with: (q - zero) * scale."""
    n, k = codes.shape
    g = codes.group_size
    q = codes.q.reshape(n, k // g, g).astype(np.float32)
    return ((q - codes.zero[..., None].astype(np.float32)) * codes.scale[..., None]).reshape(n, k).astype(np.float32)


def read_back(t: GGUFTensor) -> np.ndarray:
    """(N, K) float32 weights llama.cpp computes with (the `gguf` package's reference dequantization)."""
    if t.qtype in (GGML.F32, GGML.F16):
        return t.data.astype(np.float32)
    return gguf_dequantize(t.data, t.qtype).reshape(t.shape).astype(np.float32)


def float_tensor(weight: np.ndarray, qtype: GGML = GGML.F32) -> GGUFTensor:
    """A float weight as F32 (exact) or F16 (rounded, difference measured)."""
    w = np.ascontiguousarray(weight, np.float32)
    if qtype == GGML.F32:
        return GGUFTensor(w, GGML.F32, w.shape, True, 0.0, "float32")
    if qtype != GGML.F16:
        raise ValueError(f"float weights are written as F32 or F16, not {qtype.name}")
    h = w.astype(np.float16)
    diff = float(np.abs(h.astype(np.float32) - w).max()) if w.size else 0.0
    return GGUFTensor(h, GGML.F16, w.shape, diff == 0.0, diff, "float16")


def pack_codes(codes: LinearCodes) -> GGUFTensor:
    """The codes of one layer in the GGUF block that holds them (see the module table).

    Args:
        codes: LinearCodes (q uint8 (N, K), scale (N, G), zero (N, G), bits, group_size).
    Returns:
        GGUFTensor with the packed bytes, whether llama.cpp reads the same weights, and the difference.
    """
    n, k = codes.shape
    exact_w = weights_of(codes)
    if codes.group_size % BLOCK or k % BLOCK:
        return GGUFTensor(exact_w, GGML.F32, (n, k), True, 0.0,
                          f"float32: groups of {codes.group_size} columns are not whole {BLOCK}-column blocks")
    reps = codes.group_size // BLOCK
    d = np.repeat(codes.scale.astype(np.float32), reps, axis=1)  # (N, K / 32)
    z = np.repeat(codes.zero.astype(np.int16), reps, axis=1)
    q = codes.q.reshape(n, k // BLOCK, BLOCK).astype(np.int16)
    s = q - z[..., None]  # signed codes (N, K / 32, 32)
    lo, hi = (int(s.min()), int(s.max())) if s.size else (0, 0)
    if codes.bits <= 4 and lo >= -8 and hi <= 7:
        data, qtype, how = _q4_0(s + 8, d), GGML.Q4_0, f"{codes.bits}-bit codes as Q4_0 (u = q - zero + 8)"
    elif codes.bits <= 4:  # the codes as they are, in 4 bits; only the offset m is rounded
        m = -z.astype(np.float32) * d
        data, qtype, how = _q4_1(q, d, m), GGML.Q4_1, f"{codes.bits}-bit asymmetric codes as Q4_1 (m = -zero * scale)"
    elif lo >= -128 and hi <= 127:
        data, qtype, how = _q8_0(s, d), GGML.Q8_0, f"{codes.bits}-bit codes as Q8_0 (s = q - zero)"
    else:
        data = gguf_quantize(exact_w, GGML.Q8_0)
        qtype, how = GGML.Q8_0, "8-bit asymmetric codes re-quantized to Q8_0 (no GGUF block holds them)"
    t = GGUFTensor(data, qtype, (n, k), False, 0.0, how)
    diff = float(np.abs(read_back(t) - exact_w).max()) if exact_w.size else 0.0
    return GGUFTensor(data, qtype, (n, k), diff == 0.0, diff, how)


def _f16_bytes(x: np.ndarray) -> np.ndarray:
    """(N, B) float -> (N, B, 2) bytes of its float16 values."""
    return np.ascontiguousarray(x.astype(np.float16)).view(np.uint8).reshape(*x.shape, 2)


def _nibbles(u: np.ndarray) -> np.ndarray:
    """(N, B, 32) codes in 0..15 -> (N, B, 16) bytes: element j in the low nibble, j + 16 in the high one."""
    u = u.astype(np.uint8)
    return u[..., :16] | (u[..., 16:] << 4)


def _q4_0(u: np.ndarray, d: np.ndarray) -> np.ndarray:
    n, b, _ = u.shape
    return np.concatenate([_f16_bytes(d), _nibbles(u)], -1).reshape(n, b * 18)


def _q4_1(u: np.ndarray, d: np.ndarray, m: np.ndarray) -> np.ndarray:
    n, b, _ = u.shape
    return np.concatenate([_f16_bytes(d), _f16_bytes(m), _nibbles(u)], -1).reshape(n, b * 20)


def _q8_0(s: np.ndarray, d: np.ndarray) -> np.ndarray:
    n, b, _ = s.shape
    return np.concatenate([_f16_bytes(d), s.astype(np.int8).view(np.uint8)], -1).reshape(n, b * 34)


__all__ = ["BLOCK", "GGUFTensor", "float_tensor", "pack_codes", "read_back", "weights_of"]
