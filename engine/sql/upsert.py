"""INSERT with a conflict clause: ``ON CONFLICT (pk) DO NOTHING``,
``ON CONFLICT (pk) DO UPDATE SET ... [WHERE ...]``, ``INSERT OR IGNORE`` and
``INSERT OR REPLACE``.

The rows an INSERT proposes are built and checked as for a plain INSERT
(``engine/sql/dml.py``); this module decides, per proposed row, whether it
inserts, updates the live row with the same primary key, or is skipped, and
stages the resulting versions in the statement's one transaction. Conflicts
are found against the live rows of the writer's scope, hot and cold.

Semantics (PostgreSQL's, SQLite's for the ``OR`` forms):

* the conflict target must be the primary key (``ON CONFLICT (pk)``); DO
  NOTHING / OR IGNORE / OR REPLACE may leave it out. A table without a
  primary key cannot have conflicts and is refused, so an upsert is never
  silently run as a plain INSERT;
* DO UPDATE's SET and WHERE see the existing row under the table's name (or
  alias) and the proposed row as ``EXCLUDED``; an unqualified column that
  both have is ambiguous, as in PostgreSQL. A row the WHERE rejects is left
  alone. Every row DO UPDATE touches gets a new version, even if no value
  changes (PostgreSQL counts it);
* OR REPLACE writes the proposed row whole (columns it does not list get
  their defaults, not the old values);
* a primary key proposed twice by one statement: DO NOTHING / OR IGNORE keep
  the first row, OR REPLACE the last; DO UPDATE fails ("cannot affect row a
  second time"), as in PostgreSQL;
* ``rows_affected`` counts inserted plus updated rows; RETURNING returns
  exactly those rows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlglot import exp

from engine.catalog.model import TableDef
from engine.errors import (
    NotNullViolationError,
    PrimaryKeyViolationError,
    SchemaError,
    UnsupportedStatementError,
)
from engine.providers.base import RowVersion, TableProvider, build_arrow
from engine.result import Result
from engine.sql import assignment
from engine.sql import statements as st
from engine.sql.checked import BITS, INTEGER_TYPES, check_no_overflow, integer_parts
from engine.sql.mapping import ident
from engine.sql.numeric_semantics import exact_numbers
from engine.sql.point import live_version
from engine.sql.tokens import Composed, offset_of
from engine.sql.values import NotSimple, simple_value
from engine.txn import Txn
from engine.types import assign, render_stored

if TYPE_CHECKING:
    from engine.core import Database

_EXCLUDED = "excluded"
_ROW = "__kalam_row"
_NEW = "__kalam_new_{}"
_WHERE = "__kalam_where"


def check(table: TableDef, s: st.Insert) -> None:
    """Refuse a conflict clause this table cannot honour (before anything runs)."""
    oc = s.on_conflict
    assert oc is not None
    key = ", ".join(c.name for c in table.key_columns)
    form = "INSERT OR REPLACE" if oc.action == "replace" else "ON CONFLICT"
    if not key:
        raise SchemaError(
            f"{form} needs a primary key, and {table.qualified_name} has none: "
            "its rows can never conflict"
        )
    # A composite key may be named in any order, but whole: (a, b) or (b, a).
    names = {c.name for c in table.key_columns}
    if oc.target and (set(oc.target) != names or len(oc.target) != len(names)):
        raise SchemaError(
            f"ON CONFLICT ({', '.join(oc.target)}) does not match the primary key of "
            f"{table.qualified_name}: only ON CONFLICT ({key}) is supported"
        )
    if oc.action != "update":
        return
    if not oc.target:
        raise SchemaError(f"ON CONFLICT DO UPDATE needs a conflict target: ON CONFLICT ({key})")
    seen: set[str] = set()
    for name, _ in oc.assignments:
        if name in ("_seq", "_deleted"):
            raise SchemaError(f"Column '{name}' is a system column and cannot be written")
        table.get_column(name)  # raises ColumnNotFoundError
        if name in seen:
            raise SchemaError(f"Column '{name}' is assigned twice")
        seen.add(name)
    exprs = [e for _, e in oc.assignments] + ([oc.where] if oc.where is not None else [])
    if any(e.find(exp.Table, exp.Subquery, exp.Select) for e in exprs):
        raise UnsupportedStatementError(
            "ON CONFLICT DO UPDATE expressions can use the existing row and EXCLUDED only, "
            "not other tables or subqueries"
        )
    if (s.table.alias or table.name) == _EXCLUDED:
        raise SchemaError("A table named 'excluded' needs an alias in ON CONFLICT DO UPDATE")


def stage(
    engine: Database,
    s: st.Insert,
    table: TableDef,
    prov: TableProvider,
    txn: Txn,
    scope: str,
    rows: list[dict[int, Any]],
    first_seq: int,
    params: dict[str, Any],
) -> tuple[list[RowVersion], Result]:
    """Stage the outcome of inserting ``rows`` (row i has seq ``first_seq + i``)
    with ``s``'s conflict clause; returns the versions written, in statement
    order, and the statement's result."""
    oc = s.on_conflict
    assert oc is not None and table.key_columns
    proposed = _dedupe(oc.action, table, rows, first_seq)
    existing = prov.existing_keys(scope, proposed)
    written: dict[Any, RowVersion] = {}
    # DO UPDATE rows the SET leaves as they were: counted and returned as
    # they stand, not written (no new _seq, no live change), as UPDATE does.
    unchanged: dict[Any, RowVersion] = {}
    inserted = updated = 0
    conflicts: list[tuple[Any, int, dict[int, Any]]] = []
    for key, (seq, values) in proposed.items():
        if key not in existing:
            written[key] = (seq, False, values)
            inserted += 1
        elif oc.action == "replace":
            written[key] = (seq, False, values)
            updated += 1
        elif oc.action == "update":
            conflicts.append((key, seq, values))
    if conflicts:
        for key, version, old in _updated_rows(engine, s, table, prov, scope, conflicts, params):
            if version[2] == old[1]:
                unchanged[key] = (old[0], False, old[1])
            else:
                written[key] = version
            updated += 1
    if written:
        prov.stage_versions(txn, scope, written)
    message = f"Inserted {inserted:,} row(s)"
    if oc.action != "nothing":
        message += f", updated {updated:,} row(s)"
    # Statement order (an unchanged row at the place of its proposed one).
    order = {key: seq for key, (seq, _) in proposed.items()}
    shown = {**written, **unchanged}
    versions = [shown[k] for k in sorted(shown, key=lambda k: order[k])]
    return versions, Result(message=message, rows_affected=inserted + updated)


def _dedupe(
    action: str, table: TableDef, rows: list[dict[int, Any]], first_seq: int
) -> dict[Any, tuple[int, dict[int, Any]]]:
    """{key: (seq, values)} of the proposed rows, one per primary key."""
    out: dict[Any, tuple[int, dict[int, Any]]] = {}
    for i, values in enumerate(rows):
        key = table.key_of(values)
        if key not in out:
            out[key] = (first_seq + i, values)
        elif action == "replace":
            del out[key]  # the later row wins, at its own place in the statement
            out[key] = (first_seq + i, values)
        elif action == "update":
            raise PrimaryKeyViolationError(
                "ON CONFLICT DO UPDATE command cannot affect row a second time: primary key "
                f"'{_shown_key(table, key)}' is proposed more than once",
                value=key,
            )
    return out


def _shown_key(table: TableDef, key: Any) -> str:
    columns = table.key_columns
    if len(columns) == 1:
        return render_stored(key, columns[0].type)
    return (
        "(" + ", ".join(render_stored(v, c.type) for v, c in zip(key, columns, strict=True)) + ")"
    )


def _updated_rows(
    engine: Database,
    s: st.Insert,
    table: TableDef,
    prov: TableProvider,
    scope: str,
    conflicts: list[tuple[Any, int, dict[int, Any]]],
    params: dict[str, Any],
) -> list[tuple[Any, RowVersion, tuple[int, dict[int, Any]]]]:
    """DO UPDATE: the new version of each conflicting row the WHERE accepts,
    with the version it replaces ((seq, values))."""
    oc = s.on_conflict
    assert oc is not None
    now = engine.clock_ms()
    olds = []
    for key, _, _ in conflicts:
        version, _ = live_version(prov, table, scope, key, now)
        assert version is not None, "existing_keys and live_version disagree"
        olds.append(version)
    news = [values for _, _, values in conflicts]
    computed = _direct(table, oc, news, params)
    if computed is None:
        computed = _evaluate(s, table, olds, news, params)
    out: list[tuple[Any, RowVersion, tuple[int, dict[int, Any]]]] = []
    qualifier = (s.table.alias or table.name).lower()
    integers = [c for c in table.columns if c.type in INTEGER_TYPES]
    names = [c.name for c in integers]
    checked = [(n, part) for n, e in oc.assignments for part in integer_parts(e, names, params)]
    widths = {c.name: BITS[c.type] for c in integers}
    for (key, seq, proposed), (old_seq, old), (accepted, assigned) in zip(
        conflicts, olds, computed, strict=True
    ):
        if not accepted:
            continue
        if checked:
            exact_row = {f"{qualifier}.{c.name}": old.get(c.id) for c in integers}
            exact_row.update({f"{_EXCLUDED}.{c.name}": proposed.get(c.id) for c in integers})
            for name, expr in checked:
                check_no_overflow(expr, exact_row, params, column=name, widths=widths)
        new = dict(old)
        for name, value in assigned.items():
            col = table.get_column(name)
            if value is None and not col.nullable:
                raise NotNullViolationError(
                    f"Column '{col.name}' of table {table.qualified_name} cannot be NULL",
                    column_name=col.name,
                )
            if col.primary_key and value != old.get(col.id):
                raise SchemaError(
                    f"ON CONFLICT DO UPDATE cannot change the primary key column '{col.name}'"
                )
            new[col.id] = value
        out.append((key, (seq, False, new), (old_seq, old)))
    return out


def _direct(
    table: TableDef, oc: st.OnConflict, news: list[dict[int, Any]], params: dict[str, Any]
) -> list[tuple[bool, dict[str, Any]]] | None:
    """Stored SET values without DataFusion when each is ``EXCLUDED.col`` (of
    the assigned column's type), a literal or a parameter and there is no
    WHERE (the usual upsert); else None."""
    if oc.where is not None:
        return None
    from_excluded: dict[str, int] = {}  # assigned column -> id of the EXCLUDED column it copies
    constants: dict[str, Any] = {}
    for name, e in oc.assignments:
        if isinstance(e, exp.Column) and e.table and ident(e.args.get("table")) == _EXCLUDED:
            source = table.find_column(ident(e))
            if source is None or source.type != table.get_column(name).type:
                return None  # DataFusion reports the unknown column / converts the value
            from_excluded[name] = source.id  # proposed rows hold stored values already
            continue
        try:
            value = simple_value(e, params)
        except (NotSimple, KeyError):
            return None
        col = table.get_column(name)
        constants[name] = assign(value, col.type, col.name)
    return [
        (True, {**constants, **{n: values.get(cid) for n, cid in from_excluded.items()}})
        for values in news
    ]


def _evaluate(
    s: st.Insert,
    table: TableDef,
    olds: list[tuple[int, dict[int, Any]]],
    news: list[dict[int, Any]],
    params: dict[str, Any],
) -> list[tuple[bool, dict[str, Any]]]:
    """SET (and WHERE) computed by DataFusion over the conflicting rows: the
    existing rows under the table's name or alias, the proposed ones as
    EXCLUDED, joined on their position in the statement."""
    import pyarrow as pa
    from datafusion import SessionConfig, SessionContext

    from engine.exec.query import _OPTIONS, _scalar, datafusion_error

    oc = s.on_conflict
    assert oc is not None
    name = s.table.alias or table.name
    positions = pa.array(range(len(olds)), type=pa.int64())
    existing = build_arrow(table, [(q, False, v) for q, v in olds], hidden=True)
    excluded = build_arrow(table, [(0, False, v) for v in news], hidden=False)
    ctx = SessionContext(SessionConfig().with_target_partitions(1))
    # Quoted so DataFusion keeps the name's case (``INSERT INTO t AS "X"``).
    ctx.register_record_batches(f'"{name}"', [existing.append_column(_ROW, positions).to_batches()])
    ctx.register_record_batches(_EXCLUDED, [excluded.append_column(_ROW, positions).to_batches()])
    # The SET values and WHERE reach DataFusion as written (sliced from the
    # statement by token position), like every other expression a write evaluates.
    text = Composed().add(f'SELECT "{name}"."{_ROW}" AS "{_ROW}"')
    # A decimal value for an integer column rounds as a DECIMAL (assignment.py).
    casts = assignment.cast_to(
        [e for _, e in oc.assignments],
        [table.get_column(n).type for n, _ in oc.assignments],
        [assignment.source(table.name, s.table.alias), assignment.source(_EXCLUDED)],
        assignment.table_schema(table, (_EXCLUDED, table.arrow_schema())),
        params,
    )
    for i, (value, cast) in enumerate(zip(oc.set_sql, casts, strict=True)):
        if cast is not None:
            text.add(", CAST((").piece(value).add(f') AS {cast}) AS "{_NEW.format(i)}"')
        else:
            text.add(", (").piece(value).add(f') AS "{_NEW.format(i)}"')
    if oc.where_sql is not None:
        text.add(", (").piece(oc.where_sql).add(f') AS "{_WHERE}"')
    text.add(f' FROM "{name}" JOIN "{_EXCLUDED}" ON "{name}"."{_ROW}" = "{_EXCLUDED}"."{_ROW}"')

    # Integer casts round and -0.0 equals 0.0, as in a SELECT.
    schemas = {name: table.arrow_schema(hidden=True), _EXCLUDED: table.arrow_schema()}
    exact = exact_numbers(text.text, lambda ns, n: schemas.get(n) if ns is None else None, params)
    sql = text.text if exact is None else exact[1]

    def where(ln: int, col: int) -> tuple[int, int]:
        if exact is not None:
            return s.line, s.column  # a position in the rewritten text is not the statement's
        found = text.locate(offset_of(text.text, ln, col)) or (1, 1)
        return s.line + found[0] - 1, (s.column - 1 if found[0] == 1 else 0) + found[1]

    try:
        out = ctx.sql_with_options(
            sql, _OPTIONS, param_values={k: _scalar(v) for k, v in params.items()}
        ).to_arrow_table()
    except Exception as exc:
        err = datafusion_error(exc, s.line, s.column, where=where)
        if "Ambiguous reference" in err.message:
            err.message += (
                f": qualify it with {name}. (the existing row) or EXCLUDED. (the proposed row)"
            )
        raise err from None
    by_row: list[tuple[bool, dict[str, Any]]] = [(False, {})] * len(olds)
    rows = out.column(_ROW).to_pylist()
    accepted = out.column(_WHERE).to_pylist() if oc.where is not None else [True] * len(rows)
    values = [out.column(_NEW.format(i)).to_pylist() for i in range(len(oc.assignments))]
    columns = [table.get_column(n) for n, _ in oc.assignments]
    for j, row in enumerate(rows):
        if accepted[j] is True:
            by_row[row] = (
                True,
                {c.name: assign(values[i][j], c.type, c.name) for i, c in enumerate(columns)},
            )
    return by_row
