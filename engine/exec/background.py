"""One background thread that runs queued jobs in order.

The thread starts when a job arrives and ends when the queue is empty, so an
idle engine holds no thread; ``wait_idle`` lets tests and benchmarks wait for
the queue to drain instead of sleeping. Used by the warm segment cache
(decoding segments) and the deletion masks (copies without hidden rows).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable


class BackgroundWorker:
    """Jobs run one at a time on a daemon thread; a job that raises is counted
    in ``errors`` and the next one runs."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._jobs: queue.SimpleQueue[Callable[[], object]] = queue.SimpleQueue()
        self._lock = threading.Lock()  # the queue's emptiness and the thread's life
        self._thread: threading.Thread | None = None
        self._idle = threading.Event()
        self._idle.set()
        self.errors = 0

    def __repr__(self) -> str:
        return f"<BackgroundWorker {self.name} {'idle' if self._idle.is_set() else 'busy'}>"

    def submit(self, job: Callable[[], object]) -> None:
        with self._lock:
            self._idle.clear()
            self._jobs.put(job)
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, name=self.name, daemon=True)
                self._thread.start()

    def drain(self) -> list[Callable[[], object]]:
        """Take the jobs still queued (not the one running) without running them."""
        out = []
        with self._lock:
            while not self._jobs.empty():
                out.append(self._jobs.get())
        return out

    def _work(self) -> None:
        while True:
            with self._lock:
                if self._jobs.empty():  # (jobs are put under this lock)
                    self._thread = None
                    self._idle.set()
                    return
                job = self._jobs.get()
            try:
                job()
            except Exception:
                self.errors += 1

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until no job is queued or running."""
        return self._idle.wait(timeout)
