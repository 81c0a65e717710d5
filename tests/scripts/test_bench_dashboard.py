"""scripts/bench_dashboard.py times value change -> figure updated for new points and store hits."""
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

import bench_dashboard  # noqa: E402


def test_bench_times_new_points_and_store_hits(capsys):
    rows = bench_dashboard.main(["--limit", "2", "--new", "2", "--cached", "3"])
    assert len(rows["new point (s)"]) == 2 and len(rows["store hit (s)"]) == 3
    # a store hit skips the measurement: it is faster than measuring, in the same run
    assert max(rows["store hit (s)"]) < min(rows["new point (s)"])
    out = capsys.readouterr().out
    assert "new point (s)" in out and "store hit (s)" in out and "target" in out
