"""What every pruning method shares: the `prune_` registry, layer selection, masks, achieved sparsity."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..registry import Registry
from ..select import default_filter, selected_linears

prune_ = Registry("prune")

PATTERNS = ("unstructured", "2:4")


def check_ratio(ratio: float, pattern: str = "unstructured") -> None:
    """Validate a pruning ratio and pattern (raises ValueError naming the field and allowed values)."""
    if not isinstance(ratio, (int, float)) or isinstance(ratio, bool) or not 0.0 <= ratio <= 0.9:
        raise ValueError(f"prune.ratio must be a number in 0..0.9, got {ratio!r}")
    if pattern not in PATTERNS:
        raise ValueError(f"prune.pattern must be one of {', '.join(PATTERNS)}, got {pattern!r}")
    if pattern == "2:4" and ratio != 0.5:
        raise ValueError(f"prune.ratio must be 0.5 with prune.pattern '2:4' (2 of every 4 weights "
                         f"are zeroed), got {ratio!r}; use pattern 'unstructured' for other ratios")


def require_calib(calib, method: str) -> None:
    """Refuse a calibrated method without calibration batches (the message names the fix)."""
    if not calib:
        raise ValueError(f"{method} needs calibration data: pass calib=calibration_batches(tokenizer, steps)")


def mask_from_scores(score: torch.Tensor, ratio: float, pattern: str = "unstructured") -> torch.Tensor:
    """Boolean keep-mask (True = keep) that drops the lowest-scoring weights.

    Args:
        score: (out, in) importance, higher is more important.
        ratio: fraction to drop per output row (unstructured); ignored for 2:4 (always 50%).
        pattern: "unstructured" (per output row, as Wanda compares) or "2:4" (2 of every 4 along in).
    Returns:
        (out, in) bool mask.
    """
    out_f, in_f = score.shape
    if pattern == "2:4":
        if in_f % 4:
            raise ValueError(f"2:4 sparsity needs in_features divisible by 4, got {in_f}")
        groups = score.reshape(out_f, in_f // 4, 4)
        drop = groups.topk(2, dim=-1, largest=False).indices
        keep = torch.ones_like(groups, dtype=torch.bool).scatter_(-1, drop, False)
        return keep.reshape(out_f, in_f)
    k = int(in_f * ratio)
    keep = torch.ones_like(score, dtype=torch.bool)
    if k:
        drop = score.topk(k, dim=1, largest=False).indices
        keep.scatter_(1, drop, False)
    return keep


@dataclass(frozen=True)
class LayerSparsity:
    """Achieved sparsity of one layer: zero weights / all weights."""

    name: str
    zeros: int
    total: int

    @property
    def sparsity(self) -> float:
        return self.zeros / self.total if self.total else 0.0


def sparsity_report(model: nn.Module, filter_fn=default_filter) -> tuple[list[LayerSparsity], float]:
    """Per-layer and overall achieved sparsity of the selected layers' weights.

    Returns:
        (per-layer records, overall fraction of zeros over all selected weights).
    """
    layers = [LayerSparsity(n, int((m.weight == 0).sum()), m.weight.numel())
              for n, m in selected_linears(model, filter_fn).items() if hasattr(m, "weight")]
    total = sum(r.total for r in layers)
    return layers, (sum(r.zeros for r in layers) / total if total else 0.0)
