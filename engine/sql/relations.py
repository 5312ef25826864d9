"""The columns a query, a derived table or a table reference produces, read
off a sqlglot tree (for rewrites that must name or count them).

Base tables' columns come from the catalog through ``columns_of``; CTEs and
derived tables from their own projections. Anything whose columns cannot be
known exactly from the tree (a ``*`` over a USING or NATURAL join, a table
function, VALUES) gives ``None``, and the caller refuses rather than guesses.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlglot import exp

ColumnsOf = Callable[[str | None, str], list[str] | None]


class Relations:
    """Column lookups over one statement's tree (memoised per table)."""

    def __init__(self, tree: exp.Expr, columns_of: ColumnsOf) -> None:
        self._columns_of = columns_of
        self._known: dict[tuple[str | None, str], list[str] | None] = {}
        self.ctes: dict[str, exp.CTE] = {}
        for cte in tree.find_all(exp.CTE):
            self.ctes.setdefault(cte.alias_or_name.lower(), cte)

    def table_columns(self, db: str | None, name: str) -> list[str] | None:
        key = (db.lower() if db else None, name.lower())
        if key not in self._known:
            found = self._columns_of(*key)
            self._known[key] = [c.lower() for c in found] if found is not None else None
        return self._known[key]

    def source(self, item: exp.Expr) -> list[str] | None:
        """Columns of one FROM / JOIN item, under its alias's column list if any."""
        alias = item.args.get("alias")
        if isinstance(alias, exp.TableAlias) and alias.columns:
            return [c.name.lower() for c in alias.columns]
        if isinstance(item, exp.Table) and isinstance(item.this, exp.Identifier):
            if item.args.get("joins"):
                return None  # a parenthesised join
            db = item.args.get("db")
            cte = self.ctes.get(item.name.lower()) if db is None else None
            if cte is not None:
                cte_alias = cte.args.get("alias")
                if isinstance(cte_alias, exp.TableAlias) and cte_alias.columns:
                    return [c.name.lower() for c in cte_alias.columns]
                return self.output(cte.this)
            return self.table_columns(db.name if db else None, item.name)
        if isinstance(item, exp.Subquery):
            return self.output(item.this)
        return None

    def output(self, query: exp.Expr) -> list[str] | None:
        """Output column names of a query, in order ("" where unnamed)."""
        while isinstance(query, exp.Subquery):
            query = query.this
        while isinstance(query, exp.SetOperation):
            query = query.this
            while isinstance(query, exp.Subquery):
                query = query.this
        if not isinstance(query, exp.Select):
            return None
        items = from_items(query)
        out: list[str] = []
        for p in query.expressions:
            if isinstance(p, exp.Star):
                if any(j.args.get("using") or j.args.get("method") for j in joins_of(query)):
                    return None  # merged columns: DataFusion's own star order
                if p.args.get("except") or p.args.get("replace") or p.args.get("rename"):
                    return None
                for item in items:
                    cols = self.source(item)
                    if cols is None:
                        return None
                    out += cols
            elif isinstance(p, exp.Column) and isinstance(p.this, exp.Star):
                hit = [i for i in items if i.alias_or_name.lower() == p.table.lower()]
                cols = self.source(hit[0]) if len(hit) == 1 else None
                if cols is None:
                    return None
                out += cols
            elif isinstance(p, exp.Alias | exp.Column):
                out.append(p.alias_or_name.lower())
            else:
                out.append("")  # DataFusion names it after the expression
        return out


def from_items(select: exp.Select) -> list[exp.Expr]:
    from_ = select.args.get("from_")
    items = [from_.this] if from_ is not None else []
    return items + [j.this for j in joins_of(select)]


def joins_of(select: exp.Select) -> list[exp.Join]:
    return list(select.args.get("joins") or [])
