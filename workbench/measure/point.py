"""One measured point of the trade-off: a recipe applied to the baseline, measured on a few steps.

The unit the notebooks, the dashboard and sweeps work with: accuracy, fidelity (KL to the
baseline), latency with its spread, weight bytes, and what ran it, for one recipe.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

from ..recipe import Recipe, apply_recipe
from .accuracy import encode_prompt, run_task
from .fidelity import kl_and_ppl, target_ids, target_logprobs
from .latency import measure_latency
from .memory import weight_bytes
from .records import Spread


@dataclass(frozen=True)
class Point:
    """A measured recipe. Fractions in 0..1, times in ms, bytes as stored."""

    recipe: dict
    n: int
    step: float
    type: float
    parse_failure: float
    kl: float
    ppl: float
    prefill_ms: Spread
    decode_ms: Spread
    weight_bytes: int
    engine: str
    seconds: float  # wall time to apply and measure

    def value(self, section: str, key: str, default=None):
        """A knob value of the recipe, e.g. point.value("prune", "ratio")."""
        return self.recipe.get(section, {}).get(key, default)

    @property
    def label(self) -> str:
        """Short description, e.g. 'wanda 0.5 unstructured + rtn 4b g32'."""
        parts = []
        if "prune" in self.recipe:
            p = self.recipe["prune"]
            parts.append(f"{p['method']} {p.get('ratio', '')} {p.get('pattern', '')}".strip())
        if "quant" in self.recipe:
            q = self.recipe["quant"]
            g = q.get("group_size") or "ch"
            parts.append(f"{q['method']} {q['bits']}b g{g}" + (" w8a8" if q.get("activations") == "int8" else ""))
        return " + ".join(parts) or "baseline"


class PointMeter:
    """Measures recipes against one baseline on fixed steps; the baseline's log-probs are computed once.

    Args:
        model, tokenizer: the loaded baseline (never modified).
        steps: evaluation steps (a few dozen for interactive use).
        calib: calibration token batches for methods that need them.
        latency_repeats: timed repeats after warm-up.
    """

    def __init__(self, model, tokenizer, steps, calib=None, *, latency_repeats: int = 5, progress: bool = False):
        self.model, self.tokenizer, self.steps, self.calib = model.eval(), tokenizer, steps, calib
        self.latency_repeats, self.progress = latency_repeats, progress
        self._targets = [target_ids(tokenizer, s) for s in steps]
        self._ref = target_logprobs(model, tokenizer, steps, progress=progress)
        lengths = sorted((encode_prompt(tokenizer, s).shape[1], i) for i, s in enumerate(steps))
        self._typical = encode_prompt(tokenizer, steps[lengths[len(lengths) // 2][1]])

    def __call__(self, recipe) -> Point:
        """Apply `recipe` (Recipe, dict or JSON) to a copy of the baseline and measure it."""
        t0 = time.perf_counter()
        recipe = recipe if isinstance(recipe, Recipe) else Recipe.from_json(recipe)
        model, reports = (self.model, {}) if recipe.is_empty else apply_recipe(self.model, recipe, calib=self.calib)
        kernels = getattr(reports.get("quant"), "kernels", ())
        acc, _, _, _ = run_task(model, self.tokenizer, self.steps, progress=self.progress)
        kl, ppl = kl_and_ppl(self._ref, target_logprobs(model, self.tokenizer, self.steps, progress=False),
                             self._targets)
        lat = measure_latency(model, self._typical, repeats=self.latency_repeats)
        return Point(recipe.to_json(), acc.n, acc.step, acc.type, acc.parse_failure, kl, ppl,
                     lat.prefill_ms, lat.decode_ms_per_token, weight_bytes(model),
                     lat.engine + (f" ({', '.join(kernels)})" if kernels else ""),
                     time.perf_counter() - t0)
