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
from collections.abc import Mapping
from typing import Any

from sqlglot import exp
from sqlglot.tokens import TokenType

from engine.sql.tokens import parsed, tokenize

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
    if _EMPTY_IN.search(sql) is None or (read := parsed(sql)) is None:
        return None
    tree, dialect = read
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


_NULL_IN_LIST = re.compile(r"\bIN\s*\([^)]*\bNULL\b", re.IGNORECASE)
_PARAM_IN_LIST = re.compile(r"\bIN\s*\([^)]*\$", re.IGNORECASE)


def _is_null(item: exp.Expr, null_params: set[str]) -> bool:
    while isinstance(item, exp.Cast | exp.Paren):
        item = item.this
    if isinstance(item, exp.Null):
        return True
    return isinstance(item, exp.Parameter) and item.this.name in null_params


def without_null_in_lists(
    sql: str, params: Mapping[str, Any] | None = None
) -> tuple[exp.Expr, str] | None:
    """(tree, text) of ``sql`` with each ``x IN (v1, .., NULL, ..)`` written
    ``(x IN (v1, ..) OR NULL)`` (``x IN (NULL)``: NULL), or None when no IN
    list holds a NULL: a NULL literal, a cast of one, or a placeholder whose
    bound value (in ``params``, keyed as DataFusion's ``$n`` / ``$name``) is
    None. The same truth value in SQL's three-valued
    logic, but out of reach of DataFusion 55's IN-list simplifier, which
    merges ``x NOT IN (1, 2) OR x NOT IN (-1, 2, NULL)`` into ``x NOT IN
    (2)`` and ``x IN (1, 2) AND x IN (1, NULL)`` into ``x IN (1)``, dropping
    the NULL: TRUE where SQL says NULL (x = 1), and under NOT, TRUE where SQL
    says NULL (x = 2)."""
    nulls = {k for k, v in (params or {}).items() if v is None}
    if _NULL_IN_LIST.search(sql) is None and not (nulls and _PARAM_IN_LIST.search(sql)):
        return None
    if (read := parsed(sql)) is None:
        return None
    tree, dialect = read
    found = [
        node
        for node in tree.find_all(exp.In)
        if any(_is_null(e, nulls) for e in node.expressions)
        and not any(node.args.get(k) for k in ("query", "unnest", "field"))
    ]
    if not found:
        return None
    for node in found:
        rest = [e for e in node.expressions if not _is_null(e, nulls)]
        unknown = exp.cast(exp.null(), exp.DataType.build("boolean"))
        if not rest:
            node.replace(unknown)
        else:
            node.set("expressions", rest)
            node.replace(exp.Paren(this=exp.or_(node.copy(), unknown)))
    return tree, tree.sql(dialect=dialect)
