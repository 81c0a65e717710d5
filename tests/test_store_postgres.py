"""The results store on a real PostgreSQL server: the API round trip as on SQLite, the study beside it,
foreign, newer and damaged databases refused, an unreachable server named with the fix."""
import json

import pytest
import sqlalchemy as sa

from workbench.store import ResultsStore, StoreError, cached_point, meter_key, stored_points

pytest_plugins = ["conftest_postgres"]  # a PostgreSQL server: postgres_server, postgres_url

PROV = dict(recipe={"quant": {"bits": 4}}, model_fingerprint="m", data_hash="d", versions={"torch": "x"},
            machine={"cpus": 2}, measured_by="test")


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path):
    """The same tests on a SQLite file and on a fresh PostgreSQL database."""
    return str(tmp_path / "r.db") if request.param == "sqlite" else request.getfixturevalue("postgres_url")


def test_the_store_api_round_trips(url):
    store = ResultsStore(url)
    assert store.get("k") is None and len(store) == 0
    e = store.put("k", {"step": 0.5, "spread": {"median": 1.0, "p90": 2.0}}, **PROV)
    assert store.get("k") == e and e.measured_at.endswith("+00:00")
    store.put("k", {"step": 0.6}, **PROV)  # same key: replaced, not duplicated
    store.put("k2", {"step": 0.7}, **{**PROV, "model_fingerprint": "m2"}, origin="grid:g_1%")
    again = ResultsStore(url)  # reopened: the checks pass on our own database
    assert len(again) == 2 and again.get("k").record == {"step": 0.6}
    assert [x.key for x in again.entries()] == ["k", "k2"]  # oldest first
    assert [x.key for x in again.entries(model_fingerprint="m2")] == ["k2"]
    assert [x.key for x in again.entries(origin="grid:g_1%")] == ["k2"]  # a prefix, wildcards literal
    assert again.entries(origin="grid:g_10") == [] and again.entries(origin="grid:g") != []
    assert again.get_target("t") is None
    again.put_target("t", {"decode_ms_per_token": 12.5}, {"cpus": 2})
    again.put_target("t", {"decode_ms_per_token": 13.0}, {"cpus": 2})
    assert ResultsStore(url).get_target("t") == {"decode_ms_per_token": 13.0} and len(again) == 2
    assert repr(again).endswith("2 points)")


def test_cached_point_and_the_newest_entry_per_recipe(url, fake_meter):
    store = ResultsStore(url)
    recipe = {"quant": {"method": "rtn", "bits": 4}}
    p1, hit1 = cached_point(fake_meter, recipe, store)
    p2, hit2 = cached_point(fake_meter, json.dumps(recipe), store)
    assert (hit1, hit2, fake_meter.calls) == (False, True, 1) and p2 == p1
    assert store.get(meter_key(fake_meter, recipe)).versions["meter"] == fake_meter.settings
    fake_meter.settings = {"latency_repeats": 2}  # measured again within the same second: the newer one shown
    p3, hit3 = cached_point(fake_meter, recipe, store)
    assert not hit3 and len(store) == 2 and stored_points(store, fake_meter) == [p3]


def test_an_optuna_study_lives_in_the_same_database(url, fake_meter):
    optuna = pytest.importorskip("optuna")
    from workbench.sweep import run_optuna

    store = ResultsStore(url)
    space = {"quant.bits": [8, 4, 3], "prune.ratio": (0.0, 0.4, 0.2)}
    result, study = run_optuna(fake_meter, store, n_trials=5, study_name="s", space=space, progress=False)
    assert len(study.trials) == 5 and result.pareto
    assert optuna.study.get_all_study_names(storage=store.storage_url) == ["s"]
    assert len(ResultsStore(url)) == len({json.dumps(p.recipe, sort_keys=True) for p in result.points})


def _engine(url):
    return sa.create_engine(sa.engine.make_url(url).set(drivername="postgresql+psycopg"))


def _execute(url, *statements):
    engine = _engine(url)
    with engine.begin() as c:
        for s in statements:
            c.exec_driver_sql(s)
    engine.dispose()


@pytest.mark.parametrize("damage, words", [
    ("foreign", "a PostgreSQL database of something else (tables customers"),
    ("newer", "written by a newer workbench (schema 99"),
    ("damaged", "damaged (table wb_points lacks record)"),
    ("wrong meta", "wb_meta says"),
])
def test_a_foreign_newer_or_damaged_database_is_refused_and_left_alone(postgres_url, damage, words):
    if damage == "foreign":
        _execute(postgres_url, "CREATE TABLE customers (name TEXT)")
    elif damage == "newer":
        _execute(postgres_url, "CREATE TABLE wb_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
                 "INSERT INTO wb_meta VALUES ('application', 'autoglm-workbench'), ('schema_version', '99')")
    else:
        ResultsStore(postgres_url).put("k", {"step": 1}, **PROV)
        _execute(postgres_url, "ALTER TABLE wb_points DROP COLUMN record" if damage == "damaged" else
                 "UPDATE wb_meta SET value = 'someone-else' WHERE name = 'application'")
    with pytest.raises(StoreError) as e:
        ResultsStore(postgres_url)
    message = str(e.value)
    assert words in message and "left untouched" in message and "createdb" in message
    assert postgres_url.split("@")[1] in message
    engine = _engine(postgres_url)
    tables = set(sa.inspect(engine).get_table_names())
    engine.dispose()
    if damage in ("foreign", "newer"):
        assert "wb_points" not in tables  # nothing was created in it


def test_an_unreachable_database_names_the_fix(postgres_server):
    with pytest.raises(StoreError, match="database exists") as e:
        ResultsStore(f"{postgres_server}/no_such_database")
    assert "no_such_database" in str(e.value) and "createdb" in str(e.value)
    with pytest.raises(StoreError, match="only SQLite files"):
        ResultsStore("mysql://me@localhost/wb")


def test_a_password_is_kept_for_optuna_but_not_shown(postgres_url):
    store = ResultsStore(postgres_url.replace("wb@", "wb:secret@"))  # the test server trusts loopback
    assert "secret" in store.storage_url and "secret" not in store.location and "secret" not in repr(store)
