"""DataFrames over in-memory Arrow data that registers nothing anywhere.

The engine plans every query in one long-lived context (``engine.exec.query``)
whose catalog must only ever hold what the query being planned resolved, so
nothing may register a table there as a side effect.
"""

from __future__ import annotations

import threading

import pyarrow as pa
from datafusion import DataFrame, SessionConfig, SessionContext

_side = threading.local()


def arrow_frame(data: pa.Table, name: str = "hot_rows") -> DataFrame:
    """``data`` as a DataFusion in-memory table (DataFusion's own semantics for
    every filter, unlike a pyarrow dataset, which evaluates pushed-down
    filters itself: NaN compares differently there).

    ``SessionContext.from_arrow`` registers the table in the context's
    default schema; a per-thread side context takes the name and drops it at
    once, so the engine's shared context never holds a table. The DataFrame
    keeps its table alive and can be used in any context. ``name`` is what
    EXPLAIN shows (the same for every user, so plans reveal nothing)."""
    ctx = _side_context()
    if not data.to_batches():
        data = pa.Table.from_batches([pa.RecordBatch.from_pylist([], schema=data.schema)])
    frame = ctx.from_arrow(data, name=name)
    ctx.deregister_table(name)
    return frame


def _side_context() -> SessionContext:
    ctx = getattr(_side, "ctx", None)
    if ctx is None:
        ctx = _side.ctx = SessionContext(SessionConfig().with_target_partitions(2))
    return ctx


def batches_frame(
    partitions: list[list[pa.RecordBatch]], schema: pa.Schema, name: str = "segments"
) -> DataFrame:
    """Record batches, already split into partitions, as a DataFusion
    in-memory table (no copy: the batches' buffers are shared). DataFusion
    knows each partition's exact row count, so the join planner can still put
    the small side of a join on the build side. Registers nothing, like
    ``arrow_frame``."""
    ctx = _side_context()
    parts = [p for p in partitions if p] or [[pa.RecordBatch.from_pylist([], schema=schema)]]
    frame = ctx.create_dataframe(parts, name=name, schema=schema)
    ctx.deregister_table(name)
    return frame
