"""The results store: every measured point in one database (a SQLite file, or PostgreSQL that many machines
share), found again by what determines it.

A point is keyed by its recipe, the model's fingerprint, the hash of the steps it was measured on
and the library versions (`point_key`); asking for the same key again returns the stored record
instantly, also after a kernel restart. Each row keeps its provenance (versions, machine, time, what
measured it, where it came from: a hand-picked point or a sweep) and the record with its spreads.
`wb_targets` keeps the latency measured at a deployment target's shape (`get_target` / `put_target`,
keyed by `workbench.measure.target.target_key`: shape and precision, not the loaded model, so recipes
that deploy the same shape share one row); `wb_claims` the recipes workers measure now (`workbench.worker`).

Safety:
- every write is one transaction (SQLite: write-ahead log): a killed kernel loses at most the point
  being written, and readers in other processes never see half a row;
- a file that is not a SQLite database, a damaged one, or a SQLite file of something else raises
  `StoreError` naming the file and the fix, and so does a PostgreSQL database of something else, a
  damaged or newer one, or one that cannot be reached; nothing is ever replaced or rewritten;
- optuna's study tables live in the same database (`storage_url`); ours are prefixed `wb_`.

    store = ResultsStore()                      # ~/.cache/autoglm-workbench/results.db
    store = ResultsStore("postgresql://me@db-host/workbench")   # shared by every machine's workers
    record = store.get(point_key(recipe, fingerprint, data_hash, versions())) or measure_and_put(...)
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import sqlite3
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.pool import NullPool

ENV_VAR = "AUTOGLM_WORKBENCH_STORE"
APPLICATION_ID = 0x41474C57  # "AGLW" in the SQLite header (PostgreSQL: wb_meta's rows, and our advisory locks)
SCHEMA_VERSION = 1
_SQLITE_MAGIC = b"SQLite format 3\x00"
_APPLICATION = "autoglm-workbench"
_POINT_COLUMNS = ("key", "recipe", "model_fingerprint", "data_hash", "versions", "machine", "measured_at",
                  "measured_by", "origin", "record")


def _tables(postgres: bool) -> sa.MetaData:
    """The schema (SQLite: the 10-column wb_points of every existing file; PostgreSQL: plus an insertion
    order `seq`, SQLite's rowid, and wb_meta, SQLite's application_id and user_version)."""
    md = sa.MetaData()

    def text(name, **kw):
        return sa.Column(name, sa.Text, nullable=False, **kw)

    points = sa.Table("wb_points", md, text("key", primary_key=True), *(text(c) for c in _POINT_COLUMNS[1:]),
                      *([sa.Column("seq", sa.BigInteger, sa.Identity(), nullable=False)] if postgres else []))
    sa.Index("wb_points_by_data", points.c.model_fingerprint, points.c.data_hash)
    sa.Table("wb_targets", md, text("key", primary_key=True), text("record"), text("machine"), text("measured_at"))
    sa.Table("wb_claims", md, text("key", primary_key=True), text("worker"), text("study"),
             sa.Column("trial", sa.Integer), text("recipe"), sa.Column("claimed_at", sa.Float, nullable=False),
             sa.Column("heartbeat_at", sa.Float, nullable=False))  # seconds since the epoch, the database's clock
    if postgres:
        sa.Table("wb_meta", md, text("name", primary_key=True), text("value"))
    return md


_SQLITE_DDL = [str(s.compile(dialect=sqlite.dialect())) for t in _tables(False).sorted_tables
               for s in (sa.schema.CreateTable(t, if_not_exists=True),
                         *(sa.schema.CreateIndex(i, if_not_exists=True) for i in t.indexes))]


class StoreError(RuntimeError):
    """The results database cannot be used (not a database, damaged, someone else's, too new, unreachable)."""


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
    """The results store on SQLite or PostgreSQL (thread-safe; SQLite: one connection per call).

    Args:
        path: a SQLite file path (its folder is created if missing), a `sqlite:///PATH` or a
            `postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE` URL (default: $AUTOGLM_WORKBENCH_STORE,
            which may hold either, else `default_path()`).
        timeout: seconds a writer waits for another writer's lock (SQLite).
    Raises:
        StoreError: the database exists but is not a usable results store, or cannot be reached.
    """

    def __init__(self, path: str | Path | None = None, *, timeout: float = 30.0):
        env = os.environ.get(ENV_VAR, "")
        target = str(path if path is not None else env if "://" in env else default_path())
        self.timeout, self.url = timeout, None
        if "://" in target:
            try:
                self.url = sa.engine.make_url(target)
            except sa.exc.ArgumentError:
                self.url = None
            if self.url is None or self.url.get_backend_name() not in ("sqlite", "postgresql"):
                raise StoreError(f"results store {target.split('@')[-1]}: only SQLite files (a path or "
                                 "sqlite:///PATH) and postgresql://USER@HOST/DATABASE are supported")
        self.dialect = self.url.get_backend_name() if self.url is not None else "sqlite"
        self.path = None
        if self.dialect == "sqlite":
            self.path = Path((self.url.database or "") if self.url is not None else target).expanduser()
        self.tables = _tables(self.dialect == "postgresql").tables
        if self.path is None:
            if self.url.drivername == "postgresql":  # the driver that is installed: psycopg 3, else psycopg2
                found = [m for m in ("psycopg", "psycopg2") if importlib.util.find_spec(m)]
                self.url = self.url.set(drivername="postgresql+" + (found or ["psycopg"])[0])
            try:
                self.engine = sa.create_engine(self.url, pool_pre_ping=True)
            except ModuleNotFoundError as e:
                raise StoreError(f"results store {self.location}: no PostgreSQL driver ({e}); "
                                 "pip install 'psycopg[binary]'") from None
            self._check_or_create_postgres()
            return
        if self.path.is_dir() or not self.path.name:
            raise StoreError(f"results store {self.path} is a folder; pass a file path, e.g. "
                             f"{self.path / 'results.db'}")
        self._check_header()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        con = self._connect()
        try:
            self._check_or_create(con)
        finally:
            con.close()
        self.engine = sa.create_engine(sa.engine.URL.create("sqlite", database=str(self.path)), poolclass=NullPool,
                                       connect_args={"timeout": timeout})
        sa.event.listen(self.engine, "connect", self._on_connect)
        sa.event.listen(self.engine, "begin", lambda c: c.exec_driver_sql(
            "BEGIN IMMEDIATE" if c.get_execution_options().get("wb_write") else "BEGIN"))

    # -- opening ---------------------------------------------------------------------------------
    @property
    def location(self) -> str:
        """Where the store is, for people: the file path, or the URL without its password."""
        return str(self.path) if self.path is not None else self.url.render_as_string(hide_password=True)

    def _fail(self, what: str) -> StoreError:
        if self.path is None:
            return StoreError(f"results store {self.location}: {what}. It was left untouched: give the workbench a "
                              f"database of its own (e.g. `createdb autoglm_workbench` on the server) and pass its "
                              f"URL (--storage postgresql://USER@HOST/autoglm_workbench or ${ENV_VAR}).")
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
        self._on_connect(con)
        return con

    def _on_connect(self, con, _record=None) -> None:
        con.isolation_level = None  # transactions are begun explicitly (the engine's "begin" event)
        con.execute("PRAGMA busy_timeout = %d" % int(self.timeout * 1000))

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
            for statement in _SQLITE_DDL:
                con.execute(statement)
            con.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            con.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            con.execute("COMMIT")
        except sqlite3.DatabaseError as e:
            if con.in_transaction:
                con.execute("ROLLBACK")
            raise self._fail(f"unreadable ({e})") from None

    def _check_or_create_postgres(self) -> None:
        md = self.tables["wb_meta"].metadata
        try:
            with self.engine.begin() as c:
                c.execute(sa.select(sa.func.pg_advisory_xact_lock(APPLICATION_ID)))  # one opener creates at a time
                inspector = sa.inspect(c)
                names = set(inspector.get_table_names())
                if "wb_meta" not in names and names:
                    raise self._fail(f"a PostgreSQL database of something else (tables {', '.join(sorted(names)[:5])}, "
                                     "no workbench tables)")
                meta = dict(c.execute(sa.select(*self.tables["wb_meta"].c)).all()) if names else {}
                if names and meta.get("application") != _APPLICATION:
                    raise self._fail(f"a PostgreSQL database of something else (wb_meta says {meta})")
                if int(meta.get("schema_version", 0)) > SCHEMA_VERSION:
                    raise self._fail(f"written by a newer workbench (schema {meta['schema_version']}, this one "
                                     f"reads {SCHEMA_VERSION})")
                for table in md.sorted_tables:
                    if table.name in names:
                        lacking = set(table.c.keys()) - {col["name"] for col in inspector.get_columns(table.name)}
                        if lacking:
                            raise self._fail(f"damaged (table {table.name} lacks {', '.join(sorted(lacking))})")
                md.create_all(c)
                if not meta:
                    c.execute(sa.insert(self.tables["wb_meta"]), [
                        {"name": "application", "value": _APPLICATION},
                        {"name": "schema_version", "value": str(SCHEMA_VERSION)}])
        except sa.exc.DBAPIError as e:
            first = str(e.orig).strip().splitlines()[0] if e.orig is not None else str(e)
            raise self._fail(f"cannot be used ({first}); check that the server runs, that the database exists "
                             "and that the user may create tables in it") from None

    # -- transactions ------------------------------------------------------------------------------
    @contextmanager
    def transaction(self):
        """A connection inside one write transaction (SQLite: BEGIN IMMEDIATE): committed on leaving,
        rolled back on an error."""
        with self.engine.connect().execution_options(wb_write=True) as c, c.begin():
            yield c

    def _read(self, statement) -> list:
        with self.engine.connect() as c:
            return c.execute(statement).all()

    def _upsert(self, c, table: str, row: dict) -> None:
        t = self.tables[table]
        if self.path is not None:
            c.execute(sa.insert(t).prefix_with("OR REPLACE"), row)  # a replaced point gets a new rowid: newest last
            return
        stmt = postgresql.insert(t).values(row)
        new = {k: stmt.excluded[k] for k in row if k != "key"}
        if "seq" in t.c:
            new["seq"] = sa.func.nextval(sa.func.pg_get_serial_sequence(table, "seq"))
        c.execute(stmt.on_conflict_do_update(index_elements=["key"], set_=new))

    def clock(self):
        """A SQL expression for the database's clock in seconds since the epoch (one clock for all machines)."""
        if self.path is None:
            return sa.func.extract("epoch", sa.func.clock_timestamp())
        return (sa.func.julianday("now") - 2440587.5) * 86400.0

    # -- reading and writing -----------------------------------------------------------------------
    @property
    def storage_url(self) -> str:
        """The SQLAlchemy URL of this database, for optuna's own tables (with the password, if any)."""
        if self.path is None:
            return self.url.render_as_string(hide_password=False)
        return f"sqlite:///{self.path.resolve()}"

    def _points(self):
        t = self.tables["wb_points"]
        return t, sa.select(*(t.c[c] for c in _POINT_COLUMNS))

    def get(self, key: str) -> Entry | None:
        """The entry stored under `key`, or None."""
        t, select = self._points()
        rows = self._read(select.where(t.c.key == key))
        return _entry(rows[0]) if rows else None

    def put(self, key: str, record: dict, *, recipe: dict, model_fingerprint: str, data_hash: str,
            versions: dict, machine: dict, measured_by: str, origin: str = "hand") -> Entry:
        """Store (or replace) one measurement in a single transaction; returns the stored entry."""
        now = datetime.now(timezone.utc).isoformat(timespec="seconds")
        row = (key, _canonical(recipe), model_fingerprint, data_hash, _canonical(versions), _canonical(machine),
               now, measured_by, origin, _canonical(record))
        with self.transaction() as c:
            self._upsert(c, "wb_points", dict(zip(_POINT_COLUMNS, row)))
        return _entry(row)

    def get_target(self, key: str) -> dict | None:
        """The target measurement (a `TargetRecord.to_json()`) stored under `key`, or None.

        Args:
            key: `workbench.measure.target.target_key`.
        Returns:
            The record dict, or None.
        """
        t = self.tables["wb_targets"]
        rows = self._read(sa.select(t.c.record).where(t.c.key == key))
        return json.loads(rows[0][0]) if rows else None

    def put_target(self, key: str, record: dict, machine: dict) -> None:
        """Store (or replace) one target measurement in a single transaction.

        Args:
            key: `workbench.measure.target.target_key`.
            record: the `TargetRecord.to_json()`.
            machine: what measured it (`workbench.measure.provenance.machine()`).
        """
        now = datetime.now(timezone.utc).isoformat(timespec="seconds")
        with self.transaction() as c:
            self._upsert(c, "wb_targets", {"key": key, "record": _canonical(record), "machine": _canonical(machine),
                                           "measured_at": now})

    def entries(self, *, model_fingerprint: str | None = None, data_hash: str | None = None,
                origin: str | None = None) -> list[Entry]:
        """Stored entries (oldest first), optionally only those of one model, data set or origin prefix."""
        t, select = self._points()
        for column, value in (("model_fingerprint", model_fingerprint), ("data_hash", data_hash)):
            if value is not None:
                select = select.where(t.c[column] == value)
        if origin is not None:
            select = select.where(t.c.origin.startswith(origin, autoescape=True))
        order = t.c.seq if self.path is None else sa.literal_column("rowid")
        return [_entry(r) for r in self._read(select.order_by(t.c.measured_at, order))]

    def __len__(self) -> int:
        return self._read(sa.select(sa.func.count()).select_from(self.tables["wb_points"]))[0][0]

    def __repr__(self) -> str:
        return f"ResultsStore({self.location!r}, {len(self)} points)"


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
