"""A nested query with OFFSET keeps all its rows under an outer ORDER BY.

DataFusion 55's sort enforcement pushes an outer ORDER BY through a nested
``LIMIT n OFFSET m`` and gives the sort below it a fetch of n, forgetting
the m rows skipped after it: ``SELECT k FROM (SELECT k FROM a ORDER BY k
LIMIT 5 OFFSET 2) t ORDER BY k`` returned 3, 4, 5 where SQL gives 3 to 7,
and the same with a CTE, or with no ORDER BY inside.

A filter that cannot be folded away stops the push: each nested query with
an OFFSET is read through ``SELECT * FROM (...) WHERE random() >= 0``,
which keeps every row (``random()`` is in [0, 1)) and, being volatile, is
never simplified away. The statement's own top-level OFFSET is not nested
under any ORDER BY and stays as written.
"""

from __future__ import annotations

from sqlglot import exp

from engine.sql.relations import ColumnsOf, Relations
from engine.sql.tokens import depth, rewritten


def kept(sql: str, columns_of: ColumnsOf) -> tuple[exp.Expr, str] | None:
    """The query with each nested OFFSET query behind the filter, as (tree,
    SQL); None when it has none."""
    return rewritten(sql, lambda tree: rewrite(tree, columns_of))


def rewrite(tree: exp.Expr, columns_of: ColumnsOf) -> bool:
    """Rewrite ``tree`` in place; whether it had anything to rewrite."""
    relations: Relations | None = None
    changed = False
    # Innermost first: an outer query is copied with its inner ones already behind the filter.
    for offset in sorted(tree.find_all(exp.Offset), key=depth, reverse=True):
        query = offset.parent
        if not isinstance(query, exp.Query) or query is tree or _skips_nothing(offset):
            continue
        relations = relations or Relations(tree, columns_of)
        names = relations.output(query)
        named = [n for n in names or () if n]
        if len(set(named)) != len(named):
            continue  # a derived table cannot hold two columns of one name
        barrier = (
            exp.select(exp.Star())
            .from_(
                exp.Subquery(
                    this=query.copy(), alias=exp.TableAlias(this=exp.to_identifier("__kalam_o"))
                )
            )
            .where(exp.GTE(this=exp.func("random"), expression=exp.Literal.number(0)))
        )
        query.replace(
            exp.Subquery(this=barrier) if isinstance(query.parent, exp.SetOperation) else barrier
        )
        changed = True
    return changed


def _skips_nothing(offset: exp.Offset) -> bool:
    value = offset.expression
    return isinstance(value, exp.Literal) and not value.is_string and value.this == "0"
