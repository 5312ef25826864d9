"""Streaming a query's result while it still runs.

A ``RunningQuery`` runs one plain SELECT on its own thread as the engine's
``result_sink``: the engine hands it each result batch the moment DataFusion
produces it and keeps none itself, so the server never holds a large result
whole. The batches go to the reader in chunks (``CHUNK_ROWS``, in order)
and wait in a buffer of at most ``QUEUE_BYTES``; when the reader falls
behind, the query waits (backpressure), and when the reader goes away
(``close``) the query stops.

The Flight SQL server waits for the first chunk (or the end), answers
``GetFlightInfo`` with its schema, and sends the rest from ``DoGet`` as it
arrives, a message per chunk: transfer overlaps execution instead of
following it. The last chunk carries the end of the query, so a result that
fits in the head is sent whole, with its exact row count.

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
import time
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
# The query hands its batches over in chunks of up to this many rows (or
# bytes), not one by one: each hand-over wakes the reader's thread and
# passes the GIL back and forth, and on a busy 2-core machine that cost
# more than the query itself (measured, 1M rows in 200 batches: streamed one
# by one 48 ms median and 57 ms CPU, in 64k-row chunks 33 ms and 40 ms, the
# query alone 27 ms). A chunk also leaves once it is ``CHUNK_SECONDS`` old
# (at the query's next batch, or taken by a reader that waited that long)
# and when the query ends.
CHUNK_ROWS = 64 * 1024
CHUNK_BYTES = 8 << 20
CHUNK_SECONDS = 0.02
# The head (``head``: what GetFlightInfo answers with) waits this long for
# the query's next hand-over before taking the rows gathered so far: a
# result that fits in one chunk is then whole, with its exact row count,
# even when a busy machine delays the query's end past CHUNK_SECONDS after
# its last batch (seen in CI: a 3-row result answered with an unknown count).
HEAD_SECONDS = 1.0


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

    def __init__(
        self,
        run: Callable[[], Result],
        *,
        queue_bytes: int = QUEUE_BYTES,
        chunk_rows: int = CHUNK_ROWS,
    ) -> None:
        # The hand-over is a C queue of chunks; the byte budget is two
        # counters, each written by one side only, and an event the reader
        # sets when the query waits for room. The chunk being gathered is
        # shared under a lock only so that a reader that waited can take it.
        self._queue: queue.SimpleQueue[tuple[list[Any], int]] = queue.SimpleQueue()
        # Batches gathered into the next chunk (the query's thread; the
        # reader only in ``_get``).
        self._chunk: list[pa.RecordBatch] = []
        self._chunk_rows = 0
        self._chunk_bytes = 0
        self._chunk_since = 0.0
        self._chunk_limit = chunk_rows
        self._in_flight = 0  # chunks taken from _chunk, not yet queued
        self._lock = threading.Lock()  # guards _chunk* and _in_flight
        self._ready: list[Any] = []  # taken, not yet read (reader only)
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
        self._patience = CHUNK_SECONDS  # the reader's wait before it takes a chunk
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
            with self._lock:
                # The last rows and the end travel together, so a reader
                # that takes them knows the query ended (an error, if any,
                # reaches it after these rows). Never waits: the end must
                # always arrive.
                last = [] if self._closed else self._chunk
                self._put_bytes += self._chunk_bytes if last else 0
                self._queue.put(([*last, _DONE], self._chunk_bytes if last else 0))
                self._chunk = []

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
        size = batch.nbytes
        with self._lock:
            before = None
            if self._chunk and (
                self._chunk_rows + batch.num_rows > self._chunk_limit
                or self._chunk_bytes + size > CHUNK_BYTES
            ):  # a chunk stays within its limits unless one batch exceeds them
                before = self._take_chunk()
            if not self._chunk:
                self._chunk_since = time.monotonic()
            self._chunk.append(batch)
            self._chunk_rows += batch.num_rows
            self._chunk_bytes += size
            after = None
            if (
                self._chunk_rows >= self._chunk_limit
                or self._chunk_bytes >= CHUNK_BYTES
                or time.monotonic() - self._chunk_since >= CHUNK_SECONDS
            ):
                after = self._take_chunk()
        for chunk in (before, after):
            if chunk is not None and not self._offer(*chunk):
                raise QueryCancelledError("The reader of this query's result went away")
        if self._closed:
            raise QueryCancelledError("The reader of this query's result went away")

    def _take_chunk(self) -> tuple[list[pa.RecordBatch], int]:
        """The chunk gathered so far, now on its way to the queue (under the lock)."""
        chunk = (self._chunk, self._chunk_bytes)
        self._chunk, self._chunk_rows, self._chunk_bytes = [], 0, 0
        self._in_flight += 1
        return chunk

    def _offer(self, item: list[pa.RecordBatch], size: int) -> bool:
        """Buffer the chunk ``item``, waiting while the buffer is full (it
        always takes one chunk, however large); False once the reader closed."""
        while (
            self._put_bytes > self._taken_bytes
            and self._put_bytes - self._taken_bytes + size > self._limit
            and not self._closed
        ):
            # Announce the wait before re-checking, so a chunk the reader
            # takes meanwhile either shows in the check or sets the event.
            self._waiting = True
            self._room.clear()
            if self._put_bytes - self._taken_bytes + size > self._limit and not self._closed:
                self._room.wait()
            self._waiting = False
        with self._lock:
            self._in_flight -= 1
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
        self._ready = []
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                return

    def _next(self) -> pa.RecordBatch | None:
        if self._closed:
            raise QueryCancelledError("This query's result stream was closed")
        if not self._ready:
            item, size = self._get()
            self._taken_bytes += size
            if self._waiting:
                self._room.set()
            self._ready = item[::-1]  # popped from the end, in order
        batch = self._ready.pop()
        if batch is _DONE:  # always the last of its chunk
            self.finished = True
            return None
        if self._check_decimals:
            check_decimal_results(pa.Table.from_batches([batch]))
        self._streamed_rows += batch.num_rows
        return batch

    def _get(self) -> tuple[list[Any], int]:
        """The next chunk (or the end) from the queue. When none came for
        ``CHUNK_SECONDS`` (``HEAD_SECONDS`` for the head), the reader takes
        the rows the query gathered so far itself: a query that stalls (or
        trickles) after producing rows does not hold them back until its
        next batch."""
        while True:
            try:
                return self._queue.get(timeout=self._patience)
            except queue.Empty:
                pass
            with self._lock:
                # Only when nothing handed over is queued or on its way,
                # so rows never overtake earlier ones.
                if self._chunk and not self._in_flight and self._queue.empty():
                    chunk = self._chunk
                    self._chunk, self._chunk_rows, self._chunk_bytes = [], 0, 0
                    return chunk, 0  # never counted against the buffer

    def _next_chunk(self) -> list[pa.RecordBatch] | None:
        """The batches of the next chunk the query handed over (or what is
        left of it), None at the end."""
        first = self._next()
        if first is None:
            return None
        out = [first]
        while self._ready:  # never waits: these were handed over together
            batch = self._next()
            if batch is None:  # the end came with this chunk: ``finished`` is set
                break
            out.append(batch)
        return out

    def head(self, rows: int) -> list[pa.RecordBatch]:
        """Whole chunks until at least ``rows`` rows arrived or the query
        ended (then ``finished`` is set and ``error`` / ``result`` tell how)."""
        out: list[pa.RecordBatch] = []
        count = 0
        self._patience = HEAD_SECONDS
        try:
            while count < rows:
                chunk = self._next_chunk()
                if chunk is None:
                    break
                out += chunk
                count += sum(b.num_rows for b in chunk)
        finally:
            self._patience = CHUNK_SECONDS
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
        for chunk in self.rest_chunks():
            yield from chunk

    def rest_chunks(self) -> Iterator[list[pa.RecordBatch]]:
        """The remaining batches as the query handed them over (a list per
        chunk), then a check that nothing was lost or added."""
        while not self.finished and (chunk := self._next_chunk()) is not None:
            yield chunk
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
