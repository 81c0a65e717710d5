"""GPTQ weight quantization (Frantar et al. 2022): column-by-column rounding with error feedback.

Per Linear, from the calibration Hessian H = 2/n X X^T: columns are quantized one at a time on the
shared integer grid (`workbench.quant.grid`), and each column's rounding error is pushed onto the
not-yet-quantized columns through the upper Cholesky factor of the damped H^-1, in lazy blocks of
`blocksize` columns. A group's grid is fit (`grid.fit`) on the group's current, already updated
weights when its first column is reached, with its scales rounded as `PackedLinear` stores them
(float16), so the codes are exactly what a packed layer dequantizes. With `act_order` the columns
are visited by decreasing diag(H) and the permutation is undone at the end; groups stay contiguous
in the original column order, so codes, scales and zeros have the same layout as round-to-nearest's.
Layers are calibrated sequentially (`workbench.calib.sequential`), each on the outputs of the
already quantized layers before it.

The transform stores each layer's codes packed (`workbench.quant.packed.PackedLinear`) and returns
the same `QuantReport` as round-to-nearest.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..calib import Hessian, inverse_cholesky, sequential
from ..select import check_scope, default_filter, selected_linears
from . import grid
from .base import GROUP_SIZES, quantize_
from .packed import PackedLinear, stored_scale
from .report import QuantReport, layer_record

GPTQ_BITS = (2, 3, 4, 8)


@dataclass(frozen=True)
class GPTQConfig:
    """GPTQ: bits, input columns per grid group (0: per output channel), grid symmetry, relative
    damping of H, act-order (columns by decreasing diag(H)), columns per lazy-update block, and
    activations (only "none": GPTQ is weight-only)."""

    bits: int = 4
    group_size: int = 32
    symmetric: bool = True
    damp: float = 0.01
    act_order: bool = False
    blocksize: int = 128
    activations: str = "none"  # the recipe's key; GPTQ packs weights only (int8 activations: use rtn)
    scope: str = "language"  # "all": the vision tower's Linears too (workbench.select.SCOPES)

    def __post_init__(self):
        check_scope(self.scope, "quant")
        if self.activations != "none":
            raise ValueError(f"quant.activations must be 'none' for gptq (weight-only), got "
                             f"{self.activations!r}; for int8 activations use method 'rtn' with bits 8")
        if type(self.bits) is not int or self.bits not in GPTQ_BITS:
            raise ValueError(f"quant.bits must be one of {', '.join(map(str, GPTQ_BITS))} for gptq, "
                             f"got {self.bits!r}")
        if type(self.group_size) is not int or self.group_size not in GROUP_SIZES:
            raise ValueError(f"quant.group_size must be one of {', '.join(map(str, GROUP_SIZES))}, "
                             f"got {self.group_size!r}")
        for field in ("symmetric", "act_order"):
            if not isinstance(getattr(self, field), bool):
                raise ValueError(f"quant.{field} must be true or false, got {getattr(self, field)!r}")
        if not isinstance(self.damp, (int, float)) or isinstance(self.damp, bool) or not 0 < self.damp <= 1:
            raise ValueError(f"quant.damp must be a number in (0, 1], got {self.damp!r}")
        if not isinstance(self.blocksize, int) or isinstance(self.blocksize, bool) or self.blocksize < 1:
            raise ValueError(f"quant.blocksize must be a positive integer, got {self.blocksize!r}")


def gptq_quantize(weight: torch.Tensor, H: torch.Tensor, bits: int = 4, group_size: int = 32,
                  symmetric: bool = True, damp: float = 0.01, act_order: bool = False,
                  blocksize: int = 128) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """GPTQ codes and grid of one Linear.

    Args:
        weight: (out, in) weight (not modified).
        H: (in, in) Hessian of the layer's inputs.
        bits, group_size, symmetric, damp, act_order, blocksize: as in GPTQConfig.
    Returns:
        (q, scale, zero): q (out, in) uint8 codes in the original column order; scale and zero
        (out, n_groups) float32 (scales float16-representable where in range, see
        `packed.stored_scale`), so `grid.dequantize(q, scale, zero, group_size)` is the weight.
    """
    W = weight.detach().float().clone()  # (out, in)
    out_f, cols = W.shape
    gs = group_size or cols
    if cols % gs:
        raise ValueError(f"group_size {gs} does not divide in_features {cols}")
    H = H.to(W.device)
    perm = torch.argsort(torch.diag(H), descending=True) if act_order else torch.arange(cols, device=W.device)
    invperm = torch.argsort(perm)  # original column -> position in visiting order
    W = W[:, perm]  # (out, in) in visiting order
    U, dead = inverse_cholesky(H[perm][:, perm], damp)  # (in, in) upper, U^T U = H^-1 (permuted)
    W[:, dead] = 0
    maxq = 2 ** bits - 1
    n_groups = cols // gs
    scale = torch.zeros(out_f, n_groups, device=W.device)
    zero = torch.zeros(out_f, n_groups, device=W.device)
    fitted = [False] * n_groups
    Q = torch.zeros(out_f, cols, device=W.device)  # (out, in) codes, visiting order
    for i1 in range(0, cols, blocksize):
        i2 = min(i1 + blocksize, cols)
        W1 = W[:, i1:i2].clone()  # (out, b) current block, updated in place
        U1 = U[i1:i2, i1:i2]  # (b, b)
        Err1 = torch.zeros_like(W1)  # (out, b) scaled errors for the lazy update
        for i in range(i2 - i1):
            g = int(perm[i1 + i]) // gs
            if not fitted[g]:  # first column of group g: fit its grid on its current weights
                pos = invperm[g * gs:(g + 1) * gs]  # (gs,) all >= i1 + i
                cur = torch.empty(out_f, gs, device=W.device)
                inblk = pos < i2
                cur[:, inblk] = W1[:, pos[inblk] - i1]
                later = pos[~inblk]
                cur[:, ~inblk] = W[:, later] - Err1 @ U[i1:i2][:, later]
                s, z = grid.fit(cur, bits, 0, symmetric)  # (out, 1) each
                s = stored_scale(s).float()  # the scale as a packed layer stores it (float16)
                scale[:, g], zero[:, g] = s[:, 0], z[:, 0]
                fitted[g] = True
            s, z = scale[:, g], zero[:, g]
            w = W1[:, i]  # (out,)
            q = torch.clamp(torch.round(w / s.clamp(min=1e-30)) + z, 0, maxq)  # as grid.quantize
            q = torch.where(s > 0, q, z)  # an all-zero group whose float16 scale underflowed to 0
            Q[:, i1 + i] = q
            err = (w - (q - z) * s) / U1[i, i]  # (out,)
            W1[:, i:] -= err[:, None] * U1[i, i:][None, :]
            Err1[:, i] = err
        W[:, i1:i2] = W1
        W[:, i2:] -= Err1 @ U[i1:i2, i2:]
    return Q[:, invperm].to(torch.uint8), scale, zero


@quantize_.register(GPTQConfig)
def _gptq(model, config: GPTQConfig, *, calib=None, filter_fn=default_filter) -> QuantReport:
    """Quantize the selected Linears of `model` in place with GPTQ and store them packed.

    Args:
        model: HF causal LM (mutated: the selected Linears become `PackedLinear`s).
        config: GPTQConfig.
        calib: list of (1, T) calibration token batches (see `workbench.calib.calibration_batches`).
        filter_fn: `filter_fn(module, name)` picks the layers (default: decoder Linears, no lm_head).
    Returns:
        QuantReport: per layer the kernel that runs ("dequant-fp32"), weight SQNR against the float
        weight, output SQNR on a random N(0, 1) input (dB), bytes before and after packing.
    """
    if not calib:
        raise ValueError("gptq needs calibration data: pass calib=calibration_batches(tokenizer, steps)")
    for name, m in selected_linears(model, filter_fn).items():
        if type(m) is not nn.Linear:
            raise ValueError(f"gptq: layer {name} is a {type(m).__name__}, not a float nn.Linear "
                             f"(already quantized?)")
        if config.group_size and m.in_features % config.group_size:
            raise ValueError(f"quant.group_size {config.group_size} does not divide in_features "
                             f"{m.in_features} of layer {name}: use 0 (per channel) or a divisor")
    packed, records = {}, []

    def process(name, module, stats: Hessian):
        q, scale, zero = gptq_quantize(module.weight, stats.H, config.bits, config.group_size,
                                       config.symmetric, config.damp, config.act_order, config.blocksize)
        new = PackedLinear.from_codes(q.cpu(), scale.cpu(), zero.cpu(), config.bits, config.group_size,
                                      module.bias)
        records.append(layer_record(name, module, new, config.bits, config.group_size))
        # later layers calibrate on this layer's quantized outputs; it is swapped for `new` at the end
        module.weight.data.copy_(new.dequantize(module.weight.dtype).to(module.weight.device))
        packed[name] = new

    sequential(model, calib, filter_fn, lambda name, m: Hessian(m.in_features), process)
    for name, new in packed.items():
        model.set_submodule(name, new)
    return QuantReport("gptq", tuple(records))
