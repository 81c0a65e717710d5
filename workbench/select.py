"""Layer selection shared by the knobs: a `filter_fn(module, name)` picks the layers a transform touches."""
from __future__ import annotations

from torch import nn


def default_filter(module: nn.Module, name: str) -> bool:
    """Linear layers of the decoder; embeddings and lm_head are excluded."""
    return isinstance(module, nn.Linear) and not name.endswith("lm_head")


def selected_linears(model: nn.Module, filter_fn=default_filter) -> dict[str, nn.Module]:
    """name -> module for the layers `filter_fn(module, name)` selects, in model order."""
    return {name: m for name, m in model.named_modules() if filter_fn(m, name)}
