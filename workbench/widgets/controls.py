"""The knob controls: one ipywidgets factory per knob, keyed like the recipe JSON ("section.key")."""
from __future__ import annotations

import ipywidgets as W

from ..cache import EVICTIONS, POLICIES, CacheConfig
from ..prune import METHODS as PRUNE_METHODS
from ..prune.base import PATTERNS
from ..quant import METHODS as QUANT_METHODS
from ..quant.base import ACTIVATIONS, BITS, GROUP_SIZES
from ..serve import BatchingConfig

STYLE = {"description_width": "110px"}


def prune_controls(method: str = "wanda", ratio: float = 0.5) -> dict[str, W.Widget]:
    """Pruning method, ratio and pattern."""
    return {
        "method": W.Dropdown(options=list(PRUNE_METHODS), value=method, description="method", style=STYLE),
        "ratio": W.FloatSlider(value=ratio, min=0.0, max=0.9, step=0.05, description="ratio",
                               continuous_update=False, readout_format=".2f", style=STYLE),
        "pattern": W.ToggleButtons(options=list(PATTERNS), value="unstructured", description="pattern",
                                   style=STYLE),
    }


def quant_controls(method: str = "rtn", bits: int = 4) -> dict[str, W.Widget]:
    """Quantization method, bits, group size, symmetry and activations."""
    return {
        "method": W.Dropdown(options=list(QUANT_METHODS), value=method, description="method", style=STYLE),
        "bits": W.Dropdown(options=list(BITS), value=bits, description="bits", style=STYLE),
        "group_size": W.Dropdown(options=[("per channel", 0)] + [(str(g), g) for g in GROUP_SIZES if g],
                                 value=32, description="group size", style=STYLE),
        "symmetric": W.Checkbox(value=True, description="symmetric", style=STYLE),
        "activations": W.Dropdown(options=list(ACTIVATIONS), value="none", description="activations",
                                  style=STYLE),
    }


def section_from(controls: dict[str, W.Widget]) -> dict:
    """The recipe section the controls describe (only keys the chosen method accepts)."""
    body = {k: w.value for k, w in controls.items()}
    if body.get("method") in ("heads", "channels"):  # structured pruning has no sparsity pattern
        body.pop("pattern", None)
    return body


def batching_controls(config=None, max_batch_limit: int = 32) -> dict[str, W.Widget]:
    """Batching window (ms), max batch and arrival rate (requests/s) sliders.

    Args:
        config: a workbench.serve.BatchingConfig for the starting values (default: its defaults).
        max_batch_limit: the max-batch slider's upper end.
    Returns:
        dict of the three sliders, keyed by the recipe's batching names.
    """

    config = config or BatchingConfig()
    return {
        "window_ms": W.FloatSlider(value=config.window_ms, min=0.0, max=100.0, step=1.0, description="window (ms)",
                                   continuous_update=False, readout_format=".0f", style=STYLE),
        "max_batch": W.IntSlider(value=config.max_batch, min=1, max=max_batch_limit, description="max batch",
                                 continuous_update=False, style=STYLE),
        "arrival_rate": W.FloatSlider(value=config.arrival_rate, min=0.5, max=40.0, step=0.5,
                                      description="rate (req/s)", continuous_update=False, readout_format=".1f",
                                      style=STYLE),
    }


def cache_controls(config=None) -> dict[str, W.Widget]:
    """KV-cache policy, sliding window and sinks, prefix-cache capacity and eviction.

    Args:
        config: a workbench.cache.CacheConfig for the starting values (default: its defaults).
    Returns:
        dict of controls keyed by the recipe's cache names.
    """

    config = config or CacheConfig()
    return {
        "policy": W.Dropdown(options=list(POLICIES), value=config.policy, description="policy", style=STYLE),
        "window": W.IntSlider(value=config.window, min=32, max=1024, step=32, description="window (tokens)",
                              continuous_update=False, style=STYLE),
        "sinks": W.IntSlider(value=config.sinks, min=0, max=16, description="sinks", continuous_update=False,
                             style=STYLE),
        "prefix_capacity_mb": W.FloatSlider(value=config.prefix_capacity_mb, min=0, max=128, step=2,
                                            description="prefix MiB", continuous_update=False,
                                            readout_format=".0f", style=STYLE),
        "eviction": W.ToggleButtons(options=list(EVICTIONS), value=config.eviction, description="eviction",
                                    style=STYLE),
    }
