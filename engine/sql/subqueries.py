"""Decorrelating the subqueries DataFusion 55 cannot plan.

DataFusion plans uncorrelated subqueries, EXISTS / IN that are conjuncts of
a WHERE, and scalar subqueries correlated by equality. It refuses a scalar
subquery correlated by anything else (``x.b < t1.b``) and EXISTS / IN
anywhere but a WHERE conjunct. ``engine/sql/retry.py`` calls ``decorrelate``
only after DataFusion refused a query as written.

Each such subquery ``S`` of a SELECT ``O`` becomes a derived table ``D`` with
exactly one row per value of the outer columns ``S`` names (its *keys*):

    D = SELECT dom.k1.., <value> FROM (SELECT DISTINCT c1 AS k1.. FROM <O's FROM>) dom
        LEFT JOIN (<S's FROM, its first item carrying a marker column>) ON <S's WHERE>
        GROUP BY dom.k1..

and ``O`` gets ``CROSS JOIN D AS sq`` with ``sq.ki IS NOT DISTINCT FROM ci``
in its WHERE. The domain comes from ``O``'s whole FROM (joins included), so
every row of ``O`` matches exactly one row of ``D`` and no row is lost or
repeated. The LEFT JOIN keeps keys with no matching inner row, and every
aggregate sees only matched rows (its argument is NULL unless the marker is
set), so ``count`` over zero rows is 0 and the others are NULL, as SQL says.
The values are:

- scalar: the subquery's aggregate projection; a projection that is not an
  aggregate is the max of its one value and the number of rows carrying it,
  more than one an error where the value is used
  (``engine/sql/subquery_forms.py``);
- EXISTS: ``count(marker) > 0``;
- ``e IN (SELECT y ...)``: the counts of rows with ``y = e``, with ``y IS
  NULL`` and of all rows, turned into SQL's three-valued IN (``NOT IN`` with
  a NULL among the values is NULL, never TRUE).

Subqueries are rewritten innermost first, so a subquery correlated two
levels up becomes an equality-correlated reference its parent handles in
turn. A form the rewrite cannot express exactly (GROUP BY, HAVING or LIMIT inside
a correlated scalar subquery, a subquery ``outer_join_on.py`` left in an outer
JOIN's ON, ...) is refused with an error naming it, never approximated.
The rewritten tree is rendered back to SQL: this is the one place a query
reaches DataFusion re-rendered, and only a query it refused as written.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sqlglot import exp

from engine.errors import UnsupportedStatementError
from engine.sql import subquery_forms
from engine.sql.relations import Relations
from engine.sql.right_joins import star_columns
from engine.sql.tokens import depth, parsed, peeked

ColumnsOf = Callable[[str | None, str], list[str] | None]
_MARK = "__kalam_m"
_PREFIX = "__kalam_sq"


def _refuse(what: str) -> UnsupportedStatementError:
    return UnsupportedStatementError(f"Subquery not supported: {what}")


@dataclass
class _Scope:
    select: exp.Select
    # source name (lower case) -> its columns (lower case), None when unknown
    sources: dict[str, list[str] | None] = field(default_factory=dict)


def decorrelate(
    sql: str, columns_of: ColumnsOf, *, not_in_only: bool = False
) -> tuple[exp.Expr, str] | None:
    """The query with its unplannable subqueries decorrelated, as (tree, SQL);
    None when it has none to rewrite. Raises ``UnsupportedStatementError``
    naming a construct that cannot be rewritten exactly."""
    # Looked at on the shared tree first: most queries need nothing, and
    # their own copy of the tree would cost more than the look.
    shared = peeked(sql)
    if not isinstance(shared, exp.Query):
        return None
    if not _Rewriter(shared, columns_of, not_in_only=not_in_only).candidates():
        return None
    if (read := parsed(sql)) is None:
        return None
    tree, dialect = read
    rewriter = _Rewriter(tree, columns_of, not_in_only=not_in_only)
    if not rewriter.run():
        return None
    return tree, tree.sql(dialect=dialect)


def correlation_test(tree: exp.Expr, columns_of: ColumnsOf) -> Callable[[exp.Expr, exp.Expr], bool]:
    """``test(node, query)``: whether subquery ``query`` (of ``node``, in
    ``tree``) refers to a column of an enclosing query."""
    rewriter = _Rewriter(tree, columns_of, not_in_only=False)
    return lambda node, query: bool(rewriter.outer_columns(node, query, subquery_only=True))


def _query_of(node: exp.Expr) -> exp.Expr | None:
    if isinstance(node, exp.Exists):
        query = node.this
    elif isinstance(node, exp.In):
        query = node.args.get("query")
    else:
        query = node.this
    while isinstance(query, exp.Subquery):
        query = query.this
    return query


class _Rewriter:
    def __init__(self, tree: exp.Expr, columns_of: ColumnsOf, *, not_in_only: bool) -> None:
        self.tree = tree
        self.not_in_only = not_in_only
        self._columns_of = columns_of
        self._known: dict[tuple[str | None, str], list[str] | None] = {}
        # Names this rewrite makes never meet those of an earlier one over
        # the same text (the first pass's ``__kalam_sq1`` next to a second's).
        taken = [
            int(m)
            for ident in tree.find_all(exp.Identifier)
            if (m := ident.name[len(_PREFIX) :].split("_")[0].lstrip("w")).isdigit()
            and ident.name.startswith(_PREFIX)
        ]
        self.count = max(taken, default=0)
        self.ctes: dict[str, list[str] | None] = {}
        for cte in tree.find_all(exp.CTE):
            query = cte.this
            names = _output_names(query) if isinstance(query, exp.Query) else None
            self.ctes[cte.alias_or_name.lower()] = names

    # ------------------------------------------------------------- scopes

    def columns_of(self, db: str | None, name: str) -> list[str] | None:
        key = (db.lower() if db else None, name.lower())
        if key not in self._known:
            self._known[key] = self._columns_of(*key)
        return self._known[key]

    def scope(self, select: exp.Select) -> _Scope:
        scope = _Scope(select)
        for item in _flat_items(_from_items(select)):
            name = item.alias_or_name.lower()
            if isinstance(item, exp.Table) and isinstance(item.this, exp.Identifier):
                if not item.args.get("db") and item.name.lower() in self.ctes:
                    cols = self.ctes[item.name.lower()]
                else:
                    db = item.args.get("db")
                    found = self.columns_of(db.name if db else None, item.name)
                    cols = [c.lower() for c in found] if found is not None else None
            elif isinstance(item, exp.Subquery) and isinstance(item.this, exp.Query):
                cols = _output_names(item.this)
            else:
                cols = None
            alias = item.args.get("alias")
            if isinstance(alias, exp.TableAlias) and alias.columns:
                cols = [c.name.lower() for c in alias.columns]
            scope.sources[name] = cols
        return scope

    def owner(self, column: exp.Column) -> tuple[exp.Select, str | None] | None:
        """The SELECT whose FROM provides ``column`` and the source's name."""
        qualifier = column.table.lower() if column.table else None
        name = column.name.lower()
        select = column.find_ancestor(exp.Select)
        while isinstance(select, exp.Select):
            scope = self.scope(select)
            if qualifier is not None:
                if qualifier in scope.sources:
                    return select, qualifier
            else:
                hits = [s for s, cols in scope.sources.items() if cols is not None and name in cols]
                if hits:
                    return select, hits[0]
                if any(cols is None for cols in scope.sources.values()):
                    return select, None  # may come from a source of unknown shape
            select = select.find_ancestor(exp.Select)
        return None

    # ------------------------------------------------------------- driver

    def candidates(self) -> list[exp.Expr]:
        out: list[exp.Expr] = []
        for node in self.tree.find_all(exp.Subquery, exp.Exists, exp.In):
            query = _query_of(node)
            if not isinstance(query, exp.Query):
                continue
            if isinstance(node, exp.Subquery) and not _in_expression(node):
                continue  # a derived table or a set operation's branch
            if isinstance(node, exp.Subquery) and isinstance(node.parent, exp.Exists | exp.In):
                continue
            outer = node.find_ancestor(exp.Select)
            if outer is None:
                continue
            if self.not_in_only:
                # DataFusion answers IN (subquery) right only as a positive
                # WHERE conjunct, and an uncorrelated NOT IN as a WHERE
                # conjunct (a null-aware anti-join). Anywhere else (under OR,
                # IS NULL, in a projection) it loses SQL's NULL: `x NOT IN
                # (1, NULL)` came back TRUE.
                if (
                    isinstance(node, exp.In)
                    and not _positive_conjunct(node, outer)
                    and (
                        self.outer_columns(node, query, subquery_only=True)
                        or not _where_conjunct(node, outer)
                    )
                ):
                    out.append(node)
                elif _grouped_scalar(node, query) and self.outer_columns(node, query):
                    out.append(node)  # refused by name below, never answered wrongly
                continue
            if self.outer_columns(node, query) or (
                isinstance(node, exp.Exists | exp.In) and not _where_conjunct(node, outer)
            ):
                out.append(node)
        return out

    def run(self) -> bool:
        changed = False
        for _ in range(256):
            found = self.candidates()
            if not found:
                return changed
            node = max(found, key=depth)
            self.rewrite(node)
            changed = True
        raise _refuse("too many nested subqueries")

    def outer_columns(
        self, node: exp.Expr, query: exp.Expr, *, subquery_only: bool = False
    ) -> list[exp.Column]:
        inside = {id(s) for s in query.find_all(exp.Select)}
        out = []
        for column in query.find_all(exp.Column):
            if isinstance(column.this, exp.Star):
                continue
            found = self.owner(column)
            if found is not None and id(found[0]) not in inside:
                out.append(column)
        if isinstance(node, exp.In) and not subquery_only:
            out += list(node.this.find_all(exp.Column))
        return out

    # ------------------------------------------------------------- rewrite

    def rewrite(self, node: exp.Expr) -> None:
        query = _query_of(node)
        outer = node.find_ancestor(exp.Select)
        assert outer is not None
        if isinstance(node, exp.In) and _one_row(query):
            # An aggregate without GROUP BY (or HAVING) is exactly one row v,
            # and `x IN (v)` is `x = v` (NULL when either is): a scalar
            # subquery, which the next round rewrites if it is correlated.
            node.replace(exp.EQ(this=node.this.copy(), expression=exp.Subquery(this=query)))
            return
        if (
            isinstance(node, exp.In)
            and isinstance(query, exp.Select)
            and query.args.get("group") is not None
            and query.args.get("having") is None
            and not subquery_forms.aggregates_in_projection(query)
            and _only_grouped(query)
        ):
            # Without aggregates a grouped projection takes the same values
            # as over the rows ungrouped; IN asks only which values (and
            # whether a NULL) occur, never how often.
            query.set("group", None)
        if (
            isinstance(node, exp.In | exp.Exists)
            and query is not None
            and not self.outer_columns(node, query, subquery_only=True)
        ):
            query = self.wrap(node, query)
        if not isinstance(query, exp.Select):
            raise _refuse("a correlated subquery that is a set operation (UNION, ...)")
        for arg in ("limit", "offset", "having", "windows", "qualify"):
            if query.args.get(arg) is not None:
                raise _refuse(f"{arg.upper()} inside a correlated subquery")
        if node.find_ancestor(exp.Join) is not None and _under_join_condition(node):
            raise _refuse("a correlated subquery in a JOIN's ON condition")
        text = node.sql()  # the projection's name, before any rewriting
        columns = self.outer_columns(node, query)
        keys: list[tuple[exp.Select, exp.Column]] = []
        index: dict[tuple[int, str | None, str], int] = {}
        refs: list[tuple[exp.Column, int]] = []
        for column in columns:
            found = self.owner(column)
            owner = found[0] if found is not None else outer
            ident = (id(owner), found[1] if found else column.table.lower() or None, column.name)
            if ident not in index:
                index[ident] = len(keys)
                keys.append((owner, column))
            refs.append((column, index[ident]))
        self.count += 1
        name = f"{_PREFIX}{self.count}"
        domain, key_names = self.domain(keys, name)
        left = None
        if isinstance(node, exp.In):
            # The left side is compared inside D, over the domain's keys.
            left = node.this.copy()
            originals = list(node.this.find_all(exp.Column))
            for copy_col, orig in zip(list(left.find_all(exp.Column)), originals, strict=True):
                i = next(i for c, i in refs if c is orig)
                replaced = exp.column(key_names[i], table=f"{name}_dom")
                if copy_col is left:
                    left = replaced
                else:
                    copy_col.replace(replaced)
        conditions = [
            _null_safe_eq(exp.column(key_names[i], table=name), keys[i][1])
            for i in range(len(keys))
        ]
        # The inner query loses its outer references: each becomes the domain's
        # key (before its values are taken: a projection may name one too).
        in_query = {id(c) for c in query.find_all(exp.Column)}
        for column, i in refs:
            if id(column) in in_query:
                column.replace(exp.column(key_names[i], table=f"{name}_dom"))
        value_exprs, replacement = self.values(node, query, name, left, conditions)
        derived = self.derived(query, domain, key_names, value_exprs, name)
        self.attach(outer, node, derived, name, conditions, replacement, keys, text)

    def wrap(self, node: exp.In | exp.Exists, query: exp.Expr | None) -> exp.Select:
        """An uncorrelated IN / EXISTS subquery as ``SELECT w.v FROM (<it>)
        AS w(v)``: the same rows, whatever it holds (aggregates, GROUP BY,
        LIMIT, a UNION), as a plain column of one FROM item, which the
        rewrite below handles (it cannot nest an aggregate projection in its
        counts). Exact only because nothing inside refers to the outside."""
        if not isinstance(query, exp.Query):
            raise _refuse("a subquery that is not a query")
        self.count += 1
        w = f"{_PREFIX}w{self.count}"
        alias = exp.TableAlias(this=exp.to_identifier(w))
        if isinstance(node, exp.In):
            alias.set("columns", [exp.to_identifier("v")])
            value: exp.Expr = exp.column("v", table=w)
        else:
            value = exp.alias_(exp.Literal.number(1), "v")
        wrapped = exp.Select(expressions=[value])
        wrapped.set("from_", exp.From(this=exp.Subquery(this=query.copy(), alias=alias)))
        if isinstance(node, exp.In):
            node.set("query", exp.Subquery(this=wrapped))
        else:
            node.set("this", wrapped)
        return wrapped

    def domain(
        self, keys: list[tuple[exp.Select, exp.Column]], name: str
    ) -> tuple[exp.Expr, list[str]]:
        key_names = [f"{name}_k{i}" for i in range(len(keys))]
        if not keys:
            one = exp.select(exp.alias_(exp.Literal.number(1), f"{name}_one"))
            return exp.Subquery(
                this=one, alias=exp.TableAlias(this=exp.to_identifier(f"{name}_dom"))
            ), key_names
        by_owner: dict[int, list[int]] = {}
        owners: dict[int, exp.Select] = {}
        for i, (owner, _) in enumerate(keys):
            by_owner.setdefault(id(owner), []).append(i)
            owners[id(owner)] = owner
        parts: list[exp.Expr] = []
        for j, (oid, idx) in enumerate(by_owner.items()):
            owner = owners[oid]
            select = exp.Select(
                expressions=[exp.alias_(keys[i][1].copy(), key_names[i]) for i in idx]
            ).distinct()
            from_ = owner.args.get("from_")
            if from_ is None:
                raise _refuse("an outer reference to a SELECT without FROM")
            select.set("from_", from_.copy())
            joins = [
                jn.copy()
                for jn in owner.args.get("joins") or []
                if not jn.alias_or_name.startswith(_PREFIX)
            ]
            if joins:
                select.set("joins", joins)
            parts.append(
                exp.Subquery(
                    this=select, alias=exp.TableAlias(this=exp.to_identifier(f"{name}_p{j}"))
                )
            )
        body = exp.Select(
            expressions=[
                exp.column(key_names[i], table=f"{name}_p{j}")
                for j, idx in enumerate(by_owner.values())
                for i in idx
            ]
        )
        body.set("from_", exp.From(this=parts[0]))
        if len(parts) > 1:
            body.set("joins", [exp.Join(this=p, kind="CROSS") for p in parts[1:]])
        return (
            exp.Subquery(this=body, alias=exp.TableAlias(this=exp.to_identifier(f"{name}_dom"))),
            key_names,
        )

    def values(
        self,
        node: exp.Expr,
        query: exp.Select,
        name: str,
        left_in_d: exp.Expr | None,
        conditions: list[exp.Expr],
    ) -> tuple[list[exp.Expr], exp.Expr]:
        mark = _mark(query)
        count_all = exp.Count(this=mark.copy())
        if isinstance(node, exp.Exists):
            if query.args.get("group"):
                raise _refuse("EXISTS over a correlated subquery with GROUP BY")
            value = exp.GT(this=count_all, expression=exp.Literal.number(0))
            return [exp.alias_(value, f"{name}_v")], exp.column(f"{name}_v", table=name)
        self.expand_star(query)
        if len(query.expressions) != 1 or isinstance(query.expressions[0], exp.Star):
            raise _refuse("a subquery used as a value must return exactly one column")
        projection = query.expressions[0]
        projection = projection.this if isinstance(projection, exp.Alias) else projection
        if isinstance(node, exp.In):
            if query.args.get("group") or _has_aggregate(projection):
                raise _refuse("IN over a correlated subquery with GROUP BY or aggregates")
            left = node.this.copy()
            # The left side is evaluated inside D over the domain's keys; its
            # columns are outer references replaced by the caller.
            assert left_in_d is not None
            match = exp.Count(
                this=exp.If(
                    this=exp.EQ(this=projection.copy(), expression=left_in_d), true=mark.copy()
                )
            )
            nulls = exp.Count(
                this=exp.If(
                    this=exp.Is(this=projection.copy(), expression=exp.Null()), true=mark.copy()
                )
            )
            values = [
                exp.alias_(_case(match), f"{name}_n_match"),
                exp.alias_(_case(nulls), f"{name}_n_null"),
                exp.alias_(count_all, f"{name}_n_all"),
            ]
            sq = lambda c: exp.column(f"{name}_{c}", table=name)  # noqa: E731
            replacement = exp.Case(
                ifs=[
                    exp.If(
                        this=exp.GT(this=sq("n_match"), expression=exp.Literal.number(0)),
                        true=exp.true(),
                    ),
                    exp.If(
                        this=exp.EQ(this=sq("n_all"), expression=exp.Literal.number(0)),
                        true=exp.false(),
                    ),
                    exp.If(
                        this=exp.or_(
                            exp.Is(this=left, expression=exp.Null()),
                            exp.GT(this=sq("n_null"), expression=exp.Literal.number(0)),
                        ),
                        true=exp.cast(exp.Null(), "BOOLEAN"),
                    ),
                ],
                default=exp.false(),
            )
            return values, exp.Paren(this=replacement)
        if query.args.get("group"):
            raise _refuse("a correlated scalar subquery with GROUP BY")
        if not _has_aggregate(projection):
            # One row or none per outer row, else an error where it is used.
            return subquery_forms.single_row_value(
                projection,
                _only_matched(projection, mark),
                mark,
                name,
                distinct=query.args.get("distinct") is not None,
                joined=[c.copy() for c in conditions],
            )
        value = projection.copy()
        for agg in list(value.find_all(exp.AggFunc)):
            if isinstance(agg, exp.Count) and isinstance(agg.this, exp.Star):
                agg.set("this", mark.copy())
            elif agg.this is not None:
                target = agg.this
                inner = target.this if isinstance(target, exp.Distinct) else None
                if isinstance(target, exp.Distinct):
                    target.set(
                        "expressions",
                        [_only_matched(e, mark) for e in target.expressions],
                    )
                elif inner is None:
                    agg.set("this", _only_matched(target, mark))
        return [exp.alias_(value, f"{name}_v")], exp.column(f"{name}_v", table=name)

    def expand_star(self, query: exp.Select) -> None:
        """``SELECT *`` / ``t.*`` of a value subquery as its named columns,
        when every source's columns are known."""
        if not any(_is_star(p) for p in query.expressions):
            return
        scope = self.scope(query)
        out: list[exp.Expr] = []
        for p in query.expressions:
            if not _is_star(p):
                out.append(p)
                continue
            wanted = list(scope.sources.items())
            if isinstance(p, exp.Column):
                wanted = [(n, c) for n, c in wanted if n == p.table.lower()]
            for source, cols in wanted:
                if cols is None:
                    return  # unknown shape: leave the star (and refuse it)
                out += [exp.column(c, table=source) for c in cols]
        query.set("expressions", out)

    def derived(
        self,
        query: exp.Select,
        domain: exp.Expr,
        key_names: list[str],
        values: list[exp.Expr],
        name: str,
    ) -> exp.Expr:
        dom = f"{name}_dom"
        select = exp.Select(expressions=[exp.column(k, table=dom) for k in key_names] + values)
        select.set("from_", exp.From(this=domain))
        items = _from_items(query)
        if not items:
            raise _refuse("a correlated subquery without FROM")
        names = set(_marked_names(query))
        marked = _with_mark(items[0])
        joins = [j.copy() for j in query.args.get("joins") or []]
        for join in joins:
            if not (join.args.get("kind") or join.args.get("side") or join.args.get("on")):
                join.set("kind", "CROSS")  # `a, b` inside parentheses must be a CROSS JOIN
            if _mark_name(join.this) in names:
                join.set("this", _with_mark(join.this))
        if joins:
            marked.set("joins", joins)
            right: exp.Expr = exp.Subquery(this=marked)
        else:
            right = marked
        where = query.args.get("where")
        on = where.this.copy() if where is not None else exp.true()
        select.set("joins", [exp.Join(this=right, side="LEFT", on=on)])
        if key_names:
            select.set(
                "group", exp.Group(expressions=[exp.column(k, table=dom) for k in key_names])
            )
        return exp.Subquery(this=select, alias=exp.TableAlias(this=exp.to_identifier(name)))

    def attach(
        self,
        outer: exp.Select,
        node: exp.Expr,
        derived: exp.Expr,
        name: str,
        conditions: list[exp.Expr],
        replacement: exp.Expr,
        keys: list[tuple[exp.Select, exp.Column]],
        text: str,
    ) -> None:
        # Under WHERE or inside an aggregate's argument the value is needed
        # per row of the FROM, which the join with D gives as it is.
        in_where = (
            outer.args.get("where") is not None and _is_under(node, outer.args["where"])
        ) or _under_aggregate(node, outer)
        grouped = outer.args.get("group") is not None
        # A projection GROUP BY names (`GROUP BY 1`): grouped by its value,
        # which the join with D gives per row; its keys need no grouping.
        group_key = _is_group_key(node, outer)
        if (
            not in_where
            and not group_key
            and (grouped or subquery_forms.aggregates_in_projection(outer))
        ):
            if not grouped:
                raise _refuse("a subquery next to aggregates without GROUP BY")
            groups = {g.sql().lower() for g in outer.args["group"].expressions}
            groups |= {
                g.name.lower() for g in outer.args["group"].expressions if isinstance(g, exp.Column)
            }
            for owner, column in keys:
                if (
                    owner is outer
                    and column.sql().lower() not in groups
                    and column.name.lower() not in groups
                ):
                    raise _refuse("a correlated subquery over a column that is not grouped")
        top_projection = node.parent is outer and node in outer.expressions
        if any(isinstance(p, exp.Star) for p in outer.expressions):
            # D's columns must not show in a `*`: spelled out first, one
            # qualified star per FROM item (over a USING join, from the catalog).
            spelled = star_columns(outer, Relations(self.tree, self._columns_of))
            if spelled is None:
                raise _refuse("a * over a source whose columns are unknown")
            outer.set("expressions", spelled)
        node.replace(replacement)
        if top_projection and outer.parent is None:
            replacement.replace(exp.alias_(replacement.copy(), text[:60], quoted=True))
        if outer.args.get("from_") is None:
            outer.set("from_", exp.From(this=derived))
        else:
            outer.append("joins", exp.Join(this=derived, kind="CROSS"))
        if conditions:
            outer.where(exp.and_(*conditions), copy=False)
        if not in_where and not group_key and grouped:
            # (a group key is grouped as a whole: its key columns must not be)
            for col in replacement.find_all(exp.Column):
                if col.table == name:
                    outer.args["group"].append("expressions", col.copy())


# ------------------------------------------------------------------ helpers


def _from_items(select: exp.Select) -> list[exp.Expr]:
    from_ = select.args.get("from_")
    items = [from_.this] if from_ is not None else []
    return items + [j.this for j in select.args.get("joins") or []]


def _is_star(node: exp.Expr) -> bool:
    return isinstance(node, exp.Star) or (
        isinstance(node, exp.Column) and isinstance(node.this, exp.Star)
    )


def _marked_names(query: exp.Select) -> list[str]:
    """The FROM items carrying the marker: the first, which every row of
    its FROM holds; after a RIGHT or FULL join, which pads it, every item
    (a row holds at least one; a parenthesised join by its first item)."""
    items = _from_items(query)
    joins = query.args.get("joins") or []
    if any((j.args.get("side") or "").upper() in ("RIGHT", "FULL") for j in joins):
        names = [_mark_name(item) for item in items]
        if not all(names):
            raise _refuse("a correlated subquery over a RIGHT or FULL join of this source")
        return names
    return [items[0].alias_or_name] if items else [""]


def _flat_items(items: list[exp.Expr]) -> list[exp.Expr]:
    """``items`` with each parenthesised join replaced by the items it joins
    (each without its joins), whose names stay visible outside it."""
    out: list[exp.Expr] = []
    for item in items:
        inner = _parenthesised(item)
        if inner is None:
            out.append(item)
            continue
        head = inner.copy()
        head.set("joins", None)
        out += _flat_items([head, *[j.this for j in inner.args["joins"]]])
    return out


def _parenthesised(item: exp.Expr) -> exp.Expr | None:
    """The node holding a parenthesised join's first item and joins."""
    inner = item.this if isinstance(item, exp.Subquery) and not item.alias else item
    return inner if isinstance(inner, exp.Expr) and inner.args.get("joins") else None


def _mark_name(item: exp.Expr) -> str:
    """The name the marker of ``item`` goes under; "" when it cannot carry one."""
    inner = _parenthesised(item)
    if inner is not None:
        sides = {(j.args.get("side") or "").upper() for j in inner.args["joins"]}
        if sides & {"RIGHT", "FULL"}:
            return ""  # its first item may be padded
        item = inner
    if not isinstance(item, exp.Table | exp.Subquery):
        return ""
    return item.alias_or_name


def _with_mark(item: exp.Expr) -> exp.Expr:
    """``(SELECT *, 1 AS __kalam_m FROM item) AS item`` (for a parenthesised
    join, its first item so)."""
    inner = _parenthesised(item)
    if inner is not None:
        head = inner.copy()
        joins = head.args["joins"]
        head.set("joins", None)
        marked = _with_mark(head)
        marked.set("joins", joins)
        return exp.Subquery(this=marked)
    return exp.Subquery(
        this=exp.Select(expressions=[exp.Star(), exp.alias_(exp.Literal.number(1), _MARK)]).from_(
            item.copy()
        ),
        alias=exp.TableAlias(this=exp.to_identifier(item.alias_or_name)),
    )


def _mark(query: exp.Select) -> exp.Expr:
    """Non-NULL on every row of the subquery's FROM, NULL on the padding row
    of the LEFT JOIN from its domain."""
    marks = [exp.column(_MARK, table=name) for name in _marked_names(query)]
    return marks[0] if len(marks) == 1 else exp.func("COALESCE", *marks)


def _output_names(query: exp.Expr) -> list[str] | None:
    while isinstance(query, exp.Subquery):
        query = query.this
    first = query
    while isinstance(first, exp.SetOperation):
        first = first.this
    if not isinstance(first, exp.Select):
        return None
    names = []
    for p in first.expressions:
        if isinstance(p, exp.Star) or (isinstance(p, exp.Column) and isinstance(p.this, exp.Star)):
            return None
        names.append(p.alias_or_name.lower())
    return names


def _in_expression(node: exp.Expr) -> bool:
    """A subquery used as a value (not a derived table, CTE or set branch)."""
    parent = node.parent
    if isinstance(parent, exp.From | exp.Join | exp.CTE | exp.SetOperation | exp.Subquery):
        return False
    return isinstance(node.this, exp.Query)


def _where_conjunct(node: exp.Expr, outer: exp.Select) -> bool:
    where = outer.args.get("where")
    if where is None:
        return False
    target = node.parent if isinstance(node.parent, exp.Not) else node
    if target is None:
        return False
    parent = target.parent
    while isinstance(parent, exp.And | exp.Paren):
        parent = parent.parent
    return parent is where and _is_under(target, where)


def _positive_conjunct(node: exp.Expr, outer: exp.Select) -> bool:
    where = outer.args.get("where")
    parent = node.parent
    while isinstance(parent, exp.And | exp.Paren):
        parent = parent.parent
    return where is not None and parent is where


def _is_under(node: exp.Expr, ancestor: exp.Expr | None) -> bool:
    current: exp.Expr | None = node
    while current is not None:
        if current is ancestor:
            return True
        current = current.parent
    return False


def _grouped_scalar(node: exp.Expr, query: exp.Expr) -> bool:
    """A scalar subquery DataFusion 55 decorrelates wrongly (when correlated):
    with GROUP BY or HAVING (``(SELECT count(*) FROM q WHERE q.c = p.c GROUP
    BY q.c)`` came back NULL for a row matching no group, yet not NULL to IS
    NULL), or whose value tests an aggregate for NULL (``count(*) IS NOT
    NULL`` was NULL, not TRUE, for a row matching nothing: folded to a
    constant, it lost the aggregate DataFusion's count-bug fix looks for).
    Only these: any other query keeps its text (the rewrite re-renders it)."""
    if not isinstance(node, exp.Subquery) or not isinstance(query, exp.Select):
        return False
    if query.args.get("group") is not None or query.args.get("having") is not None:
        return True
    if len(query.expressions) != 1:
        return False
    value = query.expressions[0]
    value = value.this if isinstance(value, exp.Alias) else value
    return any(
        _has_aggregate(test) for test in value.find_all(exp.Is, exp.NullSafeEQ, exp.NullSafeNEQ)
    )


def _under_join_condition(node: exp.Expr) -> bool:
    # Every level up, not only to the nearest SELECT: a subquery nested in
    # one under an ON would copy that ON (with itself inside) into its
    # domain, and the rewrite never ended.
    current: exp.Expr | None = node
    while current is not None:
        parent = current.parent
        if isinstance(parent, exp.Join) and parent.args.get("on") is current:
            return True
        current = parent
    return False


def _is_group_key(node: exp.Expr, outer: exp.Select) -> bool:
    """``node`` is a whole projection of ``outer`` that its GROUP BY names by
    position or by alias."""
    group = outer.args.get("group")
    item = node.parent if isinstance(node.parent, exp.Alias) else node
    if group is None or item.parent is not outer:
        return False
    position = next((i + 1 for i, p in enumerate(outer.expressions) if p is item), None)
    if position is None:
        return False
    alias = item.alias.lower() if isinstance(item, exp.Alias) else None
    for g in group.expressions:
        if isinstance(g, exp.Literal) and g.is_int and int(g.this) == position:
            return True
        if alias and isinstance(g, exp.Column) and not g.table and g.name.lower() == alias:
            return True
    return False


def _under_aggregate(node: exp.Expr, outer: exp.Select) -> bool:
    current = node.parent
    while current is not None and current is not outer:
        if isinstance(current, exp.AggFunc | exp.Filter):  # an argument, or FILTER (WHERE ...)
            return True
        current = current.parent
    return False


def _has_aggregate(node: exp.Expr) -> bool:
    for agg in node.find_all(exp.AggFunc):
        if agg.find_ancestor(exp.Select) is node.find_ancestor(exp.Select):
            return True
    return False


def _one_row(query: exp.Expr | None) -> bool:
    """A SELECT that returns exactly one row whatever its FROM holds: one
    aggregate projection, no GROUP BY, HAVING, LIMIT, OFFSET or window."""
    if not isinstance(query, exp.Select) or len(query.expressions) != 1:
        return False
    if any(
        query.args.get(a) is not None for a in ("group", "having", "limit", "offset", "qualify")
    ):
        return False
    return subquery_forms.aggregates_in_projection(query) and query.find(exp.Window) is None


def _only_grouped(query: exp.Select) -> bool:
    """Every projected column is a GROUP BY expression (so dropping the
    GROUP BY cannot make an invalid query valid)."""
    groups = {g.sql().lower() for g in query.args["group"].expressions}
    for p in query.expressions:
        p = p.this if isinstance(p, exp.Alias) else p
        if p.sql().lower() in groups:
            continue
        if any(c.sql().lower() not in groups for c in p.find_all(exp.Column)):
            return False
    return True


def _only_matched(arg: exp.Expr, mark: exp.Expr) -> exp.Expr:
    """``arg`` for rows the LEFT JOIN matched, NULL for the padding row."""
    return exp.Case(
        ifs=[
            exp.If(
                this=exp.Not(this=exp.Is(this=mark.copy(), expression=exp.Null())), true=arg.copy()
            )
        ]
    )


def _case(count: exp.Count) -> exp.Count:
    """``count(IF(cond, mark))`` as ``count(CASE WHEN cond THEN mark END)``."""
    cond = count.this
    assert isinstance(cond, exp.If)
    return exp.Count(this=exp.Case(ifs=[cond]))


def _null_safe_eq(a: exp.Expr, b: exp.Expr) -> exp.Expr:
    """``a IS NOT DISTINCT FROM b`` spelled with ``=`` and ``IS NULL``: DataFusion
    55 mistypes IS NOT DISTINCT FROM next to other conditions of a join."""
    return exp.Paren(
        this=exp.or_(
            exp.EQ(this=a.copy(), expression=b.copy()),
            exp.and_(
                exp.Is(this=a.copy(), expression=exp.Null()),
                exp.Is(this=b.copy(), expression=exp.Null()),
            ),
        )
    )
