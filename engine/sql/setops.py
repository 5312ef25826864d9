"""INTERSECT ALL and EXCEPT ALL with SQL's multiset meaning.

DataFusion 55 plans ``L INTERSECT ALL R`` as a semi-join and ``L EXCEPT ALL
R`` as an anti-join, so duplicates are not counted: with L holding a value
twice and R once, INTERSECT ALL returned it twice (SQL: once) and EXCEPT ALL
not at all (SQL: once). Neither query ever reaches DataFusion as written.

The rewrite numbers the copies of each distinct row on each side
(``row_number()`` over a partition by every column) and takes the DISTINCT
set operation of the (row, copy number) pairs: the n-th copy of a row is in
both sides when both hold at least n copies, and only in L when R holds
fewer than n, so exactly min(m, n) and max(m - n, 0) copies survive. The
DISTINCT operations compare rows NULL-safely, as SQL's set operations do.
A zero-row copy of L heads the result through UNION ALL, so the output keeps
L's column names (which may be DataFusion's names for expressions).
"""

from __future__ import annotations

from sqlglot import exp

from engine.errors import UnsupportedStatementError
from engine.sql.relations import ColumnsOf, Relations
from engine.sql.tokens import depth, parsed

_COLUMN = "__kalam_c{}"
_COPY = "__kalam_copy"
# Clauses of the set operation that apply to its whole result.
_OUTER_ARGS = ("with_", "order", "limit", "offset")


def counted(sql: str, columns_of: ColumnsOf) -> tuple[exp.Expr, str] | None:
    """The query with every INTERSECT ALL / EXCEPT ALL rewritten, as (tree,
    SQL); None when it has none. Raises ``UnsupportedStatementError`` when a
    branch's columns cannot be counted from the query."""
    if (read := parsed(sql)) is None:
        return None
    tree, dialect = read
    rewritten = rewrite(tree, columns_of)
    if rewritten is None:
        return None
    return rewritten, rewritten.sql(dialect=dialect)


def rewrite(tree: exp.Expr, columns_of: ColumnsOf) -> exp.Expr | None:
    """``tree`` rewritten (in place but for its root); None when it had
    nothing to rewrite."""
    nodes = [n for n in tree.find_all(exp.Intersect, exp.Except) if n.args.get("distinct") is False]
    if not nodes:
        return None
    relations = Relations(tree, columns_of)
    # Innermost first: an outer operation counts the columns of the rewritten inner one.
    for node in sorted(nodes, key=depth, reverse=True):
        columns = relations.output(node.this)
        if not columns:
            kind = "INTERSECT ALL" if isinstance(node, exp.Intersect) else "EXCEPT ALL"
            raise UnsupportedStatementError(
                f"{kind} whose left query's columns cannot be counted (a * over a USING or "
                "NATURAL join, a table function or VALUES): list its columns"
            )
        replacement: exp.Expr = _counted(node, len(columns))
        if isinstance(node.parent, exp.SetOperation):
            # A UNION ALL under an INTERSECT would bind the other way round.
            replacement = exp.Subquery(this=replacement)
        if node is tree:
            tree = replacement
        else:
            node.replace(replacement)
    return tree


def _counted(node: exp.SetOperation, width: int) -> exp.Union:
    names = [_COLUMN.format(i) for i in range(1, width + 1)]
    left, right = node.this, node.expression

    def numbered(branch: exp.Expr, alias: str) -> exp.Select:
        derived = exp.Subquery(
            this=branch.copy(),
            alias=exp.TableAlias(
                this=exp.to_identifier(alias), columns=[exp.to_identifier(c) for c in names]
            ),
        )
        copy = exp.Window(this=exp.RowNumber(), partition_by=[exp.column(c) for c in names])
        return exp.select(*(exp.column(c) for c in names), exp.alias_(copy, _COPY)).from_(derived)

    operation = type(node)(
        this=numbered(left, "__kalam_l"), expression=numbered(right, "__kalam_r"), distinct=True
    )
    body = exp.select(*(exp.column(c) for c in names)).from_(
        exp.Subquery(this=operation, alias=exp.TableAlias(this=exp.to_identifier("__kalam_s")))
    )
    head = (
        exp.select(exp.Star())
        .from_(
            exp.Subquery(
                this=left.copy(), alias=exp.TableAlias(this=exp.to_identifier("__kalam_h"))
            )
        )
        .where(exp.false())
    )
    union = exp.Union(this=head, expression=body, distinct=False)
    for key in _OUTER_ARGS:
        value = node.args.get(key)
        if value is not None:
            union.set(key, value)
    return union
