"""The knob controls: one ipywidgets factory per knob, keyed like the recipe JSON ("section.key")."""
from __future__ import annotations

import ipywidgets as W

from ..cache import EVICTIONS, POLICIES, CacheConfig
from ..prune import METHODS as PRUNE_METHODS
from ..prune.base import PATTERNS
from ..quant import METHODS as QUANT_METHODS
from ..quant.base import ACTIVATIONS, BITS, GROUP_SIZES
from ..recipe import is_default_cache
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
        "scope": _scope(),
    }


def _scope() -> W.ToggleButtons:
    """A knob's scope: the language model, or the vision tower of a vision-language model too."""
    return W.ToggleButtons(options=[("language model", "language"), ("+ vision tower", "all")], value="language",
                           description="scope", style=STYLE,
                           tooltips=["the knob leaves a vision tower as it is", "the vision tower's linear layers too"])


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
        "scope": _scope(),
    }


def section_from(controls: dict[str, W.Widget]) -> dict:
    """The recipe section the controls describe (only keys the chosen method accepts)."""
    body = {k: w.value for k, w in controls.items()}
    if body.get("method") in ("heads", "channels"):  # structured pruning: no sparsity pattern, language model only
        body.pop("pattern", None)
        body.pop("scope", None)
    if body.get("scope") == "language":  # the default; a recipe written without it is the same point
        body.pop("scope")
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


# --- the dashboard's controls: every knob at once -------------------------------------------------
def dashboard_controls() -> dict[str, W.Widget]:
    """All four knobs, keyed "section.key": the knob explorers' controls, a method "none" added to
    pruning and quantization and an on/off box to batching (off: the section is left out)."""
    sections = {"prune": prune_controls(ratio=0.3), "quant": quant_controls(), "cache": cache_controls(),
                "batching": {"on": W.Checkbox(value=False, description="simulate batching", style=STYLE),
                             **batching_controls()}}
    for section in ("prune", "quant"):
        method = sections[section]["method"]
        method.options = ["none", *method.options]
        method.value = "none"
    return {f"{s}.{k}": w for s, controls in sections.items() for k, w in controls.items()}


def recipe_from_controls(controls: dict) -> dict:
    """The recipe dict the dashboard controls describe (sections left at their defaults are left out)."""
    by: dict[str, dict] = {}
    for name, w in controls.items():
        section, key = name.split(".")
        by.setdefault(section, {})[key] = w
    recipe = {s: section_from(by[s]) for s in ("prune", "quant") if by[s]["method"].value != "none"}
    if "prune" in recipe:
        recipe["prune"]["ratio"] = round(recipe["prune"]["ratio"], 4)  # a slider's float noise is not a new point
    cache = section_from(by["cache"])
    if not is_default_cache(cache):
        recipe["cache"] = cache
    batching = section_from(by["batching"])
    if batching.pop("on"):
        recipe["batching"] = batching
    return recipe


def related_points(points, recipe: dict, section: str, key: str) -> list:
    """Points whose recipe equals `recipe` except for `section.key`."""
    def rest(r):
        r = {s: dict(b) for s, b in r.items()}
        r.get(section, {}).pop(key, None)
        return r
    want = rest(recipe)
    return [p for p in points if section in p.recipe and rest(p.recipe) == want]
