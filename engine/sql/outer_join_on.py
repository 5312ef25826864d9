"""Subqueries in a JOIN's ON, written where DataFusion 55 and the
decorrelation in ``engine/sql/subqueries.py`` answer them exactly (before
the first run: DataFusion refuses most of them, and the NOT IN pre-pass of
``retry.py`` refused even an inner join's ``IN (SELECT ...)``).

An inner join's condition moves to the WHERE when no RIGHT or FULL join
follows it in the same FROM. In an outer join's ON a condition that is
FALSE or UNKNOWN does not drop the preserved side's row: it NULL-extends
it, so the condition cannot move to the WHERE. Each conjunct ``c`` of the
ON that holds a subquery is instead rewritten by the columns of the join's
two sides it names (the *chain*, the FROM items joined so far, and the
*item*, the join's right operand; an inner join that cannot move is
written the same way):

- naming only the non-preserved item of a LEFT join: the item becomes
  ``(SELECT * FROM item WHERE c) AS item``; a pair failing ``c`` matched
  nothing, and the item's unmatched rows never show;
- naming one side only (the preserved one, or either side of a FULL join),
  or nothing: the values of the columns it names for which ``c`` is TRUE,

      D = SELECT dom.k1.., TRUE AS v
          FROM (SELECT DISTINCT x1 AS k1.. FROM <that side>) AS dom WHERE <c over dom.k1..>

  joined to that side (``LEFT JOIN D ON struct(D.k..) = struct(x..)``, NULL
  keys equal: before the join for the chain, in a parenthesised join for
  the item), one row
  or none per row; the ON tests ``D.v`` where ``c`` stood, TRUE where ``c``
  is and NULL (no match) where ``c`` is FALSE or NULL (a NOT IN meeting a
  NULL). The subquery stands in a WHERE, planned as a semi / anti join;
- naming both sides: ``D`` holds the pairs of values for which ``c`` is
  TRUE, keyed by every column ``c`` and the ON's other conjuncts name (so
  whether two rows meet the whole ON depends on their keys only), each
  side's distinct keys joined on those conjuncts. Joined to the item (LEFT,
  on the item's keys) it repeats an item row once per matching value of
  the chain's keys, and the ON keeps the copy whose keys equal the chain
  row's: each pair meets ``c`` once, every copy matches some chain row,
  and a row with no copy stays, unmatched, once (FULL and RIGHT too). All
  the ON's subquery conjuncts then go into that one ``D``: two, or one
  side's condition tested apart, would leave copies that match nothing.

The subqueries then stand in a WHERE, where the query runs or is
decorrelated as usual. A subquery naming a column of an enclosing query,
and sources whose columns are unknown, are refused by name, never
approximated; a column no source has leaves the query as written, for
DataFusion to name. A ``*`` over the SELECT is spelled as one qualified
star per FROM item, so the columns the rewrite adds never show.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from sqlglot import exp

from engine.errors import QueryError, UnsupportedStatementError
from engine.sql.relations import ColumnsOf, Relations, from_items, joins_of
from engine.sql.right_joins import star_columns
from engine.sql.subquery_forms import holds_subquery
from engine.sql.tokens import conjuncts_of, depth, rewritten

_PREFIX = "__kalam_oj"
_JOIN_ON = re.compile(r"\bJOIN\b.*\bON\b", re.IGNORECASE | re.DOTALL)
_SUBQUERY = re.compile(r"\(\s*(?:SELECT|WITH)\b|\bEXISTS\b", re.IGNORECASE)
_MAX_JOINS = 64
Key = tuple[exp.Column, exp.Column, str]  # D's key column, the row's column, its source


def _refuse(what: str) -> UnsupportedStatementError:
    return UnsupportedStatementError(f"Subquery not supported: {what} in a JOIN's ON")


def rewrite_on_subqueries(sql: str, columns_of: ColumnsOf) -> tuple[exp.Expr, str] | None:
    """(tree, text) of ``sql`` with the subqueries of its joins' ON
    conditions moved out as above; None when it has none. Raises
    ``UnsupportedStatementError`` for a form it cannot rewrite exactly."""
    if _JOIN_ON.search(sql) is None or _SUBQUERY.search(sql) is None:
        return None
    try:
        return rewritten(sql, lambda tree: _Rewrite(tree, columns_of).run())
    except _Unresolved:
        return None


def _side(join: exp.Join) -> str:
    return (join.args.get("side") or "").upper()


def _inner(join: exp.Join) -> bool:
    return not join.args.get("side") and (join.args.get("kind") or "").upper() in ("", "INNER")


def _outer_after(joins: list[exp.Join]) -> bool:
    """A RIGHT or FULL join among ``joins`` before the next comma."""
    for join in joins:
        if _is_comma(join):
            return False
        if _side(join) in ("RIGHT", "FULL"):
            return True
    return False


def _is_comma(join: exp.Join) -> bool:
    return not any(join.args.get(k) for k in ("side", "kind", "on", "using", "method"))


def _head(node: exp.Expr) -> exp.Expr:
    """``node`` without the joins a parenthesised join hangs on it."""
    if not node.args.get("joins"):
        return node
    head = node.copy()
    head.set("joins", None)
    return head


def _flat(item: exp.Expr) -> list[tuple[str, exp.Expr]]:
    """(name, source) of each FROM item inside ``item`` (a parenthesised
    join holds several), the sources without their joins."""
    if isinstance(item, exp.Subquery) and not item.alias and item.this.args.get("joins"):
        return _flat(item.this)
    out = [(item.alias_or_name.lower(), _head(item))]
    for join in item.args.get("joins") or []:
        out += _flat(join.this)
    return out


def _merged(select: exp.Select, name: str) -> bool:
    """Whether a USING or NATURAL join of ``select`` merges columns named
    ``name``: an unqualified reference is then the left side's column
    (``engine/sql/join_using.py`` has spelled out those of RIGHT / FULL
    joins)."""
    for join in joins_of(select):
        if (join.args.get("method") or "").upper() == "NATURAL":
            return True  # its columns are not listed: the first holder's
        if any(u.name.lower() == name for u in join.args.get("using") or []):
            return True
    return False


def _sources(select: exp.Select) -> list[tuple[str, exp.Expr]]:
    return [pair for item in from_items(select) for pair in _flat(item)]


class _Unresolved(Exception):
    """A column no source holds: the query is left as written, for DataFusion
    to name the column."""


class _Rewrite:
    def __init__(self, tree: exp.Expr, columns_of: ColumnsOf) -> None:
        self.tree = tree
        self.columns_of = columns_of
        taken = [
            int(digits)
            for ident in tree.find_all(exp.Identifier)
            if ident.name.startswith(_PREFIX)
            and (digits := ident.name[len(_PREFIX) :].split("_")[0]).isdigit()
        ]
        self.count = max(taken, default=0)

    def run(self) -> bool:
        changed = False
        for _ in range(_MAX_JOINS):
            # A SELECT's joins, or a parenthesised join's.
            found = [
                (holder, join)
                for holder in self.tree.find_all(exp.Select, exp.Table, exp.Subquery)
                for join in holder.args.get("joins") or []
                if (_side(join) in ("LEFT", "RIGHT", "FULL") or _inner(join))
                and join.args.get("on") is not None
                and holds_subquery(join.args["on"])
            ]
            if not found:
                return changed
            # Innermost first; within one FROM, the first join first.
            holder, join = max(
                found, key=lambda f: (depth(f[1]), -list(f[0].args["joins"]).index(f[1]))
            )
            self.rewrite(holder, join)
            changed = True
        raise _refuse("too many joins with subqueries")

    # ------------------------------------------------------------ columns

    def owner(self, column: exp.Column, relations: Relations) -> tuple[exp.Select, str] | None:
        """The SELECT whose FROM provides ``column`` and the source's name;
        None when no enclosing SELECT does."""
        qualifier = column.table.lower() if column.table else None
        name = column.name.lower()
        select = column.find_ancestor(exp.Select)
        while isinstance(select, exp.Select):
            sources = _sources(select)
            if qualifier is not None:
                if any(source == qualifier for source, _ in sources):
                    return select, qualifier
            else:
                hits, unknown = [], False
                for source, item in sources:
                    cols = relations.source(item)
                    if cols is None:
                        unknown = True
                    elif name in cols:
                        hits.append(source)
                if len(hits) > 1 and not _merged(select, name):
                    raise QueryError(
                        f"Ambiguous reference to column {name}: more than one table in the "
                        f"query has it. Hint: qualify it with its table or alias (alias.{name})"
                    )
                if hits:
                    return select, hits[0]
                if unknown:
                    raise _refuse(f"column {name} of a source whose columns are unknown")
            select = select.find_ancestor(exp.Select)
        return None

    def refs(
        self, cond: exp.Expr, select: exp.Select, relations: Relations
    ) -> list[tuple[exp.Column, str]]:
        """The columns of ``select``'s sources that ``cond`` names, each with
        its source's name."""
        inside = {id(s) for s in cond.find_all(exp.Select)}
        out = []
        for column in cond.find_all(exp.Column):
            if isinstance(column.this, exp.Star):
                continue
            found = self.owner(column, relations)
            if found is None:
                raise _Unresolved(column.name)
            if found[0] is select:
                out.append((column, found[1]))
            elif id(found[0]) not in inside:
                raise _refuse("a subquery naming a column of an enclosing query")
        return out

    # ------------------------------------------------------------ rewrite

    def rewrite(self, holder: exp.Expr, join: exp.Join) -> None:
        relations = Relations(self.tree, self.columns_of)
        select = holder if isinstance(holder, exp.Select) else holder.find_ancestor(exp.Select)
        assert isinstance(select, exp.Select)
        joins = list(holder.args["joins"])
        i = joins.index(join)
        if join.args.get("using") or join.args.get("method"):
            raise _refuse("USING or NATURAL next to an ON")
        start = max((k + 1 for k in range(i) if _is_comma(joins[k])), default=0)
        if start:
            first = joins[start - 1].this
        elif isinstance(holder, exp.Select):
            first = from_items(holder)[0]
        else:
            first = _head(holder)
        chain_items = [first] + [j.this for j in joins[start:i]]
        item = join.this
        side = _side(join)
        if not side and isinstance(holder, exp.Select) and not _outer_after(joins[i + 1 :]):
            self.inner_to_where(holder, join, chain_items, item, relations)
            return
        chain_names = {n for x in chain_items for n, _ in _flat(x)}
        item_names = {n for n, _ in _flat(item)}
        if any(isinstance(x, exp.Lateral) for x in chain_items + [item]) or "" in (
            chain_names | item_names
        ):
            raise _refuse("a LATERAL or unnamed source")
        # A ``*`` over a USING join lists its merged columns once: spelled
        # out from the catalog while the FROM is as written.
        merged_star = None
        stars = [p for p in select.expressions if isinstance(p, exp.Star)]
        if any(j.args.get("using") or j.args.get("method") for j in joins_of(select)) and not any(
            p.args.get("except") or p.args.get("replace") or p.args.get("rename") for p in stars
        ):
            # (Not under REPLACE: join_using's merged value of a RIGHT / FULL
            # join replaces every column of that name, a later table's too.)
            merged_star = star_columns(select, relations)
        # Copies of the two sides as written, for the domains below.
        chain_from = first.copy()
        chain_joins = [j.copy() for j in joins[start:i]]
        item_copy = item.copy()
        conjuncts = conjuncts_of(join.args["on"])
        pushed: list[exp.Expr] = []
        chain_attach: list[exp.Join] = []
        item_attach: list[exp.Join] = []
        out: list[exp.Expr] = []
        # Each subquery conjunct with the columns it names of either side.
        named: list[tuple[exp.Expr, list[tuple[exp.Column, str]], bool, bool]] = []
        for cond in conjuncts:
            if not holds_subquery(cond):
                out.append(cond.copy())
                continue
            refs = self.refs(cond, select, relations)
            if {source for _, source in refs} - chain_names - item_names:
                raise _refuse("a column of a source outside the join")
            on_chain = any(s in chain_names for _, s in refs)
            on_item = any(s in item_names for _, s in refs)
            if side in ("LEFT", "") and on_item and not on_chain and len(item_names) == 1:
                pushed.append(cond.copy())
                continue
            named.append((cond, refs, on_chain, on_item))
        # Once one names both sides, all go into its D: a condition on one
        # side only, tested apart, could fail for a copy of an item row that
        # D says matches, and the copy would show unmatched (FULL / RIGHT).
        both = [(c, refs) for c, refs, on_chain, on_item in named if on_chain and on_item]
        if both:
            both = [(c, refs) for c, refs, _, _ in named]
            named = []
        for cond, refs, on_chain, on_item in named:
            # One side (or none): the keys whose ``cond`` is TRUE, one D row
            # or none per row of that side (then ``v`` is NULL: no match).
            self.count += 1
            name = f"{_PREFIX}{self.count}"
            on_chain_side = on_chain or not on_item
            side_def = (
                (chain_from, chain_joins, chain_names)
                if on_chain_side
                else (item_copy, [], item_names)
            )
            derived, keys = self.per_key([cond], refs, name, [side_def])
            attach = exp.Join(this=derived, side="LEFT", on=_same_keys(keys))
            (chain_attach if on_chain_side else item_attach).append(attach)
            out.append(exp.column(f"{name}_v", table=name))
        if both:
            # Both sides: D holds the pairs of values for which the conditions
            # are all TRUE (one D: two would repeat an item row per pair of
            # their copies, some matching no chain row), keyed by every column
            # they and the other conjuncts name, so that whether a pair of
            # rows meets the whole ON is a function of its keys. Joined to the
            # item (LEFT, on the item's keys) it repeats an item row once per
            # matching value of the chain's keys, and each copy matches a
            # chain row; a row with none keeps one copy, unmatched, once.
            self.count += 1
            name = f"{_PREFIX}{self.count}"
            others = [c for c in conjuncts if not holds_subquery(c)]
            on_refs = [ref for c in others for ref in self.refs(c, select, relations)]
            if {source for _, source in on_refs} - chain_names - item_names:
                raise _refuse("a column of a source outside the join")
            derived, keys = self.per_key(
                [cond for cond, _ in both],
                [ref for _, refs in both for ref in refs],
                name,
                [(chain_from, chain_joins, chain_names), (item_copy, [], item_names)],
                on=others,
                on_refs=on_refs,
            )
            inner = [k for k in keys if k[2] in item_names]
            kept = [k for k in keys if k[2] not in item_names]
            item_attach.append(exp.Join(this=derived, side="LEFT", on=_same_keys(inner)))
            out.append(_same_keys(kept))
            out.append(exp.column(f"{name}_v", table=name))
        if pushed:
            item = _filtered(item, pushed)
        if item_attach:
            operand = item.copy()
            operand.set("joins", [*(operand.args.get("joins") or []), *item_attach])
            item = exp.Subquery(this=operand)
        join.set("this", item)
        join.set("on", exp.and_(*out) if out else exp.true())
        if chain_attach:
            holder.set("joins", joins[:i] + chain_attach + joins[i:])
        if chain_attach or item_attach:
            self.spell_stars(select, merged_star)

    def inner_to_where(
        self,
        select: exp.Select,
        join: exp.Join,
        chain_items: list[exp.Expr],
        item: exp.Expr,
        relations: Relations,
    ) -> None:
        """An inner join's subquery conjuncts, when no RIGHT or FULL join
        follows: into the one FROM item they name (filtered before the join,
        which DataFusion does not do with a semi join over the WHERE), else
        into the WHERE (the later joins are INNER, LEFT or CROSS, which keep
        or pad each row alike)."""
        kept: list[exp.Expr] = []
        moved: list[exp.Expr] = []
        into: dict[int, list[exp.Expr]] = {}  # 0: the chain's one item, 1: the item
        first, only = chain_items[0], len(chain_items) == 1
        single = [
            only and len(_flat(first)) == 1 and not isinstance(first, exp.Lateral),
            len(_flat(item)) == 1 and not isinstance(item, exp.Lateral),
        ]
        names = [chain_items[0].alias_or_name.lower(), item.alias_or_name.lower()]
        for cond in conjuncts_of(join.args["on"]):
            if not holds_subquery(cond):
                kept.append(cond.copy())
                continue
            try:
                sources = {source for _, source in self.refs(cond, select, relations)}
            except UnsupportedStatementError:
                sources = set()  # e.g. correlated with an enclosing query: the WHERE's
            side = next((k for k in (1, 0) if single[k] and sources == {names[k]}), None)
            if side is None:
                moved.append(cond.copy())
            else:
                into.setdefault(side, []).append(cond.copy())
        if 1 in into:
            join.set("this", _filtered(item, into[1]))
        if 0 in into:
            chain_items[0].replace(_filtered(chain_items[0], into[0]))
        join.set("on", exp.and_(*kept) if kept else exp.true())
        if moved:
            select.where(exp.and_(*moved), copy=False)

    def per_key(
        self,
        conds: list[exp.Expr],
        keys: list[tuple[exp.Column, str]],
        name: str,
        sides: list[tuple[exp.Expr, list[exp.Join], set[str]]],
        *,
        on: Sequence[exp.Expr] = (),
        on_refs: Sequence[tuple[exp.Column, str]] = (),
    ) -> tuple[exp.Subquery, list[Key]]:
        """``D AS name``: the distinct values of ``keys`` for which ``conds``
        are all TRUE, with ``TRUE AS v``; and per key, ``D.ki IS NOT DISTINCT FROM
        key`` and the key's source. The values come from each side (a FROM
        item, its joins, its sources' names) alone, DISTINCT, and with two
        sides, joined on ``on`` (whose columns ``on_refs`` are keys too)."""
        dom = f"{name}_dom"
        slots: dict[tuple[str, str], str] = {}
        out: list[Key] = []

        def slot(column: exp.Column, source: str) -> str:
            ident = (source, column.name.lower())
            if ident not in slots:
                slots[ident] = f"{name}_k{len(slots) + 1}"
                key = exp.column(column.name, table=source)
                out.append((exp.column(slots[ident], table=name), key, source))
            return slots[ident]

        value = exp.and_(*[_replaced(c, keys, slot, lambda source: dom) for c in conds])
        side_alias = [f"{name}_d{j}" for j in range(len(sides))]

        def side_of(source: str) -> str:
            return next(
                a for a, (_, _, names) in zip(side_alias, sides, strict=True) if source in names
            )

        joined = [_replaced(c, on_refs, slot, side_of) for c in on]
        body = exp.select(
            *[exp.column(k, table=dom) for k in slots.values()], exp.alias_(exp.true(), f"{name}_v")
        )
        if not slots:
            domain: exp.Expr = exp.select(exp.alias_(exp.true(), "one"))
        else:
            parts = []
            for (from_item, joins, names), alias in zip(sides, side_alias, strict=True):
                part = exp.select(
                    *[
                        exp.alias_(exp.column(col, table=source), k)
                        for (source, col), k in slots.items()
                        if source in names
                    ]
                ).distinct()
                part = part.from_(from_item.copy())
                for join in joins:
                    part.append("joins", join.copy())
                parts.append(
                    exp.Subquery(this=part, alias=exp.TableAlias(this=exp.to_identifier(alias)))
                )
            domain = exp.select("*").from_(parts[0])
            for other in parts[1:]:
                step = exp.Join(this=other, kind="CROSS")
                if joined:
                    step = exp.Join(this=other, on=exp.and_(*joined))
                domain.append("joins", step)
        body = body.from_(
            exp.Subquery(this=domain, alias=exp.TableAlias(this=exp.to_identifier(dom)))
        )
        body = body.where(value)
        derived = exp.Subquery(this=body, alias=exp.TableAlias(this=exp.to_identifier(name)))
        return derived, out

    def spell_stars(self, select: exp.Select, merged: list[exp.Expr] | None) -> None:
        """``*`` as one qualified star per FROM item but those the rewrite
        added; over a USING join, ``merged``: the columns read before."""
        if not any(isinstance(p, exp.Star) for p in select.expressions):
            return
        items = from_items(select)
        if any(j.args.get("using") or j.args.get("method") for j in joins_of(select)):
            if merged is None:
                raise _refuse("a * over a USING or NATURAL join whose columns are unknown")
            select.set("expressions", merged)
            return
        out: list[exp.Expr] = []
        for p in select.expressions:
            if not isinstance(p, exp.Star):
                out.append(p)
                continue
            if p.args.get("except") or p.args.get("replace") or p.args.get("rename"):
                raise _refuse("a * with EXCEPT, REPLACE or RENAME")
            out += [
                exp.Column(this=exp.Star(), table=exp.to_identifier(name))
                for item in items
                for name, _ in _flat(item)
                if not name.startswith(_PREFIX)
            ]
        select.set("expressions", out)


def _replaced(
    cond: exp.Expr,
    sources: Sequence[tuple[exp.Column, str]],
    slot: Callable[[exp.Column, str], str],
    table: Callable[[str], str],
) -> exp.Expr:
    """A copy of ``cond`` whose columns in ``sources`` (by identity) are
    ``table(source).slot(column, source)``."""
    by_id = {id(column): (column, source) for column, source in sources}
    copy = cond.copy()
    for original, column in list(
        zip(cond.find_all(exp.Column), copy.find_all(exp.Column), strict=True)
    ):
        found = by_id.get(id(original))
        if found is not None:
            column.replace(exp.column(slot(*found), table=table(found[1])))
    return copy


def _filtered(item: exp.Expr, conds: list[exp.Expr]) -> exp.Subquery:
    """``(SELECT * FROM item WHERE conds) AS item``: the same name and columns."""
    alias = exp.TableAlias(this=exp.to_identifier(item.alias_or_name))
    return exp.Subquery(
        this=exp.select("*").from_(item.copy()).where(exp.and_(*conds)), alias=alias
    )


def _same_keys(keys: list[Key]) -> exp.Expr:
    """``D``'s keys equal to the row's, NULL equal to NULL: ``struct(D.k1, ..)
    = struct(x1, ..)``, which DataFusion 55 hashes as one join key and
    compares field by field with NULLs equal. Not ``IS NOT DISTINCT FROM``:
    its join took an INNER join below it on the same column as NULL-equal
    too (``x LEFT JOIN y ON x.a = y.a`` under ``WHERE y.id IS NOT NULL``
    paired x and y rows whose ``a`` is NULL); not ``=`` OR both ``IS NULL``,
    which is a nested-loop join."""
    if not keys:
        return exp.true()
    return exp.EQ(
        this=exp.Anonymous(this="struct", expressions=[d.copy() for d, _, _ in keys]),
        expression=exp.Anonymous(this="struct", expressions=[k.copy() for _, k, _ in keys]),
    )
