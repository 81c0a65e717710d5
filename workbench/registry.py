"""Config-type dispatch for the knobs: one frozen config class -> one registered transform.

    prune_ = Registry("prune")

    @prune_.register(MagnitudeConfig)
    def _magnitude(model, config, **ctx): ...

    prune_(model, MagnitudeConfig(ratio=0.5))   # runs _magnitude, in place

No string-mode if/elif ladders: the config's type picks the transform (torchao's quantize_ shape).
"""
from __future__ import annotations

from typing import Callable


class Registry:
    """Maps config types to in-place transforms of one knob."""

    def __init__(self, knob: str):
        self.knob = knob
        self._transforms: dict[type, Callable] = {}

    def register(self, config_type: type) -> Callable:
        """Decorator: register `fn(model, config, **ctx)` as the transform for `config_type`."""
        def deco(fn: Callable) -> Callable:
            if config_type in self._transforms:
                raise ValueError(f"{self.knob}: {config_type.__name__} already has a transform")
            self._transforms[config_type] = fn
            return fn
        return deco

    def __call__(self, model, config, **ctx):
        """Apply the transform registered for type(config) to `model` in place; returns its result."""
        fn = self._transforms.get(type(config))
        if fn is None:
            known = ", ".join(sorted(t.__name__ for t in self._transforms)) or "none"
            raise TypeError(f"{self.knob}: no transform for {type(config).__name__} (registered: {known})")
        if hasattr(config, "scope"):  # the config's scope narrows the layer selection (workbench.select)
            from .select import default_filter, scoped

            ctx["filter_fn"] = scoped(ctx.get("filter_fn", default_filter), config.scope)
        return fn(model, config, **ctx)

    @property
    def config_types(self) -> tuple[type, ...]:
        return tuple(self._transforms)
