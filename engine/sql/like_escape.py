"""``LIKE`` / ``ILIKE`` with an ``ESCAPE`` character other than the backslash.

DataFusion 55 refuses ``x LIKE 'a!_%' ESCAPE '!'`` ("LIKE does not support
escape_char other than the backslash"), though SQL defines it and
PostgreSQL and DuckDB run it. When the pattern and the escape are string
literals, the pattern is spelled again with the backslash as its escape, at
their token positions (the rest of the text as written): ``!_`` becomes
``\\_``, ``!!`` a plain ``!``, and a backslash the pattern means literally
becomes ``\\\\``. ``ESCAPE ''`` (no escape character, as in PostgreSQL)
escapes every backslash. The answer is the same pattern match, character for
character. A pattern that ends with its escape character is an error, as in
PostgreSQL; a pattern that is not a literal keeps DataFusion's refusal.
"""

from __future__ import annotations

from sqlglot.tokens import TokenType

from engine.errors import QueryError
from engine.sql.tokens import tokenize

_LIKES = {TokenType.LIKE, TokenType.ILIKE}


def _literal(raw: str) -> bool:
    """A plain quoted string as written (not E'...', $$...$$ or N'...')."""
    return raw.startswith("'") and raw.endswith("'")


def _backslashed(pattern: str, escape: str) -> str:
    out: list[str] = []
    chars = iter(pattern)
    for ch in chars:
        if escape and ch == escape:
            nxt = next(chars, None)
            if nxt is None:
                raise QueryError(
                    f"LIKE pattern {pattern!r} must not end with its escape character {escape!r}"
                )
            out.append("\\" + nxt if nxt in "%_\\" else nxt)
        elif ch == "\\":
            out.append("\\\\")
        else:
            out.append(ch)
    return "".join(out)


def backslash_escapes(sql: str) -> str | None:
    """``sql`` with every ``<literal> ESCAPE '<c>'`` after LIKE / ILIKE whose
    escape is not the backslash written with the backslash; None when there
    is none."""
    if "escape" not in sql.lower():
        return None
    tokens = tokenize(sql)
    edits: list[tuple[int, int, str]] = []
    for i, tok in enumerate(tokens):
        if tok.token_type != TokenType.ESCAPE or i < 2 or i + 1 >= len(tokens):
            continue
        pattern, escape, like = tokens[i - 1], tokens[i + 1], tokens[i - 2]
        if (
            like.token_type not in _LIKES
            or pattern.token_type != TokenType.STRING
            or escape.token_type != TokenType.STRING
            or not _literal(sql[pattern.start : pattern.end + 1])
            or not _literal(sql[escape.start : escape.end + 1])
            or escape.text == "\\"
            or len(escape.text) > 1
        ):
            continue
        text = _backslashed(pattern.text, escape.text).replace("'", "''")
        edits.append((pattern.start, escape.end + 1, f"'{text}' ESCAPE '\\'"))
    if not edits:
        return None
    out = sql
    for a, b, text in reversed(edits):
        out = out[:a] + text + out[b:]
    return out
