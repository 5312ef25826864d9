"""``DELETE FROM t USING u [, ...] [WHERE <predicate>]``.

A row of ``t`` is deleted when some combination of the USING tables' rows
makes the predicate TRUE (PostgreSQL's meaning; several matches delete it
once). The target SELECT is therefore

    SELECT <t's columns>, _seq FROM t WHERE EXISTS (SELECT 1 FROM u, ... WHERE <predicate>)

with the USING list and the predicate exactly as written. Inside EXISTS an
unqualified column is looked up in the USING tables before ``t``; where
PostgreSQL would call it ambiguous (a column of ``t`` and of a USING table)
or where a USING table takes ``t``'s own name, the statement is refused
rather than given another meaning.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlglot import exp

from engine.catalog.model import TableDef
from engine.errors import UnsupportedStatementError
from engine.sql import statements as st
from engine.sql.mapping import table_ref
from engine.sql.tokens import Composed

if TYPE_CHECKING:
    from engine.core import Database


def check(engine: Database, s: st.Delete, table: TableDef) -> None:
    """Refuse the USING forms whose rewrite would not mean what PostgreSQL does."""
    own = (s.table.alias or s.table.name).lower()
    others: list[TableDef] = []
    for item in s.tree.args.get("using") or ():
        ref = table_ref(item)
        if (ref.alias or ref.name).lower() == own:
            raise UnsupportedStatementError(
                f"DELETE ... USING: '{own}' names both the target and a USING table; "
                "give one of them an alias"
            )
        others.append(engine.resolve(ref))
    if s.where is None:
        return
    for column in s.where.find_all(exp.Column):
        if column.table or isinstance(column.this, exp.Star):
            continue
        name = column.name
        if _own_column_of_a_subquery(engine, column):
            continue
        if table.find_column(name) is not None and any(o.find_column(name) for o in others):
            raise UnsupportedStatementError(
                f"DELETE ... USING: column '{name}' is ambiguous (a column of "
                f"{table.qualified_name} and of a USING table); qualify it"
            )


def _own_column_of_a_subquery(engine: Database, column: exp.Column) -> bool:
    """Whether ``column`` sits in a subquery of the predicate one of whose own
    tables has it (then it is that table's, in PostgreSQL and here alike)."""
    select = column.find_ancestor(exp.Select)
    while select is not None:
        for item in select.find_all(exp.Table):
            if item.find_ancestor(exp.Select) is not select:
                continue
            try:
                found = engine.resolve(table_ref(item)).find_column(column.name)
            except Exception:  # not a table of ours (a CTE, a view): undecided
                continue
            if found is not None:
                return True
        select = select.find_ancestor(exp.Select)
    return False


def add_exists(text: Composed, s: st.Delete) -> Composed:
    """`` WHERE EXISTS (SELECT 1 FROM <using> [WHERE <predicate>])``."""
    assert s.using_sql is not None
    text.add(" WHERE EXISTS (SELECT 1 FROM ").piece(s.using_sql)
    if s.where_sql is not None:
        text.add(" WHERE ").piece(s.where_sql)
    return text.add(")")
