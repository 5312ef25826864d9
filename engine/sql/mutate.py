"""UPDATE and DELETE.

Targets are found with a DataFusion SELECT over the merged table the session
user can see (so predicates may use anything DataFusion evaluates, including
subqueries and ``_seq``); new versions and tombstones are then written by the
engine in one batch. DataFusion's own DML is never executed (see DESIGN.md:
on datafusion 55 ``DELETE ... WHERE false`` deleted every row).

DML runs under the engine's write lock, so the rows a statement read cannot
change before its batch commits: concurrent UPDATEs serialise.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pyarrow as pa
from sqlglot import exp

from engine.catalog.model import TableDef
from engine.errors import NotNullViolationError, SchemaError
from engine.providers.base import RowVersion, TableProvider
from engine.result import Result
from engine.sql import statements as st
from engine.sql.point import live_version, point_key
from engine.sql.returning import returning_columns, with_returning
from engine.sql.select import runner_for
from engine.sql.values import NotSimple, simple_value
from engine.types import coerce

if TYPE_CHECKING:
    from engine.core import Database

_NEW = "__kalam_new_{}"


def _target_select(
    table: TableDef, ref: st.TableRef, where: Any, extra: list[exp.Expression]
) -> exp.Select:
    cols: list[exp.Expression] = [exp.column(c.name, quoted=True) for c in table.columns]
    cols.append(exp.column("_seq"))
    target: Any = exp.table_(table.name, db=table.namespace, quoted=False)
    if ref.alias:  # UPDATE t AS x: quoted, so DataFusion keeps the alias's case
        target = target.as_(ref.alias, quoted=True)
    query = exp.select(*cols, *extra).from_(target)
    if where is not None:
        query = query.where(where.copy())
    return query


def _run_target_select(
    engine: Database, query: exp.Select, params: dict[str, Any], user: str, s: st.Statement
) -> pa.Table:
    table, _ = runner_for(engine, user).run(
        query,
        query.sql("postgres"),
        params,
        namespace=engine.namespace,
        stmt_line=s.line,
        stmt_column=s.column,
    )
    return table


def _versions_from(table: TableDef, data: pa.Table) -> list[tuple[int, dict[int, Any]]]:
    """(old seq, {column id: stored value}) per selected row."""
    columns = [data.column(c.name).to_pylist() for c in table.columns]
    seqs = data.column("_seq").to_pylist()
    out = []
    for i, seq in enumerate(seqs):
        out.append(
            (
                seq,
                {
                    c.id: _stored(col[i], c.type)
                    for c, col in zip(table.columns, columns, strict=True)
                },
            )
        )
    return out


def _stored(value: Any, type_name: str) -> Any:
    if value is None:
        return None
    return coerce(value, type_name, "")


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
            data = _run_target_select(
                engine, _target_select(table, s.table, s.where, []), params, user, s
            )
            targets = _versions_from(table, data)
        if not targets:
            return with_returning(
                Result(message="Deleted 0 row(s)", rows_affected=0), table, s.returning, []
            )
        txn = engine.begin()
        first = engine.seq.take(txn, len(targets))
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
    extra: list[exp.Expression],
    assigned: dict[str, int],
    params: dict[str, Any],
    user: str,
) -> tuple[list[tuple[int, dict[int, Any]]], dict[str, list[Any]]]:
    """(old versions, {column: new values}) of the rows an UPDATE changes."""
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
            return point, _evaluate_on_row(engine, table, point[0], extra, assigned, params, s)
    data = _run_target_select(
        engine, _target_select(table, s.table, s.where, extra), params, user, s
    )
    if data.num_rows == 0:
        return [], {}
    new_cols = {name: data.column(_NEW.format(i)).to_pylist() for name, i in assigned.items()}
    return _versions_from(table, data), new_cols


def _evaluate_on_row(
    engine: Database,
    table: TableDef,
    version: tuple[int, dict[int, Any]],
    extra: list[exp.Expression],
    assigned: dict[str, int],
    params: dict[str, Any],
    s: st.Statement,
) -> dict[str, list[Any]]:
    """SET expressions computed by DataFusion over just the target row."""
    from datafusion import SessionConfig, SessionContext

    from engine.exec.query import _OPTIONS, _scalar, datafusion_error
    from engine.providers.base import build_arrow

    seq, values = version
    row = build_arrow(table, [(seq, False, values)], hidden=True)
    ctx = SessionContext(SessionConfig().with_target_partitions(1))
    ctx.register_record_batches("__kalam_row", [row.to_batches()])
    name = s.table.alias if isinstance(s, st.Update) and s.table.alias else table.name
    query = exp.select(*extra).from_(exp.to_table("__kalam_row").as_(name, quoted=True))
    try:
        out = ctx.sql_with_options(
            query.sql("postgres"), _OPTIONS, param_values={k: _scalar(v) for k, v in params.items()}
        ).to_arrow_table()
    except Exception as exc:
        raise datafusion_error(exc, s.line, s.column) from None
    return {name: out.column(_NEW.format(i)).to_pylist() for name, i in assigned.items()}


def update(engine: Database, s: st.Update, params: dict[str, Any], user: str) -> Result:
    with engine.lock:
        table = engine.resolve(s.table)
        if s.returning:
            returning_columns(table, s.returning)  # unknown names fail before anything runs
        prov = engine.provider(table)
        assigned: dict[str, int] = {}
        extra: list[exp.Expression] = []
        for i, (name, expr) in enumerate(s.assignments):
            col = table.get_column(name)
            if col.primary_key:
                raise SchemaError(f"Updating the primary key column '{name}' is not supported")
            if name in assigned:
                raise SchemaError(f"Column '{name}' is assigned twice")
            assigned[name] = i
            extra.append(exp.alias_(expr.copy(), _NEW.format(i), quoted=True))  # type: ignore[arg-type]
        old_rows, new_cols = _update_targets(engine, s, table, prov, extra, assigned, params, user)
        if not old_rows:
            return with_returning(
                Result(message="Updated 0 row(s)", rows_affected=0), table, s.returning, []
            )
        changed: list[tuple[int, dict[int, Any]]] = []
        for row, (old_seq, old) in enumerate(old_rows):
            new = dict(old)
            for name, values in new_cols.items():
                col = table.get_column(name)
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
        first = engine.seq.take(txn, len(changed))
        versions = {
            prov.key_of(v, old_seq): (first + i, False, v) for i, (old_seq, v) in enumerate(changed)
        }
        prov.stage_versions(txn, prov.write_scope(user), versions)
        txn.commit()
    result = Result(message=f"Updated {len(changed)} row(s)", rows_affected=len(changed))
    return with_returning(result, table, s.returning, list(versions.values()))
