"""A FULL join's WHERE written so DataFusion keeps the join a FULL one.

DataFusion 55 turns a FULL join under a WHERE that rejects NULLs from one
side into a LEFT or RIGHT join, and its physical filter pushdown then
matches the WHERE's columns to the join's inputs by name (see
``right_joins.py``): over ``t1 FULL JOIN t2 ON t1.a = t2.a AND t2.x > 0``,
``WHERE t2.id = 7 OR (t2.a IS NOT NULL AND t1.a = t2.x)`` went into t2's
scan as ``... t2.a = t2.x`` and kept a t2 row whose ``t1.a`` is NULL. In a
SELECT with a FULL join each WHERE conjunct ``c`` is written ``(c) IS
TRUE``: the same rows (a WHERE keeps only TRUE), but DataFusion no longer
reads it as rejecting NULLs, so the join stays FULL (and a filter over a
FULL join goes into neither side). A FULL join that could have become an
inner one is then run as FULL and filtered: slower, never wrong.
"""

from __future__ import annotations

import re

from sqlglot import exp

from engine.sql.tokens import conjuncts_of, rewritten

_FULL_JOIN = re.compile(r"\bFULL\s+(?:OUTER\s+)?JOIN\b", re.IGNORECASE)


def guarded(sql: str) -> tuple[exp.Expr, str] | None:
    """(tree, text) of ``sql`` with the WHERE over each FULL join guarded, or
    None when it has none."""
    if _FULL_JOIN.search(sql) is None:
        return None
    return rewritten(sql, lambda tree: any([_guard(s) for s in list(tree.find_all(exp.Select))]))


def _guard(select: exp.Select) -> bool:
    where = select.args.get("where")
    joins = select.args.get("joins") or []
    if where is None or not any((j.args.get("side") or "").upper() == "FULL" for j in joins):
        return False
    conjuncts = conjuncts_of(where.this)
    if all(_is_true_test(c) for c in conjuncts):
        return False
    guarded_ = [
        c if _is_true_test(c) else exp.Is(this=exp.Paren(this=c.copy()), expression=exp.true())
        for c in conjuncts
    ]
    select.set("where", exp.Where(this=exp.and_(*guarded_)))
    return True


def _is_true_test(node: exp.Expr) -> bool:
    return isinstance(node, exp.Is) and isinstance(node.expression, exp.Boolean)
