"""scripts/bench_dashboard.py times value change -> figure updated: new points, store hits, target miss and hit."""
import json

import bench_dashboard


def test_bench_times_new_points_store_hits_and_the_target(capsys, monkeypatch):
    import workbench.measure.target as target

    monkeypatch.setitem(target.TARGETS, "glm-edge-1.5b", target.TargetShape("glm-edge-1.5b", 64, 2, 4, 2, 16, 128, 512))
    rows = bench_dashboard.main(["--limit", "2", "--new", "2", "--cached", "3", "--json"])
    assert rows["new point (s)"]["n"] == 2 and rows["store hit (s)"]["n"] == 3
    assert set(rows) == {"new point (s)", "store hit (s)", "target miss (s)", "target hit (s)"}
    # a store hit skips the measurement: it is faster than measuring, in the same run
    assert rows["store hit (s)"]["max"] < rows["new point (s)"]["median"]
    assert rows["target hit (s)"]["median"] < rows["target miss (s)"]["median"]  # built and timed once, then stored
    out = json.loads(capsys.readouterr().out)
    assert out["engine"] == "ort" and out["rows"]["new point (s)"]["target_s"] == 5.0
