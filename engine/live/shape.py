"""What a live query may be, and its parts as written.

A subscription is ``SELECT <projection> FROM ns.t [WHERE <predicate>]`` over
one Kalam table (KalamDB 0.8's shape): the projection and the predicate are
evaluated on each committed change, so anything that needs more than the
changed row itself (joins, aggregates, GROUP BY, ORDER BY, LIMIT, DISTINCT,
window functions, subqueries, CTEs, set operations) is refused with an error
that names the construct.
"""

from __future__ import annotations

from typing import Any

from sqlglot import exp
from sqlglot.tokens import Token, TokenType

from engine.errors import UnsupportedStatementError
from engine.sql.mapping import ident
from engine.sql.statements import TableRef
from engine.sql.tokens import depths

# sqlglot node -> how the refusal names it (checked in this order).
_REFUSED: tuple[tuple[Any, str], ...] = (
    (exp.Window, "window functions (OVER ...)"),
    (exp.AggFunc, "aggregate functions"),
    (exp.Subquery, "subqueries"),
    (exp.Exists, "subqueries (EXISTS)"),
    (exp.Join, "JOIN"),
)
_CLAUSES = {
    "with_": "WITH (common table expressions)",
    "joins": "JOIN",
    "laterals": "LATERAL",
    "group": "GROUP BY",
    "having": "HAVING",
    "order": "ORDER BY",
    "limit": "LIMIT",
    "offset": "OFFSET",
    "distinct": "DISTINCT",
    "qualify": "QUALIFY",
    "windows": "WINDOW",
    "into": "SELECT INTO",
}


def _refuse(what: str) -> UnsupportedStatementError:
    return UnsupportedStatementError(
        f"SUBSCRIBE does not support {what}: a live query is SELECT <columns> FROM "
        "<namespace>.<table> [WHERE <condition>] over one table"
    )


def check_shape(tree: Any) -> TableRef:
    """The one table a live query reads; refuses every other shape by name."""
    if isinstance(tree, exp.SetOperation):
        raise _refuse(type(tree).__name__.upper())  # UNION / INTERSECT / EXCEPT
    if not isinstance(tree, exp.Select):
        raise _refuse(f"{type(tree).__name__} statements")
    for key, name in _CLAUSES.items():
        if tree.args.get(key):
            raise _refuse(name)
    from_ = tree.args.get("from_")
    if from_ is None:
        raise _refuse("a SELECT without FROM")
    for node_type, name in _REFUSED:
        if tree.find(node_type) is not None:
            raise _refuse(name)
    tables = list(tree.find_all(exp.Table))
    if len(tables) != 1 or from_.this is not tables[0]:
        raise _refuse("reading several tables")
    table = tables[0]
    if not isinstance(table.this, exp.Identifier):
        raise _refuse("table functions")
    if table.args.get("catalog"):
        raise UnsupportedStatementError(
            f"Table names have at most two parts (namespace.table): {table.sql()}"
        )
    db = table.args.get("db")
    return TableRef(ident(db) if db else None, ident(table.this))


def select_parts(sql: str, tokens: list[Token]) -> tuple[str, str, str | None]:
    """(projection, table reference with alias, WHERE predicate or None) of a
    checked live query, cut from its text by token positions."""
    depth = depths(tokens)
    top = [i for i, t in enumerate(tokens) if depth[i] == 0]
    from_at = next(
        (
            i
            for i in top
            if tokens[i].token_type == TokenType.FROM
            and tokens[i - 1].token_type != TokenType.DISTINCT
        ),
        None,
    )
    if from_at is None or from_at < 2 or tokens[0].token_type != TokenType.SELECT:
        raise _refuse("this form of SELECT")
    where_at = next(
        (i for i in top if i > from_at and tokens[i].token_type == TokenType.WHERE), None
    )
    end = where_at if where_at is not None else len(tokens)
    projection = sql[tokens[1].start : tokens[from_at - 1].end + 1]
    target = sql[tokens[from_at + 1].start : tokens[end - 1].end + 1]
    where = sql[tokens[where_at + 1].start : tokens[-1].end + 1] if where_at is not None else None
    return projection, target, where
