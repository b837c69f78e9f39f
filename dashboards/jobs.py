"""Long work off the UI thread: a `Job` runs a function on a worker thread and the view polls it.

The function receives `report(**info)` (the latest `workbench.progress.Progress` as
`progress=`, plus any keys a view shows, e.g. `status` text or a live cube) and
`should_stop()` (True once `cancel()` was called). The worker never touches widgets; the
view copies `job.snapshot()` into its widgets from a periodic callback (or, in tests, by
calling its poll method), which keeps the UI logic testable without a browser or server.

Model computations of every session of one server go through one `ComputeQueue` (first in,
first out, one at a time: CPU threads and GPU memory are shared). A queued job knows its
position; a job cancelled while queued leaves the queue without running. Times are honest:
`waited` is the time spent in the queue, `elapsed` the time spent computing.
"""
from __future__ import annotations

import threading
import time
import traceback
from typing import Any, Callable

from workbench.errors import WorkbenchError

from .sockets import session_connections

__all__ = ["Job", "Poller", "ComputeQueue", "Cancelled", "Eta", "format_seconds", "on_session_end"]


class Cancelled(Exception):
    """Raised inside a job's function to stop it after `cancel()`: the job ends with no result and no error."""


def format_seconds(s: float) -> str:
    """'4.2 s', '63 s', '2 min 05 s'."""
    if s < 10:
        return f"{s:.1f} s"
    if s < 120:
        return f"{s:.0f} s"
    m, sec = divmod(int(round(s)), 60)
    return f"{m} min {sec:02d} s"


class Eta:
    """The time left of a job from its measured step rate: call `update(done, total)` as progress arrives.

    The rate is measured from the first report seen (so model loading and the first, slower setup do not
    count) to the latest; `left` is None until two reports with different `done` were seen."""

    def __init__(self):
        self._t0: float | None = None
        self._d0 = 0.0
        self.left: float | None = None
        self.seconds_per_step: float | None = None

    def update(self, done: float, total: float, now: float | None = None) -> float | None:
        """Feed the latest progress; returns the estimated seconds left (None while unknown)."""
        now = time.perf_counter() if now is None else now
        if self._t0 is None or done < self._d0:
            self._t0, self._d0, self.left = now, float(done), None
            return None
        if done > self._d0:
            self.seconds_per_step = (now - self._t0) / (done - self._d0)
            self.left = self.seconds_per_step * max(0.0, float(total) - float(done))
        return self.left

    def text(self, elapsed: float) -> str:
        """'1 min 05 s elapsed, about 3 min 10 s left' (or only the elapsed time while the rate is unknown)."""
        out = f"{format_seconds(elapsed)} elapsed"
        return out if self.left is None else f"{out}, about {format_seconds(self.left)} left"


class ComputeQueue:
    """First-in-first-out turns for model computations: one job computes at a time."""

    def __init__(self):
        self._cond = threading.Condition()
        self._waiting: list[Job] = []
        self._running: Job | None = None

    def enter(self, job: "Job") -> bool:
        """Block until it is `job`'s turn (True) or the job was cancelled while waiting (False)."""
        with self._cond:
            self._waiting.append(job)
            try:
                while self._running is not None or self._waiting[0] is not job:
                    if job.cancelled:
                        return False
                    self._cond.wait(0.5)
                if job.cancelled:
                    return False
                self._running = job
                return True
            finally:
                self._waiting.remove(job)
                self._cond.notify_all()

    def leave(self, job: "Job") -> None:
        """`job` has finished computing: the next one's turn."""
        with self._cond:
            if self._running is job:
                self._running = None
            self._cond.notify_all()

    def wake(self) -> None:
        """Wake waiting jobs (one of them was cancelled)."""
        with self._cond:
            self._cond.notify_all()

    def position(self, job: "Job") -> int | None:
        """0 while `job` computes, n >= 1 while n - 1 jobs wait before it (plus the running one), None otherwise."""
        with self._cond:
            if self._running is job:
                return 0
            if job in self._waiting:
                return self._waiting.index(job) + 1
            return None

    def ahead(self, job: "Job") -> int | None:
        """How many computations come before a queued `job` (the running one included); None when not queued."""
        with self._cond:
            if job not in self._waiting:
                return None
            return self._waiting.index(job) + (self._running is not None)

    def __len__(self) -> int:
        with self._cond:
            return len(self._waiting) + (self._running is not None)


class Job:
    """`fn(report, should_stop) -> result` run on a daemon thread, through `queue` when given.

    State: `progress` (dict, the latest report of each key: `progress` a `workbench.progress.Progress`), `result`, `error` (one-line message; a
    WorkbenchError's text, or the exception type and message), `done`, `cancelled`,
    `waited` (seconds in the queue), `elapsed` (seconds computing), `queue_position`.
    """

    def __init__(self, fn: Callable[[Callable[..., None], Callable[[], bool]], Any], *, name: str = "job",
                 queue: ComputeQueue | None = None):
        self.fn = fn
        self.name = name
        self.queue = queue
        self.progress: dict = {}
        self.result: Any = None
        self.error: str | None = None
        self._stop = threading.Event()
        self._abort = threading.Event()
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.queued_at = 0.0
        self.started_at = 0.0
        self.finished_at = 0.0

    # -- worker side ------------------------------------------------------------------------
    def _report(self, **info) -> None:
        if self._abort.is_set():
            raise Cancelled()  # aborted (its tab closed): stop at the next progress report
        with self._lock:
            self.progress = {**self.progress, **info}

    def _run(self) -> None:
        try:
            if self.queue is not None and not self.queue.enter(self):
                return  # cancelled while queued: nothing ran
            try:
                self.started_at = time.perf_counter()
                self.result = self.fn(self._report, self._stop.is_set)
            finally:
                if self.queue is not None:
                    self.queue.leave(self)
        except Cancelled:
            self.result = None
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
            self.queued_at = time.perf_counter()
            if self.queue is None:
                self.started_at = self.queued_at
            self._thread = threading.Thread(target=self._run, name=f"workbench-{self.name}", daemon=True)
            self._thread.start()
        return self

    def cancel(self) -> None:
        """Ask the function to stop (it polls `should_stop()`); a queued job leaves the queue."""
        self._stop.set()
        if self.queue is not None:
            self.queue.wake()

    def abort(self) -> None:
        """Cancel and keep nothing: the next progress report raises `Cancelled` (nobody will see a result)."""
        self._abort.set()
        self.cancel()

    @property
    def cancelled(self) -> bool:
        return self._stop.is_set()

    @property
    def done(self) -> bool:
        return self._done.is_set()

    @property
    def queue_position(self) -> int | None:
        """0 computing, n >= 1 queued (n - 1 jobs wait before it besides the running one), None otherwise."""
        return None if self.queue is None else self.queue.position(self)

    @property
    def waited(self) -> float:
        """Seconds spent waiting in the queue."""
        if not self.queued_at:
            return 0.0
        end = self.started_at or (self.finished_at if self.done else time.perf_counter())
        return max(0.0, end - self.queued_at)

    @property
    def elapsed(self) -> float:
        """Seconds spent computing (not waiting)."""
        if not self.started_at:
            return 0.0
        end = self.finished_at if self.done else time.perf_counter()
        return max(0.0, end - self.started_at)

    def queue_text(self) -> str | None:
        """'queued: 2nd in line (...)' while the job waits, else None."""
        ahead = None if self.queue is None or self.done else self.queue.ahead(self)
        if ahead is None:
            return None
        if ahead == 0:
            return f"queued: next in line, waiting {format_seconds(self.waited)}"
        return (f"queued: {ahead} computation{'s' if ahead > 1 else ''} ahead (one at a time per server), "
                f"waiting {format_seconds(self.waited)}")

    def snapshot(self) -> dict:
        """A copy of the latest progress report."""
        with self._lock:
            return dict(self.progress)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until done (tests); True when it finished."""
        return self._done.wait(timeout)


class Poller:
    """Calls `poll()` every `period_ms` while the view is served (no-op without a Bokeh document,
    where tests call `poll` themselves); `stop()` ends it, `start()` after a stop starts it again.
    When the session's browser connection has closed, it stops and calls `on_gone()` instead."""

    def __init__(self, poll: Callable[[], None], period_ms: int, *, on_gone: Callable[[], None] | None = None):
        self._poll, self._period, self._callback, self._doc, self._on_gone = poll, period_ms, None, None, on_gone
        self._seen = False

    def _tick(self) -> None:
        n = None if self._doc is None else session_connections(self._doc)
        if n:
            self._seen = True
        elif n == 0 and self._seen:
            # the tab closed (a Bokeh session never gets its connection back): stop at once rather than
            # when Bokeh discards the session (15-32 s later), and push nothing to the closed socket.
            # (0 before the first connection is a page still loading, not a closed tab.)
            self.stop()
            if self._on_gone is not None:
                self._on_gone()
            return
        self._poll()

    def start(self) -> None:
        import panel as pn

        if self._callback is None and pn.state.curdoc is not None:
            self._doc = pn.state.curdoc
            self._callback = pn.state.add_periodic_callback(self._tick, period=self._period)

    def stop(self) -> None:
        if self._callback is not None:
            self._callback.stop()
            self._callback = None

    @property
    def running(self) -> bool:
        return self._callback is not None


def on_session_end(callback: Callable[[], None]) -> None:
    """Run `callback()` when the served browser session ends (its tab closed); nothing without a session."""
    import panel as pn

    doc = pn.state.curdoc
    if doc is not None and getattr(doc, "session_context", None) is not None:
        doc.on_session_destroyed(lambda _ctx: callback())
