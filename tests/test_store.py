"""The results store: round trips, keys, a crash mid-write, concurrent readers, damaged files refused."""
import json
import sqlite3
import subprocess
import sys
import threading

import pytest

from workbench.store import (ENV_VAR, ResultsStore, StoreError, cached_point, default_path, meter_key, point_key,
                             stored_points)

PROV = dict(recipe={"quant": {"bits": 4}}, model_fingerprint="m", data_hash="d", versions={"torch": "x"},
            machine={"cpus": 2}, measured_by="test")


def test_put_get_roundtrip_and_provenance(tmp_path):
    store = ResultsStore(tmp_path / "sub" / "r.db")  # the folder is created
    assert store.get("k") is None and len(store) == 0
    e = store.put("k", {"step": 0.5, "spread": {"median": 1.0, "p90": 2.0}}, **PROV)
    got = store.get("k")
    assert got == e and got.record["spread"]["p90"] == 2.0
    assert (got.recipe, got.machine, got.measured_by, got.origin) == ({"quant": {"bits": 4}}, {"cpus": 2}, "test", "hand")
    assert got.measured_at.endswith("+00:00")
    store.put("k", {"step": 0.6}, **PROV)  # same key: replaced, not duplicated
    assert len(store) == 1 and store.get("k").record == {"step": 0.6}
    assert len(ResultsStore(store.path)) == 1  # reopened (a new kernel) it is still there


def test_key_changes_with_everything_that_determines_a_result():
    base = point_key({"quant": {"bits": 4}}, "m", "d", {"torch": "1"})
    assert base == point_key({"quant": {"bits": 4}}, "m", "d", {"torch": "1"})
    others = [point_key({"quant": {"bits": 8}}, "m", "d", {"torch": "1"}),
              point_key({"quant": {"bits": 4}}, "m2", "d", {"torch": "1"}),
              point_key({"quant": {"bits": 4}}, "m", "d2", {"torch": "1"}),
              point_key({"quant": {"bits": 4}}, "m", "d", {"torch": "2"})]
    assert len({base, *others}) == 5


def test_default_path_and_override(monkeypatch, tmp_path):
    monkeypatch.delenv(ENV_VAR, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_path() == tmp_path / "autoglm-workbench" / "results.db"
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "mine.db"))
    assert ResultsStore().path == tmp_path / "mine.db"


_CRASH = """
import sqlite3, sys, os
from workbench.store import ResultsStore
store = ResultsStore(sys.argv[1])
con = sqlite3.connect(sys.argv[1], isolation_level=None)
con.execute("BEGIN IMMEDIATE")
con.execute("INSERT INTO wb_points VALUES ('half', '{}', 'm', 'd', '{}', '{}', 't', 'b', 'hand', '{}')")
os._exit(9)  # the kernel dies before COMMIT
"""


def test_a_killed_writer_loses_only_its_own_point(tmp_path):
    store = ResultsStore(tmp_path / "r.db")
    store.put("kept", {"step": 0.8}, **PROV)
    proc = subprocess.run([sys.executable, "-c", _CRASH, str(store.path)])
    assert proc.returncode == 9
    again = ResultsStore(store.path)  # reopens cleanly (quick_check passes)
    assert again.get("kept").record == {"step": 0.8}
    assert again.get("half") is None and len(again) == 1
    again.put("next", {"step": 0.7}, **PROV)  # and takes writes (the dead writer's lock is gone)
    assert len(again) == 2


def test_concurrent_readers_while_writing(tmp_path):
    store = ResultsStore(tmp_path / "r.db")
    errors, seen = [], []

    def write():
        for i in range(60):
            store.put(f"k{i}", {"i": i}, **PROV)

    def read():
        try:
            for _ in range(60):
                n = len(store)
                rows = store.entries()
                assert len(rows) >= n and all(r.record == {"i": int(r.key[1:])} for r in rows)
                seen.append(len(rows))
        except Exception as e:  # noqa: BLE001 - collected and asserted below
            errors.append(e)

    threads = [threading.Thread(target=write)] + [threading.Thread(target=read) for _ in range(3)]
    for t in threads:
        t.start()
    reader = subprocess.run([sys.executable, "-c", "import sys; from workbench.store import ResultsStore; "
                             "print(len(ResultsStore(sys.argv[1]).entries()))", str(store.path)],
                            capture_output=True, text=True)
    for t in threads:
        t.join()
    assert errors == [] and reader.returncode == 0, (errors, reader.stderr)
    assert 0 <= int(reader.stdout) <= 60 and len(store) == 60 and seen


@pytest.mark.parametrize("damage", ["garbage", "truncated", "foreign", "newer", "folder"])
def test_a_damaged_or_foreign_file_is_refused_and_left_alone(tmp_path, damage):
    path = tmp_path / "r.db"
    if damage == "garbage":
        path.write_bytes(b"this is not a database\n" * 100)
    elif damage in ("truncated", "newer"):
        store = ResultsStore(path)
        for i in range(200):
            store.put(f"k{i}", {"blob": "x" * 500}, **PROV)
        con = sqlite3.connect(path)
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        if damage == "newer":
            con.execute("PRAGMA user_version = 99")
        con.commit()
        con.close()
        if damage == "truncated":
            data = path.read_bytes()
            path.write_bytes(data[:4096] + b"\x00" * 100 + data[len(data) // 2:])
    elif damage == "foreign":
        con = sqlite3.connect(path)
        con.execute("CREATE TABLE customers (name TEXT)")
        con.commit()
        con.close()
    else:
        path.mkdir()
    before = path.read_bytes() if path.is_file() else None
    with pytest.raises(StoreError) as e:
        ResultsStore(path)
    message = str(e.value)
    assert str(path) in message
    if damage != "folder":
        assert "mv" in message and "left untouched" in message  # the fix, and no silent fresh store
        assert path.read_bytes() == before
    assert not (tmp_path / "r.db.bad").exists()


def test_cli_reports_a_damaged_store(tmp_path, capsys):
    from workbench.cli import main

    bad = tmp_path / "r.db"
    bad.write_text("garbage")
    assert main(["sweep", "--grid", "quant.bits=8", "--store", str(bad)]) == 2
    assert "not a SQLite database" in capsys.readouterr().err


def test_cached_point_measures_once_then_fetches(tmp_path, fake_meter):
    store = ResultsStore(tmp_path / "r.db")
    recipe = {"quant": {"method": "rtn", "bits": 4}}
    p1, hit1 = cached_point(fake_meter, recipe, store)
    p2, hit2 = cached_point(fake_meter, json.dumps(recipe), store)  # same recipe, other spelling
    assert (hit1, hit2, fake_meter.calls) == (False, True, 1)
    assert p2 == p1  # the Point comes back whole, spreads included
    entry = store.get(meter_key(fake_meter, recipe))
    assert entry.versions["meter"] == fake_meter.settings and entry.measured_by == "fake"
    assert "torch" in entry.versions and entry.machine["cpus"] >= 1
    assert stored_points(store, fake_meter) == [p1]
    fake_meter.settings = {"latency_repeats": 2}  # e.g. new library versions: measured again, shown once
    p3, hit3 = cached_point(fake_meter, recipe, store)
    assert not hit3 and len(store) == 2 and stored_points(store, fake_meter) == [p3]


def test_a_cancelled_measurement_stores_nothing(tmp_path, fake_meter):
    from workbench.measure.point import Cancelled

    store = ResultsStore(tmp_path / "r.db")

    def cancel(done, total):
        if done == 2:
            raise Cancelled

    with pytest.raises(Cancelled):
        cached_point(fake_meter, {}, store, on_progress=cancel)
    assert len(store) == 0


def test_target_rows_round_trip_and_survive_a_reopen(tmp_path):
    store = ResultsStore(tmp_path / "r.db")
    assert store.get_target("t") is None
    record = {"name": "glm-edge-1.5b", "decode_ms_per_token": 12.5, "layers_measured": [2, 4]}
    store.put_target("t", record, {"cpus": 2})
    assert store.get_target("t") == record and store.get_target("t") == record  # a second read hits too
    store.put_target("t", {**record, "decode_ms_per_token": 13.0}, {"cpus": 2})  # replaced, not duplicated
    again = ResultsStore(store.path)
    assert again.get_target("t")["decode_ms_per_token"] == 13.0 and again.get_target("other") is None
    assert len(again) == 0  # targets are not points
    con = sqlite3.connect(store.path)
    rows = con.execute("SELECT key, machine, measured_at FROM wb_targets").fetchall()
    con.close()
    assert len(rows) == 1 and json.loads(rows[0][1]) == {"cpus": 2} and rows[0][2].endswith("+00:00")


def test_a_store_written_before_the_targets_table_opens_and_gains_it(tmp_path):
    path = tmp_path / "old.db"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE wb_points (key TEXT PRIMARY KEY, recipe TEXT NOT NULL, model_fingerprint TEXT NOT "
                "NULL, data_hash TEXT NOT NULL, versions TEXT NOT NULL, machine TEXT NOT NULL, measured_at TEXT NOT "
                "NULL, measured_by TEXT NOT NULL, origin TEXT NOT NULL, record TEXT NOT NULL)")
    con.execute("INSERT INTO wb_points VALUES ('k', '{}', 'm', 'd', '{}', '{}', 't', 'b', 'hand', '{\"step\": 1}')")
    con.execute(f"PRAGMA application_id = {0x41474C57}")
    con.execute("PRAGMA user_version = 1")
    con.commit()
    con.close()
    store = ResultsStore(path)
    assert store.get("k").record == {"step": 1}
    store.put_target("t", {"x": 1}, {})
    assert ResultsStore(path).get_target("t") == {"x": 1}
