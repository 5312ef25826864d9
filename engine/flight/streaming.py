"""Streaming a query's result while it still runs.

A ``RunningQuery`` runs one plain SELECT on its own thread as the engine's
``result_sink``: the engine hands it each result batch the moment DataFusion
produces it and keeps none itself, so the server never holds a large result
whole. The batches wait in a buffer of at most ``QUEUE_BYTES``; when the
reader falls behind, the query waits (backpressure), and when the reader
goes away (``close``) the query stops.

The Flight SQL server waits for the first ``head_rows`` rows (or the end),
answers ``GetFlightInfo`` with their schema, and sends the rest from
``DoGet`` as it arrives: transfer overlaps execution instead of following
it. A result that ends within the head is sent whole, with its exact row
count.

Only a plain query qualifies (``is_streamable``). Each batch carries the
query's planned schema (as the engine's own result does), and a DECIMAL
value that overflows its type stops the stream before it is sent, as it
fails the embedded query. A result whose columns the engine renames after
collecting them (duplicate output names) is gathered and renamed here
before anything is sent. When the run ends, the stream is checked against
what the engine returned; a disagreement fails the stream loudly rather
than sending wrong rows.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from engine.errors import InternalError, QueryCancelledError
from engine.exec import live
from engine.sql import parser
from engine.sql import statements as st
from engine.sql.outnames import is_private_alias
from engine.types import check_decimal_results

if TYPE_CHECKING:
    from engine.result import Result

_DONE = object()
# Result bytes buffered between the query and its reader: enough that the
# query runs on while the client turns GetFlightInfo's answer into a DoGet
# (a few ms, ~100k rows of a narrow table), small enough that a stalled
# reader holds the query at this much instead of the whole result.
QUEUE_BYTES = 16 << 20


def is_streamable(stmt: st.Statement) -> bool:
    """A plain query: its result is the batches of one DataFusion collection."""
    return isinstance(stmt, st.Query) and not stmt.explain


def parse_one(sql: str) -> st.Statement | None:
    """The statement of ``sql`` when it is exactly one (else None: the engine
    reports the problem with its own error when it runs the text)."""
    try:
        statements = parser.parse(sql)
    except Exception:  # the engine raises the same error, properly, when it runs
        return None
    return statements[0] if len(statements) == 1 else None


class RunningQuery:
    """One query on a worker thread, its batches queued as they are produced."""

    def __init__(self, run: Callable[[], Result], *, queue_bytes: int = QUEUE_BYTES) -> None:
        # The hand-over is a C queue (no Python lock per batch); the byte
        # budget is two counters, each written by one side only, and an
        # event the reader sets when the query waits for room.
        self._queue: queue.SimpleQueue[tuple[Any, int]] = queue.SimpleQueue()
        self._put_bytes = 0  # written by the query's thread
        self._taken_bytes = 0  # written by the reader
        self._limit = queue_bytes
        self._room = threading.Event()
        self._waiting = False  # the query waits for room
        self._closed = False
        self._planned: pa.Schema | None = None
        self._put_rows = 0  # produced by the query (query thread)
        self._streamed_rows = 0  # taken by the reader
        self._check_decimals = False
        self.result: Result | None = None
        self.error: BaseException | None = None
        self.finished = False
        self._thread = threading.Thread(
            target=self._work, args=(run,), name="kalam-flight-query", daemon=True
        )
        self._thread.start()

    def __repr__(self) -> str:
        return f"<RunningQuery finished={self.finished} streamed_rows={self._streamed_rows}>"

    # ------------------------------------------------- the query's side
    def _work(self, run: Callable[[], Result]) -> None:
        token = live.result_sink.set(self)
        try:
            self.result = run()
        except BaseException as exc:  # handed to the reader of the stream
            self.error = exc
        finally:
            live.result_sink.reset(token)
            self._queue.put((_DONE, 0))  # never waits: the end must always arrive

    def begin(self, schema: pa.Schema) -> None:
        if self._put_rows:
            # A second collection after rows were sent would repeat them.
            raise InternalError("The query collected its result twice while streaming it")
        self._planned = schema
        self._check_decimals = any(pa.types.is_decimal(f.type) for f in schema)

    def put(self, batch: pa.RecordBatch) -> None:
        planned = self._planned
        if (
            planned is not None
            and not batch.schema.equals(planned, check_metadata=True)
            and batch.schema.names == planned.names
            and batch.schema.types == planned.types
        ):
            # The engine gives its result the planned schema when only
            # nullability or metadata differ; the stream does the same.
            batch = pa.RecordBatch.from_arrays(batch.columns, schema=planned)
        self._put_rows += batch.num_rows
        if not self._offer(batch):
            raise QueryCancelledError("The reader of this query's result went away")

    def _offer(self, item: pa.RecordBatch) -> bool:
        """Buffer ``item``, waiting while the buffer is full (it always takes
        one batch, however large); False once the reader closed."""
        size = item.nbytes
        while (
            self._put_bytes > self._taken_bytes
            and self._put_bytes - self._taken_bytes + size > self._limit
            and not self._closed
        ):
            # Announce the wait before re-checking, so a batch the reader
            # takes meanwhile either shows in the check or sets the event.
            self._waiting = True
            self._room.clear()
            if self._put_bytes - self._taken_bytes + size > self._limit and not self._closed:
                self._room.wait()
            self._waiting = False
        if self._closed:
            return False
        self._put_bytes += size
        self._queue.put((item, size))
        return True

    def waiting(self) -> bool:
        """Whether the query is waiting for the reader to make room."""
        return self._waiting

    # ------------------------------------------------ the reader's side
    def close(self) -> None:
        """The reader is done (or gone): stop the query, drop what is buffered."""
        self._closed = True
        self._room.set()
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                return

    def _next(self) -> pa.RecordBatch | None:
        if self._closed:
            raise QueryCancelledError("This query's result stream was closed")
        item, size = self._queue.get()
        self._taken_bytes += size
        if self._waiting:
            self._room.set()
        if item is _DONE:
            self.finished = True
            return None
        if self._check_decimals:
            check_decimal_results(pa.Table.from_batches([item]))
        self._streamed_rows += item.num_rows
        return item  # type: ignore[no-any-return]

    def head(self, rows: int) -> list[pa.RecordBatch]:
        """Batches until at least ``rows`` rows arrived or the query ended
        (then ``finished`` is set and ``error`` / ``result`` tell how)."""
        out: list[pa.RecordBatch] = []
        count = 0
        while count < rows:
            batch = self._next()
            if batch is None:
                break
            out.append(batch)
            count += batch.num_rows
        return out

    def renamed_later(self, head: list[pa.RecordBatch]) -> bool:
        """Whether the engine renames columns of this result after collecting
        it (a private alias for a duplicate output name): then the stream's
        names are not the result's and it must be gathered first."""
        return bool(head) and any(is_private_alias(n) for n in head[0].schema.names)

    def gather(self, head: list[pa.RecordBatch]) -> pa.Table:
        """The whole result, once the query ended: ``head`` and the rest."""
        batches = [*head, *self._remaining()]
        result = self._outcome()
        if not batches:  # answered without a collection (e.g. a key lookup)
            return result.table
        if result.table.num_rows:
            raise self._disagree(result)
        table = pa.Table.from_batches(batches)
        final = result.table.schema
        if table.num_columns != len(final):
            raise self._disagree(result)
        if table.schema.types == final.types:
            return pa.Table.from_arrays(table.columns, schema=final)
        # The engine keeps the batches' own types where they differ from the plan.
        return table.rename_columns(final.names)

    def rest(self) -> Iterator[pa.RecordBatch]:
        """The remaining batches, then a check that nothing was lost or added."""
        yield from self._remaining()
        result = self._outcome()
        streamed = self._planned
        if result.table.num_rows or streamed is None or not streamed.equals(result.table.schema):
            raise self._disagree(result)

    def _remaining(self) -> Iterator[pa.RecordBatch]:
        while not self.finished and (batch := self._next()) is not None:
            yield batch

    def _outcome(self) -> Result:
        if self.error is not None:
            raise self.error
        assert self.result is not None
        return self.result

    def _disagree(self, result: Result) -> InternalError:
        return InternalError(
            f"Streamed {self._streamed_rows} rows of ({self._planned}) but the query returned "
            f"{result.table.num_rows} rows of ({result.table.schema}); this is a bug in the engine"
        )
