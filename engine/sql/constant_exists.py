"""An uncorrelated ``EXISTS (S)`` computed once per query, not per row.

``S`` names nothing of the query around it, so its answer is one constant
for the whole statement. DataFusion 55 still plans ``WHERE EXISTS (S)`` as a
semi join without keys, a nested loop of every outer row against every row
of ``S``: 4.5 s of CPU on 1M x 1M rows where DuckDB took 1.3 ms
(``bench/bench_exists.py``). Written as

    (SELECT count(*) FROM (SELECT 1 FROM (S) AS __kalam_ex1 LIMIT 1) AS ...) > 0

it is an uncorrelated scalar subquery, which DataFusion computes once (a
join with its single row), reading ``S`` only until its first row. (Not
``(SELECT 1 FROM (S) LIMIT 1) IS NOT NULL``: DataFusion 55 folds a scalar
subquery of a literal to that literal, non-NULL, even when it has no row.) The
answer is exactly EXISTS's, TRUE or FALSE, never NULL, wherever it stands
(NOT, OR, a projection, a DELETE's or UPDATE's WHERE), and ``S`` keeps its
meaning as a derived table whatever it holds (an aggregate is one row,
``LIMIT 0`` none, OFFSET, UNION). The query stays one statement planned
over one set of tables, so the constant and the rows it filters come from
the same snapshot.

Only an EXISTS that is not itself inside another subquery expression is
rewritten: inside a correlated one it is left to the decorrelation
(``engine/sql/subqueries.py``), which keeps EXISTS as it is.
"""

from __future__ import annotations

import re

from sqlglot import exp

from engine.sql import subqueries, subquery_forms
from engine.sql.relations import ColumnsOf
from engine.sql.tokens import FreshNames, parsed, peeked

_EXISTS = re.compile(r"\bEXISTS\b", re.IGNORECASE)
_PREFIX = "__kalam_ex"


def computed_once(sql: str, columns_of: ColumnsOf) -> tuple[exp.Expr, str] | None:
    """(tree, text) of ``sql`` with each uncorrelated EXISTS as above; None
    when it has none."""
    # Looked at on the shared tree first: most queries need nothing, and
    # their own copy of the tree would cost more than the look.
    if _EXISTS.search(sql) is None or (shared := peeked(sql)) is None:
        return None
    if not _uncorrelated(shared, columns_of) or (read := parsed(sql)) is None:
        return None
    tree, dialect = read
    found = _uncorrelated(tree, columns_of)
    if not found:
        return None
    names = FreshNames(tree, _PREFIX)
    for node, query in found:
        _existence_only(query)
        name = names.next()
        alias = exp.TableAlias(this=exp.to_identifier(name))
        first = exp.select(exp.Literal.number(1)).from_(exp.Subquery(this=query, alias=alias))
        first.set("limit", exp.Limit(expression=exp.Literal.number(1)))
        rows = exp.select(exp.Count(this=exp.Star())).from_(
            exp.Subquery(this=first, alias=exp.TableAlias(this=exp.to_identifier(f"{name}_one")))
        )
        node.replace(
            exp.Paren(this=exp.GT(this=exp.Subquery(this=rows), expression=exp.Literal.number(0)))
        )
    return tree, tree.sql(dialect=dialect)


def _uncorrelated(tree: exp.Expr, columns_of: ColumnsOf) -> list[tuple[exp.Exists, exp.Query]]:
    """The outermost EXISTS of ``tree`` whose query names nothing around it,
    with that query (read only: ``tree`` may be the shared one)."""
    found = [node for node in tree.find_all(exp.Exists) if _outermost(node)]
    if not found:
        return []
    correlated = subqueries.correlation_test(tree, columns_of)
    out = []
    for node in found:
        query = node.this
        while isinstance(query, exp.Subquery):
            query = query.this
        if isinstance(query, exp.Query) and not correlated(node, query):
            out.append((node, query))
    return out


def _existence_only(query: exp.Query) -> None:
    """A SELECT's projection as the constant 1 where it cannot change how
    many rows there are (no aggregate, DISTINCT, HAVING or QUALIFY), and without its
    ORDER BY (which cannot either): nothing of it is read, and its names may
    repeat (``SELECT x, x``, a ``*`` over two tables), which DataFusion
    refuses in a derived table."""
    if not isinstance(query, exp.Select) or subquery_forms.aggregates_in_projection(query):
        return
    if any(query.args.get(a) is not None for a in ("having", "qualify", "distinct")):
        return  # DISTINCT over the constant would be one row, before an OFFSET
    if query.args.get("group") is not None and any(
        isinstance(g, exp.Literal) for g in query.args["group"].expressions
    ):
        return  # GROUP BY 1 names a projection
    query.set("expressions", [exp.Literal.number(1)])
    query.set("order", None)


def _outermost(node: exp.Exists) -> bool:
    """Not inside another subquery used as a value (EXISTS, IN, scalar,
    ANY / ALL); a derived table, a CTE or a set operation's branch is a
    query of its own and does not count."""
    current = node.parent
    while current is not None:
        if isinstance(current, exp.Exists | exp.Any | exp.All):
            return False
        if isinstance(current, exp.In) and current.args.get("query") is not None:
            return False
        if isinstance(current, exp.Subquery) and not isinstance(
            current.parent, exp.From | exp.Join | exp.CTE | exp.SetOperation | exp.Subquery
        ):
            return False
        current = current.parent
    return True
