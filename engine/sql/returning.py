"""RETURNING for INSERT, UPDATE and DELETE, written once.

RETURNING shows one row per row the statement affected, so it always has
exactly ``rows_affected`` rows:

* INSERT (also ON CONFLICT / OR REPLACE): the new values with their new
  ``_seq``; rows ON CONFLICT DO NOTHING skipped (or DO UPDATE's WHERE
  rejected) are not returned; a row DO UPDATE touches is written and
  returned even when no value changes, as PostgreSQL counts it;
* UPDATE: every row its WHERE matched (as PostgreSQL, DuckDB and SQLite
  return them). A changed row with its new values and new ``_seq``; a row the
  SET leaves as it was is not written, so it comes with its current values
  and its existing ``_seq``;
* DELETE: the deleted row's values, with the tombstone's ``_seq`` (and
  ``_deleted = true`` if asked for).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa

from engine.catalog.model import TableDef
from engine.errors import ColumnNotFoundError
from engine.providers.base import RowVersion, build_arrow
from engine.result import Result


def returning_columns(table: TableDef, names: tuple[str, ...]) -> list[str]:
    """The output columns of ``RETURNING names``; raises on an unknown name
    (call it before writing anything)."""
    wanted: list[str] = []
    for n in names:
        if n == "*":
            wanted += [c.name for c in table.columns]
        elif n in ("_seq", "_deleted") or table.find_column(n) is not None:
            wanted.append(n)
        else:
            raise ColumnNotFoundError(
                f"RETURNING: column '{n}' does not exist in {table.qualified_name}",
                column_name=n,
            )
    return wanted


def with_returning(
    result: Result,
    table: TableDef,
    names: tuple[str, ...] | None,
    versions: Sequence[RowVersion],
) -> Result:
    """``result`` turned into a query result holding ``versions`` (the row
    versions the statement wrote) when the statement has RETURNING."""
    if names is None:
        return result
    full = build_arrow(table, list(versions), hidden=True)
    wanted = returning_columns(table, names)
    # Plain select() cannot repeat a column (``RETURNING id, id``); build by position.
    result.table = pa.Table.from_arrays(
        [full.column(n) for n in wanted],
        schema=pa.schema([full.schema.field(n) for n in wanted]),
    )
    result.is_query = True
    return result


def batch_returning(
    result: Result,
    table: TableDef,
    names: tuple[str, ...] | None,
    batch: pa.RecordBatch,
    seqs: int | np.ndarray,
    *,
    deleted: bool,
) -> Result:
    """``with_returning`` for rows given as one record batch of physical
    columns (``c<id>``, the table's columns in order) whose seqs run from
    ``seqs`` (or are ``seqs``, one per row): the columns are reused, no row
    is built."""
    if names is None:
        return result
    n = batch.num_rows
    columns = {c.name: batch.column(i) for i, c in enumerate(table.columns)}
    if isinstance(seqs, int):
        columns["_seq"] = pa.array(range(seqs, seqs + n), pa.int64())
    else:
        columns["_seq"] = pa.array(seqs, pa.int64())
    columns["_deleted"] = pa.array([deleted] * n, pa.bool_())
    schema = table.arrow_schema(hidden=True)
    wanted = returning_columns(table, names)
    result.table = pa.Table.from_arrays(
        [columns[w] for w in wanted], schema=pa.schema([schema.field(w) for w in wanted])
    )
    result.is_query = True
    return result
