"""Coercions SQLite and PostgreSQL accept where DataFusion 55 refuses, handled
only where the answer cannot change.

Unary ``+`` is the identity in SQL; DataFusion refuses it on anything but
numbers, intervals and timestamps (``+ 'text'``, ``+ col`` over a TEXT
column). When it does, the query is retried with the unary plus signs taken
out, at their token positions (the rest of the text as written). The result
is the operand itself, exactly what SQLite returns.

An empty ``IN ()`` list (SQLite's syntax, refused by DataFusion's parser) is
FALSE for any left side, NULL included; ``NOT IN ()`` is TRUE.
"""

from __future__ import annotations

import re

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError
from sqlglot.tokens import TokenType

from engine.sql.tokens import dialect_for, tokenize

UNARY_PLUS_REFUSAL = "Unary operator '+' only supports"

# Tokens after which a `+` is binary (they end an operand).
_OPERAND_END = {
    TokenType.NUMBER,
    TokenType.STRING,
    TokenType.IDENTIFIER,
    TokenType.VAR,
    TokenType.R_PAREN,
    TokenType.R_BRACKET,
    TokenType.NULL,
    TokenType.TRUE,
    TokenType.FALSE,
    TokenType.END,
    TokenType.STAR,
    TokenType.PARAMETER,
    TokenType.PLACEHOLDER,
}


def without_unary_plus(sql: str) -> str | None:
    """``sql`` with every unary ``+`` removed, or None when it has none."""
    tokens = tokenize(sql)
    cuts = [
        tok
        for i, tok in enumerate(tokens)
        if tok.token_type == TokenType.PLUS
        and (i == 0 or tokens[i - 1].token_type not in _OPERAND_END)
    ]
    if not cuts:
        return None
    out = sql
    for tok in reversed(cuts):
        out = out[: tok.start] + " " + out[tok.end + 1 :]
    return out


# ``x IN ()`` / ``x NOT IN ()``: an empty list is SQLite's (and MySQL's)
# syntax, which DataFusion's parser refuses. Nothing is in an empty set, so
# ``x IN ()`` is FALSE even when x is NULL (as SQLite answers), and NOT IN TRUE.
_EMPTY_IN = re.compile(r"\bIN\s*\(\s*\)", re.IGNORECASE)


def without_empty_in_lists(sql: str) -> tuple[exp.Expr, str] | None:
    """(tree, text) of ``sql`` with each ``IN ()`` replaced by FALSE (so ``NOT
    IN ()`` reads ``NOT FALSE``), or None when there is none. The text is the
    tree rendered again in the dialect it was read in."""
    if _EMPTY_IN.search(sql) is None:
        return None
    dialect = dialect_for(sql)
    try:
        tree = sqlglot.parse_one(sql, read=dialect)
    except ParseError:
        return None
    empty = [
        node
        for node in tree.find_all(exp.In)
        if not node.expressions and not any(node.args.get(k) for k in ("query", "unnest", "field"))
    ]
    if not empty:
        return None
    for node in empty:
        node.replace(exp.false())
    return tree, tree.sql(dialect=dialect)
