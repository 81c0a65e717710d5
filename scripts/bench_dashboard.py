"""Responsiveness of the dashboard: time from a control's value change to the figure updated.

Targets: a point already in the store < 0.5 s; a new point on open-autoglm-tiny < 5 s (ONNX Runtime,
48 steps, as notebook 05). At a deployment target (`--target`, default glm-edge-1.5b): a target miss
(the first point of a new precision / pruned shape: its random-weight graph is built and timed, once)
and a target hit (a recipe whose shape and precision were measured before: from the store).
The dashboard runs unthreaded here, so setting a control's value returns only once the point is
fetched or measured, stored and the FigureWidget redrawn: what is timed is exactly that span.

    python scripts/bench_dashboard.py              # 48 steps per point, ONNX Runtime, as notebook 05
    python scripts/bench_dashboard.py --limit 8 --new 2 --cached 3 --target none --json   # quick
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from workbench.measure.point import PointMeter  # noqa: E402
from workbench.store import ResultsStore  # noqa: E402
from workbench.widgets import dashboard  # noqa: E402

# control changes, each a new recipe: (control, value) after magnitude pruning is selected
NEW_MOVES = [("prune.ratio", 0.1), ("prune.ratio", 0.2), ("prune.ratio", 0.3), ("prune.ratio", 0.4),
             ("prune.ratio", 0.5), ("prune.ratio", 0.6)]


def _time(dash, name: str, value) -> float:
    t0 = time.perf_counter()
    dash.controls[name].value = value  # unthreaded: returns when the figure is updated
    return time.perf_counter() - t0


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--limit", type=int, default=48, help="steps per point (notebook 05 uses 48)")
    p.add_argument("--engine", default="ort", choices=("ort", "pytorch"), help="the meter's engine")
    p.add_argument("--new", type=int, default=5, help="new points timed")
    p.add_argument("--cached", type=int, default=10, help="store hits timed")
    p.add_argument("--target", default="glm-edge-1.5b", help="deployment target for the miss / hit rows (none: skip)")
    p.add_argument("--json", action="store_true", help="print the timings as JSON")
    a = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        meter = PointMeter.load(limit=a.limit, latency_repeats=3, engine=a.engine)
        dash = dashboard(meter, store=ResultsStore(Path(tmp) / "r.db"), threaded=False)
        dash.controls["prune.method"].value = "magnitude"  # measures ratio 0.3 (the slider's start), untimed
        moves = [m for m in NEW_MOVES if m[1] != dash.controls["prune.ratio"].value][:a.new]
        new = [_time(dash, *m) for m in moves]
        cached = [_time(dash, *moves[i % len(moves)]) for i in range(a.cached)]
        assert "from the store" in dash.readout.value
        rows = {"new point (s)": new, "store hit (s)": cached}
        if a.target != "none":  # every point so far is float32 at the dense shape: one key at the target
            t0 = time.perf_counter()
            dash.target.value = a.target  # unthreaded: returns when every point has its target figures
            rows["target miss (s)"] = [time.perf_counter() - t0]
            dash._targets.clear()  # forget the dashboard's own copies: the next figures come from the store
            rows["target hit (s)"] = [_time(dash, *moves[i % len(moves)]) for i in range(min(a.cached, 5))]
    limits = {"new point (s)": 5.0, "store hit (s)": 0.5}
    summary = {name: {"median": statistics.median(xs), "p90": sorted(xs)[min(len(xs) - 1, round(0.9 * (len(xs) - 1)))],
                      "max": max(xs), "n": len(xs), "target_s": limits.get(name)} for name, xs in rows.items()}
    if a.json:
        print(json.dumps({"limit": a.limit, "engine": meter.engine, "target": a.target, "rows": summary}, indent=2))
        return summary
    print(f"dashboard responsiveness, open-autoglm-tiny on {meter.engine}, {a.limit} steps per point, "
          f"value change -> figure updated (target rows at {a.target})")
    print(f"{'':16} {'median':>8} {'p90':>8} {'max':>8}  goal")
    for name, r in summary.items():
        goal = f"< {r['target_s']} s: {'met' if r['max'] < r['target_s'] else 'MISSED'}" if r["target_s"] else "-"
        print(f"{name:16} {r['median']:8.3f} {r['p90']:8.3f} {r['max']:8.3f}  {goal} (n={r['n']})")
    return summary


if __name__ == "__main__":
    main()
