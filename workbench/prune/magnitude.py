"""Magnitude pruning: zero the smallest |W| of each selected Linear, per output row or 2 of every 4.

The simplest baseline (Han et al. 2015): a weight's importance is its absolute value. No
calibration data is needed. The layers keep their shapes (the zeros are stored densely), so
unstructured and 2:4 magnitude pruning change accuracy, not dense-kernel latency; see
`structured.py` for pruning that makes layers smaller.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..select import check_scope, default_filter, selected_linears
from .base import LayerSparsity, check_ratio, mask_from_scores, prune_, sparsity_report


@dataclass(frozen=True)
class MagnitudeConfig:
    """Magnitude pruning of the selected Linear weights.

    Args:
        ratio: fraction of each output row's weights set to zero, 0..0.9 ("unstructured");
            "2:4" always zeroes half, so ratio must be 0.5 there.
        pattern: "unstructured" (per output row) or "2:4" (2 of every 4 consecutive inputs).
    """

    ratio: float = 0.5
    pattern: str = "unstructured"
    scope: str = "language"  # "all": the vision tower's Linears too (workbench.select.SCOPES)

    def __post_init__(self):
        check_ratio(self.ratio, self.pattern)
        check_scope(self.scope, "prune")


@prune_.register(MagnitudeConfig)
@torch.no_grad()
def magnitude_prune(model: nn.Module, config: MagnitudeConfig, *, calib=None,
                    filter_fn=default_filter) -> list[LayerSparsity]:
    """Zero the smallest-magnitude weights of every layer `filter_fn` selects, in place.

    Args:
        model: the model to prune (mutated).
        config: MagnitudeConfig.
        calib: unused (magnitude needs no data); accepted for the common transform signature.
        filter_fn: `filter_fn(module, name)` picks the Linear layers (default: decoder Linears).
    Returns:
        Achieved sparsity of each pruned layer.
    """
    for module in selected_linears(model, filter_fn).values():
        w = module.weight  # (out, in)
        keep = mask_from_scores(w.detach().abs().float(), config.ratio, config.pattern)  # (out, in) bool
        w.masked_fill_(~keep, 0)
    return sparsity_report(model, filter_fn)[0]


__all__ = ["MagnitudeConfig", "magnitude_prune"]
