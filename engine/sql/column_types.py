"""Which base-table column each column reference of a query names, and its
Arrow type, for rewrites that depend on types (``engine/sql/checked_ints.py``,
``engine/sql/mixed_numbers.py``).

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
    cache: dict[tuple[str | None, str], dict[str, pa.DataType] | None] = {}

    def table_types(table: exp.Table) -> dict[str, pa.DataType] | None:
        if table.args.get("catalog") is not None or not isinstance(table.this, exp.Identifier):
            return None
        key = (name_of(table.args.get("db")) or None, name_of(table.this))
        if key not in cache:
            schema = schema_of(*key)
            cache[key] = None if schema is None else {f.name: f.type for f in schema}
        return cache[key]

    for scope in traverse_scope(tree):
        _scope_types(scope, table_types, types, qualifiers)
    return types, qualifiers


def _shown(table: exp.Table) -> str:
    """How DataFusion qualifies a column of ``table`` in output names."""
    if table.alias:
        return name_of(table.args["alias"].this)
    db = table.args.get("db")
    return f"{name_of(db)}.{name_of(table.this)}" if db is not None else name_of(table.this)


def _scope_types(
    scope: Scope,
    table_types: Callable[[exp.Table], dict[str, pa.DataType] | None],
    types: dict[int, pa.DataType],
    qualifiers: dict[int, str],
) -> None:
    sources: dict[str, tuple[exp.Table, dict[str, pa.DataType] | None]] = {}
    derived: dict[str, set[str] | None] = {}
    for name, source in scope.sources.items():
        if isinstance(source, exp.Table):
            sources[name] = (source, table_types(source))
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
        types[id(column)] = found[1][name]
