"""Subquery forms DataFusion 55 plans but answers wrongly, made exact on the
sqlglot tree before it sees them, and the single-row check of a correlated
scalar subquery that is not an aggregate.

``EXISTS (S)`` depends only on whether ``S`` has a row, so:

- an aggregate without GROUP BY has exactly one row (before HAVING / OFFSET):
  ``EXISTS (SELECT max(b) FROM q WHERE q.b = p.b)`` is TRUE for every row
  (DataFusion read it as EXISTS over the rows aggregated: FALSE where none
  matched); with HAVING ``h`` it is ``COALESCE((SELECT h FROM ...), FALSE)``;
- ``LIMIT 0`` has no row: FALSE (DataFusion ignored it);
- ``OFFSET k`` keeps a row only past ``k`` rows: ``(SELECT count(*) FROM ...
  WHERE ...) > k`` (DataFusion ignored the OFFSET);
- ORDER BY, a LIMIT above 0, DISTINCT and a GROUP BY without HAVING never
  change whether a row exists: dropped (the rewrite in
  ``engine/sql/subqueries.py`` could not carry them).

A correlated scalar subquery that is not an aggregate
(``(SELECT b FROM q WHERE q.a = p.a)``) is decorrelated with the number of
inner rows each outer row matches; more than one is an error at run time,
raised (``single_row_error``) only for rows whose value is computed, as SQL
says. DataFusion has no function that raises, so the check is a cast of a
marker text to a number that fails exactly when the count exceeds one.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from sqlglot import exp

from engine.errors import QueryError, UnsupportedStatementError
from engine.sql.tokens import conjuncts_of, depth, parsed, peeked, rewritten

ColumnsOf = Callable[[str | None, str], list[str] | None]
_EXISTS = re.compile(r"\bEXISTS\s*\(", re.IGNORECASE)
_LIMITED = re.compile(r"\b(?:LIMIT|OFFSET)\b", re.IGNORECASE)
_SUBSELECT = re.compile(r"\(\s*SELECT\b", re.IGNORECASE)
_TOO_MANY = "__kalam_scalar_subquery_rows_"
_TOO_MANY_SEEN = re.compile(re.escape(_TOO_MANY) + r"(\d+)")


def exact_exists(sql: str) -> tuple[exp.Expr, str] | None:
    """``sql`` with each EXISTS subquery in the exact form above, as (tree,
    SQL); None when nothing changed (the query then reaches DataFusion as
    written)."""
    if not _EXISTS.search(sql) and not (_LIMITED.search(sql) and _SUBSELECT.search(sql)):
        return None  # nothing to settle: no parse
    # Looked at on the shared tree first: most queries need nothing, and
    # their own copy of the tree would cost more than the look.
    if (shared := peeked(sql)) is None or not _settled(shared, dry=True):
        return None
    return rewritten(sql, _settled)


def _settled(tree: exp.Expr, *, dry: bool = False) -> bool:
    """Whether a subquery of ``tree`` takes an exact form; ``dry``: only
    look, changing nothing (the same nodes in the same order, so it raises
    what settling them would raise)."""
    changed = False
    # Innermost first, so an EXISTS inside another's subquery is settled
    # before its parent is inspected.
    for node in sorted(tree.find_all(exp.Exists), key=depth, reverse=True):
        changed |= _settle(node, dry=dry)
        if changed and dry:
            return True
    for sub in list(tree.find_all(exp.Subquery)):
        changed |= _settle_scalar(sub, dry=dry)
        if changed and dry:
            return True
    return changed


def _settle(node: exp.Exists, *, dry: bool = False) -> bool:
    query = node.this
    while isinstance(query, exp.Subquery):
        query = query.this
    if isinstance(query, exp.Union) and not any(
        query.args.get(a) is not None for a in ("order", "limit", "offset")
    ):
        # A row exists in a UNION [ALL] exactly when one exists in a branch.
        if dry:
            return True
        branches = [exp.Exists(this=b.copy()) for b in (query.this, query.expression)]
        node.replace(exp.Paren(this=exp.or_(*branches, copy=False)))
        for branch in branches:
            _settle(branch)
        return True
    if not isinstance(query, exp.Select):
        return False
    limit = _count_of(query, "limit")
    offset = _count_of(query, "offset")
    if limit == 0:
        if dry:
            return True
        node.replace(exp.false())
        return True
    grouped = query.args.get("group") is not None
    having = query.args.get("having")
    if not grouped and (having is not None or aggregates_in_projection(query)):
        # Exactly one row, then HAVING, OFFSET and LIMIT (> 0) apply to it.
        if dry and (offset or having is None):
            return True
        if offset:
            node.replace(exp.false())
            return True
        if having is None:
            node.replace(exp.true())
            return True
        condition = having.this
        if not any(
            agg.find_ancestor(exp.Select) is query for agg in condition.find_all(exp.AggFunc)
        ):
            # As the projection it would no longer make the query one row.
            raise UnsupportedStatementError(
                "Subquery not supported: HAVING without an aggregate inside EXISTS"
            )
        if dry:
            return True
        _strip(query)
        query.set("expressions", [condition.copy()])
        node.replace(exp.func("COALESCE", exp.Subquery(this=query.copy()), exp.false()))
        return True
    if having is not None:
        return False  # groups filtered by HAVING: left to the rewrite or DataFusion
    if offset:
        if grouped or query.args.get("distinct") is not None:
            raise UnsupportedStatementError(
                "Subquery not supported: OFFSET inside EXISTS over GROUP BY or DISTINCT"
            )
        if dry:
            return True
        _strip(query)
        query.set("expressions", [exp.Count(this=exp.Star())])
        node.replace(
            exp.Paren(
                this=exp.GT(
                    this=exp.Subquery(this=query.copy()), expression=exp.Literal.number(offset)
                )
            )
        )
        return True
    if not any(query.args.get(a) is not None for a in ("group", "distinct", "order", "limit")):
        return False
    if dry:
        return True
    _strip(query)
    query.set("expressions", [exp.Literal.number(1)])
    return True


def _settle_scalar(sub: exp.Subquery, *, dry: bool = False) -> bool:
    """LIMIT / OFFSET of a scalar subquery over an aggregate without GROUP
    BY, which has exactly one row: kept with LIMIT > 0 and no OFFSET (then
    dropped, the rewrite cannot carry them), none otherwise (NULL)."""
    query = sub.this
    if not isinstance(query, exp.Select) or isinstance(
        sub.parent,
        exp.From
        | exp.Join
        | exp.CTE
        | exp.SetOperation
        | exp.Subquery
        | exp.Exists
        | exp.In
        | exp.Any
        | exp.All,
    ):
        return False
    if query.args.get("limit") is None and query.args.get("offset") is None:
        return False
    if any(
        query.args.get(a) is not None for a in ("group", "having")
    ) or not aggregates_in_projection(query):
        return False
    try:
        limit, offset = _count_of(query, "limit"), _count_of(query, "offset")
    except UnsupportedStatementError:
        return False  # left as written
    if dry:
        return True
    if limit == 0 or offset:
        sub.replace(exp.Null())
    else:
        for arg in ("order", "limit", "offset"):
            query.set(arg, None)
    return True


def _strip(query: exp.Select) -> None:
    for arg in ("group", "having", "distinct", "order", "limit", "offset"):
        query.set(arg, None)


def _count_of(query: exp.Select, arg: str) -> int | None:
    """A LIMIT / OFFSET as a number; None when absent. Anything but an
    integer literal (a parameter, an expression) is refused: DataFusion
    ignores it inside EXISTS."""
    node = query.args.get(arg)
    if node is None:
        return None
    value = node.args.get("expression") if isinstance(node, exp.Limit | exp.Offset) else node
    if isinstance(value, exp.Literal) and value.is_int:
        return int(value.this)
    raise UnsupportedStatementError(
        f"Subquery not supported: {arg.upper()} inside EXISTS must be a whole number"
    )


def aggregates_in_projection(query: exp.Select) -> bool:
    """Whether ``query``'s own projections hold an aggregate (not one of a
    nested query, not a window function's)."""
    for p in query.expressions:
        for agg in p.find_all(exp.AggFunc):
            if agg.find_ancestor(exp.Select) is query and agg.find_ancestor(exp.Window) is None:
                return True
    return False


# ------------------------------------------------------ one row, or an error


def single_row_value(
    projection: exp.Expr,
    only_matched: exp.Expr,
    mark: exp.Expr,
    name: str,
    *,
    distinct: bool,
    joined: list[exp.Expr],
) -> tuple[list[exp.Expr], exp.Expr]:
    """The aggregates of a decorrelated non-aggregate scalar subquery (its
    value and how many rows carry it), and what replaces the subquery.

    ``only_matched`` is the projection, NULL for the LEFT JOIN's padding row.
    With DISTINCT the rows are the distinct values, a NULL counting as one.
    ``joined`` are the conditions joining the outer row to its count: part
    of the check, so that DataFusion cannot push it below the join and raise
    for outer rows another condition of the WHERE excludes."""
    if distinct:
        null_seen = exp.Case(
            ifs=[
                exp.If(
                    this=exp.and_(
                        exp.Not(this=exp.Is(this=mark.copy(), expression=exp.Null())),
                        exp.Is(this=projection.copy(), expression=exp.Null()),
                    ),
                    true=exp.Literal.number(1),
                )
            ],
            default=exp.Literal.number(0),
        )
        rows: exp.Expr = exp.Add(
            this=exp.Count(this=exp.Distinct(expressions=[only_matched.copy()])),
            expression=exp.Max(this=null_seen),
        )
    else:
        rows = exp.Count(this=mark.copy())
    values = [
        exp.alias_(rows, f"{name}_rows"),
        exp.alias_(exp.Max(this=only_matched.copy()), f"{name}_v"),
    ]
    count = exp.column(f"{name}_rows", table=name)
    # CAST('<marker><n>' AS BIGINT) fails, naming n, only where n > 1; the
    # value's own type is kept (the CASE has one branch).
    check = exp.Cast(
        this=exp.Case(
            ifs=[
                exp.If(
                    this=exp.and_(
                        exp.GT(this=count.copy(), expression=exp.Literal.number(1)), *joined
                    ),
                    true=exp.func(
                        "concat",
                        exp.Literal.string(_TOO_MANY),
                        exp.Cast(this=count.copy(), to=exp.DataType.build("VARCHAR")),
                    ),
                )
            ],
            default=exp.Literal.string("0"),
        ),
        to=exp.DataType.build("BIGINT"),
    )
    # A CASE with an operand: DataFusion rewrites a searched one-branch
    # CASE of a boolean into `check = 0 AND v`, whose AND skips the check
    # in a batch where `v` is all FALSE (the error was lost).
    replacement = exp.Case(
        this=check,
        ifs=[exp.If(this=exp.Literal.number(0), true=exp.column(f"{name}_v", table=name))],
    )
    return values, exp.Paren(this=replacement)


def single_row_error(exc: Exception) -> QueryError | None:
    """The clear error for DataFusion's failed cast of the marker above."""
    seen = _TOO_MANY_SEEN.search(f"{exc} {getattr(exc, 'engine_text', '')}")
    if seen is None:
        return None
    return QueryError(
        f"A scalar subquery returned more than one row ({seen.group(1)} rows) for a row "
        "it was evaluated for; a subquery used as a value must return at most one row "
        "(aggregate it, e.g. with max(...), or add a condition)"
    )


# ------------------------------------------------- comparisons with ANY / ALL

_NEGATED: dict[type[exp.Expr], type[exp.Binary]] = {
    exp.EQ: exp.NEQ,
    exp.NEQ: exp.EQ,
    exp.LT: exp.GTE,
    exp.GTE: exp.LT,
    exp.GT: exp.LTE,
    exp.LTE: exp.GT,
}
_QUANTIFIED = re.compile(r"\b(?:ANY|SOME|ALL)\s*\(\s*(?:SELECT|WITH)\b", re.IGNORECASE)


def quantified_as_exists(
    sql: str, correlation: Callable[[exp.Expr], Callable[[exp.Expr, exp.Expr], bool]]
) -> tuple[exp.Expr, str] | None:
    """``x op ANY (S)`` / ``x op ALL (S)`` spelled with EXISTS, which the
    rewrite in ``engine/sql/subqueries.py`` carries anywhere (DataFusion 55
    plans a quantified comparison only in a WHERE). With ``y`` the column of
    ``S``, ``x op ANY (S)`` is TRUE when some ``x op y`` is, FALSE when ``S``
    is empty, NULL when ``x`` or some ``y`` is NULL, else FALSE; and ``x op
    ALL (S)`` is ``NOT (x op' ANY (S))`` with ``op'`` the opposite
    comparison. None when the query has no such comparison. ``correlation(tree)``
    gives the test of whether a subquery of ``tree`` refers to an enclosing
    query (``subqueries.correlation_test``, passed in: that module imports
    this one)."""
    if not _QUANTIFIED.search(sql):
        return None
    if (read := parsed(sql)) is None:
        return None
    tree, dialect = read
    found = [
        n
        for n in tree.find_all(*_NEGATED)
        if isinstance(n, exp.Binary)
        and isinstance(n.expression, exp.Any | exp.All)
        and _body(n.expression) is not None
    ]
    if not found:
        return None
    correlated = correlation(tree)
    for n, node in enumerate(sorted(found, key=depth, reverse=True)):
        node.replace(_as_exists(node, correlated, f"__kalam_q{n}"))
    return tree, tree.sql(dialect=dialect)


def _body(quantifier: exp.Expr) -> exp.Query | None:
    query = quantifier.this
    while isinstance(query, exp.Subquery):
        query = query.this
    return query if isinstance(query, exp.Query) else None


def _as_exists(
    node: exp.Binary, correlated: Callable[[exp.Expr, exp.Expr], bool], name: str
) -> exp.Expr:
    quantifier = node.expression
    query = _body(quantifier)
    assert query is not None
    left = node.this
    if any(left.find_all(exp.AggFunc, exp.Window, exp.Subquery, exp.Exists)):
        raise UnsupportedStatementError(
            "Subquery not supported: an aggregate or subquery left of ANY / ALL outside a WHERE"
        )
    op = type(node) if isinstance(quantifier, exp.Any) else _NEGATED[type(node)]
    if correlated(node, query):
        if not isinstance(query, exp.Select) or any(
            query.args.get(a) is not None
            for a in ("group", "having", "distinct", "limit", "offset", "windows")
        ):
            raise UnsupportedStatementError(
                "Subquery not supported: a correlated ANY / ALL subquery with GROUP BY, "
                "DISTINCT or LIMIT outside a WHERE"
            )
        if len(query.expressions) != 1 or aggregates_in_projection(query):
            raise UnsupportedStatementError(
                "Subquery not supported: an ANY / ALL subquery must return one column"
            )
        inner = {s.alias_or_name.lower() for s in _sources(query)}
        if any(not c.table or c.table.lower() in inner for c in left.find_all(exp.Column)):
            raise UnsupportedStatementError(
                "Subquery not supported: qualify the columns left of a correlated ANY / ALL "
                "outside a WHERE with their table's name"
            )
        value = query.expressions[0]
        value = value.this if isinstance(value, exp.Alias) else value
        source = query
    else:
        # The subquery as a derived table with one private column: nothing
        # inside it can capture a name of ``x``.
        alias = exp.TableAlias(this=exp.to_identifier(name), columns=[exp.to_identifier("v")])
        source = exp.select(exp.column("v", table=name)).from_(
            exp.Subquery(this=query.copy(), alias=alias)
        )
        value = exp.column("v", table=name)

    def exists(condition: exp.Expr | None) -> exp.Exists:
        select = source.copy()
        select.set("expressions", [exp.Literal.number(1)])
        select.set("order", None)
        if condition is not None:
            select.where(condition, copy=False)
        return exp.Exists(this=select)

    some_true = exists(op(this=left.copy(), expression=value.copy()))
    some_null = exists(exp.Is(this=value.copy(), expression=exp.Null()))
    answer = exp.Case(
        ifs=[
            exp.If(this=some_true, true=exp.true()),
            exp.If(this=exp.Not(this=exists(None)), true=exp.false()),
            exp.If(
                this=exp.or_(exp.Is(this=left.copy(), expression=exp.Null()), some_null),
                true=exp.cast(exp.Null(), "BOOLEAN"),
            ),
        ],
        default=exp.false(),
    )
    if isinstance(quantifier, exp.All):
        return exp.Paren(this=exp.Not(this=exp.Paren(this=answer)))
    return exp.Paren(this=answer)


def _sources(select: exp.Select) -> list[exp.Expr]:
    from_ = select.args.get("from_")
    items = [from_.this] if from_ is not None else []
    return items + [j.this for j in select.args.get("joins") or []]


# ----------------------------------------------- subqueries in a JOIN's ON


def out_of_join_conditions(sql: str) -> tuple[exp.Expr, str] | None:
    """The conjuncts of an inner JOIN's ON that hold a subquery, moved to
    the WHERE (which the rewrite in ``engine/sql/subqueries.py`` handles).
    Exact for an inner join when no later join of the same FROM is RIGHT or
    FULL: the condition names only sources joined so far, and a later LEFT
    JOIN keeps or pads each row of the inner join alike. None when nothing
    moved."""
    if (read := parsed(sql)) is None:
        return None
    tree, dialect = read
    moved = False
    for select in list(tree.find_all(exp.Select)):
        joins = select.args.get("joins") or []
        for i, join in enumerate(joins):
            on = join.args.get("on")
            if on is None or not holds_subquery(on):
                continue
            outer_side = join.args.get("side") or (join.args.get("kind") or "").upper() not in (
                "",
                "INNER",
            )
            later_outer = any(
                (j.args.get("side") or "").upper() in ("RIGHT", "FULL") for j in joins[i + 1 :]
            )
            if outer_side or later_outer:
                continue  # outer_join_on.py rewrote those it could before the first run
            conjuncts = conjuncts_of(on)
            keep = [c for c in conjuncts if not holds_subquery(c)]
            move = [c for c in conjuncts if holds_subquery(c)]
            if keep:
                join.set("on", exp.and_(*[c.copy() for c in keep]))
            else:
                join.set("on", None)
                join.set("kind", "CROSS")
            select.where(exp.and_(*[c.copy() for c in move]), copy=False)
            moved = True
    if not moved:
        return None
    return tree, tree.sql(dialect=dialect)


def holds_subquery(node: exp.Expr) -> bool:
    """Whether ``node`` holds a subquery: EXISTS, a scalar or IN subquery, or
    ``x op ANY / ALL (SELECT ...)``, which holds its query without a
    Subquery node."""
    return any(
        isinstance(q.this, exp.Query) for q in node.find_all(exp.Subquery, exp.Any, exp.All)
    ) or any(True for _ in node.find_all(exp.Exists))
