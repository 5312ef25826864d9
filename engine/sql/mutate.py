"""UPDATE and DELETE.

Targets are found with a DataFusion SELECT over the merged table the session
user can see (so predicates may use anything DataFusion evaluates, including
subqueries and ``_seq``); new versions and tombstones are then written by the
engine in one batch. That SELECT carries the SET values and the WHERE
predicate exactly as written (token slices of the statement, see
``engine/sql/spans.py``), so an UPDATE computes what a SELECT of the same
expressions shows. DataFusion's own DML is never executed (see DESIGN.md:
on datafusion 55 ``DELETE ... WHERE false`` deleted every row).

DML runs under the engine's write lock, so the rows a statement read cannot
change before its batch commits: concurrent UPDATEs serialise.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

import pyarrow as pa
from sqlglot import exp

from engine.catalog.model import TableDef
from engine.errors import NotNullViolationError, SchemaError, UnsupportedStatementError
from engine.gcpause import gc_paused
from engine.providers.base import RowVersion, TableProvider, build_arrow
from engine.providers.hot_rows import stored_list
from engine.result import Result
from engine.sql import statements as st
from engine.sql.checked import INTEGER_TYPES, check_no_overflow, exact_integer, has_arithmetic
from engine.sql.point import live_version, point_key
from engine.sql.returning import returning_columns, with_returning
from engine.sql.select import runner_for
from engine.sql.tokens import Composed
from engine.sql.values import NotSimple, simple_value
from engine.types import coerce, decimal_spec

if TYPE_CHECKING:
    from engine.core import Database

_NEW = "__kalam_new_{}"


def _target_select(table: TableDef, s: st.Update | st.Delete) -> Composed:
    """``SELECT <columns>, _seq[, (<SET value>) AS "__kalam_new_<i>"...] FROM
    <table as written> [WHERE <predicate as written>]``: what the statement
    changes, with its expressions exactly as the user wrote them."""
    if s.target_sql is None:
        raise UnsupportedStatementError("This statement has no text to evaluate")
    text = Composed().add("SELECT ")
    text.add(", ".join(f'"{c.name}"' for c in table.columns) + ", _seq")
    for i, value in enumerate(s.set_sql if isinstance(s, st.Update) else ()):
        text.add(", (").piece(value).add(f') AS "{_NEW.format(i)}"')
    text.add(" FROM ").piece(s.target_sql)
    if s.where_sql is not None:
        text.add(" WHERE ").piece(s.where_sql)
    return text


def _run_target_select(
    engine: Database,
    s: st.Update | st.Delete,
    table: TableDef,
    params: dict[str, Any],
    user: str,
    overrides: dict[str, tuple[Any, dict[str, int]]] | None = None,
) -> pa.Table:
    text = _target_select(table, s)
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
    )
    return data


def _versions_from(table: TableDef, data: pa.Table) -> list[tuple[int, dict[int, Any]]]:
    """(old seq, {column id: stored value}) per selected row.

    Column by column (issue 15: a ``coerce`` per value held UPDATE to a few
    thousand rows a second): the selected columns already have the table's
    Arrow types, so their stored forms are one conversion per column."""
    ids = [c.id for c in table.columns]
    columns = [_stored_column(data.column(c.name), c) for c in table.columns]
    seqs = data.column("_seq").to_pylist()
    return (
        [
            (seq, dict(zip(ids, values, strict=True)))
            for seq, values in zip(seqs, zip(*columns, strict=True), strict=True)
        ]
        if columns
        else [(seq, {}) for seq in seqs]
    )


def _stored_column(values: Any, column: Any) -> list[Any]:
    if values.type != column.arrow_type:
        return [_stored(v, column.type) for v in values.to_pylist()]
    return stored_list(values)


def _stored(value: Any, type_name: str) -> Any:
    if value is None:
        return None
    return coerce(value, type_name, "")


def _needs_overflow_check(
    expr: exp.Expression, integers: list[Any], params: dict[str, Any]
) -> bool:
    """Whether an assignment is integer arithmetic at all (decided once per
    statement): with every integer column set to 0, anything that is not
    plain integer arithmetic evaluates to None whatever the row holds."""
    try:
        return exact_integer(expr, {c.name: 0 for c in integers}, params) is not None
    except Exception:  # an overflow already (huge literals): check every row
        return True


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
    with engine.lock:
        table = engine.resolve(s.table)
        if s.returning:
            returning_columns(table, s.returning)  # unknown names fail before anything runs
        prov = engine.provider(table)
        targets = _targets(engine, s, table, prov, params, user)
        if targets is None:
            targets = _versions_from(table, _run_target_select(engine, s, table, params, user))
        if not targets:
            return with_returning(
                Result(message="Deleted 0 row(s)", rows_affected=0), table, s.returning, []
            )
        txn = engine.begin()
        first = engine.seq.take(txn, len(targets), prov.write_scope(user))
        versions: dict[Any, RowVersion] = {}
        for i, (old_seq, values) in enumerate(targets):
            versions[prov.key_of(values, old_seq)] = (first + i, True, values)
        prov.stage_versions(txn, prov.write_scope(user), versions)
        txn.commit()
    result = Result(message=f"Deleted {len(versions)} row(s)", rows_affected=len(versions))
    return with_returning(result, table, s.returning, list(versions.values()))


def _update_targets(
    engine: Database,
    s: st.Update,
    table: TableDef,
    prov: TableProvider,
    assigned: dict[str, int],
    params: dict[str, Any],
    user: str,
) -> tuple[list[tuple[int, dict[int, Any]]], dict[str, list[Any]]]:
    """(old versions, {column: new values}) of the rows an UPDATE changes."""
    overrides: dict[str, tuple[Any, dict[str, int]]] | None = None
    point = _targets(engine, s, table, prov, params, user)
    if point is not None:
        if not point:
            return [], {}
        try:  # literal / parameter assignments need no plan at all
            new_cols = {
                name: [simple_value(s.assignments[i][1], params)] for name, i in assigned.items()
            }
            return point, new_cols
        except (NotSimple, KeyError):
            pass
        if not any(e.find(exp.Table) for _, e in s.assignments):
            # The same SELECT, over just the row the lookup found (no scan).
            seq, values = point[0]
            row = build_arrow(table, [(seq, False, values)], hidden=True)
            overrides = {table.qualified_name: (row, {})}
    data = _run_target_select(engine, s, table, params, user, overrides)
    if data.num_rows == 0:
        return [], {}
    new_cols = {name: data.column(_NEW.format(i)).to_pylist() for name, i in assigned.items()}
    for name, i in assigned.items():
        if decimal_spec(table.get_column(name).type) is None:
            continue
        # DataFusion reads 12345678901234567.89 as a double; a DECIMAL column
        # stores the literal (or bound value) exactly, as INSERT does.
        with contextlib.suppress(NotSimple, KeyError):
            new_cols[name] = [simple_value(s.assignments[i][1], params)] * data.num_rows
    return _versions_from(table, data), new_cols


def update(engine: Database, s: st.Update, params: dict[str, Any], user: str) -> Result:
    # The collector paused: a big UPDATE allocates a dict per row, and full
    # collections over the heap cost more than the work (measured).
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
        old_rows, new_cols = _update_targets(engine, s, table, prov, assigned, params, user)
        if not old_rows:
            return with_returning(
                Result(message="Updated 0 row(s)", rows_affected=0), table, s.returning, []
            )
        changed: list[tuple[int, dict[int, Any]]] = []
        integers = [c for c in table.columns if c.type in INTEGER_TYPES]
        checked = [
            (n, e)
            for n, e in s.assignments
            if n in new_cols and has_arithmetic(e) and _needs_overflow_check(e, integers, params)
        ]
        targets_new = [(table.get_column(name), values) for name, values in new_cols.items()]
        for row, (old_seq, old) in enumerate(old_rows):
            new = dict(old)
            if checked:
                exact_row = {c.name: old.get(c.id) for c in integers}
                for name, expr in checked:
                    check_no_overflow(expr, exact_row, params, column=name)
            for col, values in targets_new:
                value = coerce(values[row], col.type, col.name)
                if value is None and not col.nullable:
                    raise NotNullViolationError(
                        f"Column '{col.name}' of table {table.qualified_name} cannot be NULL",
                        column_name=col.name,
                    )
                new[col.id] = value
            if new != old:
                changed.append((old_seq, new))
        if not changed:
            return with_returning(
                Result(message="Updated 0 row(s)", rows_affected=0), table, s.returning, []
            )
        txn = engine.begin()
        first = engine.seq.take(txn, len(changed), prov.write_scope(user))
        key_of = (lambda v, _q: table.key_of(v)) if table.key_columns else (lambda _v, q: q)
        versions = {
            key_of(v, old_seq): (first + i, False, v) for i, (old_seq, v) in enumerate(changed)
        }
        prov.stage_versions(txn, prov.write_scope(user), versions)
        txn.commit()
    result = Result(message=f"Updated {len(changed)} row(s)", rows_affected=len(changed))
    return with_returning(result, table, s.returning, list(versions.values()))
