"""Responsiveness of the dashboard: time from a control's value change to the figure updated.

Targets (issue 5): a point already in the store < 0.5 s; a new point on open-autoglm-tiny < 5 s.
The dashboard runs unthreaded here, so setting a control's value returns only once the point is
fetched or measured, stored and the FigureWidget redrawn: what is timed is exactly that span.

    python scripts/bench_dashboard.py              # 12 steps per point, as notebook 05
    python scripts/bench_dashboard.py --limit 4 --new 2 --cached 3   # quick
"""
from __future__ import annotations

import argparse
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
    p.add_argument("--limit", type=int, default=12, help="steps per point (notebook 05 uses 12)")
    p.add_argument("--new", type=int, default=5, help="new points timed")
    p.add_argument("--cached", type=int, default=10, help="store hits timed")
    a = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        meter = PointMeter.load(limit=a.limit, latency_repeats=3)
        dash = dashboard(meter, store=ResultsStore(Path(tmp) / "r.db"), threaded=False)
        dash.controls["prune.method"].value = "magnitude"  # measures ratio 0.3 (the slider's start), untimed
        moves = [m for m in NEW_MOVES if m[1] != dash.controls["prune.ratio"].value][:a.new]
        new = [_time(dash, *m) for m in moves]
        cached = [_time(dash, *moves[i % len(moves)]) for i in range(a.cached)]
        assert "from the store" in dash.readout.value
    rows = {"new point (s)": new, "store hit (s)": cached}
    print(f"dashboard responsiveness, open-autoglm-tiny, {a.limit} steps per point, value change -> figure updated")
    print(f"{'':16} {'median':>8} {'p90':>8} {'max':>8}  target")
    for (name, xs), target in zip(rows.items(), (5.0, 0.5)):
        xs_sorted = sorted(xs)
        p90 = xs_sorted[min(len(xs) - 1, round(0.9 * (len(xs) - 1)))]
        print(f"{name:16} {statistics.median(xs):8.3f} {p90:8.3f} {max(xs):8.3f}  < {target} s: "
              f"{'met' if max(xs) < target else 'MISSED'} (n={len(xs)})")
    return rows


if __name__ == "__main__":
    main()
