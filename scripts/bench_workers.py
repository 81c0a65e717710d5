"""Time one study of 12 recipes measured by one worker against the same study measured by two, in one run.

    python scripts/bench_workers.py                  # SQLite file; a 1 s "GPU" meter and the tiny model
    python scripts/bench_workers.py --postgres --json   # a temporary PostgreSQL server (Debian's binaries)

Each configuration gets a fresh store and runs its workers as processes, as other machines would: the wall
time runs from starting the workers to the last one's exit (process start, model load, claims, optuna).
Two meters: `sleep` stands for a measurement bound by a device of its own (a GPU per machine: 1 s per point,
no CPU), so the ratio shows what the coordination costs; `tiny` measures open-autoglm-tiny on ONNX Runtime
(`workbench worker --limit STEPS`), where two workers on one machine share its cores. Not part of the tests.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

GRID = ["prune.method=magnitude", "prune.ratio=0,0.2,0.4,0.6", "quant.bits=16,8,4"]  # 12 recipes


class SleepMeter:
    """A meter that spends `seconds` per point off the CPU (a stand-in for a GPU measurement)."""

    fingerprint, data_hash, settings, engine = "sleep-model", "sleep-data", {"latency_repeats": 1}, "sleep"

    def __init__(self, seconds: float):
        self.seconds = seconds

    def __call__(self, recipe, *, on_progress=None):
        from workbench.measure.point import Point
        from workbench.measure.records import Spread
        from workbench.recipe import Recipe

        time.sleep(self.seconds)
        recipe = Recipe.from_json(recipe).to_json()
        bits, ratio = recipe.get("quant", {}).get("bits", 32), recipe.get("prune", {}).get("ratio", 0.0)
        ms = 1 + bits / 8 - ratio
        return Point(recipe, 10, 0.9 - ratio / 2, 0.95, 0.0, 0.0, 1.0, Spread(40.0, 44.0, 3), Spread(ms, ms, 3),
                     int(1e6 * bits / 32), "sleep", 0.0, 1000)


def _sleep_worker(storage: str, study: str, seconds: float) -> None:
    from workbench.sweep import parse_grid
    from workbench.worker import run_worker

    result = run_worker(lambda: SleepMeter(seconds), storage, study, n_trials=12, grid=parse_grid(GRID),
                        heartbeat_s=5, timeout_s=30, poll_s=0.2)
    print(json.dumps(result.__dict__))


def _postgres_databases(n: int):
    """Start a temporary PostgreSQL server (tests/conftest_postgres.py) with `n` empty databases."""
    sys.path.insert(0, str(ROOT / "tests"))
    import conftest_postgres as pg
    import psycopg

    base = pg._start()
    with psycopg.connect(base + "/postgres", autocommit=True) as con:
        for i in range(n):
            con.execute(f"CREATE DATABASE bench{i}")
    return [f"{base}/bench{i}" for i in range(n)], pg._stop


def _run(storage: str, workers: int, meter: str, steps: int, seconds: float, threads: int | None = None) -> dict:
    from workbench.store import ResultsStore
    from workbench.sweep import open_study

    store = ResultsStore(storage)
    open_study(store, "bench", heartbeat_s=5, grace_s=30)  # created once, as `workbench worker --processes` does
    if meter == "sleep":
        cmd = [sys.executable, __file__, "--_worker", storage, "bench", str(seconds)]
    else:
        cmd = [sys.executable, "-m", "workbench.cli", "worker", "--storage", storage, "--study", "bench",
               "--limit", str(steps), "--heartbeat", "5", "--claim-timeout", "30", "--json",
               *(a for axis in GRID for a in ("--grid", axis))]
    t0 = time.perf_counter()
    env = {**os.environ, **({"OMP_NUM_THREADS": str(threads)} if threads else {})}  # torch's and so ORT's threads
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
             for _ in range(workers)]
    outs = [p.communicate()[0] for p in procs]
    wall = time.perf_counter() - t0
    if any(p.returncode for p in procs):
        raise SystemExit(f"a worker failed: {[p.returncode for p in procs]}")
    done = [json.loads(o[o.rfind("\n{") + 1:]) for o in outs]
    measured = [d.get("measured", sum(w["measured"] for w in d.get("workers", []))) for d in done]
    return {"workers": workers, "threads_each": threads or os.cpu_count(), "wall_s": round(wall, 2),
            "points": len(store), "measured_by_worker": measured}


def main(argv: list[str] | None = None) -> int:
    """Args: argv: command line (see module doc). Returns: exit status."""
    if argv is None and sys.argv[1:2] == ["--_worker"]:
        _sleep_worker(sys.argv[2], sys.argv[3], float(sys.argv[4]))
        return 0
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--meters", default="sleep,tiny", help="which meters, comma-separated: sleep, tiny")
    ap.add_argument("--seconds", type=float, default=1.0, help="the sleep meter's seconds per point")
    ap.add_argument("--steps", type=int, default=8, help="the tiny meter's steps per point")
    ap.add_argument("--postgres", action="store_true", help="a temporary PostgreSQL server instead of SQLite files")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args(argv)
    meters = [m for m in args.meters.split(",") if m]
    split = max(1, (os.cpu_count() or 2) // 2)
    runs = [(m, w, t) for m in meters for w, t in ((1, None), (2, None), *([(2, split)] if m == "tiny" else []))]
    stop = None
    with tempfile.TemporaryDirectory() as tmp:
        if args.postgres:
            stores, stop = _postgres_databases(len(runs))
        else:
            stores = [os.path.join(tmp, f"bench{i}.db") for i in range(len(runs))]
        try:
            rows = [(m, _run(db, w, m, args.steps, args.seconds, t)) for db, (m, w, t) in zip(stores, runs)]
        finally:
            if stop is not None:
                stop()
    data = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
            "store": "postgresql" if args.postgres else "sqlite", "recipes": 12, "meters": {}}
    for m, row in rows:
        runs_m = data["meters"].setdefault(m, [])
        row["speedup"] = round(runs_m[0]["wall_s"] / row["wall_s"], 2) if runs_m else 1.0
        runs_m.append(row)
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    print(f"machine {data['machine']}; store {data['store']}; a study of 12 recipes; wall time from the workers' "
          "start to the last one's exit")
    for m, runs_m in data["meters"].items():
        for r in runs_m:
            print(f"  {m:<6} {r['workers']} worker{'s' if r['workers'] > 1 else ' '} x {r['threads_each']} threads  "
                  f"{r['wall_s']:7.2f} s  measured {'+'.join(map(str, r['measured_by_worker'])):<6} "
                  f"speed-up over one worker {r['speedup']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
