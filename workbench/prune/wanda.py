"""Wanda pruning (Sun et al. 2023): drop the weights with the smallest |W_ij| * ||X_j||_2 per output row.

Activation norms come from calibration prompts, layer by layer (`workbench.calib.sequential`), so
each layer sees the inputs of the already pruned layers before it, as in the reference code.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..calib import InputNorm, sequential
from ..select import check_scope, default_filter
from .base import LayerSparsity, check_ratio, mask_from_scores, prune_, require_calib, sparsity_report


@dataclass(frozen=True)
class WandaConfig:
    """Wanda: `ratio` of each output row's weights removed ("2:4" removes 2 of every 4, so ratio 0.5)."""

    ratio: float = 0.5
    pattern: str = "unstructured"
    scope: str = "language"  # "all": the vision tower's Linears too (workbench.select.SCOPES)

    def __post_init__(self):
        check_ratio(self.ratio, self.pattern)
        check_scope(self.scope, "prune")


def wanda_mask(weight: torch.Tensor, in_norm: torch.Tensor, ratio: float, pattern: str) -> torch.Tensor:
    """Keep-mask of one Linear by the Wanda score.

    Args:
        weight: (out, in) weight.
        in_norm: (in,) L2 norm of each input channel over the calibration tokens.
        ratio, pattern: as in WandaConfig.
    Returns:
        (out, in) bool keep-mask.
    """
    score = weight.detach().float().abs() * in_norm.to(weight.device).float()[None, :]  # (out, in)
    return mask_from_scores(score, ratio, pattern)


@prune_.register(WandaConfig)
def _wanda(model, config: WandaConfig, *, calib=None, filter_fn=default_filter) -> list[LayerSparsity]:
    """Prune the selected Linears of `model` in place by the Wanda score.

    Args:
        model: HF causal LM.
        config: WandaConfig.
        calib: list of (1, T) calibration token batches (see `workbench.calib.calibration_batches`).
        filter_fn: `filter_fn(module, name)` picks the layers (default: decoder Linears, no lm_head).
    Returns:
        Achieved sparsity of each pruned layer (as `sparsity_report`).
    """
    require_calib(calib, "wanda")

    def process(name, module, stats: InputNorm):
        keep = wanda_mask(module.weight, stats.norm(), config.ratio, config.pattern)
        module.weight.data.masked_fill_(~keep, 0)

    sequential(model, calib, filter_fn, lambda name, m: InputNorm(m.in_features), process)
    return sparsity_report(model, filter_fn)[0]
