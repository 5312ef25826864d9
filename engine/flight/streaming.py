"""Streaming a query's result while it still runs.

A ``RunningQuery`` runs one plain SELECT on its own thread with the engine's
``result_sink`` pointed at a queue, so each result batch is available the
moment DataFusion produces it. The Flight SQL server waits for the first
``head_rows`` rows (or the end), answers ``GetFlightInfo`` with their schema,
and sends the rest from ``DoGet`` as it arrives: transfer overlaps execution
instead of following it. Small results finish within the head and are sent
from the engine's final table with their exact row count.

Only a plain query qualifies (``is_streamable``): its result is exactly the
batches its one DataFusion collection produces. When the run ends, the
streamed row count is checked against the engine's table; a mismatch fails
the stream loudly rather than sending wrong rows.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from engine.errors import InternalError
from engine.exec import live
from engine.sql import parser
from engine.sql import statements as st

if TYPE_CHECKING:
    from engine.result import Result

_DONE = object()


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

    def __init__(self, run: Callable[[], Result]) -> None:
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._streamed_rows = 0
        self.result: Result | None = None
        self.error: BaseException | None = None
        self.finished = False
        self._thread = threading.Thread(
            target=self._work, args=(run,), name="kalam-flight-query", daemon=True
        )
        self._thread.start()

    def __repr__(self) -> str:
        return f"<RunningQuery finished={self.finished} streamed_rows={self._streamed_rows}>"

    def _work(self, run: Callable[[], Result]) -> None:
        token = live.result_sink.set(self._queue.put)
        try:
            self.result = run()
        except BaseException as exc:  # handed to the reader of the stream
            self.error = exc
        finally:
            live.result_sink.reset(token)
            self._queue.put(_DONE)

    def _next(self) -> pa.RecordBatch | None:
        item = self._queue.get()
        if item is _DONE:
            self.finished = True
            return None
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

    def rest(self) -> Iterator[pa.RecordBatch]:
        """The remaining batches, then a check that nothing was lost or added."""
        while (batch := self._next()) is not None:
            yield batch
        if self.error is not None:
            raise self.error
        assert self.result is not None
        if self._streamed_rows != self.result.table.num_rows:
            raise InternalError(
                f"Streamed {self._streamed_rows} rows but the query returned "
                f"{self.result.table.num_rows}; this is a bug in the engine"
            )
