"""A recipe: one config per knob, read from and written to the recipe JSON of docs/design.md section 5.

    {"prune": {"method": "wanda", "ratio": 0.5, "pattern": "unstructured"},
     "quant": {"method": "gptq", "bits": 4, "group_size": 32, "symmetric": true, "activations": "none"},
     "cache": {"policy": "int8", "prefix_capacity_mb": 64, "eviction": "lru"},
     "batching": {"window_ms": 5, "max_batch": 8, "arrival_rate": 20}}

A missing section means "leave as is". `prune` and `quant` transform the weights (`apply_recipe`);
`cache` and `batching` are serving settings that the measurement and the server read. Unknown sections, unknown keys and impossible values are
rejected with a message naming the key and the allowed values. `apply_recipe` returns a new
optimized model and never mutates the loaded baseline.
"""
from __future__ import annotations

import copy
import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

from .cache import CacheConfig
from .prune import METHODS as PRUNE_METHODS
from .prune import prune_
from .quant import METHODS as QUANT_METHODS
from .quant import quantize_
from .select import default_filter
from .serve import BatchingConfig

SECTIONS = ("prune", "quant", "cache", "batching")
_KNOBS = {"prune": PRUNE_METHODS, "quant": QUANT_METHODS}  # sections with a `method` key
_SERVING = {"cache": CacheConfig, "batching": BatchingConfig}  # sections whose keys are the fields


class RecipeError(ValueError):
    """A recipe JSON names an unknown section or key, or an impossible value."""


@dataclass(frozen=True)
class Recipe:
    """One config per knob (None: leave as is)."""

    prune: object | None = None
    quant: object | None = None
    cache: CacheConfig | None = None
    batching: BatchingConfig | None = None

    @classmethod
    def from_json(cls, data) -> "Recipe":
        """Build from a dict, a JSON string or a path to a .json file.

        Raises:
            RecipeError: naming the section, the key and the allowed values.
        """
        if isinstance(data, Path) or (isinstance(data, str) and not data.lstrip().startswith("{")):
            path = Path(data)
            if not path.is_file():
                raise RecipeError(f"recipe file not found: {path}")
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except json.JSONDecodeError as e:
                raise RecipeError(f"{path}: invalid JSON ({e.msg} at line {e.lineno})") from None
        elif isinstance(data, str):
            data = json.loads(data)
        if not isinstance(data, dict):
            raise RecipeError("a recipe is a JSON object with sections " + ", ".join(SECTIONS))
        unknown = sorted(set(data) - set(SECTIONS))
        if unknown:
            raise RecipeError(f"unknown recipe section {unknown[0]!r} (allowed: {', '.join(SECTIONS)})")
        knobs = {s: _config(s, data[s]) for s in _KNOBS if s in data}
        serving = {s: _fields(s, _SERVING[s], data[s]) for s in _SERVING if s in data}
        return cls(**knobs, **serving)

    def to_json(self) -> dict:
        """The recipe JSON object (sections that are set)."""
        out = {}
        for section, methods in _KNOBS.items():
            cfg = getattr(self, section)
            if cfg is not None:
                name = next(n for n, t in methods.items() if isinstance(cfg, t))
                body = dataclasses.asdict(cfg)
                if body.get("scope") == "language":  # the default: left out, so recipes written before it keep their key
                    del body["scope"]
                out[section] = {"method": name, **body}
        for section in _SERVING:
            cfg = getattr(self, section)
            if cfg is not None:
                out[section] = dataclasses.asdict(cfg)
        return out

    @property
    def is_empty(self) -> bool:
        return all(getattr(self, s) is None for s in SECTIONS)

    @property
    def changes_weights(self) -> bool:
        """Whether applying the recipe changes the model (prune or quant set)."""
        return self.prune is not None or self.quant is not None


def is_default_cache(section: dict) -> bool:
    """Whether a recipe's cache section describes the default (policy full, no prefix cache): the same
    point as no cache section, so sweeps and the dashboard leave it out."""
    return section.get("policy", "full") == "full" and not section.get("prefix_capacity_mb")


def _config(section: str, body) -> object:
    methods = _KNOBS[section]
    if not isinstance(body, dict):
        raise RecipeError(f"recipe section {section!r} must be an object")
    body = dict(body)
    method = body.pop("method", None)
    if method not in methods:
        raise RecipeError(f"{section}.method must be one of {', '.join(methods)}, got {method!r}")
    cls = methods[method]
    fields = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(body) - set(fields))
    if unknown:
        raise RecipeError(f"unknown key {section}.{unknown[0]} for method {method!r} "
                          f"(allowed: method, {', '.join(fields)})")
    try:
        return cls(**body)
    except (TypeError, ValueError) as e:
        raise RecipeError(str(e)) from None


def _fields(section: str, cls: type, body) -> object:
    """A serving section: every key is a field of `cls`."""
    if not isinstance(body, dict):
        raise RecipeError(f"recipe section {section!r} must be an object")
    fields = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(body) - set(fields))
    if unknown:
        raise RecipeError(f"unknown key {section}.{unknown[0]} (allowed: {', '.join(fields)})")
    try:
        return cls(**body)
    except (TypeError, ValueError) as e:
        raise RecipeError(str(e)) from None


def apply_recipe(model, recipe: Recipe, *, calib=None, filter_fn=default_filter):
    """A new model with the recipe applied (prune, then quantize); `model` is left untouched.

    Args:
        model: the loaded baseline.
        recipe: the Recipe.
        calib: calibration token batches (list of (1, T) tensors) for methods that need them.
        filter_fn: which layers the knobs touch.
    Returns:
        (optimized model in eval mode, {"prune": report, "quant": report}).
    """
    new = copy.deepcopy(model)
    reports = {}
    if recipe.prune is not None:
        reports["prune"] = prune_(new, recipe.prune, calib=calib, filter_fn=filter_fn)
    if recipe.quant is not None:
        reports["quant"] = quantize_(new, recipe.quant, calib=calib, filter_fn=filter_fn)
    return new.eval(), reports
