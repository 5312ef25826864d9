"""Which base-table column each column reference of a query names, its
Arrow type and whether it is NOT NULL where it is read, for rewrites that
depend on them (``engine/sql/checked_ints.py``, ``mixed_numbers.py``,
``numeric_semantics.py``, ``date_intervals.py``, ``row_values.py``).

A reference resolves only when it is certain: in its own scope (sqlglot's
scopes), a qualified name whose source is a base table, or an unqualified
name exactly one base table of the scope holds, which no derived table or
CTE of the scope and no output alias could mean. Anything else is unknown.
"""

from __future__ import annotations

from collections.abc import Callable

import pyarrow as pa
from sqlglot import exp
from sqlglot.optimizer.scope import Scope, traverse_scope

SchemaOf = Callable[[str | None, str], "pa.Schema | None"]


def name_of(ident: exp.Expr | None) -> str:
    if not isinstance(ident, exp.Identifier):
        return ident.name if ident is not None else ""
    return ident.this if ident.quoted else ident.this.lower()


def column_types(
    tree: exp.Expr, schema_of: SchemaOf
) -> tuple[dict[int, pa.DataType], dict[int, str]]:
    """For the columns that resolve, in their own scope, to exactly one base
    table's column: id(column) -> its Arrow type, and id(column) -> the
    qualifier DataFusion names it with."""
    types: dict[int, pa.DataType] = {}
    qualifiers: dict[int, str] = {}
    _resolve(tree, schema_of, types, qualifiers, None)
    return types, qualifiers


def not_null_columns(tree: exp.Expr, schema_of: SchemaOf) -> set[int]:
    """id() of the columns that resolve as above to a NOT NULL column and
    are read where no row is made up: in a SELECT joining only with inner
    joins (an outer join's padding row holds NULLs) and without ROLLUP,
    CUBE or GROUPING SETS (whose total rows do)."""
    out: set[int] = set()
    _resolve(tree, schema_of, {}, {}, out)
    return out


def _resolve(
    tree: exp.Expr,
    schema_of: SchemaOf,
    types: dict[int, pa.DataType],
    qualifiers: dict[int, str],
    not_null: set[int] | None,
) -> None:
    cache: dict[tuple[str | None, str], dict[str, pa.Field] | None] = {}

    def table_fields(table: exp.Table) -> dict[str, pa.Field] | None:
        if table.args.get("catalog") is not None or not isinstance(table.this, exp.Identifier):
            return None
        key = (name_of(table.args.get("db")) or None, name_of(table.this))
        if key not in cache:
            schema = schema_of(*key)
            cache[key] = None if schema is None else {f.name: f for f in schema}
        return cache[key]

    for scope in traverse_scope(tree):
        fields: dict[int, pa.Field] = {}
        _scope_types(scope, table_fields, fields, qualifiers)
        for key, field in fields.items():
            types[key] = field.type
        if not_null is not None and not _pads_rows(scope.expression):
            not_null.update(key for key, field in fields.items() if not field.nullable)


def _pads_rows(select: exp.Expr) -> bool:
    """Whether ``select`` may make up rows holding NULLs (or is no SELECT)."""
    if not isinstance(select, exp.Select):
        return True
    if any(join.side or join.kind in ("FULL", "OUTER") for join in select.args.get("joins") or []):
        return True
    group = select.args.get("group")
    if group is None:
        return False
    sets = (exp.Rollup, exp.Cube, exp.GroupingSets)
    return any(group.args.get(arg) for arg in ("rollup", "cube", "grouping_sets")) or any(
        isinstance(e, sets) for e in group.expressions
    )


def _shown(table: exp.Table) -> str:
    """How DataFusion qualifies a column of ``table`` in output names."""
    if table.alias:
        return name_of(table.args["alias"].this)
    db = table.args.get("db")
    return f"{name_of(db)}.{name_of(table.this)}" if db is not None else name_of(table.this)


def _scope_types(
    scope: Scope,
    table_fields: Callable[[exp.Table], dict[str, pa.Field] | None],
    fields: dict[int, pa.Field],
    qualifiers: dict[int, str],
) -> None:
    sources: dict[str, tuple[exp.Table, dict[str, pa.Field] | None]] = {}
    derived: dict[str, set[str] | None] = {}
    for name, source in scope.sources.items():
        if isinstance(source, exp.Table):
            sources[name] = (source, table_fields(source))
        else:  # a derived table or a CTE: its columns' types are not known here
            expression = getattr(source, "expression", None)
            derived[name] = (
                set(expression.named_selects) if isinstance(expression, exp.Query) else None
            )
    select = scope.expression
    aliases = (
        {p.alias for p in select.expressions if isinstance(p, exp.Alias)}
        if isinstance(select, exp.Select)
        else set()
    )
    # (Scope.columns leaves out some repeats in HAVING and ORDER BY.)
    for column in [n for n in scope.walk() if isinstance(n, exp.Column)]:
        name = name_of(column.this)
        if column.table:
            found = sources.get(column.table)
        else:
            if name in aliases or any(cols is None or name in cols for cols in derived.values()):
                continue  # may name an output alias or a derived column
            holders = [s for s in sources.values() if s[1] is None or name in s[1]]
            if len(holders) != 1:
                continue
            found = holders[0]
        if found is None or found[1] is None or name not in found[1]:
            continue
        qualifiers[id(column)] = _shown(found[0])
        fields[id(column)] = found[1][name]
