"""UPDATE and DELETE.

Targets are found with a DataFusion SELECT over the merged table the session
user can see (so predicates may use anything DataFusion evaluates, including
subqueries and ``_seq``); new versions and tombstones are then written by the
engine in one batch. That SELECT carries the SET values and the WHERE
predicate exactly as written (token slices of the statement, see
``engine/sql/spans.py``), so an UPDATE computes what a SELECT of the same
expressions shows. DataFusion's own DML is never executed (see DESIGN.md:
on datafusion 55 ``DELETE ... WHERE false`` deleted every row).

The target rows stay Arrow columns (issue 15: a dict and a ``coerce`` per row
held UPDATE to ~90k rows/s): the new values are converted and checked a
column at a time (``engine/sql/set_columns.py``), rows the SET leaves as
they were are found by a vectorised comparison and not written (they still
count: an UPDATE reports the rows its WHERE matched, as PostgreSQL, DuckDB
and SQLite do), and the new versions (or DELETE's tombstones) are
staged as one record batch (``TableProvider.stage_batch``). Only an UPDATE by
primary key with literal or parameter values, and a DELETE by primary key,
take the one-row path (no plan at all).

DML runs under the engine's write lock, so the rows a statement read cannot
change before its batch commits: concurrent UPDATEs serialise.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from sqlglot import exp

from engine.catalog.model import Column, TableDef
from engine.errors import NotNullViolationError, SchemaError, UnsupportedStatementError
from engine.gcpause import gc_paused
from engine.providers.base import RowVersion, TableProvider, build_arrow
from engine.providers.hot_rows import physical
from engine.result import Result
from engine.sql import assignment, delete_using, update_from
from engine.sql import statements as st
from engine.sql.checked import BITS, INTEGER_TYPES, integer_parts
from engine.sql.point import live_version, point_key
from engine.sql.returning import batch_returning, returning_columns, with_returning
from engine.sql.select import runner_for
from engine.sql.set_columns import (
    check_not_null,
    check_overflow_columns,
    stored_array,
    values_differ,
)
from engine.sql.tokens import Composed
from engine.sql.values import NotSimple, default_value, simple_value
from engine.types import assign, decimal_spec

if TYPE_CHECKING:
    from engine.core import Database

_NEW = "__kalam_new_{}"


def _target_select(
    table: TableDef, s: st.Update | st.Delete, params: dict[str, Any] | None = None
) -> Composed:
    """``SELECT <columns>, _seq[, (<SET value>) AS "__kalam_new_<i>"...] FROM
    <table as written> [WHERE <predicate as written>]``: what the statement
    changes, with its expressions exactly as the user wrote them."""
    if s.target_sql is None:
        raise UnsupportedStatementError("This statement has no text to evaluate")
    text = Composed().add("SELECT ")
    joined = isinstance(s, st.Update) and s.from_sql is not None
    # Joined with FROM tables, t's own columns are named through t.
    own = f'"{update_from.qualifier(s)}".' if joined else ""  # type: ignore[arg-type]
    text.add(", ".join(f'{own}"{c.name}"' for c in table.columns) + f", {own}_seq")
    assignments, values = (s.assignments, s.set_sql) if isinstance(s, st.Update) else ((), ())
    # A decimal value for an integer column rounds as a DECIMAL (assignment.py).
    casts = assignment.cast_to(
        [None if is_default(e, table) else e for _, e in assignments],
        [table.get_column(n).type for n, _ in assignments],
        [assignment.source(table.name, s.table.alias)],
        assignment.table_schema(table),
        params or {},
    )
    for i, ((_, expr), value, cast) in enumerate(zip(assignments, values, casts, strict=True)):
        if is_default(expr, table):  # filled in by _new_columns
            text.add(f', NULL AS "{_NEW.format(i)}"')
        elif cast is not None:
            text.add(", CAST((").piece(value).add(f') AS {cast}) AS "{_NEW.format(i)}"')
        else:
            text.add(", (").piece(value).add(f') AS "{_NEW.format(i)}"')
    text.add(" FROM ").piece(s.target_sql)
    if isinstance(s, st.Update) and s.from_sql is not None:
        text.add(", ").piece(s.from_sql)
    if isinstance(s, st.Delete) and s.using_sql is not None:
        return delete_using.add_exists(text, s)
    if s.where_sql is not None:
        text.add(" WHERE ").piece(s.where_sql)
    return text


def is_default(expr: exp.Expression, table: TableDef) -> bool:
    """Whether a SET value is the keyword ``DEFAULT`` (sqlglot reads it as a
    column; a real column named "default" must be quoted or qualified)."""
    return (
        isinstance(expr, exp.Column)
        and not expr.table
        and isinstance(expr.this, exp.Identifier)
        and not expr.this.quoted
        and expr.name.upper() == "DEFAULT"
        and table.find_column(expr.name) is None
    )


def _default_column(engine: Database, col: Column, n: int, user: str) -> pa.Array:
    """``SET col = DEFAULT`` for ``n`` rows: the column's default (NULL if it has none)."""
    d = col.default
    if d is None:
        return pa.nulls(n, col.arrow_type)
    if d.kind == "function" and d.value == "SNOWFLAKE_ID":
        raise UnsupportedStatementError(
            f"UPDATE ... SET {col.name} = DEFAULT: a SNOWFLAKE_ID default is given only on INSERT"
        )
    now_us = engine.now_us()
    per_row = d.kind == "function" and d.value in ("UUID_V7", "ULID")
    values = [
        default_value(d, user=user, seq=0, now_us=now_us, type_name=col.type)
        for _ in range(n if per_row else 1)
    ]
    return pa.array(values if per_row else values * n, type=col.arrow_type)


def _run_target_select(
    engine: Database,
    s: st.Update | st.Delete,
    table: TableDef,
    params: dict[str, Any],
    user: str,
    overrides: dict[str, tuple[Any, dict[str, int]]] | None = None,
) -> pa.Table:
    text = _target_select(table, s, params)
    data, _ = runner_for(engine, user).run(
        s.tree,
        text.text,
        params,
        namespace=engine.namespace,
        stmt_line=s.line,
        stmt_column=s.column,
        overrides=overrides,
        hidden=True,
        locate=text.locate,
        check_projections=False,  # SET values: checked where they are written
    )
    return data


def _targets(
    engine: Database,
    s: Any,
    table: TableDef,
    prov: TableProvider,
    params: dict[str, Any],
    user: str,
) -> list[tuple[int, dict[int, Any]]] | None:
    """Point targets when the predicate pins the primary key, else None."""
    point, key = point_key(table, s.where, params, alias=s.table.alias)
    if not point:
        return None
    version, _ = live_version(prov, table, prov.write_scope(user), key, engine.clock_ms())
    return [] if version is None else [version]


def delete(engine: Database, s: st.Delete, params: dict[str, Any], user: str) -> Result:
    with engine.lock, gc_paused():
        table = engine.resolve(s.table)
        if s.returning:
            returning_columns(table, s.returning)  # unknown names fail before anything runs
        prov = engine.provider(table)
        scope = prov.write_scope(user)
        if s.using_sql is not None:
            delete_using.check(engine, s, table)
        # With USING, a key in the predicate does not make a row a target by itself.
        targets = None if s.using_sql else _targets(engine, s, table, prov, params, user)
        if targets is None:  # set-based: the tombstones are one batch
            data = _run_target_select(engine, s, table, params, user)
            if data.num_rows == 0:
                return _none_changed("Deleted", table, s.returning)
            batch = physical_batch(table, {}, data)
            return _stage(engine, prov, scope, "Deleted", batch, data, s.returning, deleted=True)
        if not targets:
            return _none_changed("Deleted", table, s.returning)
        txn = engine.begin()
        first = engine.seq.take(txn, len(targets), scope)
        versions: dict[Any, RowVersion] = {}
        for i, (old_seq, values) in enumerate(targets):
            versions[prov.key_of(values, old_seq)] = (first + i, True, values)
        prov.stage_versions(txn, scope, versions)
        txn.commit()
    result = Result(message=f"Deleted {len(versions):,} row(s)", rows_affected=len(versions))
    return with_returning(result, table, s.returning, list(versions.values()))


def _none_changed(verb: str, table: TableDef, returning: tuple[str, ...] | None) -> Result:
    return with_returning(Result(message=f"{verb} 0 row(s)", rows_affected=0), table, returning, [])


def _stage(
    engine: Database,
    prov: TableProvider,
    scope: str,
    verb: str,
    batch: pa.RecordBatch,
    data: pa.Table,
    returning: tuple[str, ...] | None,
    *,
    deleted: bool,
) -> Result:
    """Write one batch of new versions of the rows of ``data`` (the target
    SELECT's rows, every one of them changed) in one commit."""
    n = batch.num_rows
    first = _write(engine, prov, scope, batch, data.column("_seq").to_numpy(), deleted=deleted)
    result = Result(message=f"{verb} {n:,} row(s)", rows_affected=n)
    return batch_returning(result, prov.table, returning, batch, first, deleted=deleted)


def _write(
    engine: Database,
    prov: TableProvider,
    scope: str,
    batch: pa.RecordBatch,
    old_seqs: np.ndarray,
    *,
    deleted: bool,
) -> int:
    """Stage ``batch`` as new versions of the rows whose seqs are
    ``old_seqs`` and commit them: the first of their new seqs."""
    txn = engine.begin()
    first = engine.seq.take(txn, batch.num_rows, scope)
    prov.stage_batch(txn, scope, batch, first, old_seqs, deleted=deleted)
    txn.commit()
    return first


def _point_update(
    table: TableDef, s: st.Update, assigned: dict[str, int], params: dict[str, Any]
) -> dict[str, Any] | None:
    """{column: new value} when every assignment is a literal or parameter
    (an UPDATE by key then needs no plan at all); None otherwise."""
    try:
        return {name: simple_value(s.assignments[i][1], params) for name, i in assigned.items()}
    except (NotSimple, KeyError):
        return None


def update(engine: Database, s: st.Update, params: dict[str, Any], user: str) -> Result:
    with engine.lock, gc_paused():
        table = engine.resolve(s.table)
        if s.returning:
            returning_columns(table, s.returning)  # unknown names fail before anything runs
        prov = engine.provider(table)
        assigned: dict[str, int] = {}
        for i, (name, _) in enumerate(s.assignments):
            col = table.get_column(name)
            if col.primary_key:
                raise SchemaError(f"Updating the primary key column '{name}' is not supported")
            if name in assigned:
                raise SchemaError(f"Column '{name}' is assigned twice")
            assigned[name] = i
        scope = prov.write_scope(user)
        overrides: dict[str, tuple[Any, dict[str, int]]] | None = None
        if s.from_sql is not None:
            update_from.check(engine, s)
        # Joined with FROM tables, a key in the predicate does not pin the row.
        point = None if s.from_sql else _targets(engine, s, table, prov, params, user)
        if point is not None:
            if not point:
                return _none_changed("Updated", table, s.returning)
            simple = _point_update(table, s, assigned, params)
            if simple is not None:
                return _update_row(engine, s, table, prov, scope, point[0], simple, params)
            if not any(e.find(exp.Table) for _, e in s.assignments):
                # The same SELECT, over just the row the lookup found (no scan).
                seq, values = point[0]
                row = build_arrow(table, [(seq, False, values)], hidden=True)
                overrides = {table.qualified_name: (row, {})}
        data = _run_target_select(engine, s, table, params, user, overrides)
        if data.num_rows == 0:
            return _none_changed("Updated", table, s.returning)
        if s.from_sql is not None:
            news = [_NEW.format(i) for i in range(len(s.assignments))]
            data = update_from.one_row_per_key(data, table, news)
        new = _new_columns(table, s, assigned, data, params, engine, user)
        batch = physical_batch(table, new, data)
        changed = None
        for cid in new:
            differ = values_differ(batch.column(physical(cid)), _old_column(table, cid, data))
            changed = differ if changed is None else pc.or_(changed, differ)
        assert changed is not None
        if not pc.all(changed).as_py():
            return _update_some(engine, prov, scope, batch, data, changed, s.returning)
        return _stage(engine, prov, scope, "Updated", batch, data, s.returning, deleted=False)


def _update_some(
    engine: Database,
    prov: TableProvider,
    scope: str,
    batch: pa.RecordBatch,
    data: pa.Table,
    changed: pa.Array,
    returning: tuple[str, ...] | None,
) -> Result:
    """An UPDATE whose SET leaves some matched rows as they were: only the
    rows ``changed`` marks get a new version (no ``_seq`` bump, no change
    event, no hot-tier growth for the others), but every matched row counts
    and is returned, as PostgreSQL, DuckDB and SQLite count an UPDATE; the
    unchanged ones with their current values and ``_seq``."""
    n = batch.num_rows
    mask = changed.to_numpy(zero_copy_only=False)
    seqs = np.array(data.column("_seq").to_numpy(), dtype=np.int64)
    k = int(mask.sum())
    if k:
        first = _write(engine, prov, scope, batch.filter(changed), seqs[mask], deleted=False)
        seqs[mask] = np.arange(first, first + k, dtype=np.int64)
    result = Result(message=f"Updated {n:,} row(s)", rows_affected=n)
    if returning is None:
        return result
    # Equal is not always identical (-0.0 and 0.0): show what is stored.
    current = physical_batch(prov.table, {}, data)
    shown = pa.RecordBatch.from_arrays(
        [
            pc.if_else(changed, new, old)
            for new, old in zip(batch.columns, current.columns, strict=True)
        ],
        schema=batch.schema,
    )
    return batch_returning(result, prov.table, returning, shown, seqs, deleted=False)


def _old_column(table: TableDef, cid: int, data: pa.Table) -> pa.Array:
    col = next(c for c in table.columns if c.id == cid)
    return stored_array(data.column(col.name), col)


def physical_batch(table: TableDef, new: dict[int, pa.Array], data: pa.Table) -> pa.RecordBatch:
    """The rows of ``data`` (the target SELECT) as a record batch of physical
    columns, with the columns in ``new`` replaced."""
    arrays = [
        new[c.id] if c.id in new else stored_array(data.column(c.name), c) for c in table.columns
    ]
    return pa.RecordBatch.from_arrays(arrays, names=[physical(c.id) for c in table.columns])


def _new_columns(
    table: TableDef,
    s: st.Update,
    assigned: dict[str, int],
    data: pa.Table,
    params: dict[str, Any],
    engine: Database,
    user: str,
) -> dict[int, pa.Array]:
    """{column id: new values} of the target rows, converted and checked
    (overflow, type, range, NOT NULL) a column at a time."""
    integers = [c for c in table.columns if c.type in INTEGER_TYPES]
    names = [c.name for c in integers]
    checked = [
        (n, part)
        for n, e in s.assignments
        for part in integer_parts(e, names, params)
        # A FROM table's columns are not among the old row's (see update_from.py).
        if s.from_sql is None or not update_from.foreign_columns(s, part)
    ]
    if checked:
        old_ints = {c.name: data.column(c.name).cast(pa.int64()) for c in integers}
        widths = {c.name: BITS[c.type] for c in integers}
        for name, expr in checked:
            check_overflow_columns(expr, old_ints, params, column=name, widths=widths)
    out: dict[int, pa.Array] = {}
    n = data.num_rows
    for name, i in assigned.items():
        col = table.get_column(name)
        values: Any = data.column(_NEW.format(i))
        if is_default(s.assignments[i][1], table):
            values = _default_column(engine, col, n, user)
        elif decimal_spec(col.type) is not None or col.type in INTEGER_TYPES:
            # DataFusion reads 12345678901234567.89 (and 2.5) as a double; a
            # DECIMAL column stores the literal (or bound value) exactly, and an
            # integer column rounds it as the DECIMAL it is (2.5 -> 3), as INSERT does.
            with contextlib.suppress(NotSimple, KeyError):
                exact = assign(simple_value(s.assignments[i][1], params), col.type, col.name)
                values = pa.array([exact] * n, type=col.arrow_type)
        arr = stored_array(values, col)
        check_not_null(arr, col, table.qualified_name)
        out[col.id] = arr
    return out


def _update_row(
    engine: Database,
    s: st.Update,
    table: TableDef,
    prov: TableProvider,
    scope: str,
    target: tuple[int, dict[int, Any]],
    new_values: dict[str, Any],
    params: dict[str, Any],
) -> Result:
    """UPDATE of one row found by its key, with literal / parameter values."""
    old_seq, old = target
    new = dict(old)
    for name, value in new_values.items():
        col = table.get_column(name)
        stored = assign(value, col.type, col.name)
        if stored is None and not col.nullable:
            raise NotNullViolationError(
                f"Column '{col.name}' of table {table.qualified_name} cannot be NULL",
                column_name=col.name,
            )
        new[col.id] = stored
    if new == old:
        # Matched but left as it was: counted (as PostgreSQL, DuckDB and
        # SQLite count it) and returned as it stands, but not written.
        result = Result(message="Updated 1 row(s)", rows_affected=1)
        return with_returning(result, table, s.returning, [(old_seq, False, old)])
    txn = engine.begin()
    seq = engine.seq.take(txn, 1, scope)
    versions = {prov.key_of(new, old_seq): (seq, False, new)}
    prov.stage_versions(txn, scope, versions)
    txn.commit()
    result = Result(message="Updated 1 row(s)", rows_affected=1)
    return with_returning(result, table, s.returning, list(versions.values()))
