"""The background worker shared by the warm cache and the deletion masks."""

from __future__ import annotations

import threading

from engine.exec.background import BackgroundWorker


def test_jobs_run_in_order_a_failing_job_is_counted_and_the_rest_still_run():
    worker = BackgroundWorker("test-worker")
    done: list[int] = []

    def fail() -> None:
        raise RuntimeError("boom")

    for job in (lambda: done.append(1), fail, lambda: done.append(2)):
        worker.submit(job)
    assert worker.wait_idle(30)
    assert done == [1, 2] and worker.errors == 1
    worker.submit(lambda: done.append(3))  # a new thread once the last one ended
    assert worker.wait_idle(30) and done == [1, 2, 3]


def test_drain_takes_the_queued_jobs_without_running_them():
    worker = BackgroundWorker("test-worker")
    release = threading.Event()
    started = threading.Event()
    ran: list[str] = []

    def blocker() -> None:
        started.set()
        release.wait(30)
        ran.append("blocker")

    worker.submit(blocker)
    assert started.wait(30)
    queued = [lambda: ran.append("a"), lambda: ran.append("b")]
    for job in queued:
        worker.submit(job)
    assert not worker.wait_idle(0)
    assert worker.drain() == queued
    release.set()
    assert worker.wait_idle(30)
    assert ran == ["blocker"]
