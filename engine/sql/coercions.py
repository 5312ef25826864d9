"""Coercions SQLite and PostgreSQL accept where DataFusion 55 refuses, handled
only where the answer cannot change.

Unary ``+`` is the identity in SQL; DataFusion refuses it on anything but
numbers, intervals and timestamps (``+ 'text'``, ``+ col`` over a TEXT
column). When it does, the query is retried with the unary plus signs taken
out, at their token positions (the rest of the text as written). The result
is the operand itself, exactly what SQLite returns.
"""

from __future__ import annotations

from sqlglot.tokens import TokenType

from engine.sql.tokens import tokenize

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
