"""RIGHT joins written as the LEFT joins they equal, sides swapped.

DataFusion 55 plans every RIGHT hash join as a LEFT join with its inputs
swapped, and its physical filter pushdown then moved a WHERE filter on the
nullable side's column into the other side when both sides have a column
of that name: ``SELECT b.k FROM a RIGHT JOIN b ON a.g = b.g WHERE a.k IS
NULL`` returned no rows (SQL: b's unmatched rows), filtering b's ``k``
instead of a's. A LEFT join as written is planned right.

``x RIGHT JOIN y ON c`` becomes ``y LEFT JOIN x ON c``; when x is itself a
chain of joins it is kept as one parenthesised join, whose tables stay
visible by name (a comma ends a chain: ``a, b RIGHT JOIN c`` joins b and c
first). A ``*`` over the SELECT becomes its columns in the order written:
one qualified star per FROM item, or, with a USING join (whose columns
``*`` lists once), each column by name, read from the catalog. A SELECT
whose ``*`` cannot be spelled out that way, or with a parenthesised join
or LATERAL as a FROM item, is left as written.
"""

from __future__ import annotations

from sqlglot import exp

from engine.sql.relations import ColumnsOf, Relations, from_items, joins_of
from engine.sql.tokens import rewritten


def as_left_joins(sql: str, columns_of: ColumnsOf) -> tuple[exp.Expr, str] | None:
    """The query with its RIGHT joins swapped into LEFT joins, as (tree,
    SQL); None when it has none to swap."""
    return rewritten(sql, lambda tree: rewrite(tree, columns_of))


def rewrite(tree: exp.Expr, columns_of: ColumnsOf) -> bool:
    """Rewrite ``tree`` in place; whether it swapped anything."""
    changed = False
    relations = Relations(tree, columns_of)
    for select in list(tree.find_all(exp.Select)):
        if not any(_is_right(j) for j in joins_of(select)):
            continue
        items = from_items(select)
        if any(item.args.get("joins") or isinstance(item, exp.Lateral) for item in items):
            continue  # a parenthesised join or a LATERAL as a FROM item
        columns = star_columns(select, relations)
        if columns is None:
            continue
        if columns:
            select.set("expressions", columns)
        _swap(select)
        changed = True
    return changed


def _is_right(join: exp.Join) -> bool:
    return (join.args.get("side") or "").upper() == "RIGHT"


def _is_comma(join: exp.Join) -> bool:
    return not any(join.args.get(k) for k in ("side", "kind", "on", "using", "method"))


def star_columns(select: exp.Select, relations: Relations) -> list[exp.Expr] | None:
    """The SELECT's projections with each ``*`` spelled out in the order
    written; [] when it has no ``*``; None when it cannot be spelled out."""
    if not any(isinstance(p, exp.Star) for p in select.expressions):
        return []
    items = from_items(select)
    joins = joins_of(select)
    if not any(j.args.get("using") or j.args.get("method") for j in joins):
        if not all(item.alias_or_name for item in items):
            return None
        listed: list[exp.Expr] = [
            exp.Column(this=exp.Star(), table=exp.to_identifier(i.alias_or_name)) for i in items
        ]
    else:
        if any(j.args.get("method") for j in joins):
            return None  # NATURAL: join_using spells it out first for RIGHT / FULL
        listed = []
        for k, item in enumerate(items):
            cols = relations.source(item)
            if cols is None or not item.alias_or_name:
                return None
            merged = {u.name.lower() for u in joins[k - 1].args.get("using") or []} if k else set()
            listed += [exp.column(c, table=item.alias_or_name) for c in cols if c not in merged]
    out: list[exp.Expr] = []
    for p in select.expressions:
        if not isinstance(p, exp.Star):
            out.append(p)
            continue
        replace = {r.alias_or_name.lower(): r for r in p.args.get("replace") or []}
        dropped = {e.name.lower() for e in p.args.get("except") or []}
        for column in listed:
            name = column.name.lower()
            if isinstance(column.this, exp.Star) and (replace or dropped):
                return None
            if name in dropped:
                continue
            out.append(replace[name].copy() if name in replace else column.copy())
    return out


def _swap(select: exp.Select) -> None:
    from_ = select.args["from_"]
    joins = joins_of(select)
    # Chains split at commas; each chain's RIGHT joins swapped in order.
    chains: list[tuple[exp.Join | None, exp.Expr, list[exp.Join]]] = [(None, from_.this, [])]
    for join in joins:
        if _is_comma(join):
            chains.append((join, join.this, []))
        else:
            chains[-1][2].append(join)
    out: list[exp.Join] = []
    for comma, head, chain in chains:
        done: list[exp.Join] = []
        for join in chain:
            if not _is_right(join):
                done.append(join)
                continue
            operand: exp.Expr = head.copy()
            if done:
                # The left operand is a chain: one parenthesised join of it.
                operand.set("joins", [j.copy() for j in done])
                operand = exp.Subquery(this=operand)
            swapped = join.copy()
            swapped.set("this", operand)
            swapped.set("side", "LEFT")
            head = join.this
            done = [swapped]
        if comma is None:
            from_.set("this", head.copy())
        else:
            new_comma = comma.copy()
            new_comma.set("this", head.copy())
            out.append(new_comma)
        out += done
    select.set("joins", out)
