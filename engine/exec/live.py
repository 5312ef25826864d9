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
yield point. A nested-loop join (a cross join or a join on a
non-equality) yields only between probe batches: each DataFusion thread
finishes the batch it is on against the whole build side. So
``engine.exec.query`` sizes their batches by the rows the statement reads
(``nested_loop_batch``): up to ~34k build rows a killed join stops within
~0.25 CPU-s a thread; past that, at 64 rows a batch, the floor is ~7 us a
build row (200k rows: up to ~1.4 s a thread).

A statement run with a ``result_sink`` set hands the sink its result
batches as they are produced instead of collecting them (Flight SQL streams
a result that way without ever holding it whole).
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import queue
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import pyarrow as pa

from engine.errors import QueryCancelledError, QueryNotFoundError
from engine.exec.cast import plain_schema, plain_strings

_current = threading.local()
_R = TypeVar("_R")


class ResultSink(Protocol):
    """Takes a statement's result batches as DataFusion produces them (the
    Flight SQL server streams them to its client while the query runs)."""

    def begin(self, schema: pa.Schema) -> None:
        """A collection starts; ``schema`` is its planned result schema."""

    def put(self, batch: pa.RecordBatch) -> None:
        """One result batch. May block (backpressure) and may raise to stop
        the query (the error ends the statement)."""


#: The sink that takes the result batches of the statement run in this
#: context, instead of its result table: the collected table is then empty
#: (the planned schema, no rows), so a streamed result is never held whole.
#: Only the statement's outermost query run feeds it (see
#: ``feeds_result_sink``). ``None``: results are collected as usual.
result_sink: ContextVar[ResultSink | None] = ContextVar("kalam_result_sink", default=None)
# How many query runs (``feeds_result_sink``) enclose this point.
_run_depth: ContextVar[int] = ContextVar("kalam_run_depth", default=0)


def feeds_result_sink(run: Callable[..., _R]) -> Callable[..., _R]:
    """Mark a query runner's ``run``: only its outermost call in a context
    hands its collection to ``result_sink``. A view a query reads is run
    nested inside it, and its rows must stay a table the outer query uses."""

    @functools.wraps(run)
    def wrapper(*args: Any, **kwargs: Any) -> _R:
        token = _run_depth.set(_run_depth.get() + 1)
        try:
            return run(*args, **kwargs)
        finally:
            _run_depth.reset(token)

    return wrapper


def _sink() -> ResultSink | None:
    return result_sink.get() if _run_depth.get() == 1 else None


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
        sink = _sink()
        if sink is not None:
            sink.begin(plain_schema(df.schema()))
        q: LiveQuery | None = getattr(_current, "query", None)
        if q is None:
            if sink is None:
                return plain_strings(df.to_arrow_table())
            for batch in df.execute_stream():
                sink.put(plain_strings(batch.to_pyarrow()))
            return plain_schema(df.schema()).empty_table()
        box: dict[str, Any] = {"query": q}
        done = threading.Event()
        _WORKERS.submit(lambda: _drain(df, q, box, done, sink))
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


async def _batches(
    df: Any, holder: dict[str, Any], q: LiveQuery, sink: ResultSink | None
) -> list[pa.RecordBatch]:
    """The stream's batches (none kept when ``sink`` takes them). The stream
    lives only in ``holder``, never in a frame: a cancelled task's traceback
    keeps its frames (and asyncio's reference cycles keep them until a
    garbage collection), and a stream kept alive that way keeps its plan
    running."""
    stream = df.execute_stream()
    # The bindings' own awaitable (``rbs``): its Python wrapper would hold the
    # stream in a coroutine frame of its own.
    holder["next"] = getattr(stream, "rbs", stream).__anext__
    holder["stream"] = stream
    del stream
    out: list[pa.RecordBatch] = []
    while True:
        try:
            batch = await holder["next"]()
        except StopAsyncIteration:
            return out
        rows = plain_strings(batch.to_pyarrow())
        q.rows += rows.num_rows  # for progress displays
        if sink is None:
            out.append(rows)
        else:
            sink.put(rows)


def _drain(
    df: Any,
    q: LiveQuery,
    box: dict[str, Any],
    done: threading.Event,
    sink: ResultSink | None = None,
) -> None:
    loop = _thread_loop()
    holder: dict[str, Any] = {}
    task = loop.create_task(_batches(df, holder, q, sink))

    def abort() -> None:
        loop.call_soon_threadsafe(task.cancel)

    q._abort = abort
    if q.cancelled.is_set():  # cancelled before the abort hook was in place
        task.cancel()
    try:
        batches = loop.run_until_complete(task)
        box["table"] = (
            pa.Table.from_batches(batches) if batches else plain_schema(df.schema()).empty_table()
        )
    except asyncio.CancelledError:
        box["error"] = QueryCancelledError(f"Query {q.query_id} was cancelled")
    except BaseException as exc:  # handed to the waiting caller
        box["error"] = exc
    finally:
        holder.clear()  # the last reference to the stream: dropping it aborts the plan
        q._abort = None
        q.finished.set()
        done.set()
