"""dashboards.jobs: one compute queue with honest positions and times; cancel and abort keep nothing."""
from __future__ import annotations

import threading
import time

from dashboards.jobs import ComputeQueue, Job


def test_one_queue_positions_honest_times_and_cancel_while_queued():
    q = ComputeQueue()
    gate = threading.Event()
    ran = []

    def slow(report, stop):
        report(stage="optimise")
        gate.wait(10)
        ran.append("a")
        return "a"

    def quick(report, stop):
        ran.append("b")
        return "b"

    a = Job(slow, queue=q).start()
    time.sleep(0.2)
    b = Job(quick, queue=q).start()
    c = Job(quick, queue=q).start()
    time.sleep(0.3)
    assert q.position(a) == 0 and b.queue_text().startswith("queued: 1 computation ahead")
    assert c.queue_text().startswith("queued: 2 computations ahead")
    c.cancel()  # a tab closed while its job waited: it leaves the queue without running
    assert c.wait(5) and c.result is None and c.error is None and c.elapsed == 0
    time.sleep(0.5)
    gate.set()
    assert a.wait(10) and b.wait(10)
    assert ran == ["a", "b"] and b.result == "b"
    assert b.waited >= 0.7 and b.elapsed < 0.5  # the wait is not counted as computing time


def test_an_aborted_job_stops_at_its_next_report_and_keeps_nothing():
    q = ComputeQueue()
    seen = []

    def work(report, stop):
        for i in range(1000):
            report(iteration=i)
            seen.append(i)
            time.sleep(0.01)
        return "finished"

    job = Job(work, queue=q).start()
    time.sleep(0.2)
    job.abort()  # what a closed tab does
    assert job.wait(5) and job.result is None and job.error is None and len(seen) < 1000
    assert len(q) == 0  # the queue is free for the next tab
