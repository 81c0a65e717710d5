"""Sweeps over the knobs: a grid, or a multi-objective optuna study; every point lands in the results store.

Both are resumable: a point already in the store is fetched, not measured again, and optuna's study
lives in the same database (`load_if_exists`; a SQLite file, or PostgreSQL that `workbench.worker`s on
other machines share), so a killed sweep re-run picks up where it stopped.

    grid = parse_grid(["prune.method=wanda", "prune.ratio=0,0.3,0.5", "quant.bits=16,8,4"])
    result = run_grid(meter, grid, store)            # 9 points, Pareto front in result.pareto
    result = run_optuna(meter, store, n_trials=20)   # NSGA-II: accuracy up, latency down, memory down
"""
from __future__ import annotations

import itertools
import json
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field

import sqlalchemy
from tqdm.auto import tqdm

from .measure.pareto import objectives_for, pareto_front
from .measure.target import with_target
from .recipe import SECTIONS, Recipe, RecipeError, is_default_cache
from .store import APPLICATION_ID, ResultsStore, cached_point

DEFAULT_METHODS = {"prune": "wanda", "quant": "rtn"}  # a grid that sets prune.ratio but no method uses these
# optuna's search space: "section.key" -> list of choices, or (low, high, step) for a float range.
DEFAULT_SPACE = {
    "prune.method": ["none", "magnitude", "wanda"],
    "prune.ratio": (0.1, 0.7, 0.1),
    "quant.bits": [16, 8, 4, 3],
    "quant.group_size": [32, 128],
    "cache.policy": ["full", "int8"],
}


@dataclass(frozen=True)
class SweepResult:
    """What a sweep measured: every point (in sweep order), how many were new, and the Pareto front."""

    points: list
    measured: int
    from_store: int
    skipped: list = field(default_factory=list)  # (recipe, reason) of impossible combinations
    pareto: list = field(default_factory=list)

    def to_json(self) -> dict:
        return {"points": len(self.points), "measured": self.measured, "from_store": self.from_store,
                "skipped": [{"recipe": r, "reason": why} for r, why in self.skipped],
                "pareto": [_summary(p) for p in self.pareto]}


def _summary(p) -> dict:
    return {"recipe": p.recipe, "label": p.label, "step": p.step, "step_interval": list(p.step_interval), "n": p.n,
            "kl": p.kl, "decode_ms_per_token": p.decode_ms.median, "decode_ms_per_token_p90": p.decode_ms.p90,
            "memory_bytes": p.memory_bytes, "weight_bytes": p.weight_bytes, "engine": p.engine,
            **({"target": p.target} if p.target is not None else {})}


def _value(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_grid(specs) -> dict[str, list]:
    """Grid axes from `section.key=v1,v2,...` strings (values read as JSON: numbers, true/false, or text).

    Raises:
        RecipeError: a spec without `=`, an unknown section, or no values.
    """
    grid: dict[str, list] = {}
    for spec in specs:
        name, sep, values = spec.partition("=")
        section, dot, key = name.strip().partition(".")
        if not sep or not dot or not key:
            raise RecipeError(f"grid axis {spec!r} must look like section.key=v1,v2 (e.g. prune.ratio=0,0.3,0.5)")
        if section not in SECTIONS:
            raise RecipeError(f"grid axis {spec!r}: unknown section {section!r} (allowed: {', '.join(SECTIONS)})")
        vals = [_value(v.strip()) for v in values.split(",") if v.strip()]
        if not vals:
            raise RecipeError(f"grid axis {spec!r} has no values")
        grid[f"{section}.{key}"] = vals
    return grid


def recipe_from_values(values: dict, base: dict | None = None) -> dict:
    """A recipe dict from {"section.key": value} on top of `base`.

    `prune.method` / `quant.method` = "none" drops the section, and so does a cache section that
    describes the default (policy `full`, no prefix cache): each setting then has one spelling, one
    store key and one point.
    """
    recipe = json.loads(json.dumps(base or {}))
    for name, value in values.items():
        section, key = name.split(".", 1)
        recipe.setdefault(section, {})[key] = value
    for section, method in DEFAULT_METHODS.items():
        if section in recipe:
            recipe[section].setdefault("method", method)
            if recipe[section]["method"] == "none":
                del recipe[section]
    cache = recipe.get("cache")
    if cache is not None and is_default_cache(cache):
        del recipe["cache"]  # the default cache: the same point as no cache section
    return recipe


def grid_recipes(grid: dict[str, list], base: dict | None = None) -> tuple[list[dict], list]:
    """Every combination of the grid's values as recipe dicts, and the impossible ones with the reason.

    Returns:
        (valid recipe dicts in grid order without duplicates, [(recipe, reason), ...]).
    """
    names = list(grid)
    valid, skipped, seen = [], [], set()
    for combo in itertools.product(*(grid[n] for n in names)):
        recipe = recipe_from_values(dict(zip(names, combo)), base)
        try:
            recipe = Recipe.from_json(recipe).to_json()
        except RecipeError as e:
            skipped.append((recipe, str(e)))
            continue
        key = json.dumps(recipe, sort_keys=True)
        if key not in seen:
            seen.add(key)
            valid.append(recipe)
    return valid, skipped


def run_grid(meter, grid: dict[str, list], store: ResultsStore | None, *, name: str = "grid",
             base: dict | None = None, progress: bool = True, target: str | None = None) -> SweepResult:
    """Measure (or fetch from the store) every valid combination of the grid.

    Args:
        meter: a PointMeter (baseline, steps).
        grid: {"section.key": [values]} (see `parse_grid`).
        store: the ResultsStore (new points are kept as origin "grid:<name>").
        name: the sweep's name.
        base: a recipe dict the grid's values are set on.
        progress: show a tqdm bar.
        target: a deployment shape; each point then carries its latency and memory there, and the
            Pareto front is taken at the target.
    """
    recipes, skipped = grid_recipes(grid, base)
    points, measured = [], 0
    bar = tqdm(recipes, desc=f"sweep {name}", disable=not progress)
    for recipe in bar:
        point, hit = cached_point(meter, recipe, store, origin=f"grid:{name}")
        points.append(_at(point, target, store, skipped))
        measured += not hit
        bar.set_postfix(step=f"{point.step:.3f}", new=measured)
    return _result(points, measured, skipped, target)


def _at(point, target, store, skipped):
    """The point at the target, or the point as it is with the reason noted in `skipped`."""
    try:
        return with_target(point, target, store)
    except ValueError as e:
        skipped.append((point.recipe, f"no {target} latency: {e}"))
        return point


def _result(points, measured: int, skipped, target) -> SweepResult:
    at = [p for p in points if p.target is not None] if target not in (None, "tiny") else points
    front = pareto_front(at, objectives_for("step", target not in (None, "tiny")))
    return SweepResult(points, measured, len(points) - measured, skipped, front)


def _suggest(trial, space: dict) -> dict:
    values = {}
    for name, choices in space.items():
        if isinstance(choices, tuple):
            low, high, step = choices
            values[name] = round(trial.suggest_float(name, low, high, step=step), 6)
        else:
            values[name] = trial.suggest_categorical(name, list(choices))
    return values


def trial_recipe(trial, space: dict, base: dict | None = None) -> dict:
    """The validated recipe dict an optuna trial suggests over `space` (on top of `base`).

    Raises:
        optuna.TrialPruned: an impossible combination (the reason kept as the trial's user attr "skipped").
    """
    import optuna

    recipe = recipe_from_values(_suggest(trial, space), base)
    try:
        return Recipe.from_json(recipe).to_json()
    except RecipeError as e:
        trial.set_user_attr("skipped", str(e))
        raise optuna.TrialPruned(str(e)) from None


@contextmanager
def _setup_lock(store: ResultsStore):
    """One process at a time in the block (PostgreSQL: an advisory lock; SQLite: nothing, a racer retries)."""
    if store.path is not None:
        yield
        return
    with store.engine.connect() as c:
        c.execute(sqlalchemy.select(sqlalchemy.func.pg_advisory_lock(APPLICATION_ID + 1)))
        c.commit()
        try:
            yield
        finally:
            c.execute(sqlalchemy.select(sqlalchemy.func.pg_advisory_unlock(APPLICATION_ID + 1)))
            c.commit()


def open_study(store: ResultsStore, study_name: str, *, target: str | None = None, sampler=None,
               heartbeat_s: int | None = None, grace_s: int | None = None, retries: int = 3):
    """Create or load the optuna study `study_name` in the results store's database.

    Args:
        store: the ResultsStore (SQLite file or PostgreSQL); optuna keeps its tables beside ours.
        study_name: the study's name; directions: step accuracy up, decode latency and memory down.
        target: a deployment shape (objectives at that shape).
        sampler: an optuna sampler (default NSGA-II, seed 0).
        heartbeat_s: record a heartbeat of each running trial every N s (optuna's RDBStorage); a trial
            silent for `grace_s` s (default 2 N) is failed by the next worker and retried `retries` times.
    Returns:
        The optuna Study.
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    kwargs = {"engine_kwargs": {"connect_args": {"timeout": store.timeout}} if store.path is not None else
              {"pool_pre_ping": True}}
    at_target = target not in (None, "tiny")
    directions = ["maximize" if s > 0 else "minimize" for _, s, _ in objectives_for("step", at_target)]
    for attempt in range(10):
        try:  # PostgreSQL: one process creates optuna's tables at a time; SQLite: a racing creator is retried
            with _setup_lock(store), warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                if heartbeat_s:
                    retry = getattr(optuna.storages, "RetryHeartbeatStaleTrialCallback", None)
                    name = "heartbeat_stale_trial_callback" if retry else "failed_trial_callback"
                    kwargs.update(heartbeat_interval=int(heartbeat_s), grace_period=int(grace_s or 2 * heartbeat_s),
                                  **{name: (retry or optuna.storages.RetryFailedTrialCallback)(max_retry=retries)})
                storage = optuna.storages.RDBStorage(store.storage_url, **kwargs)
                sampler = sampler or optuna.samplers.NSGAIISampler(seed=0)
                return optuna.create_study(study_name=study_name, storage=storage, load_if_exists=True,
                                           directions=directions, sampler=sampler)
        except (sqlalchemy.exc.OperationalError, sqlalchemy.exc.IntegrityError):
            if attempt == 9:
                raise
            time.sleep(0.1 * (attempt + 1))


def objective_values(point, target: str | None = None) -> tuple:
    """The study's objective values of a Point (at the target, where one is given)."""
    return tuple(get(point) for _, _, get in objectives_for("step", target not in (None, "tiny")))


def trial_values(trial, point, target, store):
    """A trial's objective values of a measured point, at `target` when one is set; a target the recipe
    cannot reach (no ONNX Runtime kernel) prunes the trial with the reason kept on it."""
    import optuna

    if target not in (None, "tiny"):
        try:
            point = with_target(point, target, store)
        except ValueError as e:
            trial.set_user_attr("skipped", str(e))
            raise optuna.TrialPruned(str(e)) from None
    return objective_values(point, target)


def run_optuna(meter, store: ResultsStore, *, n_trials: int = 20, study_name: str = "workbench",
               space: dict | None = None, base: dict | None = None, seed: int = 0, progress: bool = True,
               target: str | None = None):
    """A multi-objective optuna study (step accuracy up, decode latency down, memory down), resumable.

    The study is stored in the results store's own database; calling again with the same `study_name`
    continues it until it holds `n_trials` finished trials. Impossible combinations are pruned. With
    a `target`, latency and memory are those at the deployment shape (objectives and front alike).
    Trials that `workbench worker`s ran count too (they keep the same user attrs).

    Returns:
        (SweepResult over this study's trials, the optuna Study).
    """
    import optuna

    space = space or DEFAULT_SPACE
    study = open_study(store, study_name, target=target, sampler=optuna.samplers.NSGAIISampler(seed=seed))
    done = [t for t in study.trials if t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)]
    measured = 0

    def objective(trial):
        nonlocal measured
        recipe = trial_recipe(trial, space, base)
        point, hit = cached_point(meter, recipe, store, origin=f"optuna:{study_name}")
        measured += not hit
        trial.set_user_attr("recipe", recipe)
        return trial_values(trial, point, target, store)

    remaining = max(0, n_trials - len(done))
    if remaining:
        study.optimize(objective, n_trials=remaining, show_progress_bar=progress)
    points, skipped = [], []
    for t in study.trials:
        if "recipe" in t.user_attrs and t.state == optuna.trial.TrialState.COMPLETE:
            points.append(_at(cached_point(meter, t.user_attrs["recipe"], store)[0], target, store, skipped))
        elif "skipped" in t.user_attrs:
            skipped.append((t.params, t.user_attrs["skipped"]))
    return _result(points, measured, skipped, target), study


__all__ = ["DEFAULT_SPACE", "SweepResult", "grid_recipes", "objective_values", "open_study", "parse_grid",
           "recipe_from_values", "run_grid", "run_optuna", "trial_recipe", "trial_values"]
