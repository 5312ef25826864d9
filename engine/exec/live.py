"""Running statements: what ``system.live_queries`` shows and KILL QUERY acts on.

Every statement registers itself for its duration. A query's result is
collected batch by batch on a worker thread while the caller waits on it, so
KILL QUERY (from any thread) and a kernel interrupt (KeyboardInterrupt in the
caller) return "query cancelled" at once; the worker stops at its next batch
and the engine stays usable.
"""

from __future__ import annotations

import itertools
import queue
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from engine.errors import QueryCancelledError, QueryNotFoundError

_current = threading.local()


@dataclass
class LiveQuery:
    query_id: str
    session_id: str
    user: str
    sql: str
    kind: str
    start_time: int  # µs since epoch
    started: float = field(default_factory=time.perf_counter)
    state: str = "running"  # running / queued / cancelling
    cancelled: threading.Event = field(default_factory=threading.Event)
    rows: int = 0  # result rows collected so far (for progress displays)

    @property
    def duration_ms(self) -> float:
        return (time.perf_counter() - self.started) * 1000


class LiveQueries:
    def __init__(self, session_id: str) -> None:
        self.session_id = session_id
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self.running: dict[str, LiveQuery] = {}

    def __repr__(self) -> str:
        return f"<LiveQueries {len(self.running)} running>"

    @contextmanager
    def track(self, user: str, sql: str, kind: str, now_us: int) -> Iterator[LiveQuery]:
        q = LiveQuery(
            f"q{next(self._ids)}-{self.session_id}", self.session_id, user, sql, kind, now_us
        )
        with self._lock:
            self.running[q.query_id] = q
        outer = getattr(_current, "query", None)
        _current.query = q
        try:
            yield q
        finally:
            _current.query = outer
            with self._lock:
                self.running.pop(q.query_id, None)

    def kill(self, query_id: str) -> LiveQuery:
        with self._lock:
            q = self.running.get(query_id)
        if q is None:
            raise QueryNotFoundError(f"No running query with id '{query_id}'")
        q.state = "cancelling"
        q.cancelled.set()
        return q

    def snapshot(self) -> list[LiveQuery]:
        with self._lock:
            return list(self.running.values())

    def collect(self, df: Any) -> pa.Table:
        """Run a DataFusion DataFrame to a table, cancellable by KILL / interrupt.

        The work runs on a daemon thread while the caller waits, so a cancel
        returns at once. DataFusion offers no way to stop a running plan from
        Python: a cancelled query stops at its next result batch, and one
        that produces no batch until the end (a big aggregate) finishes in the
        background; neither blocks the engine or ``close()``."""
        q: LiveQuery | None = getattr(_current, "query", None)
        if q is None:
            return df.to_arrow_table()
        box: dict[str, Any] = {"query": q}
        done = threading.Event()
        _WORKERS.submit(lambda: _drain(df, q.cancelled, box, done))
        try:
            while not done.wait(0.05):
                if q.cancelled.is_set():
                    raise QueryCancelledError(f"Query {q.query_id} was cancelled")
        except KeyboardInterrupt:
            q.state = "cancelling"
            q.cancelled.set()
            raise QueryCancelledError(f"Query {q.query_id} was cancelled (interrupted)") from None
        if "error" in box:
            raise box["error"]
        return box["table"]

    def shutdown(self) -> None:
        for q in self.snapshot():
            q.cancelled.set()


class _Workers:
    """Daemon worker threads, reused between queries; a new one is started
    whenever all are busy (a cancelled aggregate may hold one for a while)."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._idle = 0
        self._lock = threading.Lock()

    def submit(self, fn: Callable[[], None]) -> None:
        with self._lock:
            if self._idle == 0:
                threading.Thread(target=self._loop, name="kalam-query", daemon=True).start()
                self._idle += 1
            self._idle -= 1
        self._jobs.put(fn)

    def _loop(self) -> None:
        while True:
            fn = self._jobs.get()
            try:
                fn()
            finally:
                with self._lock:
                    self._idle += 1


_WORKERS = _Workers()


def _drain(df: Any, cancelled: threading.Event, box: dict[str, Any], done: threading.Event) -> None:
    try:
        batches = []
        query = box.get("query")
        for batch in df.execute_stream():
            if cancelled.is_set():
                raise QueryCancelledError("Query was cancelled")
            batches.append(batch.to_pyarrow())
            if query is not None:
                query.rows += batches[-1].num_rows
        box["table"] = pa.Table.from_batches(batches) if batches else df.schema().empty_table()
    except BaseException as exc:  # handed to the waiting caller
        box["error"] = exc
    finally:
        done.set()
