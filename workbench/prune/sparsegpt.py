"""SparseGPT pruning (Frantar & Alistarh 2023): one-shot pruning that reconstructs each layer's output.

Per Linear, from the calibration Hessian H = 2/n X X^T: columns are visited left to right in
blocks; the mask of a block is chosen by w^2 / diag(H^-1)^2 on the weights as updated so far,
each pruned weight's error is pushed onto the not-yet-visited columns through the Cholesky factor
of H^-1 (the OBS update), so the kept weights compensate. Layers are calibrated sequentially
(`workbench.calib.sequential`), each on the outputs of the already pruned layers before it.

Unlike the reference code (one threshold over a whole block), the unstructured mask is chosen per
output row with a quota per block, so every row ends with exactly int(in * ratio) zeros, the same
per-row pattern magnitude and Wanda produce. 2:4 picks 2 of every 4 columns when the group starts.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..calib import Hessian, inverse_cholesky, sequential
from ..select import check_scope, default_filter
from .base import LayerSparsity, check_ratio, prune_, require_calib, sparsity_report


@dataclass(frozen=True)
class SparseGPTConfig:
    """SparseGPT: `ratio` per output row ("2:4": 0.5), columns per lazy-update block, damping of H."""

    ratio: float = 0.5
    pattern: str = "unstructured"
    blocksize: int = 128
    damp: float = 0.01
    scope: str = "language"  # "all": the vision tower's Linears too (workbench.select.SCOPES)

    def __post_init__(self):
        check_ratio(self.ratio, self.pattern)
        check_scope(self.scope, "prune")
        if not isinstance(self.blocksize, int) or isinstance(self.blocksize, bool) or self.blocksize < 4 \
                or self.blocksize % 4:
            raise ValueError(f"prune.blocksize must be a positive multiple of 4, got {self.blocksize!r}")
        if not isinstance(self.damp, (int, float)) or isinstance(self.damp, bool) or not 0 < self.damp <= 1:
            raise ValueError(f"prune.damp must be a number in (0, 1], got {self.damp!r}")


def sparsegpt_prune(weight: torch.Tensor, H: torch.Tensor, ratio: float, pattern: str = "unstructured",
                    blocksize: int = 128, damp: float = 0.01) -> torch.Tensor:
    """Pruned and reconstructed weight of one Linear.

    Args:
        weight: (out, in) weight (not modified).
        H: (in, in) Hessian of the layer's inputs.
        ratio, pattern, blocksize, damp: as in SparseGPTConfig.
    Returns:
        (out, in) float32 weight with the pruned entries exactly zero.
    """
    W = weight.detach().float().clone()  # (out, in)
    out_f, cols = W.shape
    if pattern == "2:4" and cols % 4:
        raise ValueError(f"2:4 sparsity needs in_features divisible by 4, got {cols}")
    U, dead = inverse_cholesky(H.to(W.device), damp)  # (in, in) upper, U^T U = H^-1
    W[:, dead] = 0  # inputs that were always zero: their weights never mattered
    for i1 in range(0, cols, blocksize):
        i2 = min(i1 + blocksize, cols)
        W1 = W[:, i1:i2].clone()  # (out, b) current block
        U1 = U[i1:i2, i1:i2]  # (b, b)
        d = torch.diag(U1)  # (b,)
        Err1 = torch.zeros_like(W1)  # (out, b) scaled errors for the lazy update
        prune1 = torch.zeros_like(W1, dtype=torch.bool)  # (out, b) True = prune
        if pattern == "unstructured":
            k = int(i2 * ratio) - int(i1 * ratio)  # telescopes to int(cols * ratio) per row
            if k:
                score = W1.pow(2) / d.pow(2)[None, :]
                prune1.scatter_(1, score.topk(k, dim=1, largest=False).indices, True)
        for i in range(i2 - i1):
            if pattern == "2:4" and i % 4 == 0:
                score = W1[:, i:i + 4].pow(2) / d[i:i + 4].pow(2)[None, :]  # (out, 4)
                prune1.scatter_(1, i + score.topk(2, dim=1, largest=False).indices, True)
            w = W1[:, i]  # (out,)
            q = w.masked_fill(prune1[:, i], 0.0)
            err = (w - q) / d[i]  # (out,)
            W1[:, i:] -= err[:, None] * U1[i, i:][None, :]
            W1[:, i] = q  # exact zeros (the update above leaves rounding noise)
            Err1[:, i] = err
        W[:, i1:i2] = W1
        W[:, i2:] -= Err1 @ U[i1:i2, i2:]
    return W


@prune_.register(SparseGPTConfig)
def _sparsegpt(model, config: SparseGPTConfig, *, calib=None,
               filter_fn=default_filter) -> list[LayerSparsity]:
    """Prune the selected Linears of `model` in place with SparseGPT.

    Args:
        model: HF causal LM.
        config: SparseGPTConfig.
        calib: list of (1, T) calibration token batches (see `workbench.calib.calibration_batches`).
        filter_fn: `filter_fn(module, name)` picks the layers (default: decoder Linears, no lm_head).
    Returns:
        Achieved sparsity of each pruned layer (as `sparsity_report`).
    """
    require_calib(calib, "sparsegpt")

    def process(name, module, stats: Hessian):
        W = sparsegpt_prune(module.weight, stats.H, config.ratio, config.pattern, config.blocksize,
                            config.damp)  # (out, in)
        module.weight.data.copy_(W.to(module.weight.dtype))

    sequential(model, calib, filter_fn, lambda name, m: Hessian(m.in_features), process)
    return sparsity_report(model, filter_fn)[0]
