"""Syntax slips DataFusion's parser would accept silently, refused with a position.

``SELECT id, FROM t`` runs in DataFusion as ``SELECT id FROM t``; a person
who typed it most likely lost a column. A comma before FROM / WHERE / a
closing bracket / the end of the statement, or two commas in a row, is a
``SqlParseError`` pointing at the comma, checked on the statement's tokens
before anything is planned.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlglot.tokens import Token, TokenType

from engine.errors import SqlParseError
from engine.sql.tokens import position

#: Keywords that can never follow a comma in a list (token types, so a
#: string literal or a quoted identifier spelled ``'from'`` is not one).
_AFTER_COMMA = {
    TokenType.FROM,
    TokenType.WHERE,
    TokenType.GROUP_BY,
    TokenType.ORDER_BY,
    TokenType.HAVING,
    TokenType.LIMIT,
    TokenType.OFFSET,
    TokenType.UNION,
    TokenType.EXCEPT,
    TokenType.INTERSECT,
    TokenType.WINDOW,
    TokenType.QUALIFY,
    TokenType.ON,
    TokenType.SET,
    TokenType.VALUES,
    TokenType.RETURNING,
}


def check_slips(tokens: Sequence[Token], sql: str, line: int = 1, column: int = 1) -> None:
    """Refuse a dangling comma (before FROM / a closing bracket / the end of the
    statement) or two commas in a row: DataFusion would accept some silently."""
    for i, tok in enumerate(tokens):
        if tok.token_type != TokenType.COMMA:
            continue
        nxt = tokens[i + 1] if i + 1 < len(tokens) else None
        if nxt is None:
            what = "a comma at the end of the statement"
        elif nxt.token_type == TokenType.COMMA:
            what = "two commas in a row"
        elif nxt.token_type in (TokenType.R_PAREN, TokenType.R_BRACKET):
            what = f"a comma before '{nxt.text}'"
        elif nxt.token_type in _AFTER_COMMA:
            what = f"a comma before {nxt.text.upper()}"
        else:
            continue
        ln, col = position(sql, tok.start)
        raise SqlParseError(
            f"Syntax error: {what}; remove the comma or add the missing item",
            line=line + ln - 1,
            column=(column - 1 if ln == 1 else 0) + col,
        )
