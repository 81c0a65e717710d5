"""Workers: processes on any number of machines feed one optuna study, each recipe measured once, into one store.

A worker (`run_worker`, `workbench worker`) loops: fail the study's stale trials (optuna's heartbeat: a dead
worker's RUNNING trial is failed after its grace period and retried as a WAITING trial with the same
parameters), ask optuna for a trial, *claim* its recipe in the store's `wb_claims` table, measure it with
`cached_point` while a thread renews the claim's heartbeat, store it (one transaction), release the claim,
tell optuna; until the study holds `n_trials` finished (complete or pruned) trials. The study records the
first worker's model fingerprint, steps' hash and meter settings; a worker with others is refused.

Claims: a row per recipe being measured (key, worker, study, trial, heartbeats in the database's clock, so
machines' clocks need not agree). A recipe already stored is returned to optuna from the store, not measured;
one claimed by a live worker is *waited for* (polled until its point is stored, then read from the store), so
its trial still reports the recipe's values; a claim whose heartbeat is older than `timeout_s` has expired
(its worker died) and the next worker takes it over. A trial started past the budget (two workers asking at
once) is failed unmeasured (`SurplusTrial`), so the study ends with `n_trials` finished trials.

    run_worker(lambda: PointMeter.load(limit=48), "postgresql://me@db/wb", "study1", n_trials=30)
    print(worker_command("postgresql://me@db/wb", "study1", n_trials=30))  # paste on another machine
"""
from __future__ import annotations

import functools
import json
import os
import shlex
import socket
import subprocess
import sys
import threading
import time
import uuid
import warnings
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from .store import ResultsStore, cached_point, meter_key
from .sweep import DEFAULT_SPACE, open_study, trial_recipe, trial_values

HEARTBEAT_S = 10  # a worker renews its claim and its optuna trial this often
CLAIM_TIMEOUT_S = 60  # a claim (and a trial: optuna's grace period) silent this long has expired
STORED, CLAIMED, HELD = "stored", "claimed", "held"
CLUSTER_HINT = "pip install autoglm-workbench[cluster]"


class SurplusTrial(Exception):
    """A trial begun when the study's budget was already taken by others: failed, not measured."""


def default_worker_id() -> str:
    """host:pid:random, unique among the workers of all machines."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Claims:
    """One worker's claims on recipes in the store's `wb_claims` table.

    Args:
        store: the ResultsStore.
        worker: this worker's id (`default_worker_id()`).
        timeout_s: a claim whose heartbeat is older than this has expired and may be taken over.
    """

    def __init__(self, store: ResultsStore, worker: str, timeout_s: float = CLAIM_TIMEOUT_S):
        self.store, self.worker, self.timeout_s = store, worker, timeout_s
        self.table, self.expired, self.holder = store.tables["wb_claims"], 0, None

    def claim(self, key: str, *, study: str = "", trial: int | None = None, recipe: dict | None = None) -> str:
        """Claim the point `key` in one transaction.

        Returns:
            STORED (the point is in the store: nothing to measure), CLAIMED (ours now: measure it; an
            expired claim of another worker is taken over) or HELD (a live worker measures it; `holder` names it).
        """
        t, points = self.table, self.store.tables["wb_points"]
        now = self.store.clock()
        values = {"worker": self.worker, "study": study, "trial": trial, "recipe": json.dumps(recipe, sort_keys=True),
                  "claimed_at": now, "heartbeat_at": now}
        try:
            with self.store.transaction() as c:
                if c.execute(sa.select(points.c.key).where(points.c.key == key)).first() is not None:
                    return STORED
                row = c.execute(sa.select(t.c.worker, (now - t.c.heartbeat_at).label("age"))
                                .where(t.c.key == key).with_for_update()).first()
                if row is None:
                    c.execute(sa.insert(t).values(key=key, **values))
                    return CLAIMED
                if row.worker != self.worker and row.age <= self.timeout_s:
                    self.holder = row.worker
                    return HELD
                self.expired += row.worker != self.worker
                c.execute(sa.update(t).where(t.c.key == key).values(**values))
                return CLAIMED
        except sa.exc.IntegrityError:  # another worker inserted its claim at the same moment
            self.holder = "another worker"
            return HELD

    def heartbeat(self, key: str) -> bool:
        """Renew our claim on `key`; False where it is no longer ours (it expired and was taken over)."""
        t = self.table
        with self.store.transaction() as c:
            return c.execute(sa.update(t).where(t.c.key == key, t.c.worker == self.worker)
                             .values(heartbeat_at=self.store.clock())).rowcount == 1

    def release(self, key: str) -> None:
        """Drop our claim on `key` (after its point is stored, or when measuring failed)."""
        t = self.table
        with self.store.transaction() as c:
            c.execute(sa.delete(t).where(t.c.key == key, t.c.worker == self.worker))


def active_claims(store: ResultsStore) -> list[dict]:
    """Every claim in the store: key, worker, study, trial, age_s (seconds since its last heartbeat)."""
    t = store.tables["wb_claims"]
    with store.engine.connect() as c:
        rows = c.execute(sa.select(t.c.key, t.c.worker, t.c.study, t.c.trial,
                                   (store.clock() - t.c.heartbeat_at).label("age_s"))).all()
    return [dict(r._mapping) for r in rows]


@contextmanager
def _heartbeats(claims: Claims, key: str, every: float):
    """Renew the claim on `key` every `every` s in a thread while the block runs."""
    stop = threading.Event()

    def beat():
        while not stop.wait(every):
            try:
                claims.heartbeat(key)
            except sa.exc.SQLAlchemyError:  # a hiccup of the database: the next beat tries again
                pass

    thread = threading.Thread(target=beat, name=f"claim heartbeat {key[:8]}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def measure_claimed(meter, recipe: dict, store: ResultsStore, claims: Claims, *, origin: str = "hand",
                    study: str = "", trial: int | None = None, heartbeat_s: float = HEARTBEAT_S,
                    poll_s: float = 1.0):
    """The Point of `recipe`: from the store, or measured under a claim, or waited for while another has it.

    Returns:
        (Point, True if it came from the store, seconds spent waiting for another worker's claim).
    """
    key, waited = meter_key(meter, recipe), 0.0
    while True:
        state = claims.claim(key, study=study, trial=trial, recipe=recipe)
        if state == STORED:
            return cached_point(meter, recipe, store)[0], True, waited
        if state == CLAIMED:
            try:
                with _heartbeats(claims, key, heartbeat_s):
                    point, hit = cached_point(meter, recipe, store, origin=origin)
            finally:
                claims.release(key)
            return point, hit, waited
        time.sleep(poll_s)
        waited += poll_s


@dataclass(frozen=True)
class WorkerResult:
    """What one worker did: its trials, how many it measured or fetched, waiting, expired claims taken over."""

    worker: str
    trials: int
    measured: int
    from_store: int
    waited_s: float
    took_over: int
    study_finished: int  # finished trials of the whole study when this worker stopped


def run_worker(meter_factory, storage, study: str, *, n_trials: int, space: dict | None = None,
               grid: dict | None = None, base: dict | None = None, target: str | None = None,
               seed: int | None = None, heartbeat_s: int = HEARTBEAT_S, timeout_s: int = CLAIM_TIMEOUT_S,
               poll_s: float = 1.0, worker: str | None = None, log=None) -> WorkerResult:
    """Join the optuna study `study` and measure its trials until it holds `n_trials` finished ones.

    Args:
        meter_factory: () -> PointMeter (called once, when there is work: e.g. `functools.partial(load_meter, ...)`).
        storage: a ResultsStore, or what `ResultsStore(...)` opens (a SQLite path, a postgresql:// URL).
        study: the study's name (created if missing; every worker of it must use the same space or grid).
        n_trials: the study's budget: finished (complete or pruned) trials of all workers together.
        space: optuna's search space (default `sweep.DEFAULT_SPACE`); grid: {"section.key": [values]}
            instead, sampled by optuna's GridSampler (each combination once).
        base: a recipe dict the sampled values are set on.
        target: a deployment shape the objectives are taken at.
        seed: this worker's NSGA-II seed (default random: give each worker its own; a grid is sampled in one
            order by all).
        heartbeat_s, timeout_s: claim and trial heartbeat interval, and the silence after which they expire.
        poll_s: how often a waiting worker looks again.
        worker: this worker's id (default `default_worker_id()`).
        log: a callable taking one line per trial (e.g. print), or None.
    Returns:
        WorkerResult.
    """
    import optuna

    store = storage if isinstance(storage, ResultsStore) else ResultsStore(storage)
    worker = worker or default_worker_id()
    # a grid's order is shuffled by its seed: one seed for every worker, so that grid ids name the same recipes
    sampler = optuna.samplers.GridSampler(grid, seed=0) if grid else optuna.samplers.NSGAIISampler(seed=seed)
    space = grid or space or DEFAULT_SPACE
    if grid:  # each combination once: the budget is at most the grid's size
        n_trials = min(n_trials, functools.reduce(lambda n, values: n * len(values), grid.values(), 1))
    handle = open_study(store, study, target=target, sampler=sampler, heartbeat_s=heartbeat_s, grace_s=timeout_s)
    claims, meter, tally = Claims(store, worker, timeout_s), None, Counter()
    TS = optuna.trial.TrialState

    def ident(t):  # a grid study's budget counts combinations (two workers may be handed the same one)
        return t.system_attrs.get("grid_id", -1 - t.number) if grid else t.number

    def taken(trials, finished_only: bool = False) -> set:
        """What holds a place in the budget: finished, waiting, or running in a worker (a killed sweep's trial,
        without heartbeat, never ends); or the finished trials alone."""
        return {ident(t) for t in trials if t.state in (TS.COMPLETE, TS.PRUNED) or not finished_only and (
            t.state == TS.WAITING or t.state == TS.RUNNING and "worker" in t.user_attrs)}

    def objective(trial):
        trial.set_user_attr("worker", worker)
        trials = handle.get_trials(deepcopy=False)
        before = taken(t for t in trials if t.number < trial.number)
        if len(before) >= n_trials or ident(next(t for t in trials if t.number == trial.number)) in before:
            trial.set_user_attr("surplus", True)
            raise SurplusTrial(f"trial {trial.number}: the study's {n_trials} trials, or its grid point, are taken")
        recipe = trial_recipe(trial, space, base)
        trial.set_user_attr("recipe", recipe)
        point, hit, waited = measure_claimed(meter, recipe, store, claims, origin=f"optuna:{study}", study=study,
                                             trial=trial.number, heartbeat_s=heartbeat_s, poll_s=poll_s)
        tally.update(from_store=int(hit), measured=int(not hit), waited_s=waited)
        if log is not None:
            log(f"{worker} trial {trial.number}: {'from the store' if hit else 'measured'} {recipe}"
                + (f" (waited {waited:.0f} s for another worker)" if waited else ""))
        return trial_values(trial, point, target, store)

    while True:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(handle)  # dead workers' trials: failed, retried as WAITING
        trials = handle.get_trials(deepcopy=False)
        finished = len(taken(trials, finished_only=True))
        if finished >= n_trials:
            break
        if len(taken(trials)) >= n_trials and not any(t.state == TS.WAITING for t in trials):
            time.sleep(poll_s)  # the last trials are others': wait for them (retried here should they die)
            continue
        if meter is None:
            meter = meter_factory()
            _check_meter(handle, meter)
        handle.optimize(objective, n_trials=1, catch=(SurplusTrial,), gc_after_trial=False)
        tally["trials"] += 1
    return WorkerResult(worker, tally["trials"], tally["measured"], tally["from_store"], tally["waited_s"],
                        claims.expired, finished)


def _check_meter(handle, meter) -> None:
    """Refuse a meter of another model, steps or settings than the study's (the first worker records its own)."""
    mine = {"model_fingerprint": meter.fingerprint, "data_hash": meter.data_hash, "settings": meter.settings}
    theirs = handle.user_attrs.get("meter")
    if theirs is None:
        handle.set_user_attr("meter", mine)
    elif theirs != mine:
        raise ValueError(f"study {handle.study_name} is measured with model {theirs['model_fingerprint']} on steps "
                         f"{theirs['data_hash']} ({theirs['settings']}); this worker has {mine['model_fingerprint']} "
                         f"on {mine['data_hash']} ({mine['settings']}): give it the same model and episode files and "
                         "--limit, or another --study")


def load_meter(model=None, episodes=None, limit=48, engine="ort", dtype="float32", device="cpu", text_only=False):
    """A PointMeter as `workbench worker` builds it (picklable with functools.partial: Ray, processes)."""
    from .measure.point import PointMeter

    return PointMeter.load(model, episodes, limit=limit, progress=False, engine=engine, dtype=dtype, device=device,
                           vision=not text_only)


def _path(p):
    return str(Path(p).expanduser().resolve()) if p is not None and Path(p).expanduser().exists() else p


def worker_args(storage, study: str, *, n_trials: int | None = None, grid=(), model=None, episodes=None,
                limit: int | None = None, engine: str | None = None, target: str | None = None,
                device: str | None = None, dtype: str | None = None, text_only: bool = False,
                seed: int | None = None, heartbeat_s: int | None = None, timeout_s: int | None = None) -> list[str]:
    """The arguments of `workbench worker` for these settings (local paths made absolute).

    Args:
        storage: a ResultsStore, a postgresql:// URL or a SQLite path (None: the worker's $AUTOGLM_WORKBENCH_STORE).
        grid: axes as `section.key=v1,v2` strings; the other arguments as `workbench worker --help` says.
    Returns:
        The argument list (without `workbench worker`).
    """
    if isinstance(storage, ResultsStore):
        storage = storage.storage_url if storage.path is None else str(storage.path)
    args = [] if storage is None else ["--storage", str(storage) if "://" in str(storage) else _path(storage)]
    args += ["--study", study]
    for flag, value in (("--n-trials", n_trials), ("--model", _path(model)), ("--episodes", _path(episodes)),
                        ("--limit", limit), ("--engine", engine), ("--target", target), ("--device", device),
                        ("--dtype", dtype), ("--seed", seed), ("--heartbeat", heartbeat_s),
                        ("--claim-timeout", timeout_s)):
        if value is not None:
            args += [flag, str(value)]
    for axis in grid:
        args += ["--grid", axis]
    return args + (["--text-only"] if text_only else [])


def worker_command(storage, study: str, **settings) -> str:
    """The shell command that starts one more worker of `study` on another machine (paste it there).

    Args:
        storage, study, settings: as `worker_args`. The other machine needs the same model and episode
            files at the same paths, and must reach the database (a SQLite file serves one machine only).
    Returns:
        e.g. "workbench worker --storage postgresql://me@db/wb --study s1 --n-trials 30 --limit 48".
    """
    return shlex.join(["workbench", "worker", *worker_args(storage, study, **settings)])


def run_processes(n: int, args: list[str], *, seed: int | None = None) -> tuple[list[int], list[WorkerResult]]:
    """Run `n` local `workbench worker ... --json` processes (seeds seed, seed + 1, ...) and wait for them.

    Returns:
        (their exit codes, the WorkerResults they printed).
    """
    procs = [subprocess.Popen([sys.executable, "-m", "workbench.cli", "worker", *args, "--json",
                               *(["--seed", str(seed + i)] if seed is not None else [])],
                              stdout=subprocess.PIPE, text=True) for i in range(n)]
    try:
        outs = [p.communicate()[0] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
    results = []
    for p, out in zip(procs, outs):
        if p.returncode == 0:  # the JSON object is printed last, its braces at the line starts
            results += [WorkerResult(**w) for w in json.loads(out[out.rfind("\n{\n") + 1:])["workers"]]
    return [p.returncode for p in procs], results


def _slot(meter_kwargs: dict, options: dict) -> WorkerResult:
    return run_worker(functools.partial(load_meter, **meter_kwargs), **options)


def run_ray(address: str, slots: int, meter_kwargs: dict, **options) -> list[WorkerResult]:
    """The worker loop as `slots` Ray tasks on the cluster at `address` (one GPU each where device is cuda).

    Args:
        address: what `ray.init(address=...)` takes ("auto", "ray://head:10001", "local").
        slots: how many tasks (workers) to run at once.
        meter_kwargs: `load_meter`'s arguments; options: `run_worker`'s (storage as a URL or path).
    Returns:
        One WorkerResult per task.
    Raises:
        ValueError: Ray is not installed, or a SQLite store was given for a cluster.
    """
    try:
        import ray
    except ImportError:
        raise ValueError(f"--ray needs Ray, an optional extra: {CLUSTER_HINT}") from None
    storage = options["storage"]
    if "postgresql" not in str(getattr(storage, "storage_url", storage)) and address != "local":
        raise ValueError("a Ray cluster's workers share one store: pass --storage postgresql://USER@HOST/DATABASE")
    options["storage"] = storage.storage_url if isinstance(storage, ResultsStore) else storage
    ray.init(address=address, ignore_reinit_error=True)
    task = ray.remote(num_gpus=1 if str(meter_kwargs.get("device") or "cpu").startswith("cuda") else 0)(_slot)
    seed = options.pop("seed", None)
    return ray.get([task.remote(meter_kwargs, {**options, "seed": None if seed is None else seed + i})
                    for i in range(slots)])


__all__ = ["CLAIM_TIMEOUT_S", "HEARTBEAT_S", "Claims", "SurplusTrial", "WorkerResult", "active_claims",
           "default_worker_id", "load_meter", "measure_claimed", "run_processes", "run_ray", "run_worker",
           "worker_args", "worker_command"]
