"""RIGHT and FULL joins ``USING (...)`` or ``NATURAL``: the merged column.

SQL merges each USING column into one: ``COALESCE(l.c, r.c)`` for a FULL
join, ``r.c`` for a RIGHT join. DataFusion 55 reads an unqualified ``c``
(and the ``c`` of ``*``) as the left side's column, so rows only the right
side holds came back with a NULL key: ``SELECT g FROM a FULL JOIN b USING
(g)`` gave NULL for b's unmatched row ``g = 4``, and ``SELECT * FROM a
NATURAL RIGHT JOIN b`` NULL for every column of b's unmatched rows.

Here the SELECT names both sides instead: each unqualified reference to a
merged column in that SELECT (projection, WHERE, GROUP BY, HAVING, ORDER
BY, window, later ON conditions) becomes the merged expression, a ``*``
gets it through ``REPLACE``, and a NATURAL join first becomes the USING
join it stands for (its columns read from the catalog). Shapes whose left
side cannot be told from the tree (the column held by two tables on the
left, a source of unknown columns, a parenthesised join) are refused with
an error naming the join, never guessed. A later USING join on a column an
earlier USING join merged compares the merged value: it is spelled out as
ON (refused under a ``*``, whose columns would change); DataFusion refused
it as ambiguous. After an INNER or LEFT join the merged column is the left
side's, which DataFusion reads too, but calls ambiguous under a ``*``
(``SELECT * FROM a JOIN b USING (k) WHERE k > 3``): those references are
qualified with the left side as well.
"""

from __future__ import annotations

from sqlglot import exp

from engine.errors import UnsupportedStatementError
from engine.sql.relations import ColumnsOf, Relations, from_items, joins_of
from engine.sql.tokens import rewritten

_OUTER = ("RIGHT", "FULL")


def merged_columns(sql: str, columns_of: ColumnsOf) -> tuple[exp.Expr, str] | None:
    """The query with the merged columns of its USING and RIGHT / FULL
    NATURAL joins spelled out, as (tree, SQL); None when it has none."""
    return rewritten(sql, lambda tree: rewrite(tree, columns_of))


def rewrite(tree: exp.Expr, columns_of: ColumnsOf) -> bool:
    """Rewrite ``tree`` in place; whether it had anything to rewrite."""
    joins = [j for j in tree.find_all(exp.Join) if j.args.get("using") or _outer_merge(j)]
    for join in joins:
        if not isinstance(join.parent, exp.Select) and _outer_merge(join):
            raise _refusal(join, "inside a parenthesised join")
    joins = [j for j in joins if isinstance(j.parent, exp.Select)]
    if not joins:
        return False
    relations = Relations(tree, columns_of)
    changed = False
    for select in {id(j.parent): j.parent for j in joins}.values():
        assert isinstance(select, exp.Select)
        changed = _rewrite_select(select, relations) or changed
    return changed


def _outer_merge(join: exp.Join) -> bool:
    side = (join.args.get("side") or "").upper()
    natural = (join.args.get("method") or "").upper() == "NATURAL"
    return side in _OUTER and (natural or bool(join.args.get("using")))


def _refusal(join: exp.Join, why: str) -> UnsupportedStatementError:
    side = (join.args.get("side") or "").upper()
    kind = f"{side} JOIN" if side else "JOIN"
    return UnsupportedStatementError(
        f"{kind} {join.this.sql()} with USING or NATURAL {why}: the merged column's "
        "value cannot be told apart; write the join with ON and name each side's column"
    )


def _rewrite_select(select: exp.Select, relations: Relations) -> bool:
    items = from_items(select)
    joins = joins_of(select)
    columns = [relations.source(item) for item in items]
    merged: dict[str, exp.Expr] = {}  # column -> the joined rows' value so far
    outer: list[str] = []  # merged by a RIGHT / FULL join: DataFusion reads them wrong
    # Merged by an INNER / LEFT join: the left side's value, which DataFusion
    # reads too, but calls ambiguous under a `*` (`SELECT * ... WHERE g > 1`).
    plain: list[str] = []
    spelled_any = False
    before: list[exp.Join] = []  # joins ahead of the first RIGHT / FULL merge
    for i, join in enumerate(joins, start=1):
        side = (join.args.get("side") or "").upper()
        known = all(c is not None for c in columns[: i + 1])
        using = [u.name.lower() for u in join.args.get("using") or []]
        if (join.args.get("method") or "").upper() == "NATURAL":
            if not known:
                if side in _OUTER or outer:
                    raise _refusal(join, "over a source whose columns are not known")
                continue
            left = list(dict.fromkeys(c for cols in columns[:i] for c in cols or []))
            using = [c for c in left if c in (columns[i] or [])]
            if side in _OUTER or set(using) & set(outer):
                join.set("method", None)
                join.set("using", [exp.to_identifier(c) for c in using] or None)
                if not using:
                    join.set("on", exp.true())
        # On a column an earlier RIGHT / FULL join merged, the USING is spelled
        # out as ON over the merged value (DataFusion would compare the left
        # side's column); its columns are then no longer merged by DataFusion.
        spelled = bool(set(using) & (set(outer) | set(merged)))
        spelled_any = spelled_any or spelled
        if spelled and any(isinstance(p, exp.Star) for p in select.expressions):
            raise _refusal(join, "on a column an earlier RIGHT or FULL join merged, under a *")
        conditions: list[exp.Expr] = []
        for name in using:
            holders = [k for k in range(i) if name in (columns[k] or ())]
            left_value = merged.get(name)
            if left_value is None and len(holders) == 1 and known:
                left_value = _column(items[holders[0]], name)
            if (side in _OUTER or spelled) and left_value is None:
                raise _refusal(join, f"whose left side does not hold {name} exactly once")
            right_value = _column(items[i], name)
            if spelled and left_value is not None:
                conditions.append(exp.EQ(this=left_value.copy(), expression=right_value.copy()))
                if name not in outer:
                    outer.append(name)
            if side == "RIGHT":
                merged[name] = right_value
            elif side == "FULL":
                merged[name] = exp.func("COALESCE", left_value, right_value)
            elif left_value is not None:
                merged[name] = left_value
            if side in _OUTER and name not in outer:
                outer.append(name)
            elif name in merged and name not in outer and name not in plain:
                plain.append(name)
        if spelled:
            join.set("using", None)
            join.set("on", exp.and_(*conditions))
        if not outer and not plain:
            before.append(join)
    plain = [n for n in plain if n not in outer]
    if not any(isinstance(p, exp.Star) for p in select.expressions) and not spelled_any:
        plain = []  # DataFusion reads them right: the query keeps its error positions
    if not outer and not plain:
        return False
    _replace_references(
        select, {n: merged[n] for n in outer + plain}, before, star={n: merged[n] for n in outer}
    )
    return True


def _replace_references(
    select: exp.Select,
    merged: dict[str, exp.Expr],
    before: list[exp.Join],
    *,
    star: dict[str, exp.Expr],
) -> None:
    for column in list(select.find_all(exp.Column)):
        name = column.name.lower()
        if column.table or isinstance(column.this, exp.Star) or name not in merged:
            continue
        if column.find_ancestor(exp.Select) is not select:
            continue  # another SELECT's own scope
        join = column.find_ancestor(exp.Join)
        if join is not None and any(join is b for b in before):
            continue  # an ON condition ahead of the merge sees the unmerged columns
        value = merged[name].copy()
        if column.parent is select and column.arg_key == "expressions":
            value = exp.alias_(value, column.this.copy())  # keep the output name
        column.replace(value)
    if not star:
        return
    for node in select.expressions:
        if not isinstance(node, exp.Star):
            continue
        excluded = {e.name.lower() for e in node.args.get("except") or []}
        replaced = list(node.args.get("replace") or [])
        taken = excluded | {r.alias_or_name.lower() for r in replaced}
        replaced += [exp.alias_(v.copy(), n) for n, v in star.items() if n not in taken]
        node.set("replace", replaced)


def _column(item: exp.Expr, name: str) -> exp.Column:
    """``name`` qualified by the FROM item that holds it."""
    alias = item.args.get("alias")
    if alias is not None or not isinstance(item, exp.Table):
        return exp.column(name, table=item.alias_or_name)
    db = item.args.get("db")
    return exp.column(name, table=item.name, db=db.name if db is not None else None)
