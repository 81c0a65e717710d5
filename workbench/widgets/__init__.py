"""Widget factories for the notebooks (notebooks only wire these together): knob controls, knob
explorers, and the trade-off dashboard."""
from .controls import (STYLE, batching_controls, cache_controls, dashboard_controls, prune_controls, quant_controls,
                       recipe_from_controls, section_from)
from .dashboard import Dashboard, dashboard
from .jobs import LatestJobQueue
from .explorers import BatchingExplorer, MeasureBox, batching_explorer, cache_explorer, knob_explorer

__all__ = ["BatchingExplorer", "Dashboard", "LatestJobQueue", "MeasureBox", "STYLE", "batching_controls", "batching_explorer", "cache_controls", "cache_explorer",
           "dashboard", "dashboard_controls", "knob_explorer", "prune_controls", "quant_controls",
           "recipe_from_controls", "section_from"]
