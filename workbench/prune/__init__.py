"""Pruning knob: one frozen config per method, each with one transform registered on `prune_`.

    prune_(model, MagnitudeConfig(ratio=0.5))           # in place; the recipe layer copies first
    prune_(model, ChannelsConfig(ratio=0.3), calib=batches)

`METHODS` maps the recipe JSON's `prune.method` names to the config classes. Importing this
package registers every transform.
"""
from .base import PATTERNS, LayerSparsity, check_ratio, mask_from_scores, prune_, sparsity_report
from .magnitude import MagnitudeConfig
from .sparsegpt import SparseGPTConfig
from .counts import kept_channels, kept_heads_per_group
from .structured import ChannelsConfig, HeadsConfig, StructuredReport
from .wanda import WandaConfig

METHODS = {
    "magnitude": MagnitudeConfig,
    "wanda": WandaConfig,
    "sparsegpt": SparseGPTConfig,
    "heads": HeadsConfig,
    "channels": ChannelsConfig,
}

__all__ = [
    "METHODS", "PATTERNS", "ChannelsConfig", "HeadsConfig", "LayerSparsity",
    "MagnitudeConfig", "SparseGPTConfig", "StructuredReport", "WandaConfig", "check_ratio",
    "kept_channels", "kept_heads_per_group", "mask_from_scores",
    "prune_", "sparsity_report",
]
