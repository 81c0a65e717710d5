"""The integer grid shared by every weight quantizer (RTN, GPTQ): fit scales, quantize, dequantize.

Unsigned codes q in [0, 2^bits - 1] with a zero point, per output row and group of `group_size`
input columns (group_size 0 = one group per row, i.e. per-channel):
    w ~= (q - zero) * scale
Symmetric grids fix zero at 2^(bits-1) and scale = max|w| / (2^(bits-1) - 1);
asymmetric grids map [min, max] (including 0) onto [0, 2^bits - 1].
"""
from __future__ import annotations

import torch


def _grouped(w: torch.Tensor, group_size: int) -> torch.Tensor:
    out_f, in_f = w.shape
    g = group_size or in_f
    if in_f % g:
        raise ValueError(f"group_size {g} does not divide in_features {in_f}")
    return w.reshape(out_f, in_f // g, g)


def fit(w: torch.Tensor, bits: int, group_size: int = 0, symmetric: bool = True):
    """Scales and zero points of a weight.

    Args:
        w: (out, in) float weight.
        bits: 2..8.
        group_size: input columns per group (0: per output channel).
        symmetric: symmetric grid (zero fixed at the midpoint).
    Returns:
        (scale, zero): float (out, n_groups) each (zero holds integer values).
    """
    wg = _grouped(w.float(), group_size)
    qmax = 2 ** bits - 1
    if symmetric:
        half = 2 ** (bits - 1)
        scale = wg.abs().amax(-1) / max(half - 1, 1)
        zero = torch.full_like(scale, float(half))
    else:
        lo = wg.amin(-1).clamp(max=0)
        hi = wg.amax(-1).clamp(min=0)
        scale = (hi - lo) / qmax
        zero = torch.round(-lo / scale.clamp(min=1e-12))
    return scale.clamp(min=1e-12), zero


def quantize(w: torch.Tensor, scale: torch.Tensor, zero: torch.Tensor, bits: int,
             group_size: int = 0) -> torch.Tensor:
    """Integer codes (out, in) uint8 of `w` on the grid (scale, zero)."""
    wg = _grouped(w.float(), group_size)
    q = torch.clamp(torch.round(wg / scale[..., None]) + zero[..., None], 0, 2 ** bits - 1)
    return q.reshape(w.shape).to(torch.uint8)


def dequantize(q: torch.Tensor, scale: torch.Tensor, zero: torch.Tensor, group_size: int = 0,
               dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Float weight (out, in) from codes and grid."""
    qg = _grouped(q.to(torch.float32), group_size)
    return ((qg - zero[..., None]) * scale[..., None]).reshape(q.shape).to(dtype)


def fake_quantize(w: torch.Tensor, bits: int, group_size: int = 0, symmetric: bool = True) -> torch.Tensor:
    """Round-to-nearest quantize then dequantize (same shape and dtype as w)."""
    scale, zero = fit(w, bits, group_size, symmetric)
    return dequantize(quantize(w, scale, zero, bits, group_size), scale, zero, group_size, w.dtype)


def sqnr_db(reference: torch.Tensor, approx: torch.Tensor) -> float:
    """Signal-to-quantization-noise ratio in dB: 10 log10(|ref|^2 / |ref - approx|^2)."""
    noise = (reference.float() - approx.float()).pow(2).sum()
    if noise == 0:
        return float("inf")
    return float(10 * torch.log10(reference.float().pow(2).sum() / noise))
