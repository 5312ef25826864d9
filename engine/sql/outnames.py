"""Duplicate output names in a query's result (``SELECT a, a FROM t``,
``SELECT (SELECT ...), (SELECT ...)``).

SQL allows them; DataFusion 55 refuses a projection whose expressions have
the same name. When it does, the query is retried with the later duplicate
given a private alias (spliced in at token positions, the rest of the text as
written), and the result column gets its duplicate name back: an Arrow table
holds repeated names, and ``Result.to_pandas`` de-duplicates the labels.
"""

from __future__ import annotations

import re

from sqlglot.tokens import TokenType

from engine.sql.rewrite import CLAUSE_END
from engine.sql.tokens import tokenize

_DUPLICATE = re.compile(
    r"Projections require unique expression names but the expression .* at position (\d+) "
    r"and .* at position (\d+) have the same name",
    re.DOTALL,
)
_ALIAS = "__kalam_dup_{}"


def duplicate_positions(message: str) -> tuple[int, int] | None:
    """(first, later) projection positions of DataFusion's duplicate-name error."""
    m = _DUPLICATE.search(message)
    return (int(m.group(1)), int(m.group(2))) if m else None


def private_alias(index: int) -> str:
    return _ALIAS.format(index)


def is_private_alias(name: str) -> bool:
    """Whether ``name`` is a private alias the result gets renamed from."""
    return re.fullmatch(_ALIAS.format(r"\d+"), name) is not None


def alias_projection(sql: str, index: int) -> str | None:
    """``sql`` with projection ``index`` of its first top-level SELECT renamed
    to a private alias, or None when the projection cannot be found (a star)."""
    tokens = tokenize(sql)
    depth, start = 0, None
    for i, tok in enumerate(tokens):
        if tok.token_type == TokenType.L_PAREN:
            depth += 1
        elif tok.token_type == TokenType.R_PAREN:
            depth -= 1
        elif depth == 0 and tok.token_type == TokenType.SELECT:
            start = i + 1
            break
    if start is None:
        return None
    while start < len(tokens) and tokens[start].token_type in (TokenType.DISTINCT, TokenType.ALL):
        start += 1
    spans: list[tuple[int, int]] = []
    depth, first = 0, start
    end = len(tokens)
    for i in range(start, len(tokens)):
        tt = tokens[i].token_type
        if tt in (TokenType.L_PAREN, TokenType.L_BRACKET):
            depth += 1
        elif tt in (TokenType.R_PAREN, TokenType.R_BRACKET):
            depth -= 1
        elif depth == 0 and tt == TokenType.COMMA:
            spans.append((first, i - 1))
            first = i + 1
        elif (
            depth == 0
            and tt in CLAUSE_END
            and not (tt == TokenType.FROM and tokens[i - 1].token_type == TokenType.DISTINCT)
        ):
            end = i
            break
    spans.append((first, end - 1))
    if index >= len(spans):
        return None
    a, b = spans[index]
    if a > b or tokens[b].token_type == TokenType.STAR:
        return None
    alias = f'"{private_alias(index)}"'
    if b - 1 >= a and tokens[b - 1].token_type == TokenType.ALIAS:
        edit = (tokens[b - 1].start, tokens[b].end + 1, f"AS {alias}")
    elif (
        b - 1 >= a
        and tokens[b].token_type in (TokenType.VAR, TokenType.IDENTIFIER)
        and tokens[b - 1].token_type
        in (TokenType.NUMBER, TokenType.VAR, TokenType.IDENTIFIER, TokenType.R_PAREN)
        and not (b - 2 >= a and tokens[b - 1].token_type == TokenType.DOT)
    ):  # implicit alias: `expr name`
        edit = (tokens[b].start, tokens[b].end + 1, alias)
    else:
        edit = (tokens[b].end + 1, tokens[b].end + 1, f" AS {alias}")
    return sql[: edit[0]] + edit[2] + sql[edit[1] :]


_AMBIGUOUS = re.compile(
    r"Schema contains qualified field name \S+ and unqualified field name (\S+) which would be "
    r"ambiguous"
)


def ambiguous_name(message: str) -> str | None:
    """The output name of DataFusion's "qualified ... and unqualified ... would be
    ambiguous" refusal (``SELECT a, b AS a FROM t``)."""
    m = _AMBIGUOUS.search(message)
    return m.group(1).strip("\"'") if m else None


def later_projection_named(sql: str, name: str) -> int | None:
    """Index of the last top-level projection whose output name is ``name``,
    when at least two have it."""
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import SqlglotError

    from engine.sql.tokens import dialect_for

    try:
        tree = sqlglot.parse_one(sql, read=dialect_for(sql))
    except SqlglotError:
        return None
    while isinstance(tree, exp.SetOperation):
        tree = tree.this
    if not isinstance(tree, exp.Select):
        return None
    hits = [i for i, p in enumerate(tree.expressions) if p.alias_or_name.lower() == name.lower()]
    return hits[-1] if len(hits) > 1 else None
