"""The results store: every measured point in one embedded SQLite file, found again by what determines it.

A point is keyed by its recipe, the model's fingerprint, the hash of the steps it was measured on
and the library versions (`point_key`); asking for the same key again returns the stored record
instantly, also after a kernel restart. Each row keeps its provenance (versions, machine, time, what
measured it, where it came from: a hand-picked point or a sweep) and the record with its spreads.
A second table keeps the latency measured at a deployment target's shape (`get_target` /
`put_target`, keyed by `workbench.measure.target.target_key`): it depends on shape and precision,
not on the loaded model, so recipes that deploy the same shape share one row.

Safety:
- every write is one transaction (write-ahead log): a killed kernel loses at most the point being
  written, and readers in other processes never see half a row;
- a file that is not a SQLite database, a damaged one, or a SQLite file of something else raises
  `StoreError` naming the file and the fix; the file is never replaced or rewritten;
- optuna's study tables live in the same file (`storage_url`); ours are prefixed `wb_`.

    store = ResultsStore()                      # ~/.cache/autoglm-workbench/results.db
    key = point_key(recipe, fingerprint, data_hash, versions())
    record = store.get(key) or measure_and_put(...)
"""
from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

ENV_VAR = "AUTOGLM_WORKBENCH_STORE"
APPLICATION_ID = 0x41474C57  # "AGLW" in the SQLite header: marks the file as ours
SCHEMA_VERSION = 1
_SQLITE_MAGIC = b"SQLite format 3\x00"
_SCHEMA = ("""
CREATE TABLE IF NOT EXISTS wb_points (
    key TEXT PRIMARY KEY,
    recipe TEXT NOT NULL,
    model_fingerprint TEXT NOT NULL,
    data_hash TEXT NOT NULL,
    versions TEXT NOT NULL,
    machine TEXT NOT NULL,
    measured_at TEXT NOT NULL,
    measured_by TEXT NOT NULL,
    origin TEXT NOT NULL,
    record TEXT NOT NULL
)""", "CREATE INDEX IF NOT EXISTS wb_points_by_data ON wb_points (model_fingerprint, data_hash)", """
CREATE TABLE IF NOT EXISTS wb_targets (
    key TEXT PRIMARY KEY,
    record TEXT NOT NULL,
    machine TEXT NOT NULL,
    measured_at TEXT NOT NULL
)""")  # wb_targets: created in older files too on opening (same schema version)


class StoreError(RuntimeError):
    """The results file cannot be used (not a database, damaged, someone else's, too new)."""


def default_path() -> Path:
    """$AUTOGLM_WORKBENCH_STORE, else ~/.cache/autoglm-workbench/results.db (XDG_CACHE_HOME respected)."""
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR]).expanduser()
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "autoglm-workbench" / "results.db"


def _canonical(obj) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


def point_key(recipe: dict, model_fingerprint: str, data_hash: str, versions: dict) -> str:
    """The key of a measurement: sha256 over the canonical JSON of what determines its result."""
    body = {"recipe": recipe, "model": model_fingerprint, "data": data_hash, "versions": versions}
    return hashlib.sha256(_canonical(body).encode()).hexdigest()


@dataclass(frozen=True)
class Entry:
    """One stored measurement and its provenance."""

    key: str
    recipe: dict
    model_fingerprint: str
    data_hash: str
    versions: dict
    machine: dict
    measured_at: str
    measured_by: str
    origin: str  # "hand", "grid:<name>" or "optuna:<study>"
    record: dict


class ResultsStore:
    """An embedded SQLite results store (thread-safe: one connection per call).

    Args:
        path: the database file (default `default_path()`); its folder is created if missing.
        timeout: seconds a writer waits for another writer's lock.
    Raises:
        StoreError: the file exists but is not a usable results store.
    """

    def __init__(self, path: str | Path | None = None, *, timeout: float = 30.0):
        self.path = Path(path).expanduser() if path is not None else default_path()
        self.timeout = timeout
        if self.path.is_dir():
            raise StoreError(f"results store {self.path} is a folder; pass a file path, e.g. {self.path / 'results.db'}")
        self._check_header()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        con = self._connect()
        try:
            self._check_or_create(con)
        finally:
            con.close()

    # -- opening ---------------------------------------------------------------------------------
    def _fail(self, what: str) -> StoreError:
        return StoreError(f"results store {self.path}: {what}. It was left untouched: move it aside "
                          f"(e.g. `mv {self.path} {self.path}.bad`) to start a fresh store, or pass another "
                          f"path (store=... or ${ENV_VAR}).")

    def _check_header(self) -> None:
        if not self.path.exists() or self.path.stat().st_size == 0:
            return
        with open(self.path, "rb") as f:
            if f.read(16) != _SQLITE_MAGIC:
                raise self._fail("not a SQLite database (corrupted, or another kind of file)")

    def _connect(self) -> sqlite3.Connection:
        con = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None)
        con.execute("PRAGMA busy_timeout = %d" % int(self.timeout * 1000))
        return con

    def _check_or_create(self, con: sqlite3.Connection) -> None:
        try:
            check = con.execute("PRAGMA quick_check").fetchone()[0]
            if check != "ok":
                raise self._fail(f"damaged ({check})")
            app_id = con.execute("PRAGMA application_id").fetchone()[0]
            version = con.execute("PRAGMA user_version").fetchone()[0]
            tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            if app_id not in (0, APPLICATION_ID) or (app_id == 0 and tables and "wb_points" not in tables):
                raise self._fail("a SQLite database of something else (no workbench tables)")
            if version > SCHEMA_VERSION:
                raise self._fail(f"written by a newer workbench (schema {version}, this one reads {SCHEMA_VERSION})")
            con.execute("PRAGMA journal_mode = WAL")  # readers never block the writer, nor see half a write
            con.execute("BEGIN IMMEDIATE")
            for statement in _SCHEMA:
                con.execute(statement)
            con.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            con.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            con.execute("COMMIT")
        except sqlite3.DatabaseError as e:
            if con.in_transaction:
                con.execute("ROLLBACK")
            raise self._fail(f"unreadable ({e})") from None

    # -- reading and writing -----------------------------------------------------------------------
    @property
    def storage_url(self) -> str:
        """The SQLAlchemy URL of this file, for optuna's own tables."""
        return f"sqlite:///{self.path.resolve()}"

    def get(self, key: str) -> Entry | None:
        """The entry stored under `key`, or None."""
        con = self._connect()
        try:
            row = con.execute("SELECT * FROM wb_points WHERE key = ?", (key,)).fetchone()
        finally:
            con.close()
        return _entry(row) if row else None

    def put(self, key: str, record: dict, *, recipe: dict, model_fingerprint: str, data_hash: str,
            versions: dict, machine: dict, measured_by: str, origin: str = "hand") -> Entry:
        """Store (or replace) one measurement in a single transaction; returns the stored entry."""
        now = datetime.now(timezone.utc).isoformat(timespec="seconds")
        row = (key, _canonical(recipe), model_fingerprint, data_hash, _canonical(versions), _canonical(machine),
               now, measured_by, origin, _canonical(record))
        con = self._connect()
        try:
            with con:  # BEGIN ... COMMIT, or ROLLBACK on error
                con.execute("BEGIN IMMEDIATE")
                con.execute("INSERT OR REPLACE INTO wb_points VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", row)
        finally:
            con.close()
        return _entry(row)

    def get_target(self, key: str) -> dict | None:
        """The target measurement (a `TargetRecord.to_json()`) stored under `key`, or None.

        Args:
            key: `workbench.measure.target.target_key`.
        Returns:
            The record dict, or None.
        """
        con = self._connect()
        try:
            row = con.execute("SELECT record FROM wb_targets WHERE key = ?", (key,)).fetchone()
        finally:
            con.close()
        return json.loads(row[0]) if row else None

    def put_target(self, key: str, record: dict, machine: dict) -> None:
        """Store (or replace) one target measurement in a single transaction.

        Args:
            key: `workbench.measure.target.target_key`.
            record: the `TargetRecord.to_json()`.
            machine: what measured it (`workbench.measure.provenance.machine()`).
        """
        now = datetime.now(timezone.utc).isoformat(timespec="seconds")
        con = self._connect()
        try:
            with con:  # BEGIN ... COMMIT, or ROLLBACK on error
                con.execute("BEGIN IMMEDIATE")
                con.execute("INSERT OR REPLACE INTO wb_targets VALUES (?, ?, ?, ?)",
                            (key, _canonical(record), _canonical(machine), now))
        finally:
            con.close()

    def entries(self, *, model_fingerprint: str | None = None, data_hash: str | None = None,
                origin: str | None = None) -> list[Entry]:
        """Stored entries (oldest first), optionally only those of one model, data set or origin prefix."""
        sql, args = "SELECT * FROM wb_points WHERE 1=1", []
        for column, value in (("model_fingerprint", model_fingerprint), ("data_hash", data_hash)):
            if value is not None:
                sql += f" AND {column} = ?"
                args.append(value)
        if origin is not None:
            sql += " AND origin LIKE ?"
            args.append(origin.replace("%", r"\%") + "%")
        con = self._connect()
        try:
            rows = con.execute(sql + " ORDER BY measured_at, rowid", args).fetchall()
        finally:
            con.close()
        return [_entry(r) for r in rows]

    def __len__(self) -> int:
        con = self._connect()
        try:
            return con.execute("SELECT COUNT(*) FROM wb_points").fetchone()[0]
        finally:
            con.close()

    def __repr__(self) -> str:
        return f"ResultsStore({str(self.path)!r}, {len(self)} points)"


def _meter_versions(meter) -> dict:
    """The library versions plus the meter's own settings: what, besides recipe, model and data, a point depends on."""
    from .measure.provenance import versions

    return {**versions(), "meter": meter.settings}


def meter_key(meter, recipe) -> str:
    """The store key of `recipe` measured by a PointMeter (its baseline, steps, settings and versions)."""
    return point_key(_recipe_json(recipe), meter.fingerprint, meter.data_hash, _meter_versions(meter))


def cached_point(meter, recipe, store: ResultsStore | None, *, origin: str = "hand", on_progress=None):
    """The stored Point of `recipe` on `meter`'s baseline and steps, or measure it and store it.

    Args:
        meter: a workbench.measure.point.PointMeter.
        recipe: Recipe, recipe dict or JSON.
        store: the ResultsStore (None: always measure, store nothing).
        origin: where the point comes from ("hand", "grid:<name>", "optuna:<study>"); kept with a new point.
        on_progress: passed to the meter (may raise to cancel: nothing is stored then).
    Returns:
        (Point, True if it came from the store).
    """
    from .measure.point import Point
    from .measure.provenance import machine

    recipe = _recipe_json(recipe)
    if store is None:
        return meter(recipe, on_progress=on_progress), False
    versions = _meter_versions(meter)
    key = point_key(recipe, meter.fingerprint, meter.data_hash, versions)
    if (hit := store.get(key)) is not None:
        return Point.from_json(hit.record), True
    point = meter(recipe, on_progress=on_progress)
    store.put(key, point.to_json(), recipe=point.recipe, model_fingerprint=meter.fingerprint,
              data_hash=meter.data_hash, versions=versions, machine=machine(), measured_by=point.engine,
              origin=origin)
    return point, False


def stored_entries(store: ResultsStore, meter, origin: str | None = None) -> list[Entry]:
    """The entries stored for `meter`'s baseline and steps, one per recipe (the newest where library
    versions or meter settings changed and the recipe was measured again), oldest first."""
    latest = {}
    for e in store.entries(model_fingerprint=meter.fingerprint, data_hash=meter.data_hash, origin=origin):
        latest.pop(_canonical(e.recipe), None)
        latest[_canonical(e.recipe)] = e
    return list(latest.values())


def stored_points(store: ResultsStore, meter, origin: str | None = None) -> list:
    """The Points of `stored_entries` (one per recipe)."""
    from .measure.point import Point

    return [Point.from_json(e.record) for e in stored_entries(store, meter, origin)]


def _recipe_json(recipe) -> dict:
    from .recipe import Recipe

    return (recipe if isinstance(recipe, Recipe) else Recipe.from_json(recipe)).to_json()


def _entry(row) -> Entry:
    key, recipe, fp, data, versions, machine, at, by, origin, record = row
    return Entry(key, json.loads(recipe), fp, data, json.loads(versions), json.loads(machine), at, by, origin,
                 json.loads(record))


__all__ = ["ENV_VAR", "Entry", "ResultsStore", "StoreError", "cached_point", "default_path", "meter_key",
           "point_key", "stored_entries", "stored_points"]
