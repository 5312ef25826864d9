"""A scalar subquery with no row is NULL, whatever it selects.

DataFusion 55 takes an uncorrelated scalar subquery's nullability from the
expression it selects: ``(SELECT 1 FROM q WHERE ...)`` or ``(SELECT id FROM
q WHERE ...)`` over a NOT NULL ``id`` is "never NULL" to its simplifier, so
``(...) IS NULL`` is folded to FALSE and ``coalesce((...), 0)`` to the
subquery alone: a lookup that finds nothing filtered every row out (the
idiom "no such user": ``WHERE (SELECT id FROM users WHERE name = $1) IS
NULL``), and the subquery as a column failed ("declared as non-nullable but
contains null values"). Such a subquery is written as

    (SELECT nullif(__kalam_nv1, NULL) FROM (SELECT <expr> AS __kalam_nv1 ...) AS __kalam_nv1_s)

``nullif(x, NULL)`` is ``x``, but a function's result is nullable to the
simplifier, and over a derived table's column it cannot be folded away
(``nullif(1, NULL)`` on its own is folded to ``1``). The rows, their number
(more than one is still an error) and the value are the subquery's own.

A correlated scalar subquery is left to the decorrelation
(``engine/sql/subqueries.py``), which already answers NULL for no row; an
aggregate without GROUP BY always has its one row.
"""

from __future__ import annotations

import re

from sqlglot import exp

from engine.sql import subqueries
from engine.sql.relations import ColumnsOf
from engine.sql.subquery_forms import aggregates_in_projection
from engine.sql.tokens import FreshNames, parsed, peeked

_SUBSELECT = re.compile(r"\(\s*SELECT\b", re.IGNORECASE)
_PREFIX = "__kalam_nv"
# Parents under which a parenthesised query is a relation or a set, not a value.
_NOT_A_VALUE = (
    exp.From,
    exp.Join,
    exp.CTE,
    exp.SetOperation,
    exp.Subquery,
    exp.In,
    exp.Exists,
    exp.Any,
    exp.All,
    exp.Lateral,
)


def nullable_scalars(sql: str, columns_of: ColumnsOf) -> tuple[exp.Expr, str] | None:
    """(tree, text) of ``sql`` with each uncorrelated scalar subquery as
    above; None when it has none."""
    if _SUBSELECT.search(sql) is None or (shared := peeked(sql)) is None:
        return None
    # A look at the shared tree first: most queries have no candidate, and
    # a copy and a correlation test cost ~1 ms of a TPC-H query each.
    if not any(
        _scalar(s) and _candidate(s.this) is not None for s in shared.find_all(exp.Subquery)
    ):
        return None
    if (read := parsed(sql)) is None:
        return None
    tree, dialect = read
    found = [s for s in tree.find_all(exp.Subquery) if _scalar(s)]
    correlated = subqueries.correlation_test(tree, columns_of)
    names = FreshNames(tree, _PREFIX)
    changed = False
    for sub in found:
        query = sub.this
        picked = _candidate(query)
        if picked is None or correlated(sub, query):
            continue
        value = picked.this if isinstance(picked, exp.Alias) else picked
        name = names.next()
        inner = query.copy()
        inner.set("expressions", [exp.alias_(value.copy(), name)])
        kept: exp.Expr = exp.Anonymous(this="nullif", expressions=[exp.column(name), exp.Null()])
        # The name DataFusion gives the subquery as a column is its
        # projection's: an alias's, or a column's own.
        if isinstance(picked, exp.Alias) or isinstance(value, exp.Column):
            kept = exp.alias_(kept, picked.alias_or_name, quoted=_quoted(picked))
        outer = exp.select(kept).from_(
            exp.Subquery(this=inner, alias=exp.TableAlias(this=exp.to_identifier(f"{name}_s")))
        )
        sub.set("this", outer)
        changed = True
    if not changed:
        return None
    return tree, tree.sql(dialect=dialect)


def _candidate(query: exp.Expr) -> exp.Expr | None:
    """The one projection of a scalar subquery that may have no row, or None
    (not a SELECT of one value, a ``*``, or an aggregate without GROUP BY:
    one row, always)."""
    if not isinstance(query, exp.Select) or len(query.expressions) != 1:
        return None
    if aggregates_in_projection(query) and query.args.get("group") is None:
        return None
    picked = query.expressions[0]
    value = picked.this if isinstance(picked, exp.Alias) else picked
    if isinstance(value, exp.Star) or (
        isinstance(value, exp.Column) and isinstance(value.this, exp.Star)
    ):
        return None
    return picked


def _quoted(picked: exp.Expr) -> bool:
    ident = picked.args.get("alias") if isinstance(picked, exp.Alias) else picked.this
    return bool(isinstance(ident, exp.Identifier) and ident.quoted)


def _scalar(sub: exp.Subquery) -> bool:
    """Whether ``sub`` stands where a value does (not a derived table, a
    set operation's branch, or the set of IN / EXISTS / ANY / ALL)."""
    return not sub.alias and not isinstance(sub.parent, _NOT_A_VALUE)
