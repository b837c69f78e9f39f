"""Long work off the UI thread: a `Job` runs a function on a worker thread and the view polls it.

The function receives `report(**info)` (progress: any keys, e.g. done/total/loss) and
`should_stop()` (True once `cancel()` was called). The worker never touches widgets; the
view copies `job.progress` into its widgets from a periodic callback (or, in tests, by
calling its poll method), which keeps the UI logic testable without a browser or server.
Model computations from all sessions share one lock (`MODEL_LOCK`): a second job waits.
"""
from __future__ import annotations

import threading
import time
import traceback
from typing import Any, Callable

from workbench.errors import WorkbenchError

__all__ = ["Job", "Poller", "MODEL_LOCK"]

#: one model computation at a time across all browser sessions (CPU threads and GPU memory are shared)
MODEL_LOCK = threading.Lock()


class Job:
    """`fn(report, should_stop) -> result` run on a daemon thread.

    State: `progress` (dict, latest report), `result`, `error` (one-line message; a
    WorkbenchError's text, or the exception type and message), `done`, `cancelled`,
    `started_at`, `elapsed`.
    """

    def __init__(self, fn: Callable[[Callable[..., None], Callable[[], bool]], Any], *, name: str = "job",
                 use_model_lock: bool = True):
        self.fn = fn
        self.name = name
        self.use_model_lock = use_model_lock
        self.progress: dict = {}
        self.result: Any = None
        self.error: str | None = None
        self.waiting = False
        self._stop = threading.Event()
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.started_at = 0.0
        self.finished_at = 0.0

    # -- worker side ------------------------------------------------------------------------
    def _report(self, **info) -> None:
        with self._lock:
            self.progress = {**self.progress, **info}

    def _run(self) -> None:
        try:
            if self.use_model_lock:
                self.waiting = not MODEL_LOCK.acquire(blocking=False)
                if self.waiting:
                    self._report(status="waiting for another computation to finish")
                    MODEL_LOCK.acquire()
                    self.waiting = False
            try:
                self._report(status="running")
                self.result = self.fn(self._report, self._stop.is_set)
            finally:
                if self.use_model_lock:
                    MODEL_LOCK.release()
        except WorkbenchError as exc:
            self.error = str(exc)
        except Exception as exc:  # shown in the UI as one line; the traceback goes to the server log
            traceback.print_exc()
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            self.finished_at = time.perf_counter()
            self._done.set()

    # -- UI side ----------------------------------------------------------------------------
    def start(self) -> "Job":
        """Start the worker thread (once)."""
        if self._thread is None:
            self.started_at = time.perf_counter()
            self._thread = threading.Thread(target=self._run, name=f"workbench-{self.name}", daemon=True)
            self._thread.start()
        return self

    def cancel(self) -> None:
        """Ask the function to stop (it polls `should_stop()`)."""
        self._stop.set()

    @property
    def cancelled(self) -> bool:
        return self._stop.is_set()

    @property
    def done(self) -> bool:
        return self._done.is_set()

    @property
    def elapsed(self) -> float:
        end = self.finished_at if self.done else time.perf_counter()
        return end - self.started_at if self.started_at else 0.0

    def snapshot(self) -> dict:
        """A copy of the latest progress report."""
        with self._lock:
            return dict(self.progress)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until done (tests); True when it finished."""
        return self._done.wait(timeout)


class Poller:
    """Calls `poll()` every `period_ms` while the view is served (no-op without a Bokeh document,
    where tests call `poll` themselves); `stop()` ends it, `start()` after a stop starts it again."""

    def __init__(self, poll: Callable[[], None], period_ms: int):
        self._poll, self._period, self._callback = poll, period_ms, None

    def start(self) -> None:
        import panel as pn

        if self._callback is None and pn.state.curdoc is not None:
            self._callback = pn.state.add_periodic_callback(self._poll, period=self._period)

    def stop(self) -> None:
        if self._callback is not None:
            self._callback.stop()
            self._callback = None
