"""Background jobs (flush, evict, repair): a record per job and one worker.

Jobs run one at a time on a single worker thread, in submission order, so a
table is never flushed by two jobs at once. ``wait`` blocks on the job's
event (with a timeout), never on a sleep loop.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from engine.errors import KalamError


@dataclass
class Job:
    job_id: str
    job_type: str
    namespace: str | None
    table_name: str | None
    scope: str | None = None
    status: str = "queued"  # queued / running / completed / failed
    rows: int = 0
    segments: int = 0
    message: str = ""
    error: str | None = None
    created_at: int = 0  # µs since epoch
    started_at: int | None = None
    finished_at: int | None = None
    result: Any = None
    done: threading.Event = field(default_factory=threading.Event, repr=False)


class JobManager:
    MAX_KEPT = 1000  # finished jobs kept for system.jobs

    def __init__(self, now_us: Callable[[], int]) -> None:
        self._now_us = now_us
        self._ids = itertools.count(1)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kalam-job")
        self._lock = threading.Lock()
        self.jobs: dict[str, Job] = {}

    def __repr__(self) -> str:
        running = sum(1 for j in self.jobs.values() if j.status in ("queued", "running"))
        return f"<JobManager {len(self.jobs)} job(s), {running} pending>"

    def submit(
        self,
        job_type: str,
        fn: Callable[[Job], Any],
        *,
        namespace: str | None = None,
        table_name: str | None = None,
    ) -> Job:
        with self._lock:
            job = Job(
                f"{job_type}-{int(time.time())}-{next(self._ids)}",
                job_type,
                namespace,
                table_name,
                created_at=self._now_us(),
            )
            self.jobs[job.job_id] = job
            self._trim()
        future: Future[Any] = self._pool.submit(self._run, job, fn)
        del future
        return job

    def run_inline(self, job_type: str, fn: Callable[[Job], Any], **where: Any) -> Job:
        """Record and run a job in the calling thread (scheduler ticks, tests)."""
        with self._lock:
            job = Job(
                f"{job_type}-{int(time.time())}-{next(self._ids)}",
                job_type,
                where.get("namespace"),
                where.get("table_name"),
                created_at=self._now_us(),
            )
            self.jobs[job.job_id] = job
        self._run(job, fn)
        return job

    def _run(self, job: Job, fn: Callable[[Job], Any]) -> None:
        job.status = "running"
        job.started_at = self._now_us()
        try:
            job.result = fn(job)
            job.status = "completed"
        except KalamError as exc:
            job.status = "failed"
            job.error = str(exc)
            job.result = exc
        except Exception as exc:  # a bug: keep it visible on the job
            job.status = "failed"
            job.error = f"{type(exc).__name__}: {exc}"
            job.result = exc
        finally:
            job.finished_at = self._now_us()
            job.done.set()

    def wait(self, job: Job, timeout: float | None = 600.0) -> Job:
        if not job.done.wait(timeout):
            raise TimeoutError(f"Job {job.job_id} did not finish within {timeout} s")
        return job

    def _trim(self) -> None:
        finished = [j for j in self.jobs.values() if j.done.is_set()]
        for j in finished[: max(0, len(self.jobs) - self.MAX_KEPT)]:
            self.jobs.pop(j.job_id, None)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=False)
