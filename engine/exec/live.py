"""Running statements: what ``system.live_queries`` shows and KILL QUERY acts on.

Every statement registers itself for its duration. A query's result is
collected on a worker thread while the caller waits on it, so KILL QUERY
(from any thread) and a kernel interrupt (KeyboardInterrupt in the caller)
return "query cancelled" at once.

Cancelling also stops the work itself. Measured on datafusion 55: a thread
blocked in a synchronous ``next()`` of a result stream cannot be stopped
from outside (DataFusion checks for signals only in the main thread, and an
aggregate yields no batch until it is done), and a plan left running keeps
both cores busy for its whole length. So the worker awaits the stream's
batches on an asyncio loop of its own: cancelling that task drops the Rust
future and the stream, which aborts the plan's tokio tasks at their next
yield point. Plans with a nested-loop join (a cross join or a join on a
non-equality) do their work in steps of ``batch_size`` x the build side
between yields, so ``engine.exec.query`` runs them with small batches: a
killed cross join then stops within a fraction of a CPU-second.
"""

from __future__ import annotations

import asyncio
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
    # Set once the query's DataFusion work has been stopped or has finished.
    finished: threading.Event = field(default_factory=threading.Event)
    _abort: Callable[[], None] | None = field(default=None, repr=False)

    def cancel(self) -> None:
        """Mark cancelled and stop the running plan (callable from any thread)."""
        self.state = "cancelling"
        self.cancelled.set()
        abort = self._abort
        if abort is not None:
            abort()

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
        q.cancel()
        return q

    def snapshot(self) -> list[LiveQuery]:
        with self._lock:
            return list(self.running.values())

    def collect(self, df: Any) -> pa.Table:
        """Run a DataFusion DataFrame to a table, cancellable by KILL / interrupt.

        The work runs on a daemon thread while the caller waits, so a cancel
        returns at once; the cancel also aborts the plan (see the module
        docstring), and ``LiveQuery.finished`` is set once it has stopped."""
        q: LiveQuery | None = getattr(_current, "query", None)
        if q is None:
            return df.to_arrow_table()
        box: dict[str, Any] = {}
        done = threading.Event()
        _WORKERS.submit(lambda: _drain(df, q, box, done))
        try:
            while not done.wait(0.05):
                if q.cancelled.is_set():
                    q.cancel()
                    raise QueryCancelledError(f"Query {q.query_id} was cancelled")
        except KeyboardInterrupt:
            q.cancel()
            raise QueryCancelledError(f"Query {q.query_id} was cancelled (interrupted)") from None
        if "error" in box:
            raise box["error"]
        return box["table"]

    def shutdown(self) -> None:
        for q in self.snapshot():
            q.cancel()


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


_loops = threading.local()


def _thread_loop() -> asyncio.AbstractEventLoop:
    """This worker thread's own event loop (created once, reused per query)."""
    loop: asyncio.AbstractEventLoop | None = getattr(_loops, "loop", None)
    if loop is None:
        loop = _loops.loop = asyncio.new_event_loop()
    return loop


async def _batches(df: Any) -> list[pa.RecordBatch]:
    stream = df.execute_stream()
    out = [batch.to_pyarrow() async for batch in stream]
    del stream  # drop the plan now, not when a traceback lets go of this frame
    return out


def _drain(df: Any, q: LiveQuery, box: dict[str, Any], done: threading.Event) -> None:
    loop = _thread_loop()
    task = loop.create_task(_batches(df))

    def abort() -> None:
        loop.call_soon_threadsafe(task.cancel)

    q._abort = abort
    if q.cancelled.is_set():  # cancelled before the abort hook was in place
        task.cancel()
    try:
        batches = loop.run_until_complete(task)
        box["table"] = pa.Table.from_batches(batches) if batches else df.schema().empty_table()
    except asyncio.CancelledError:
        box["error"] = QueryCancelledError(f"Query {q.query_id} was cancelled")
    except BaseException as exc:  # handed to the waiting caller
        box["error"] = exc
    finally:
        q._abort = None
        q.finished.set()
        done.set()
