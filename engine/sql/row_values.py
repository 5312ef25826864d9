"""Row-valued comparisons, spelled with one-column comparisons and EXISTS
before DataFusion 55 sees them.

DataFusion refuses ``(a, b) IN (SELECT x, y ...)`` (a subquery with IN must
return one column), and reads ``(a, b) IN ((1, 2), ...)`` and ``(a, b) =
(1, 2)`` as comparisons of structs, in which a NULL member is a value like
any other: ``(1, NULL) NOT IN ((1, 2))`` came back TRUE. SQL (and
PostgreSQL) compare rows member by member in three-valued logic: two rows
are equal when every member is, unequal when some member is, else the
comparison is NULL. So, with ``l`` the left row and ``v`` a row of the
subquery (or list):

- ``l = v`` is ``l1 = v1 AND l2 = v2 ...`` and ``l <> v`` its negation;
- ``l IN (list)`` is the OR of ``l = v`` over the list;
- ``l IN (S)`` is TRUE when some row of ``S`` equals ``l`` (*match*), NULL
  when none does but some row is not unequal either (*maybe*: every member
  equal or NULL on a side), else FALSE (``S`` empty too). As a positive
  WHERE conjunct only *match* matters: ``EXISTS (... WHERE match)``, a semi
  join; ``NOT IN`` as a WHERE conjunct is ``NOT EXISTS (... WHERE maybe)``;
  anywhere else the CASE of both, which ``engine/sql/subqueries.py``
  decorrelates;
- ``l = (S)`` (at most one row) is the scalar subquery ``(SELECT v1 = l1
  AND ... FROM S)``, NULL when ``S`` is empty; more than one row is an
  error (``subquery_forms.single_row_value`` once decorrelated).

An uncorrelated ``S`` becomes a derived table with private column names
(``(S) AS __kalam_rv1(c0, c1)``), so nothing inside it can capture a column
of ``l``, whatever it holds. A correlated ``S`` (PostgreSQL allows it,
DuckDB 1.x does not) is inlined: its FROM and WHERE with the comparison
added, which needs every column of ``l`` qualified by a table of the outer
query or unknown to the subquery's sources; otherwise, and for correlated
forms whose rows are not its FROM's (GROUP BY, LIMIT, a UNION, ...), the
query is refused by name.

``<``, ``<=``, ``>``, ``>=`` between two rows compare members left to
right, stopping at the first pair that is unequal or holds a NULL (NULL
then): ``l < v`` is ``l1 < v1 OR (l1 = v1 AND (l2 < v2 OR ...
ln < vn))``, exactly that in three-valued logic. DataFusion's struct order
put a NULL member first: ``(1, NULL) < (1, 2)`` was TRUE, PostgreSQL says
NULL. A row ordered against a subquery is left as written.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable

from sqlglot import exp

from engine.errors import QueryError, UnsupportedStatementError
from engine.sql import subqueries
from engine.sql.column_types import SchemaOf, not_null_columns
from engine.sql.relations import ColumnsOf, Relations, from_items
from engine.sql.tokens import FreshNames, depth, peeked, rewritten

_PREFIX = "__kalam_rv"
# A row on the left of IN / = / <>: `) IN (`, `) = (`, `ROW(`.
_HINT = re.compile(
    r"\)\s*(?:NOT\s+)?(?:IN|=|<>|!=|<=?|>=?)\s*\(|\bROW\s*\("
    r"|\bNOT\s+IN\s*\(\s*(?:SELECT|WITH)\b",
    re.IGNORECASE,
)
# Row orderings: the strict comparison of the members before the last.
_ORDERINGS: dict[type[exp.Expr], type[exp.Expr]] = {
    exp.LT: exp.LT,
    exp.LTE: exp.LT,
    exp.GT: exp.GT,
    exp.GTE: exp.GT,
}
_COMPARISONS = (exp.In, exp.EQ, exp.NEQ, exp.LT, exp.LTE, exp.GT, exp.GTE)


def _refuse(what: str) -> UnsupportedStatementError:
    return UnsupportedStatementError(f"Row comparison not supported: {what}")


def row_comparisons(
    sql: str, columns_of: ColumnsOf, schema_of: SchemaOf | None = None
) -> tuple[exp.Expr, str] | None:
    """(tree, text) of ``sql`` with its row comparisons spelled as above;
    None when it has none. Raises ``UnsupportedStatementError`` for a form
    that cannot be spelled exactly. ``schema_of`` tells NOT NULL columns,
    for which the tests of a NULL member are left out."""
    if _HINT.search(sql) is None or (shared := peeked(sql)) is None:
        return None
    # A look at the shared tree first (``f(x) IN (...)`` matches the hint too):
    # a copy and the correlation test cost ~1 ms of a TPC-H query.
    if not any(
        _is_row_comparison(n) or _not_in_conjunct(n) for n in shared.find_all(*_COMPARISONS)
    ):
        return None
    return rewritten(sql, lambda tree: _Rewrite(tree, columns_of, schema_of).run())


def _members(node: exp.Expr | None) -> list[exp.Expr] | None:
    """The members of a row constructor (``(a, b)``, ``ROW(a, b)``)."""
    if isinstance(node, exp.Tuple):
        return list(node.expressions)
    if isinstance(node, exp.Anonymous) and node.name.upper() == "ROW":
        return list(node.expressions)
    return None


def _is_row_comparison(node: exp.Expr) -> bool:
    """A row left of IN / = / <> with rows, a VALUES list or a subquery on
    the right; anything else (a struct column, ...) is left as written."""
    if _members(node.this) is None:
        return False
    if type(node) in _ORDERINGS:
        return _members(node.expression) is not None
    if isinstance(node, exp.In):
        if node.args.get("query") is not None:
            return True
        items = node.expressions
        return bool(items) and (
            any(_members(i) is not None for i in items)
            or (len(items) == 1 and isinstance(items[0], exp.Values))
        )
    return _members(node.expression) is not None or isinstance(node.expression, exp.Subquery)


def _query(node: exp.Expr | None) -> exp.Query | exp.Values | None:
    while isinstance(node, exp.Subquery):
        node = node.this
    return node if isinstance(node, exp.Query | exp.Values) else None


def _all_equal(left: list[exp.Expr], right: list[exp.Expr]) -> exp.Expr:
    return exp.and_(
        *[exp.EQ(this=a.copy(), expression=b.copy()) for a, b in zip(left, right, strict=True)],
        copy=False,
    )


def _maybe_equal(left: list[exp.Expr], right: list[exp.Expr]) -> exp.Expr:
    """Every pair of members equal or holding a NULL: no member unequal."""
    return exp.and_(
        *[
            exp.Paren(
                this=exp.or_(
                    exp.EQ(this=a.copy(), expression=b.copy()),
                    exp.Is(this=a.copy(), expression=exp.Null()),
                    exp.Is(this=b.copy(), expression=exp.Null()),
                    copy=False,
                )
            )
            for a, b in zip(left, right, strict=True)
        ],
        copy=False,
    )


def _ordered(node: exp.Expr, left: list[exp.Expr], right: list[exp.Expr]) -> exp.Expr:
    """``left <op> right`` member by member (the module docstring)."""
    strict = _ORDERINGS[type(node)]
    out: exp.Expr = type(node)(this=left[-1].copy(), expression=right[-1].copy())
    for a, b in zip(reversed(left[:-1]), reversed(right[:-1]), strict=True):
        equal_then = exp.and_(
            exp.EQ(this=a.copy(), expression=b.copy()), exp.Paren(this=out), copy=False
        )
        out = exp.or_(strict(this=a.copy(), expression=b.copy()), equal_then, copy=False)
    return out


def _any_of(terms: list[exp.Expr]) -> exp.Expr:
    """OR of ``terms`` as a balanced tree (a long IN list must not nest
    thousands deep)."""
    if len(terms) == 1:
        return terms[0]
    mid = len(terms) // 2
    return exp.Or(this=_any_of(terms[:mid]), expression=_any_of(terms[mid:]))


class _Rewrite:
    def __init__(
        self, tree: exp.Expr, columns_of: ColumnsOf, schema_of: SchemaOf | None = None
    ) -> None:
        self.tree = tree
        self.relations = Relations(tree, columns_of)
        self.correlated = subqueries.correlation_test(tree, columns_of)
        self.names = FreshNames(tree, _PREFIX)
        self._schema_of = schema_of
        self._not_null: set[int] | None = None

    def not_null(self, node: exp.Expr) -> bool:
        """Whether ``node`` (of the tree as read) is a column that is
        certainly NOT NULL where it is read (``column_types.not_null_columns``)."""
        return (
            self._not_null is not None
            and isinstance(node, exp.Column)
            and id(node) in self._not_null
        )

    def never_null(self, query: exp.Query | exp.Values, width: int) -> list[bool]:
        """Per projection of ``query``: whether it is a NOT NULL column."""
        if not isinstance(query, exp.Select) or len(query.expressions) != width:
            return [False] * width
        return [self.not_null(p.unalias()) for p in query.expressions]

    def run(self) -> bool:
        found = [n for n in self.tree.find_all(*_COMPARISONS) if _is_row_comparison(n)]
        found += [n for n in self.tree.find_all(exp.In) if self._plain_not_in(n)]
        if found and self._schema_of is not None:
            # Before any rewrite: of the tree as read.
            self._not_null = not_null_columns(self.tree, self._schema_of)
        for node in sorted(found, key=depth, reverse=True):
            self.rewrite(node)
        return bool(found)

    def _plain_not_in(self, node: exp.In) -> bool:
        """``x NOT IN (S)`` as a WHERE conjunct, one column, ``S``
        uncorrelated: spelled as a row of one (``membership``), because
        DataFusion 55's null-aware anti join for it took 28.9 s of CPU at
        1M x 1M rows (DuckDB 23 ms)."""
        if not _not_in_conjunct(node):
            return False
        query = _query(node.args["query"])
        return query is not None and not self.correlated(node, query)

    def rewrite(self, node: exp.Expr) -> None:
        left = _members(node.this) or [node.this]
        values = node.expressions if isinstance(node, exp.In) else []
        if len(values) == 1 and isinstance(values[0], exp.Values):
            # `IN (VALUES ...)`: the VALUES list is a subquery's rows.
            node.set("query", exp.Subquery(this=values[0].copy()))
            node.set("expressions", [])
        if isinstance(node, exp.In) and node.args.get("query") is None:
            rows = [_members(item) for item in node.expressions]
            for row in rows:
                if row is None or len(row) != len(left):
                    raise _refuse(f"each value of a row IN list must be a row of {len(left)}")
            node.replace(exp.Paren(this=_any_of([_all_equal(left, r) for r in rows if r])))
            return
        if type(node) in _ORDERINGS:
            right = _members(node.expression)
            assert right is not None
            if len(right) != len(left):
                raise _refuse(f"rows of {len(left)} and {len(right)} values compared")
            node.replace(exp.Paren(this=_ordered(node, left, right)))
            return
        if isinstance(node, exp.EQ | exp.NEQ) and not isinstance(node.expression, exp.Subquery):
            right = _members(node.expression)
            assert right is not None
            if len(right) != len(left):
                raise _refuse(f"rows of {len(left)} and {len(right)} values compared")
            same: exp.Expr = exp.Paren(this=_all_equal(left, right))
            node.replace(same if isinstance(node, exp.EQ) else exp.Not(this=same))
            return
        subquery = node.args.get("query") if isinstance(node, exp.In) else node.expression
        query = _query(subquery)
        if query is None:
            raise _refuse("a row compared with a subquery that is not a query")
        for member in left:
            if any(member.find_all(exp.AggFunc, exp.Window, exp.Subquery, exp.Exists)):
                raise _refuse("an aggregate, window or subquery in the row left of a subquery")
        # Read before ``source`` copies the query: ids of the tree as read.
        never = [
            (self.not_null(m), r)
            for m, r in zip(left, self.never_null(query, len(left)), strict=True)
        ]
        source, right = self.source(node, query, len(left))
        if isinstance(node, exp.In):
            self.membership(node, source, left, right, never)
            return
        value = source.copy()
        value.set("expressions", [_all_equal(left, right)])
        same = exp.Subquery(this=value)
        node.replace(same if isinstance(node, exp.EQ) else exp.Not(this=same))

    def source(
        self, node: exp.Expr, query: exp.Query | exp.Values, width: int
    ) -> tuple[exp.Select, list[exp.Expr]]:
        """A SELECT whose FROM and WHERE give the subquery's rows, and the
        expressions of their members there."""
        produced = self.relations.output(query) if isinstance(query, exp.Query) else None
        if isinstance(query, exp.Values) and query.expressions:
            first = _members(query.expressions[0])
            produced = [""] * len(first) if first is not None else None
        if produced is not None and len(produced) != width:
            raise QueryError(
                f"A row of {width} values is compared with a subquery returning "
                f"{len(produced)} column{'s' if len(produced) != 1 else ''}; they must match"
            )
        name = self.names.next()
        if not self.correlated(node, query):
            names = [f"c{i}" for i in range(width)]
            alias = exp.TableAlias(
                this=exp.to_identifier(name), columns=[exp.to_identifier(n) for n in names]
            )
            body = query.copy()
            _unique_names(body)
            select = exp.select(exp.Literal.number(1)).from_(exp.Subquery(this=body, alias=alias))
            return select, [exp.column(n, table=name) for n in names]
        if not isinstance(query, exp.Select) or any(
            query.args.get(a) is not None
            for a in ("group", "having", "limit", "offset", "windows", "qualify")
        ):
            raise _refuse("a correlated subquery with GROUP BY, HAVING, LIMIT or a set operation")
        if any(p.find(exp.AggFunc) for p in query.expressions):
            raise _refuse("a correlated subquery over aggregates")
        values = [p.this if isinstance(p, exp.Alias) else p for p in query.expressions]
        if any(isinstance(v, exp.Star) or v.find(exp.Star) for v in values):
            raise _refuse("a correlated subquery projecting *; name its columns")
        if len(values) != width:
            raise _refuse(f"a row of {width} values compared with a subquery of {len(values)}")
        self.check_capture(node, query)
        select = query.copy()
        select.set("distinct", None)  # the same rows exist either way
        select.set("order", None)
        select.set("expressions", [exp.Literal.number(1)])
        return select, [v.copy() for v in values]

    def check_capture(self, node: exp.Expr, query: exp.Select) -> None:
        """Qualify the left row's columns with their outer source's name
        where that is the only one holding them; refuse when one could still
        be read as a column of the correlated subquery's own sources once
        inlined into it."""
        inner: dict[str, list[str] | None] = {
            item.alias_or_name.lower(): self.relations.source(item) for item in from_items(query)
        }
        outer = node.find_ancestor(exp.Select)
        around: dict[str, list[str] | None] = (
            {item.alias_or_name.lower(): self.relations.source(item) for item in from_items(outer)}
            if outer is not None
            else {}
        )
        for column in list(node.this.find_all(exp.Column)):
            table = column.table.lower() if column.table else None
            if table is None and all(cols is not None for cols in around.values()):
                holders = [s for s, cols in around.items() if cols and column.name.lower() in cols]
                if len(holders) == 1:
                    table = holders[0]
                    column.set("table", exp.to_identifier(table))
            if table is not None:
                if table in inner:
                    raise _refuse(
                        f"the row left of a correlated subquery names {table}, "
                        "which the subquery's FROM names too"
                    )
                continue
            if any(cols is None or column.name.lower() in cols for cols in inner.values()):
                raise _refuse(
                    f"qualify the column {column.name} left of a correlated subquery "
                    "with its table's name"
                )

    def membership(
        self,
        node: exp.In,
        source: exp.Select,
        left: list[exp.Expr],
        right: list[exp.Expr],
        never: list[tuple[bool, bool]],
    ) -> None:
        """``never``: per member, whether it is never NULL on the left and in
        the subquery's rows."""

        def exists(condition: exp.Expr) -> exp.Exists:
            return exp.Exists(this=source.copy().where(condition, copy=False))

        def keyed(equal: list[int], nulls: list[int]) -> exp.Exists:
            """EXISTS a row equal to ``left`` in members ``equal``, NULL in
            ``nulls``. Over an uncorrelated subquery the rows are first cut
            to the distinct values of ``equal``: DataFusion's mark join (an
            EXISTS under NOT (... AND ...)) walked every duplicate of a key,
            17 s at 1M x 1M rows with 1,000 values, 18 ms over distinct ones;
            its semi join took 592 ms, 74 ms over distinct keys."""
            tests = [null_of(right[i]) for i in nulls]
            item = source.args["from_"].this
            # Only the uncorrelated form, (S) AS __kalam_rvN(c0, ..), has
            # rows to cut apart from the query around it.
            uncorrelated = source.args.get("where") is None and item.alias_or_name.startswith(
                _PREFIX
            )
            if not equal or not uncorrelated:
                eqs = [exp.EQ(this=left[i].copy(), expression=right[i].copy()) for i in equal]
                parts = eqs + tests
                return exists(exp.and_(*parts, copy=False) if parts else exp.true())
            name = item.alias_or_name
            rows = exp.select(*[right[i].copy() for i in equal]).distinct().from_(item.copy())
            if tests:
                rows.where(exp.and_(*tests, copy=False), copy=False)
            cut = exp.select(exp.Literal.number(1)).from_(
                exp.Subquery(this=rows, alias=exp.TableAlias(this=exp.to_identifier(name)))
            )
            cut.where(
                exp.and_(
                    *[exp.EQ(this=left[i].copy(), expression=right[i].copy()) for i in equal],
                    copy=False,
                ),
                copy=False,
            )
            return exp.Exists(this=cut)

        holder: exp.Expr = node
        while isinstance(holder.parent, exp.Paren):
            holder = holder.parent
        negated = isinstance(holder.parent, exp.Not)
        target: exp.Expr = holder.parent if negated and holder.parent is not None else node
        maybe = _maybe_terms(left, keyed, never) or [exists(_maybe_equal(left, right))]
        if _where_conjunct(target):
            if negated:
                # NOT (l IN S) is TRUE exactly when no row may equal l.
                target.replace(
                    exp.Paren(this=exp.and_(*[exp.Not(this=m) for m in maybe], copy=False))
                )
            else:
                node.replace(keyed(list(range(len(left))), []))
            return
        node.replace(
            exp.Paren(
                this=exp.Case(
                    ifs=[
                        exp.If(this=keyed(list(range(len(left))), []), true=exp.true()),
                        exp.If(
                            this=exp.or_(*maybe, copy=False),
                            true=exp.cast(exp.Null(), "BOOLEAN"),
                        ),
                    ],
                    default=exp.false(),
                )
            )
        )


# Up to this many members the "maybe equal" test is split into 3^k terms
# (below); past it, one keyless test (a nested loop).
_SPLIT_MEMBERS = 3


def _maybe_terms(
    left: list[exp.Expr],
    keyed: Callable[[list[int], list[int]], exp.Expr],
    never: list[tuple[bool, bool]],
) -> list[exp.Expr]:
    """Tests whose OR is "some row is not unequal to ``left``".

    ``_maybe_equal`` as one EXISTS has no equality DataFusion can join on: a
    nested loop (19 s for NOT IN at 100k x 10k rows). A row may equal
    ``left`` exactly when each member is equal on both sides (the set M),
    NULL on the row's side (Q) or NULL on the left (the rest). So the test
    is the OR over the partitions (M, Q, rest) of ``(left NULL in the rest)
    AND keyed(M, Q)``: each EXISTS a join keyed on M's equalities with the
    row's NULL tests filtering its rows first, or, for an empty M, a
    constant (``constant_exists.py``).

    A partition that takes a NULL where a member is never NULL (``never``:
    a NOT NULL column, on the left and in the subquery's rows) is FALSE and
    left out: ``x NOT IN (SELECT id ...)`` with both NOT NULL is the one
    keyed anti join."""
    k = len(left)
    if k > _SPLIT_MEMBERS:
        return []
    terms: list[exp.Expr] = []
    # 0: equal, 1: NULL in the row, 2: NULL on the left; keyed terms first.
    for parts in sorted(itertools.product(range(3), repeat=k), key=lambda p: p.count(0) == 0):
        if any(
            (part == 1 and never[i][1]) or (part == 2 and never[i][0])
            for i, part in enumerate(parts)
        ):
            continue
        equal = [i for i, part in enumerate(parts) if part == 0]
        nulls = [i for i, part in enumerate(parts) if part == 1]
        outside = [null_of(left[i]) for i, part in enumerate(parts) if part == 2]
        found = keyed(equal, nulls)
        terms.append(exp.Paren(this=exp.and_(*outside, found, copy=False)) if outside else found)
    return terms


def null_of(e: exp.Expr) -> exp.Expr:
    return exp.Is(this=e.copy(), expression=exp.Null())


def _unique_names(query: exp.Expr) -> None:
    """Private names for the projections of each SELECT of a set operation
    whose names repeat (``SELECT x, x``, ``SELECT 2, 2``), which DataFusion
    refuses in a derived table: only their values count here."""
    if isinstance(query, exp.SetOperation):
        _unique_names(query.this)
        _unique_names(query.expression)
        return
    if isinstance(query, exp.Subquery):
        _unique_names(query.this)
        return
    if not isinstance(query, exp.Select):
        return
    names = [p.alias_or_name.lower() for p in query.expressions]
    if len(set(names)) == len(names) or any(_has_star(p) for p in query.expressions):
        return
    query.set(
        "expressions",
        [
            exp.alias_(p.this if isinstance(p, exp.Alias) else p, f"c{i}")
            for i, p in enumerate(query.expressions)
        ],
    )


def _has_star(node: exp.Expr) -> bool:
    return isinstance(node, exp.Star) or (
        isinstance(node, exp.Column) and isinstance(node.this, exp.Star)
    )


def _not_in_conjunct(node: exp.Expr) -> bool:
    """``x NOT IN (SELECT <one column> ...)``, ``x`` no row, as a WHERE conjunct."""
    if not isinstance(node, exp.In) or _members(node.this) is not None:
        return False
    if node.args.get("query") is None:
        return False
    holder: exp.Expr = node
    while isinstance(holder.parent, exp.Paren):
        holder = holder.parent
    if not isinstance(holder.parent, exp.Not) or not _where_conjunct(holder.parent):
        return False
    if any(node.this.find_all(exp.AggFunc, exp.Window, exp.Subquery, exp.Exists)):
        return False
    query = _query(node.args.get("query"))
    if not isinstance(query, exp.Select) or len(query.expressions) != 1:
        return False
    return not _has_star(query.expressions[0])


def _where_conjunct(node: exp.Expr | None) -> bool:
    """``node`` is a conjunct of its SELECT's (or DML's) WHERE."""
    parent = node.parent if node is not None else None
    while isinstance(parent, exp.And | exp.Paren):
        parent = parent.parent
    return isinstance(parent, exp.Where)
