"""Layer selection shared by the knobs: a `filter_fn(module, name)` picks the layers a transform touches."""
from __future__ import annotations

from torch import nn


def default_filter(module: nn.Module, name: str) -> bool:
    """Linear layers of the decoder; embeddings and lm_head are excluded."""
    return isinstance(module, nn.Linear) and not name.endswith("lm_head")


SCOPES = ("language", "all")  # the knobs' `scope`: the language model only (default), or the vision tower too


def check_scope(scope, section: str) -> None:
    """Validate a knob's scope (ValueError naming the key and the allowed values)."""
    if scope not in SCOPES:
        raise ValueError(f"{section}.scope must be one of {', '.join(SCOPES)}, got {scope!r}")


def is_vision(name: str) -> bool:
    """Whether a module name lies in a vision tower (Glm4v: ``model.visual.*``)."""
    return ".visual." in f".{name}."


def scoped(filter_fn, scope: str):
    """`filter_fn` narrowed to a scope: "language" leaves the vision tower out, "all" keeps it."""
    if scope == "all":
        return filter_fn
    return lambda module, name: filter_fn(module, name) and not is_vision(name)


def selected_linears(model: nn.Module, filter_fn=default_filter) -> dict[str, nn.Module]:
    """name -> module for the layers `filter_fn(module, name)` selects, in model order."""
    return {name: m for name, m in model.named_modules() if filter_fn(m, name)}
