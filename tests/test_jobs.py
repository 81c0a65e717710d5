"""The dashboard's job queue on its own: jobs run in order, a burst merges into the latest, cancel and errors."""
import threading

from workbench.widgets import LatestJobQueue


def test_unthreaded_jobs_run_in_the_caller_in_order():
    ran, after = [], []
    q = LatestJobQueue(ran.append, lambda e: None, lambda: after.append(1), threaded=False)
    q.submit("a")
    q.submit("b")
    assert ran == ["a", "b"] and len(after) == 2


def test_a_burst_while_a_job_runs_ends_with_the_latest():
    started, release, ran = threading.Event(), threading.Event(), []

    def run(job):
        ran.append(job)
        if job == "first":
            started.set()
            assert release.wait(5)

    q = LatestJobQueue(run, lambda e: None)
    q.submit("first")
    assert started.wait(5)
    for job in ("second", "third", "fourth"):  # submitted while "first" runs: only the last waits
        q.submit(job)
    release.set()
    q.wait(5)
    assert ran == ["first", "fourth"]


def test_cancel_reaches_the_running_job_and_is_cleared_for_the_next():
    seen, started = [], threading.Event()

    def run(job):
        if job == "long":
            started.set()
            seen.append(("long", q.wait_cancel(5)))
        else:
            seen.append((job, q.cancelled))

    q = LatestJobQueue(run, lambda e: None)
    q.submit("long")
    assert started.wait(5)
    q.cancel()
    q.wait(5)
    q.submit("next")
    q.wait(5)
    assert seen == [("long", True), ("next", False)]


def test_an_error_is_reported_and_the_queue_goes_on():
    errors, ran = [], []

    def run(job):
        if job == "bad":
            raise ValueError("nope")
        ran.append(job)

    q = LatestJobQueue(run, errors.append, threaded=False)
    q.submit("bad")
    q.submit("good")
    assert [str(e) for e in errors] == ["nope"] and ran == ["good"]
