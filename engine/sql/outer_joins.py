"""RIGHT joins written as LEFT joins before DataFusion plans them.

DataFusion 55 answers a RIGHT join wrongly under a WHERE over its
NULL-padded side when its inputs are unions (every table here: segments and
hot rows). Its physical filter pushdown matches the WHERE's columns to the
join's inputs by name, so ``WHERE t1.id IS NULL`` over ``t1 RIGHT JOIN t2``
(both with an ``id``) went into t2's scan as ``t2.id IS NULL``: the
anti-join pattern returned no row. LEFT, FULL and inner joins are not
affected (measured over the same matrix), so ``A RIGHT JOIN B ON c``
becomes ``B LEFT JOIN A ON c``, and a RIGHT join after other joins takes
them along as a nested join: ``A JOIN B ON c1 RIGHT JOIN C ON c2`` becomes
``C LEFT JOIN (A JOIN B ON c1) ON c2``. A bare ``*`` in that SELECT becomes
each FROM item's ``t.*`` in the written order, so the columns come out as
before. Joins with USING or NATURAL (whose ``*`` merges columns) are left
as written.

DataFusion also makes RIGHT joins of its own: a FULL join under a WHERE
that rejects NULLs from one side becomes a LEFT or RIGHT join, and with the
same pushdown ``WHERE t2.id = 7 OR (t2.a IS NOT NULL AND t1.a = t2.x)``
kept a row whose ``t1.a`` is NULL. In a SELECT with a FULL join, each WHERE
conjunct ``c`` is written ``(c) IS TRUE``: the same rows (a WHERE keeps only
TRUE), but DataFusion no longer reads it as NULL-rejecting, so the FULL join
stays one.
"""

from __future__ import annotations

import re

from sqlglot import exp

from engine.sql.tokens import parsed

_OUTER_JOIN = re.compile(r"\b(?:RIGHT|FULL)\s+(?:OUTER\s+)?JOIN\b", re.IGNORECASE)


def rewritten_outer_joins(sql: str) -> tuple[exp.Expr, str] | None:
    """(tree, text) of ``sql`` with its RIGHT joins written as LEFT joins and
    the WHERE over its FULL joins guarded, or None when there is nothing to
    rewrite."""
    if _OUTER_JOIN.search(sql) is None or (read := parsed(sql)) is None:
        return None
    tree, dialect = read
    changed = False
    for select in list(tree.find_all(exp.Select)):
        changed = _rewrite(select) or changed
        changed = _guard_full(select) or changed
    if not changed:
        return None
    return tree, tree.sql(dialect=dialect)


def _is_right(join: exp.Join) -> bool:
    return (join.args.get("side") or "").upper() == "RIGHT"


def _rewrite(select: exp.Select) -> bool:
    joins: list[exp.Join] = list(select.args.get("joins") or [])
    from_ = select.args.get("from_")
    if from_ is None or not any(_is_right(j) for j in joins):
        return False
    for j in joins:
        if j.args.get("using") or (j.args.get("kind") or "").upper() == "NATURAL":
            return False
        if _is_right(j) and j.args.get("on") is None:
            return False
    items = [from_.this, *(j.this for j in joins)]
    names = [item.alias_or_name for item in items]
    if any(not n for n in names):
        return False  # an unnamed FROM item: its columns cannot be named with t.*
    stars = [p for p in select.expressions if isinstance(p, exp.Star)]
    if stars:
        if any(v for s in stars for v in s.args.values()):
            return False  # * EXCLUDE / REPLACE: left alone
        expanded: list[exp.Expr] = []
        for p in select.expressions:
            if isinstance(p, exp.Star):
                expanded += [exp.Column(this=exp.Star(), table=exp.to_identifier(n)) for n in names]
            else:
                expanded.append(p)
        select.set("expressions", expanded)
    base: exp.Expr = from_.this.copy()
    applied: list[exp.Join] = []
    for j in joins:
        if not _is_right(j):
            applied.append(j.copy())
            continue
        if applied:
            nested = base.copy()
            nested.set("joins", applied)
            inner: exp.Expr = exp.Subquery(this=nested)
        else:
            inner = base
        left = exp.Join(this=inner, on=j.args["on"].copy(), side="LEFT")
        base, applied = j.this.copy(), [left]
    select.set("from_", exp.From(this=base))
    select.set("joins", applied)
    return True


def _guard_full(select: exp.Select) -> bool:
    where = select.args.get("where")
    joins = select.args.get("joins") or []
    if where is None or not any((j.args.get("side") or "").upper() == "FULL" for j in joins):
        return False
    conjuncts = list(where.this.flatten()) if isinstance(where.this, exp.And) else [where.this]
    guarded = [
        c if _is_true_test(c) else exp.Is(this=exp.Paren(this=c.copy()), expression=exp.true())
        for c in conjuncts
    ]
    select.set("where", exp.Where(this=exp.and_(*guarded)))
    return True


def _is_true_test(node: exp.Expr) -> bool:
    return isinstance(node, exp.Is) and isinstance(node.expression, exp.Boolean)
