"""A live query's WHERE and projection, evaluated on changed rows.

The predicate and the projection reach DataFusion exactly as written (token
slices of the SUBSCRIBE statement), over a one-batch in-memory table holding
the changed row versions, so a subscription selects and computes exactly what
a SELECT of the same text would (NULL comparisons included). A single
partition keeps DataFusion's output in input order, so each output row is
matched back to the row version it came from.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
from datafusion import SessionConfig, SessionContext
from datafusion.catalog import Schema

from engine.catalog.model import TableDef
from engine.errors import KalamError, NumericOverflowError, UnsupportedStatementError
from engine.exec.cast import plain_strings
from engine.exec.query import CATALOG, datafusion_error, hidden_columns_used
from engine.sql.checked_ints import checked_arithmetic, overflow_message
from engine.sql.numeric_semantics import exact_numbers
from engine.sql.query_edits import hidden_star_edits
from engine.sql.statements import Subscribe
from engine.sql.tokens import apply_edits

ROW = "__kalam_row"  # cannot clash: column names start with a letter


class Evaluator:
    """Runs one subscription's predicate and projection over a few rows."""

    def __init__(self, stmt: Subscribe, namespace: str, table: TableDef) -> None:
        self.namespace = namespace
        self.table = table
        named, deleted = hidden_columns_used(stmt.query.tree)
        if deleted:
            raise UnsupportedStatementError(
                "SUBSCRIBE cannot use _deleted: a live query sees live rows, and deletes "
                "arrive as 'delete' changes"
            )
        # The query names _seq, or rows are known by it (a STREAM table without a key).
        self.hidden = named or table.pk is None
        where = f" WHERE {stmt.where_sql}" if stmt.where_sql is not None else ""
        self.match_sql = f"SELECT {ROW} FROM {stmt.target_sql}{where}"
        self.has_where = stmt.where_sql is not None
        project = f"SELECT {stmt.projection_sql} FROM {stmt.target_sql}"
        self.full_sql = f"SELECT * FROM {stmt.target_sql}{where}"
        if self.hidden:
            project = apply_edits(project, hidden_star_edits(project, self._is_base))
            self.full_sql = f"SELECT *, _seq, _deleted FROM {stmt.target_sql}{where}"
        self.project_sql = project
        # As a SELECT of the same text computes it (engine/sql/numeric_semantics.py).
        self.match_sql = _exact(self.match_sql, table)
        self.project_sql = _exact(self.project_sql, table)
        self.full_sql = _exact(self.full_sql, table)

    def __repr__(self) -> str:
        return f"<Evaluator {self.table.qualified_name}: {self.project_sql!r}>"

    def _is_base(self, ns: str | None, name: str) -> bool:
        return (ns or self.namespace, name) == (self.table.namespace, self.table.name)

    def _run(self, sql: str, data: pa.Table) -> pa.Table:
        ctx = SessionContext(
            SessionConfig()
            .with_default_catalog_and_schema(CATALOG, self.namespace)
            .with_information_schema(False)
            .with_target_partitions(1)  # one partition: rows come out in input order
        )
        if self.table.namespace != self.namespace:
            ctx.catalog(CATALOG).register_schema(self.table.namespace, Schema.memory_schema())
        batches = data.combine_chunks().to_batches() or [
            pa.RecordBatch.from_pylist([], schema=data.schema)
        ]
        ctx.register_record_batches(self.table.qualified_name, [batches])
        try:
            return plain_strings(ctx.sql(sql).to_arrow_table())
        except KalamError:
            raise
        except Exception as exc:  # DataFusion raises plain Exception / ValueError
            error = datafusion_error(exc)
            raise overflow_error(error) or error from None

    def project(self, data: pa.Table) -> pa.Table:
        """The projection of every row of ``data`` (rows already matching)."""
        out = self._run(self.project_sql, data)
        if out.num_rows != data.num_rows:  # a projection keeps every row; say so if not
            raise UnsupportedStatementError(
                "SUBSCRIBE's projection must give one row per table row"
            )
        return out

    def evaluate(self, data: pa.Table) -> tuple[list[int], pa.Table]:
        """(indices of the rows of ``data`` the WHERE accepts, their projection)."""
        if not self.has_where:
            return list(range(data.num_rows)), self.project(data)
        numbered = data.append_column(ROW, pa.array(range(data.num_rows), type=pa.int64()))
        picked = sorted(self._run(self.match_sql, numbered).column(0).to_pylist())
        return picked, self.project(data.take(pa.array(picked, type=pa.int64())))

    def empty(self) -> pa.Table:
        """The projection of no rows (the subscription's schema)."""
        return self.project(self.table.arrow_schema(hidden=self.hidden).empty_table())


def _exact(sql: str, table: TableDef) -> str:
    """``sql`` with integer casts rounded, -0.0 equal to 0.0 and integer
    arithmetic failing on overflow instead of wrapping, as in a SELECT
    (``engine/sql/retry.py``): before, ``b * 1000000000000`` over a BIGINT
    holding 10^7 showed -8446744073709551616 in a subscription's rows, and a
    WHERE over it dropped the row, where the SELECT raises."""

    def schema_of(ns: str | None, name: str) -> pa.Schema | None:
        ours = name == table.name and ns in (None, table.namespace)
        return table.arrow_schema(hidden=True) if ours else None

    done = exact_numbers(sql, schema_of)
    sql = sql if done is None else done[1]
    checked = checked_arithmetic(sql, schema_of)
    return sql if checked is None else checked[1]


def overflow_error(exc: KalamError) -> NumericOverflowError | None:
    """The overflow error a checked integer step (``_exact``) failed with,
    worded as a SELECT words it; None for any other error."""
    said = overflow_message(f"{exc} {getattr(exc, 'engine_text', '')}")
    return None if said is None else NumericOverflowError(said)


def rows_of(table: pa.Table) -> list[tuple[Any, ...]]:
    columns = [c.to_pylist() for c in table.columns]
    return list(zip(*columns, strict=True)) if columns else [() for _ in range(table.num_rows)]


def table_of(rows: list[tuple[Any, ...]], schema: pa.Schema) -> pa.Table:
    arrays = [pa.array([r[i] for r in rows], type=field.type) for i, field in enumerate(schema)]
    return pa.Table.from_arrays(arrays, schema=schema)
