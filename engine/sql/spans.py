"""The parts of UPDATE, DELETE and INSERT ... VALUES statements as written.

sqlglot parses these statements so the engine can check them and find point
lookups, but DataFusion evaluates their expressions from the original text,
sliced here by token positions: re-rendering an expression through sqlglot
changes its meaning (``to_char(ts, '%Y')`` became a Postgres-style format,
``to_hex`` became ``hex``)."""

from __future__ import annotations

from sqlglot.tokens import Token, TokenType

from engine.errors import UnsupportedStatementError
from engine.sql.statements import TextPart
from engine.sql.tokens import depths, matching_close, position


def part(sql: str, tokens: list[Token], first: int, last: int) -> TextPart:
    """The text from token ``first`` to token ``last`` (inclusive)."""
    start = tokens[first].start
    line, col = position(sql, start)
    return TextPart(sql[start : tokens[last].end + 1], line, col)


def _find(
    tokens: list[Token], depth: list[int], start: int, types: set[TokenType], at: int = 0
) -> int:
    """First index >= start of a token of ``types`` at bracket depth ``at``
    (``len(tokens)`` when there is none)."""
    for i in range(start, len(tokens)):
        if depth[i] == at and tokens[i].token_type in types:
            if tokens[i].token_type == TokenType.FROM and tokens[i - 1].token_type == (
                TokenType.DISTINCT
            ):
                continue  # `a IS [NOT] DISTINCT FROM b` inside an expression
            return i
    return len(tokens)


def _split(
    tokens: list[Token], depth: list[int], first: int, end: int, at: int
) -> list[tuple[int, int]]:
    """(first, last) token index of each comma-separated item in [first, end)."""
    items: list[tuple[int, int]] = []
    start = first
    for i in range(first, end):
        if depth[i] == at and tokens[i].token_type == TokenType.COMMA:
            items.append((start, i - 1))
            start = i + 1
    items.append((start, end - 1))
    return items


def _incomplete(what: str) -> UnsupportedStatementError:
    return UnsupportedStatementError(f"Cannot find the {what} of this statement in its text")


def update_parts(
    sql: str, tokens: list[Token], n_assignments: int
) -> tuple[TextPart, tuple[TextPart, ...], TextPart | None]:
    """(table reference with its alias, each SET value, WHERE predicate or None)."""
    depth = depths(tokens)
    set_at = _find(tokens, depth, 1, {TokenType.SET})
    if set_at <= 1 or set_at >= len(tokens):
        raise _incomplete("SET clause")
    target = part(sql, tokens, 1, set_at - 1)
    end = _find(tokens, depth, set_at + 1, {TokenType.FROM, TokenType.WHERE, TokenType.RETURNING})
    values = _set_values(sql, tokens, depth, set_at, end, n_assignments, "SET values")
    return target, values, _where(sql, tokens, depth, end)


def _set_values(
    sql: str, tokens: list[Token], depth: list[int], set_at: int, end: int, n: int, what: str
) -> tuple[TextPart, ...]:
    """The value of each ``column = value`` between SET (at ``set_at``) and ``end``."""
    values: list[TextPart] = []
    for first, last in _split(tokens, depth, set_at + 1, end, 0):
        eq = _find(tokens, depth, first, {TokenType.EQ})
        if eq >= last:
            raise _incomplete(what)
        values.append(part(sql, tokens, eq + 1, last))
    if len(values) != n:
        raise _incomplete(what)
    return tuple(values)


def delete_parts(sql: str, tokens: list[Token]) -> tuple[TextPart, TextPart | None]:
    """(table reference with its alias, WHERE predicate or None)."""
    depth = depths(tokens)
    first = 1
    if first < len(tokens) and tokens[first].token_type == TokenType.FROM:
        first += 1
    end = _find(tokens, depth, first, {TokenType.USING, TokenType.WHERE, TokenType.RETURNING})
    if end <= first:
        raise _incomplete("table")
    return part(sql, tokens, first, end - 1), _where(sql, tokens, depth, end)


def from_part(sql: str, tokens: list[Token]) -> TextPart:
    """The tables of ``UPDATE t SET ... FROM <tables> [WHERE ...]``, as written."""
    depth = depths(tokens)
    set_at = _find(tokens, depth, 1, {TokenType.SET})
    at = _find(tokens, depth, set_at + 1, {TokenType.FROM})
    end = _find(tokens, depth, at + 1, {TokenType.WHERE, TokenType.RETURNING})
    if at >= len(tokens) or end <= at + 1:
        raise _incomplete("FROM tables")
    return part(sql, tokens, at + 1, end - 1)


def using_part(sql: str, tokens: list[Token]) -> TextPart:
    """The tables of ``DELETE ... USING <tables> [WHERE ...]``, as written."""
    depth = depths(tokens)
    at = _find(tokens, depth, 1, {TokenType.USING})
    end = _find(tokens, depth, at + 1, {TokenType.WHERE, TokenType.RETURNING})
    if at >= len(tokens) or end <= at + 1:
        raise _incomplete("USING tables")
    return part(sql, tokens, at + 1, end - 1)


def _where(sql: str, tokens: list[Token], depth: list[int], start: int) -> TextPart | None:
    at = _find(tokens, depth, start, {TokenType.WHERE})
    if at >= len(tokens):
        return None
    end = _find(tokens, depth, at + 1, {TokenType.RETURNING})
    if end <= at + 1:
        raise _incomplete("WHERE predicate")
    return part(sql, tokens, at + 1, end - 1)


def values_parts(
    sql: str, tokens: list[Token], widths: list[int | None]
) -> tuple[tuple[TextPart, ...], ...]:
    """Each INSERT ... VALUES item as written. ``widths`` gives each row's
    number of values (``None`` for a row written without parentheses)."""
    depth = depths(tokens)
    i = _find(tokens, depth, 0, {TokenType.VALUES})
    rows: list[tuple[TextPart, ...]] = []
    for width in widths:
        i += 1  # past VALUES or the comma between rows
        if i >= len(tokens):
            raise _incomplete("VALUES rows")
        if width is None:
            end = _find(tokens, depth, i, {TokenType.COMMA, TokenType.ON, TokenType.RETURNING})
            rows.append((part(sql, tokens, i, end - 1),))
            i = end
            continue
        if tokens[i].token_type != TokenType.L_PAREN:
            raise _incomplete("VALUES rows")
        close = matching_close(tokens, i)
        items = _split(tokens, depth, i + 1, close, depth[i] + 1)
        if len(items) != width or any(a > b for a, b in items):
            raise _incomplete("VALUES rows")
        rows.append(tuple(part(sql, tokens, a, b) for a, b in items))
        i = close + 1
    return tuple(rows)


def conflict_parts(
    sql: str, tokens: list[Token], n_assignments: int
) -> tuple[tuple[TextPart, ...], TextPart | None]:
    """(each ON CONFLICT ... DO UPDATE SET value, its WHERE predicate or None)."""
    depth = depths(tokens)
    start = next(
        (
            i
            for i in range(len(tokens) - 1)
            if depth[i] == 0
            and tokens[i].token_type == TokenType.ON
            and tokens[i + 1].text.upper() == "CONFLICT"
        ),
        None,
    )
    if start is None:
        raise _incomplete("ON CONFLICT clause")
    set_at = _find(tokens, depth, start, {TokenType.SET})
    end = _find(tokens, depth, set_at + 1, {TokenType.WHERE, TokenType.RETURNING})
    if set_at >= len(tokens) or end <= set_at + 1:
        raise _incomplete("DO UPDATE SET values")
    values = _set_values(sql, tokens, depth, set_at, end, n_assignments, "DO UPDATE SET values")
    return values, _where(sql, tokens, depth, end)
