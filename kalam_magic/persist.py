"""``%kalam --persist df INTO ns.t``: DataFrames into tables through the engine's bulk path.

pandas, polars and Arrow inputs all become one ``pyarrow.Table``; the engine
creates the table when it is missing and appends otherwise. Large inputs go in
batches so a progress bar can move; the bar is plain text on stderr (no
widget dependency) and only appears from ``Kalam.progress_threshold`` rows.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import pyarrow as pa
from IPython.core.error import UsageError

from engine import KalamError, Result
from kalam_magic.progress import ProgressBar

if TYPE_CHECKING:
    from kalam_magic.session import AnyEngine


def to_arrow(value: Any, name: str) -> pa.Table:
    """An Arrow table from a pandas / polars DataFrame or an Arrow table / batch."""
    if isinstance(value, pa.Table):
        return value
    if isinstance(value, pa.RecordBatch):
        return pa.Table.from_batches([value])
    module = type(value).__module__.split(".")[0]
    if module == "pandas":
        return pa.Table.from_pandas(value, preserve_index=False)
    if module == "polars" and hasattr(value, "to_arrow"):
        return value.to_arrow()
    raise UsageError(
        f"--persist takes a pandas or polars DataFrame or a pyarrow Table; "
        f"{name} is a {type(value).__name__}"
    )


def persist(
    engine: AnyEngine,
    data: pa.Table,
    target: str,
    *,
    user: str,
    primary_key: str | None = None,
    batch_rows: int,
    progress_threshold: int,
) -> Result:
    """Write ``data`` into ``target`` (created when missing); one engine call per batch.

    Each batch is atomic; a failure in a later batch leaves the earlier ones written,
    and the error says how many rows went in.
    """
    total = data.num_rows
    start = time.perf_counter()
    results: list[Result] = []
    with ProgressBar(f"persist {target}", threshold=progress_threshold) as bar:
        # An empty input still reaches the engine once, so that it creates the table.
        offsets = range(0, total, batch_rows) if total else range(1)
        for offset in offsets:
            batch = data.slice(offset, batch_rows)
            try:
                results.append(
                    engine.insert_arrow(target, batch, user=user, primary_key=primary_key)
                )
            except KalamError as err:
                if not offset:
                    raise
                note = f" ({offset} of {total} rows were written by earlier batches)"
                raise type(err)(
                    err.message + note, line=err.line, column=err.column, **err.fields
                ) from err
            bar(offset + batch.num_rows, total)
    last = results[-1]
    elapsed = (time.perf_counter() - start) * 1000
    return Result(
        message=f"Persisted {total:,} row(s) into {target}" if len(results) > 1 else last.message,
        rows_affected=total,
        elapsed_ms=elapsed if len(results) > 1 else last.elapsed_ms,
        statement=last.statement,
    )
