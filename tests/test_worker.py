"""Workers: claims that expire by heartbeat, two workers sharing a study, a worker killed mid-trial on
PostgreSQL (its recipe taken over and measured once, its trial retried), the command line, Ray optional."""
import json
import os
import signal
import subprocess
import sys
import threading
import time
import types

import pytest
from conftest import FakeMeter

from workbench.store import ResultsStore
from workbench.worker import CLUSTER_HINT, Claims, active_claims, run_ray, run_worker, worker_args, worker_command

pytest_plugins = ["conftest_postgres"]  # a PostgreSQL server: postgres_server, postgres_url

GRID = {"quant.bits": [16, 8, 4], "prune.ratio": [0.0, 0.3]}  # six recipes


class SlowMeter(FakeMeter):
    """A FakeMeter that takes $WB_TEST_SLEEP s per point and logs `start`/`done` lines to $WB_TEST_LOG."""

    def __init__(self, worker: str = "w"):
        super().__init__()
        self.worker = worker

    def _log(self, what, recipe):
        if os.environ.get("WB_TEST_LOG"):
            with open(os.environ["WB_TEST_LOG"], "a") as f:
                f.write(json.dumps([what, self.worker, json.dumps(recipe, sort_keys=True)]) + "\n")

    def __call__(self, recipe, *, on_progress=None):
        self._log("start", recipe)
        time.sleep(float(os.environ.get("WB_TEST_SLEEP", "0.2")))
        point = super().__call__(recipe, on_progress=on_progress)
        self._log("done", point.recipe)
        return point


def _worker(url, study, name, **kw):
    return run_worker(lambda: SlowMeter(name), url, study, n_trials=6, grid=GRID, heartbeat_s=1, timeout_s=3,
                      poll_s=0.2, worker=name, **kw)


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path):
    return str(tmp_path / "r.db") if request.param == "sqlite" else request.getfixturevalue("postgres_url")


def test_claims_expire_by_heartbeat(url):
    store = ResultsStore(url)
    a, b = Claims(store, "a", timeout_s=1.0), Claims(store, "b", timeout_s=1.0)
    assert a.claim("k", study="s", trial=3, recipe={"quant": {"bits": 4}}) == "claimed"
    assert b.claim("k") == "held" and b.holder == "a"
    for _ in range(3):  # a live worker keeps its claim past the timeout by its heartbeats
        time.sleep(0.5)
        assert a.heartbeat("k") and b.claim("k") == "held"
    [row] = active_claims(store)
    assert (row["worker"], row["study"], row["trial"]) == ("a", "s", 3) and 0 <= row["age_s"] < 1
    time.sleep(1.3)  # a dead worker's claim expires: the next worker takes the recipe over
    assert b.claim("k") == "claimed" and b.expired == 1
    assert not a.heartbeat("k")  # and the late worker learns that it lost it
    a.release("k")  # releasing someone else's claim does nothing
    assert [c["worker"] for c in active_claims(store)] == ["b"]
    store.put("k", {"step": 1.0}, recipe={}, model_fingerprint="m", data_hash="d", versions={}, machine={},
              measured_by="b")
    b.release("k")
    assert a.claim("k") == "stored" and active_claims(store) == []


def test_two_workers_share_a_study_and_measure_each_recipe_once(tmp_path, monkeypatch):
    monkeypatch.setenv("WB_TEST_LOG", str(tmp_path / "log"))
    store = ResultsStore(tmp_path / "r.db")
    results = []
    threads = [threading.Thread(target=lambda n=n: results.append(_worker(store.path, "g", n))) for n in "ab"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 2 and all(r.study_finished == 6 for r in results)
    assert sum(r.measured for r in results) == 6 == len(store)
    done = [json.loads(line) for line in (tmp_path / "log").read_text().splitlines()]
    assert sorted(r for what, _, r in done if what == "done") == sorted({r for _, _, r in done})  # each once
    assert {e.origin for e in store.entries()} == {"optuna:g"} and active_claims(store) == []
    again = _worker(store.path, "g", "c")  # the budget is spent: a late worker leaves at once
    assert (again.trials, again.measured) == (0, 0)


def test_a_worker_of_another_model_is_refused(tmp_path):
    store = ResultsStore(tmp_path / "r.db")
    assert _worker(store.path, "g", "a").measured == 6

    class Other(SlowMeter):
        fingerprint = "other-model"

    with pytest.raises(ValueError, match="measured with model fake-model.*this worker has other-model"):
        run_worker(Other, store, "g", n_trials=7, heartbeat_s=1, timeout_s=3)
    assert len(store) == 6


def test_a_worker_killed_mid_trial_is_replaced_and_every_recipe_measured_once(postgres_url, tmp_path):
    import optuna

    from workbench.sweep import open_study

    log = tmp_path / "log"
    env = {**os.environ, "WB_TEST_LOG": str(log), "WB_TEST_SLEEP": "1.5"}
    open_study(ResultsStore(postgres_url), "s", sampler=optuna.samplers.GridSampler(GRID), heartbeat_s=1, grace_s=3)
    procs = {n: subprocess.Popen([sys.executable, __file__, postgres_url, "s", n], env=env, stdout=subprocess.PIPE,
                                 text=True) for n in ("a", "b")}
    deadline = time.time() + 120
    while not (log.exists() and log.read_text()) and time.time() < deadline:
        time.sleep(0.05)
    _, victim, victim_recipe = json.loads(log.read_text().splitlines()[0])
    procs[victim].send_signal(signal.SIGKILL)  # in the middle of measuring its first recipe
    survivor = procs["b" if victim == "a" else "a"]
    out, _ = survivor.communicate(timeout=180)
    assert procs[victim].wait() == -signal.SIGKILL and survivor.returncode == 0
    result = json.loads(out)
    assert result["study_finished"] == 6 and result["took_over"] == 1

    lines = [json.loads(line) for line in log.read_text().splitlines()]
    done = [r for what, _, r in lines if what == "done"]
    assert sorted(done) == sorted({r for _, _, r in lines})  # every recipe measured to the end exactly once
    assert [w for what, w, r in lines if what == "done" and r == victim_recipe] != [victim]
    store = ResultsStore(postgres_url)  # reopened: the checks pass
    assert len(store) == 6 == len({json.dumps(e.recipe, sort_keys=True) for e in store.entries()})
    assert active_claims(store) == []
    study = optuna.load_study(study_name="s", storage=store.storage_url)
    assert [t.state for t in study.trials].count(optuna.trial.TrialState.COMPLETE) == 6
    [failed] = [t for t in study.trials if t.state == optuna.trial.TrialState.FAIL and "surplus" not in t.user_attrs]
    assert failed.user_attrs["worker"] == victim
    retried = [t for t in study.trials if t.system_attrs.get("failed_trial") == failed.number]
    assert len(retried) == 1 and retried[0].state == optuna.trial.TrialState.COMPLETE


def test_worker_command_is_what_the_cli_parses(tmp_path):
    from workbench.cli import build_parser

    episodes = tmp_path / "eval.jsonl"
    episodes.write_text("")
    cmd = worker_command("postgresql://me@db-host/wb", "s1", n_trials=30, grid=["quant.bits=8,4"], limit=16,
                         episodes=episodes, engine="ort", device="cuda:1", dtype="bfloat16", text_only=True)
    assert cmd.startswith("workbench worker --storage postgresql://me@db-host/wb --study s1 --n-trials 30")
    args = build_parser().parse_args(cmd.split()[1:])
    assert (args.storage, args.study, args.n_trials, args.grid, args.limit) == (
        "postgresql://me@db-host/wb", "s1", 30, ["quant.bits=8,4"], 16)
    assert (args.episodes, args.device, args.dtype, args.text_only) == (str(episodes), "cuda:1", "bfloat16", True)
    store = ResultsStore(tmp_path / "r.db")
    assert worker_args(store, "s") == ["--storage", str(store.path), "--study", "s"]


def test_cli_worker_and_sweep_help_name_the_options():
    for argv, words in ((["worker", "--help"], ["--storage", "--study", "--n-trials", "--processes", "--ray",
                                                 "--claim-timeout", "--heartbeat", "--limit", "--engine", "--model"]),
                        (["sweep", "--help"], ["--storage", "postgresql://"])):
        r = subprocess.run([sys.executable, "-m", "workbench.cli", *argv], capture_output=True, text=True,
                           check=False)
        assert r.returncode == 0 and all(w in r.stdout for w in words), r.stdout


def test_ray_is_optional(tmp_path, capsys, monkeypatch):
    from workbench.cli import main

    monkeypatch.setitem(sys.modules, "ray", None)  # as where it is not installed
    db = str(tmp_path / "r.db")
    assert main(["worker", "--storage", db, "--study", "s", "--ray", "auto"]) == 2
    assert CLUSTER_HINT in capsys.readouterr().err
    calls = []
    fake = types.SimpleNamespace(init=lambda **kw: calls.append(kw), get=lambda refs: [r() for r in refs],
                                 remote=lambda **opts: lambda fn: types.SimpleNamespace(
                                     remote=lambda *a: lambda: fn(*a)))
    monkeypatch.setitem(sys.modules, "ray", fake)
    with pytest.raises(ValueError, match="share one store"):
        run_ray("auto", 2, {}, storage=db, study="s", n_trials=2)
    monkeypatch.setattr("workbench.worker.load_meter", lambda **kw: SlowMeter())
    results = run_ray("local", 2, {"limit": 2}, storage=db, study="s", n_trials=6, grid=GRID, heartbeat_s=1,
                      timeout_s=3, poll_s=0.1)
    assert calls == [{"address": "local", "ignore_reinit_error": True}]
    assert len(results) == 2 and sum(r.measured for r in results) == 6 == len(ResultsStore(db))


def test_cli_worker_measures_a_grid_study_that_sweep_then_summarises(tmp_path, capsys):
    from workbench.cli import main

    db = str(tmp_path / "r.db")
    assert main(["worker", "--storage", db, "--study", "c", "--grid", "quant.bits=16,4", "--limit", "2",
                 "--heartbeat", "1", "--claim-timeout", "5", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["finished"], out["n_trials"], out["points"]) == (2, 2, 2)
    assert out["workers"][0]["measured"] == 2 and out["store"] == db
    assert main(["sweep", "--optuna", "2", "--name", "c", "--storage", db, "--limit", "2", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["points"], summary["measured"]) == (2, 0) and summary["pareto"]


def test_cli_processes_run_local_workers_of_one_study(tmp_path, capsys):
    from workbench.cli import main

    db = str(tmp_path / "r.db")
    assert main(["worker", "--storage", db, "--study", "p", "--grid", "quant.bits=16,8,4", "--limit", "2",
                 "--processes", "2", "--seed", "0", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["finished"] == 3 and len(out["workers"]) == 2 and len({w["worker"] for w in out["workers"]}) == 2
    assert sum(w["measured"] for w in out["workers"]) == 3 == out["points"]


if __name__ == "__main__":  # one worker of the kill test: python tests/test_worker.py URL STUDY NAME
    r = _worker(sys.argv[1], sys.argv[2], sys.argv[3])
    print(json.dumps(r.__dict__))
