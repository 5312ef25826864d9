"""Tokenizing statement text with sqlglot, and positions in it.

The dialect is PostgreSQL's, unless the text only tokenizes with ``$`` read
as a parameter sigil everywhere (``$1,$2`` trips Postgres' dollar quoting).
Tokenizer errors become ``SqlParseError`` with a line and column.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlglot
from sqlglot.errors import TokenError
from sqlglot.tokens import Token

from engine.errors import SqlParseError
from engine.sql.dialect import Kalam, KalamPostgres

DIALECT: Any = KalamPostgres


@dataclass(frozen=True)
class StatementText:
    """One statement's text and where it starts in the submitted SQL (1-based)."""

    sql: str
    line: int
    column: int
    start: int


def position(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return line, column


def dialect_for(sql: str) -> Any:
    """PostgreSQL's dialect, unless the text only tokenizes with ``$`` read as a
    parameter sigil everywhere (``$1,$2`` trips Postgres' dollar quoting)."""
    try:
        sqlglot.tokenize(sql, read=DIALECT)
        return DIALECT
    except TokenError:
        return Kalam


def tokenize(sql: str, *, at: StatementText | None = None) -> list[Token]:
    try:
        return sqlglot.tokenize(sql, read=dialect_for(sql))
    except TokenError as exc:
        # sqlglot's message quotes the text up to where tokenizing failed.
        text = str(exc)
        context = (
            text.split("Error tokenizing '", 1)[-1][:-1] if "Error tokenizing '" in text else ""
        )
        offset = sql.find(context) + len(context) - 1 if context and sql.find(context) >= 0 else 0
        quote = last_open_quote(sql, offset)
        if quote is not None:
            offset = quote
        line, col = position(sql, max(offset, 0))
        if at is not None:
            col = (at.column - 1 if line == 1 else 0) + col
            line = at.line + line - 1
        what = "unterminated quoted text" if quote is not None else "cannot read the SQL text here"
        raise SqlParseError(f"Syntax error: {what}", line=line, column=col) from None


def last_open_quote(sql: str, upto: int) -> int | None:
    """Offset of the quote that opens an unterminated string / identifier, if the
    tokenizer stopped inside one."""
    for q in ("'", '"'):
        start = sql.rfind(q, 0, upto + 1)
        if start >= 0 and sql.count(q, start) % 2 == 1:
            return start
    return None
