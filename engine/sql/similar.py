"""``x [NOT] SIMILAR TO 'pattern' [ESCAPE 'c']`` with SQL's meaning.

DataFusion 55 reads a SIMILAR TO pattern as a regular expression searched
anywhere in the string: ``'apple' SIMILAR TO 'ppl'`` was TRUE, ``'apple'
SIMILAR TO 'a%'`` FALSE (``%`` taken literally) and ``'a%b' SIMILAR TO
'a%'`` TRUE, so a DELETE ... WHERE s SIMILAR TO 'a%' deleted the wrong
rows. SQL (and PostgreSQL) match the whole string, with ``%`` and ``_`` as
LIKE's wildcards, ``|``, ``*``, ``+``, ``?``, ``{m,n}``, ``( )`` and
bracket classes as in regular expressions, ``.``, ``^`` and ``$`` taken
literally, and an escape character (``\\`` unless ESCAPE says otherwise).

Each SIMILAR TO with a literal pattern is rewritten to ``x ~ '<regex>'``,
the pattern translated and anchored; any other form (a pattern from a
column or parameter, POSIX ``[[:alpha:]]`` classes) is refused with an
error naming it, never guessed.
"""

from __future__ import annotations

import re

from sqlglot import exp

from engine.errors import UnsupportedStatementError
from engine.sql.tokens import parsed

_SIMILAR = re.compile(r"\bSIMILAR\b", re.IGNORECASE)
_PLAIN = re.compile(r"[A-Za-z0-9\s]")
_ALWAYS_META = "|*+?{}()"  # regular-expression operators in SIMILAR TO too


def _refuse(what: str) -> UnsupportedStatementError:
    return UnsupportedStatementError(f"SIMILAR TO not supported: {what}")


def to_regex(pattern: str, escape: str | None = "\\") -> str:
    """The anchored regular expression (Rust ``regex`` syntax, as DataFusion
    uses) matching exactly the strings SQL's SIMILAR TO ``pattern`` matches."""
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if escape and c == escape:
            if i + 1 == n:
                raise _refuse("the pattern ends with its escape character")
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        if c == "[":
            i = _bracket(pattern, i, out)
            continue
        if c == "%":
            out.append(".*")
        elif c == "_":
            out.append(".")
        elif c in _ALWAYS_META or _PLAIN.match(c):
            out.append(c)
        else:
            out.append(re.escape(c))  # `.`, `^`, `$`, `\`... are literal here
        i += 1
    return "^(?s:" + "".join(out) + ")$"


def _bracket(pattern: str, i: int, out: list[str]) -> int:
    """Copy the bracket class starting at ``pattern[i] == '['``; returns the
    index after its ``]``."""
    j = i + 1
    parts = ["["]
    if j < len(pattern) and pattern[j] == "^":
        parts.append("^")
        j += 1
    first = True
    while j < len(pattern):
        c = pattern[j]
        if c == "]" and not first:
            parts.append("]")
            out.append("".join(parts))
            return j + 1
        if c == "[" and j + 1 < len(pattern) and pattern[j + 1] in ":.=":
            raise _refuse("POSIX classes such as [[:alpha:]] in a pattern")
        if c.isalnum() or (
            c == "-" and not first and j + 1 < len(pattern) and pattern[j + 1] != "]"
        ):
            parts.append(c)
        else:
            parts.append("\\" + c)
        first = False
        j += 1
    raise _refuse("a '[' without its ']' in a pattern")


def _literal(node: exp.Expression | None, what: str) -> str:
    if isinstance(node, exp.Literal) and node.is_string:
        return str(node.this)
    raise _refuse(f"{what} must be a string literal")


def similar_to_regex(sql: str) -> tuple[exp.Expr, str] | None:
    """(tree, text) of ``sql`` with every SIMILAR TO rewritten as an anchored
    regular-expression match, or None when it has none."""
    if _SIMILAR.search(sql) is None:
        return None
    if (read := parsed(sql)) is None:
        return None
    tree, dialect = read
    found = list(tree.find_all(exp.SimilarTo))
    if not found:
        return None
    for node in found:
        escape: str | None = "\\"
        target: exp.Expression = node
        if isinstance(node.parent, exp.Escape) and node.arg_key == "this":
            escape = _literal(node.parent.expression, "the ESCAPE character") or None
            if escape is not None and len(escape) != 1:
                raise _refuse("ESCAPE takes one character")
            target = node.parent
        regex = to_regex(_literal(node.expression, "the pattern"), escape)
        target.replace(exp.RegexpLike(this=node.this, expression=exp.Literal.string(regex)))
    return tree, tree.sql(dialect=dialect)
