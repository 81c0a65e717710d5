"""Widget factories for the notebooks (notebooks only wire these together): knob controls, knob
explorers, and the trade-off dashboard."""
from .controls import (STYLE, batching_controls, cache_controls, prune_controls, quant_controls,
                       section_from)
from .dashboard import Dashboard, dashboard, dashboard_controls, recipe_from_controls
from .explorers import batching_explorer, cache_explorer, knob_explorer

__all__ = ["Dashboard", "STYLE", "batching_controls", "batching_explorer", "cache_controls", "cache_explorer",
           "dashboard", "dashboard_controls", "knob_explorer", "prune_controls", "quant_controls",
           "recipe_from_controls", "section_from"]
