"""PostgreSQL function names DataFusion 55 does not know, spelled its way.

``sign(x)``, ``mod(a, b)``, ``ceiling(x)`` and the aggregates ``every(b)``
and ``variance(x)`` failed as unknown functions ("did you mean sin()?").
sqlglot reads all but ``every`` as its own nodes, which the engine's
dialect writes back as ``signum(x)``, ``a % b``, ``ceil(x)`` and
``var_samp(x)`` (``engine/sql/dialect.py``; PostgreSQL's ``variance`` is
the sample variance); ``every`` becomes ``bool_and``. Each means the same
there: ``%`` keeps the sign of the dividend, as ``mod`` does. A query
naming none of them is not parsed.

``to_char(x, 'YYYY-MM')`` with PostgreSQL's pattern, which DataFusion read
as a chrono format (answering the text ``YYYY-MM``), gets the pattern in
chrono's words (``engine/sql/pg_formats.py``); a chrono format (with a
``%``) is kept as written.
"""

from __future__ import annotations

import re

from sqlglot import exp

from engine.sql import pg_formats
from engine.sql.checked_ints import render
from engine.sql.tokens import parsed, peeked

_NAMES = re.compile(r"\b(?:sign|mod|ceiling|every|variance|to_char)\s*\(", re.IGNORECASE)


def _every(node: exp.Expr) -> bool:
    return isinstance(node, exp.Anonymous) and node.name.upper() == "EVERY"


def _renamed(node: exp.Expr) -> bool:
    return (
        isinstance(node, exp.Sign | exp.Ceil | exp.Mod | exp.Variance)
        or _every(node)
        or _postgres_to_char(node)
    )


def _postgres_to_char(node: exp.Expr) -> bool:
    """``to_char`` with a PostgreSQL pattern written as a literal."""
    pattern = node.args.get("format") if isinstance(node, exp.TimeToStr) else None
    return (
        isinstance(pattern, exp.Literal)
        and pattern.is_string
        and pg_formats.is_postgres_pattern(pattern.this)
    )


def as_datafusion(sql: str) -> tuple[exp.Expr, str] | None:
    """(tree, text) of ``sql`` with those functions in DataFusion's words;
    None when it names none of them."""
    if _NAMES.search(sql) is None or (shared := peeked(sql)) is None:
        return None
    if not any(_renamed(n) for n in shared.walk()):
        return None
    read = parsed(sql)
    if read is None:
        return None
    tree, dialect = read
    for node in list(tree.find_all(exp.Anonymous)):
        if _every(node):
            node.replace(exp.LogicalAnd(this=node.expressions[0].copy()))
    for node in list(tree.find_all(exp.TimeToStr)):
        pattern = node.args.get("format")
        if not isinstance(pattern, exp.Literal) or not pattern.is_string:
            continue  # the query stays as written (``render`` refuses it)
        written = pattern.this
        if pg_formats.is_postgres_pattern(written):
            written = pg_formats.chrono_format(written)
        # As DataFusion's own function, whose pattern is written as is.
        node.replace(
            exp.Anonymous(
                this="to_char", expressions=[node.this.copy(), exp.Literal.string(written)]
            )
        )
    text = render(tree, dialect)
    return None if text is None else (tree, text)
