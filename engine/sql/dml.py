"""INSERT: VALUES rows are evaluated by the engine (literals and bound
parameters on the fast path, anything else by DataFusion from the text as
written); INSERT ... SELECT runs its SELECT in DataFusion. Either way the rows
are coerced, checked and written in one batch."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pyarrow as pa
from sqlglot import exp

from engine.catalog.model import Column, TableDef
from engine.errors import (
    ColumnNotFoundError,
    NotNullViolationError,
    SchemaError,
)
from engine.gcpause import gc_paused
from engine.result import Result
from engine.sql import assignment, upsert
from engine.sql import statements as st
from engine.sql.bulk import arrow_batch, arrow_rows
from engine.sql.checked import check_no_overflow
from engine.sql.column_types import SchemaOf
from engine.sql.insert_overflow import check_insert_select
from engine.sql.returning import returning_columns, with_returning
from engine.sql.select import runner_for
from engine.sql.tokens import Composed
from engine.sql.values import NotSimple, default_value, simple_value
from engine.types import assign

if TYPE_CHECKING:
    from engine.core import Database


def _target_columns(table: TableDef, names: tuple[str, ...] | None) -> list[Column]:
    if names is None:
        return list(table.columns)
    cols: list[Column] = []
    for n in names:
        if n in ("_seq", "_deleted"):
            raise SchemaError(f"Column '{n}' is a system column and cannot be written")
        col = table.find_column(n)
        if col is None:
            raise ColumnNotFoundError(
                f"Column '{n}' does not exist in table {table.qualified_name}", column_name=n
            )
        if col in cols:
            raise SchemaError(f"Column '{n}' is listed twice")
        cols.append(col)
    return cols


def _values_rows(
    engine: Database, s: st.Insert, params: dict[str, Any], user: str, targets: list[Column]
) -> list[list[Any]]:
    """Each VALUES row's values. Literals and parameters are read here; every
    other item is evaluated by DataFusion from its text as written, each as its
    own projection of one SELECT, so it yields what ``SELECT <item>`` yields
    (no type unification across rows)."""
    assert s.rows is not None
    if len({len(r) for r in s.rows}) > 1:
        raise SchemaError("All VALUES rows must have the same number of values")
    rows: list[list[Any]] = []
    pending: list[tuple[int, int]] = []
    for r, row in enumerate(s.rows):
        out: list[Any] = []
        for c, node in enumerate(row):
            try:
                out.append(simple_value(node, params))
            except NotSimple:
                out.append(None)
                pending.append((r, c))
        rows.append(out)
    if not pending:
        return rows
    if s.values_sql is None:
        raise SchemaError("INSERT ... VALUES has no text to evaluate")
    text = Composed().add("SELECT ")
    # A decimal value for an integer column rounds as a DECIMAL (assignment.py).
    types = [targets[c].type if c < len(targets) else "" for _, c in pending]
    casts = assignment.cast_to([s.rows[r][c] for r, c in pending], types, [], None, params)
    for k, ((r, c), cast) in enumerate(zip(pending, casts, strict=True)):
        text.add(", " if k else "").add("(" if cast is None else "CAST((")
        text.piece(s.values_sql[r][c]).add(")" if cast is None else f") AS {cast})")
        text.add(f' AS "__kalam_v{k}"')
    # Analysis only (tables named by subqueries, hidden columns): never rendered.
    tree = exp.select(*(s.rows[r][c].copy() for r, c in pending))
    table, _ = runner_for(engine, user).run(
        tree,
        text.text,
        params,
        namespace=engine.namespace,
        stmt_line=s.line,
        stmt_column=s.column,
        locate=text.locate,
    )
    for k, (r, c) in enumerate(pending):
        check_no_overflow(s.rows[r][c], {}, params, column=f"VALUES item {c + 1}")
        rows[r][c] = table.column(k)[0].as_py()
    return rows


def insert(engine: Database, s: st.Insert, params: dict[str, Any], user: str) -> Result:
    table = engine.resolve(s.table)
    targets = _target_columns(table, s.columns)
    selected = None
    if s.rows is not None:
        raw_rows = _values_rows(engine, s, params, user, targets)
    else:
        runner = runner_for(engine, user)

        def run(tree: Any, text: str) -> Any:
            return runner.run(
                tree,
                text,
                params,
                namespace=engine.namespace,
                stmt_line=s.line,
                # The SELECT was re-aliased; its offsets are not the statement's, so an
                # error points at the statement rather than at a wrong column.
                locate=lambda _offset: None,
            )[0]

        # A decimal value for an integer column rounds as a DECIMAL (assignment.py).
        rounded = assignment.cast_select(
            s.query_sql or "", [c.type for c in targets], _schema_of(engine), params
        )
        selected = run(*(rounded or (s.query, s.query_sql or "")))
        if selected.num_columns != len(targets):
            raise SchemaError(
                f"INSERT has {len(targets)} target column(s) but the SELECT returns "
                f"{selected.num_columns}"
            )
        check_insert_select(s.query, s.query_sql or "", [c.name for c in targets], run)
    if s.returning:
        returning_columns(table, s.returning)  # unknown names fail before anything is written
    if s.on_conflict is not None:
        upsert.check(table, s)
    prov = engine.provider(table)
    with engine.lock, gc_paused():
        txn = engine.begin()
        now_us = engine.now_us()
        if selected is not None and s.on_conflict is None and not s.returning:
            # Columnar all the way: no Python object per value (issue 15).
            scope = prov.write_scope(user)
            first_seq = engine.seq.take(txn, selected.num_rows, scope)
            batch = arrow_batch(
                table,
                targets,
                list(selected.columns),
                user=user,
                first_seq=first_seq,
                now_us=now_us,
            )
            n = prov.insert_batch(txn, scope, batch, first_seq)
            txn.commit()
            return Result(message=f"Inserted {n:,} row(s)", rows_affected=n)
        if selected is not None:
            first_seq = engine.seq.take(txn, selected.num_rows, prov.write_scope(user))
            rows = arrow_rows(
                table,
                targets,
                list(selected.columns),
                user=user,
                first_seq=first_seq,
                now_us=now_us,
            )
        else:
            first_seq = engine.seq.take(txn, len(raw_rows), prov.write_scope(user))
            rows = [
                _build_row(table, targets, raw, user=user, seq=first_seq + i, now_us=now_us)
                for i, raw in enumerate(raw_rows)
            ]
        scope = prov.write_scope(user)
        if s.on_conflict is None:
            seqs = prov.insert(txn, scope, rows, first_seq)
            result = Result(message=f"Inserted {len(rows):,} row(s)", rows_affected=len(rows))
            written = (
                [(q, False, r) for q, r in zip(seqs, rows, strict=True)] if s.returning else []
            )
        else:
            written, result = upsert.stage(
                engine, s, table, prov, txn, scope, rows, first_seq, params
            )
        txn.commit()
    return with_returning(result, table, s.returning, written)


def _schema_of(engine: Database) -> SchemaOf:
    """The schemas of base tables (enough to know a column's numeric kind)."""

    def schema_of(ns: str | None, name: str) -> pa.Schema | None:
        found = engine.catalog.find_table(ns or engine.namespace, name)
        return None if found is None else found.arrow_schema()

    return schema_of


def _build_row(
    table: TableDef, targets: list[Column], raw: list[Any], *, user: str, seq: int, now_us: int
) -> dict[int, Any]:
    if len(raw) != len(targets):
        raise SchemaError(
            f"INSERT has {len(targets)} target column(s) but a row has {len(raw)} value(s)"
        )
    values: dict[int, Any] = {}
    for col, value in zip(targets, raw, strict=True):
        values[col.id] = assign(value, col.type, col.name)
    for col in table.columns:
        if col.id not in values:
            # Every column is written explicitly: an absent id means "older than
            # the column" and would read the column's fill value instead.
            values[col.id] = (
                default_value(col.default, user=user, seq=seq, now_us=now_us, type_name=col.type)
                if col.default is not None
                else None
            )
        if not col.nullable and values.get(col.id) is None:
            raise NotNullViolationError(
                f"Column '{col.name}' of table {table.qualified_name} cannot be NULL",
                column_name=col.name,
            )
    return values
