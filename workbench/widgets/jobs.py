"""The dashboard's job queue: one worker runs jobs one at a time; a job asked for while one runs
replaces any other waiting one (slider moves merge into the latest), and a cancel flag the running
job can poll."""
from __future__ import annotations

import threading


class LatestJobQueue:
    """Runs `run(job)` for submitted jobs, in a worker thread (`threaded`) or in the caller.

    At most one job waits: submitting while a job runs replaces the waiting one, so a burst of
    requests ends with the last. `cancel` is set by `cancel()` and cleared before each job starts;
    `run` polls it (`cancelled`). Errors go to `on_error(exc)`; the queue keeps going.

    Args:
        run: `fn(job)` doing the work.
        on_error: `fn(exception)` for a job that raised.
        after: `fn()` called after each job (success or not), e.g. to disable a Cancel button.
        threaded: run jobs in a daemon thread (interactive use) or in `submit` itself (scripts, tests).
    """

    def __init__(self, run, on_error, after=lambda: None, *, threaded: bool = True):
        self.run, self.on_error, self.after, self.threaded = run, on_error, after, threaded
        self._lock, self._cancel = threading.Lock(), threading.Event()
        self._pending, self._busy, self._thread = None, False, None

    def submit(self, job) -> None:
        """Ask for `job`; it runs next (replacing a job still waiting)."""
        with self._lock:
            self._pending = job
            if self._busy:  # the running job finishes; this one runs next
                return
            self._busy = True
        if self.threaded:
            self._thread = threading.Thread(target=self._drain, daemon=True)
            self._thread.start()
        else:
            self._drain()

    def wait(self, timeout: float | None = None) -> None:
        """Block until every submitted job has run."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def cancel(self) -> None:
        """Ask the running job to stop (it sees `cancelled`)."""
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def wait_cancel(self, timeout: float) -> bool:
        """Wait up to `timeout` s for a cancel request; whether one came."""
        return self._cancel.wait(timeout)

    def _drain(self) -> None:
        while True:
            with self._lock:
                job, self._pending = self._pending, None
                if job is None:
                    self._busy = False
                    return
            self._cancel.clear()
            try:
                self.run(job)
            except Exception as e:  # noqa: BLE001 - reported, the queue stays usable
                self.on_error(e)
            finally:
                self.after()
