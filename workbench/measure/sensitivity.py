"""Per-layer sensitivity: the accuracy and KL cost of applying a transform to one decoder layer at a time.

Use it to see which layers tolerate pruning or low-bit quantization, e.g.

    def prune50(model, names):          # magnitude 50% on just these Linears
        prune_(model, MagnitudeConfig(0.5), filter_fn=lambda m, n: n in names)

    records = layer_sensitivity(model, tok, steps, prune50)

The input model is not changed: for each group, copies of that group's Linears are swapped into
the model, the transform modifies the copies, the model is measured, and the original modules are
put back (in `finally`). Memory cost: one decoder layer's Linears, not a whole model copy.
Note: a transform must only touch the named layers (it receives the full model, so it can find
them by name); changes it makes elsewhere are not undone.
"""
from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Callable, Iterable

from torch import nn
from tqdm.auto import tqdm

from ..select import default_filter, selected_linears
from .accuracy import run_task
from .fidelity import kl_and_ppl, target_ids, target_logprobs

GROUPS = ("layer", "linear")
_LAYER_INDEX = re.compile(r"(?:^|\.)layers\.(\d+)(?:\.|$)")


@dataclass(frozen=True)
class LayerSensitivity:
    """Cost of transforming one group: mean token KL(reference || transformed) in nats, and step
    accuracy (0..1) of the transformed model on the steps.

    layer: decoder layer index; names: the Linears transformed together.
    """

    layer: int
    names: tuple
    kl: float
    step: float


def layer_groups(model: nn.Module, filter_fn=default_filter, group: str = "layer") -> list[tuple[int, tuple]]:
    """The selected Linears grouped by decoder layer index (`...layers.{i}...` in their names).

    Args:
        model: the model.
        filter_fn: `filter_fn(module, name)` picks the Linears.
        group: "layer" (all selected Linears of a decoder layer together) or "linear" (one each).
    Returns:
        [(layer index, names)] in layer order; selected Linears outside decoder layers are left out.
    """
    if group not in GROUPS:
        raise ValueError(f"group must be one of {', '.join(GROUPS)}, got {group!r}")
    by_layer: dict[int, list[str]] = {}
    for name in selected_linears(model, filter_fn):
        m = _LAYER_INDEX.search(name)
        if m:
            by_layer.setdefault(int(m.group(1)), []).append(name)
    if group == "layer":
        return [(i, tuple(names)) for i, names in sorted(by_layer.items())]
    return [(i, (n,)) for i, names in sorted(by_layer.items()) for n in names]


def _swap(model: nn.Module, name: str, module: nn.Module) -> nn.Module:
    """Put `module` at `name` in the model tree; returns the module that was there."""
    old = model.get_submodule(name)
    model.set_submodule(name, module)
    return old


def layer_sensitivity(model: nn.Module, tokenizer, steps, transform: Callable[[nn.Module, Iterable[str]], None],
                      *, filter_fn=default_filter, group: str = "layer",
                      progress: bool = True) -> list[LayerSensitivity]:
    """Measure the cost of `transform` applied to one group of layers at a time.

    Args:
        model: the unmodified model (left unchanged).
        tokenizer: its tokenizer.
        steps: task Steps the cost is measured on (KL teacher-forced on the targets; step accuracy
            by greedy decoding, as `workbench.measure.run_task`).
        transform: `transform(model, names)` modifies the Linears `names` of `model` in place (e.g.
            magnitude-prune or fake-quantize them).
        filter_fn: picks the Linears that are candidates (default: decoder Linears).
        group: "layer" (one record per decoder layer) or "linear" (one per Linear).
        progress: show a tqdm bar.
    Returns:
        LayerSensitivity records in layer order. KL is clamped at 0 (float round-off).
    """

    groups = layer_groups(model, filter_fn, group)
    was_training = model.training
    model.eval()
    targets = [target_ids(tokenizer, s) for s in steps]
    reference = target_logprobs(model, tokenizer, steps, progress=False)
    records = []
    try:
        for layer, names in tqdm(groups, desc="sensitivity", disable=not progress, mininterval=1):
            originals = {}
            try:
                for name in names:
                    originals[name] = _swap(model, name, copy.deepcopy(model.get_submodule(name)))
                transform(model, names)
                kl, _ = kl_and_ppl(reference, target_logprobs(model, tokenizer, steps, progress=False), targets)
                accuracy = run_task(model, tokenizer, steps, progress=False)[0]
            finally:
                for name, module in originals.items():
                    _swap(model, name, module)
            records.append(LayerSensitivity(layer, names, max(kl, 0.0), accuracy.step))
    finally:
        model.train(was_training)
    return records


__all__ = ["GROUPS", "LayerSensitivity", "layer_groups", "layer_sensitivity"]
