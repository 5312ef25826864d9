"""Limits that keep one statement from taking the process down.

DataFusion's planner recurses once per operator of a chain (``1+1+...``,
``a OR b OR ...``) and overflows the native stack somewhere between 3,000
and 10,000 terms (measured on this stack), which kills the process rather
than raising; sqlglot recurses once per nested parenthesis. These checks run
on the tokens before anything is parsed or planned, and refuse a statement
with ``StatementTooComplexError`` naming the limit and where it was crossed.
"""

from __future__ import annotations

from sqlglot.tokens import Token, TokenType

from engine.errors import StatementTooComplexError
from engine.sql.tokens import StatementText, position

MAX_STATEMENT_BYTES = 1 << 20  # larger loads belong in parameters or insert_arrow
MAX_NESTING = 40  # parentheses / brackets (DataFusion's own parser stops at 50)
MAX_TERMS = 1_000  # operators chained in one expression

# Tokens that chain operands into ever deeper expression nodes (comparisons
# do not chain, so ``a = 1 OR a = 2`` counts its ORs only).
_OPERATORS = {
    TokenType.PLUS,
    TokenType.DASH,
    TokenType.STAR,
    TokenType.SLASH,
    TokenType.MOD,
    TokenType.DPIPE,
    TokenType.AND,
    TokenType.OR,
    TokenType.AMP,
    TokenType.PIPE,
    TokenType.CARET,
}
_OPEN = {TokenType.L_PAREN, TokenType.L_BRACKET}
_CLOSE = {TokenType.R_PAREN, TokenType.R_BRACKET}


def check_text(sql: str) -> None:
    size = len(sql.encode("utf-8", "surrogatepass"))
    if size > MAX_STATEMENT_BYTES:
        raise StatementTooComplexError(
            f"Statement too large: {size} bytes (the limit is {MAX_STATEMENT_BYTES}); "
            "bind values as parameters or load data with insert_arrow / --persist",
            limit="statement_bytes",
        )


def check_tokens(tokens: list[Token], piece: StatementText) -> None:
    """Refuse nesting deeper than ``MAX_NESTING`` or an expression chaining more
    than ``MAX_TERMS`` operators (counted per parenthesised group, commas
    separating independent expressions)."""
    depth = 0
    terms = [0]  # operators since the last comma, per open group
    for tok in tokens:
        tt = tok.token_type
        if tt in _OPEN:
            depth += 1
            terms.append(0)
            if depth > MAX_NESTING:
                _refuse(f"nesting deeper than {MAX_NESTING} levels", tok, piece, "nesting")
        elif tt in _CLOSE:
            depth = max(depth - 1, 0)
            inner = terms.pop() if len(terms) > 1 else 0
            terms[-1] += inner  # a group is one operand, but its operators still count
        elif tt == TokenType.COMMA:
            terms[-1] = 0
        elif tt in _OPERATORS:
            terms[-1] += 1
            if sum(terms) > MAX_TERMS:
                _refuse(f"more than {MAX_TERMS} terms in one expression", tok, piece, "terms")


def _refuse(what: str, tok: Token, piece: StatementText, limit: str) -> None:
    line, column = position(piece.sql, tok.start)
    if line == 1:
        column += piece.column - 1
    raise StatementTooComplexError(
        f"Statement too complex: {what}; split it up or use a table/parameters for long lists",
        line=piece.line + line - 1,
        column=column,
        limit=limit,
    )
