"""``FETCH FIRST n ROWS ONLY``, SQL's standard spelling of LIMIT.

DataFusion 55 parses it and then refuses it ("FETCH clause is not supported
yet"); ``FETCH {FIRST | NEXT} [n] {ROW | ROWS} ONLY`` is exactly ``LIMIT n``
(n defaults to 1), so it becomes that. ``WITH TIES`` and ``PERCENT`` mean
something else and are refused by name.
"""

from __future__ import annotations

from sqlglot import exp

from engine.errors import UnsupportedStatementError
from engine.sql.relations import ColumnsOf
from engine.sql.tokens import parsed


def as_limit(sql: str, columns_of: ColumnsOf) -> tuple[exp.Expr, str] | None:
    """The query with each FETCH FIRST written as LIMIT, as (tree, SQL);
    None when it has none. ``columns_of`` is unused (the signature of the
    runner's other rewrites)."""
    del columns_of
    if (read := parsed(sql)) is None:
        return None
    tree, dialect = read
    fetches = list(tree.find_all(exp.Fetch))
    if not fetches:
        return None
    for fetch in fetches:
        options = fetch.args.get("limit_options")
        if options is not None and options.args.get("with_ties"):
            raise UnsupportedStatementError("FETCH ... WITH TIES is not supported; use LIMIT")
        if options is not None and options.args.get("percent"):
            raise UnsupportedStatementError("FETCH ... PERCENT is not supported; use LIMIT")
        count = fetch.args.get("count") or exp.Literal.number(1)
        fetch.replace(exp.Limit(expression=count.copy()))
    return tree, tree.sql(dialect=dialect)
