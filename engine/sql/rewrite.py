"""Token-level edits of statement text, for the few places where the text
DataFusion or sqlglot receives must differ from what the user wrote:
INSERT ... SELECT's query slice (names kept as written), positional aliases
for it, and the MODIFY COLUMN spelling. (Edits of query text at run time live
in ``engine/sql/query_edits.py``.)"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from sqlglot import exp
from sqlglot.tokens import Token, TokenType

from engine.sql.tokens import tokenize

CLAUSE_END = {
    TokenType.FROM,
    TokenType.WHERE,
    TokenType.GROUP_BY,
    TokenType.ORDER_BY,
    TokenType.LIMIT,
    TokenType.UNION,
    TokenType.EXCEPT,
    TokenType.INTERSECT,
    TokenType.HAVING,
}


def alias_projections(query: str) -> str:
    """Name each top-level projection of an INSERT's SELECT positionally.

    INSERT ... SELECT binds columns by position, but DataFusion refuses a
    projection with two identical names (``SELECT value, value``)."""
    tokens = tokenize(query)
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
        return query
    if start < len(tokens) and tokens[start].token_type == TokenType.DISTINCT:
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
        ):  # (`a IS DISTINCT FROM b` is an expression)
            end = i
            break
    spans.append((first, end - 1))

    def explicit(a: int, b: int) -> str | None:
        if b - 1 >= a and tokens[b - 1].token_type == TokenType.ALIAS:
            return _alias_name(tokens[b])
        if (
            b - 1 >= a
            and tokens[b].token_type in (TokenType.VAR, TokenType.IDENTIFIER)
            and tokens[b - 1].token_type
            in (TokenType.NUMBER, TokenType.VAR, TokenType.IDENTIFIER, TokenType.R_PAREN)
        ):  # implicit alias: `expr name`
            return _alias_name(tokens[b])
        return None

    names = [explicit(a, b) for a, b in spans]
    edits = []
    for n, (a, b) in enumerate(spans):
        if a > b or tokens[b].token_type == TokenType.STAR:
            return query  # `*` cannot be aliased; leave the query as written
        if names[n] is not None and names.count(names[n]) == 1:
            # A name the user gave stays (ORDER BY may use it); only a repeated one
            # is renamed. Unnamed projections get names no user name can equal.
            continue
        if b - 1 >= a and tokens[b - 1].token_type == TokenType.ALIAS:
            edits.append((tokens[b - 1].start, tokens[b].end + 1, f'AS "__kalam_c{n}"'))
        elif names[n] is not None:
            edits.append((tokens[b].start, tokens[b].end + 1, f'"__kalam_c{n}"'))
        else:
            edits.append((tokens[b].end + 1, tokens[b].end + 1, f' AS "__kalam_c{n}"'))
    out = query
    for a, b, text in reversed(edits):
        out = out[:a] + text + out[b:]
    return out


def _alias_name(token: Token) -> str:
    """An alias as DataFusion names it: quoted as written, else lower case."""
    return token.text if token.token_type == TokenType.IDENTIFIER else token.text.lower()


def modify_to_alter_column(sql: str, tokens: list[Token]) -> str:
    """``ALTER TABLE t MODIFY [COLUMN] c TYPE`` (MySQL / KalamDB spelling) ->
    ``ALTER TABLE t ALTER COLUMN c TYPE TYPE`` (which sqlglot parses)."""
    words = [t.text.upper() for t in tokens]
    if words[:2] != ["ALTER", "TABLE"] or "MODIFY" not in words:
        return sql
    i = words.index("MODIFY")
    j = i + 1
    if j < len(words) and words[j] == "COLUMN":
        j += 1
    if j + 1 >= len(tokens):
        return sql
    col, nxt = tokens[j], tokens[j + 1]
    middle = "" if words[j + 1] == "TYPE" else " TYPE"
    return (
        sql[: tokens[i].start]
        + "ALTER COLUMN "
        + sql[col.start : col.end + 1]
        + middle
        + " "
        + sql[nxt.start :]
    )


def insert_query_text(sql: str, tokens: list[Token]) -> str:
    """The SELECT of ``INSERT [OR x] INTO t [[AS] alias] [(cols)] <SELECT>
    [ON CONFLICT ...] [RETURNING ...]``, as written."""
    i = 1
    if i < len(tokens) and tokens[i].token_type == TokenType.OR:
        i += 2  # INSERT OR REPLACE / OR IGNORE
    if i < len(tokens) and tokens[i].token_type == TokenType.INTO:
        i += 1
    i += 1  # table name
    while i + 1 < len(tokens) and tokens[i].token_type == TokenType.DOT:
        i += 2
    if i < len(tokens) and tokens[i].token_type == TokenType.ALIAS:
        i += 2
    elif i < len(tokens) and tokens[i].token_type in (TokenType.VAR, TokenType.IDENTIFIER):
        i += 1  # alias without AS
    if i < len(tokens) and tokens[i].token_type == TokenType.L_PAREN:
        nxt = tokens[i + 1].token_type if i + 1 < len(tokens) else None
        if nxt not in (TokenType.SELECT, TokenType.WITH, TokenType.VALUES, TokenType.L_PAREN):
            depth = 0
            while i < len(tokens):
                if tokens[i].token_type == TokenType.L_PAREN:
                    depth += 1
                elif tokens[i].token_type == TokenType.R_PAREN:
                    depth -= 1
                    if depth == 0:
                        i += 1
                        break
                i += 1
    start = tokens[i].start
    end = len(sql)
    depth = 0
    for j in range(i, len(tokens)):
        tt = tokens[j].token_type
        if tt == TokenType.L_PAREN:
            depth += 1
        elif tt == TokenType.R_PAREN:
            depth -= 1
        elif depth == 0 and (
            tt == TokenType.RETURNING
            or tt == TokenType.ON
            and j + 1 < len(tokens)
            and tokens[j + 1].text.upper() == "CONFLICT"
        ):
            end = tokens[j].start
            break
    return sql[start:end].strip()


# DataFusion 55 reads every literal with a decimal point (and every integer
# past the int64 range) as a Float64, so `big = 12345678901234567.89` over a
# DECIMAL(20,2) column compares doubles and misses the row. Decimal128 holds
# at most 38 digits.
_DECIMAL_MAX_PRECISION = 38
_INT64_RANGE = range(-(2**63), 2**63)
# A double holds every decimal of at most 15 significant digits (DBL_DIG), so
# only a run of 16 or more digits (a point allowed between them) can need the
# rewrite; text without one is not even tokenized.
_LONG_NUMBER = re.compile(r"(?:\d\.?){16,}")


def _finite(text: str) -> Decimal | None:
    """``text`` as a finite Decimal; None when it is not one."""
    try:
        value = Decimal(text)
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def decimal_literal(text: str) -> exp.Cast | None:
    """The numeric literal ``text`` as ``CAST('<digits>' AS DECIMAL(p, s))``,
    exactly (the digits without an exponent, which DataFusion cannot read in
    a text cast to DECIMAL); None when it is not a finite number or needs
    more digits than a Decimal128 has."""
    value = _finite(text)
    if value is None:
        return None
    _, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)  # finite
    scale = max(0, -exponent)
    precision = max(len(digits) + max(0, exponent), scale, 1)
    if precision > _DECIMAL_MAX_PRECISION:
        return None
    return exp.cast(
        exp.Literal.string(format(value, "f")), exp.DataType.build(f"DECIMAL({precision}, {scale})")
    )


def _exact_decimal(text: str) -> exp.Cast | None:
    """``decimal_literal`` of a numeric literal a double cannot hold exactly,
    or None when a double holds it (or it is an int64, or too long for a
    Decimal128: DataFusion's own reading is kept)."""
    value = _finite(text)
    if value is None:
        return None
    if value == value.to_integral_value() and "." not in text and "e" not in text.lower():
        if int(value) in _INT64_RANGE:
            return None  # DataFusion plans it as an exact Int64
    else:
        try:
            if Decimal(repr(float(text))) == value:
                return None  # the shortest double that reads back as the literal
        except OverflowError:
            pass
    return decimal_literal(text)


def exact_decimal_literals(sql: str) -> tuple[str, int] | None:
    """``sql`` with every numeric literal that a double cannot hold exactly
    written as ``CAST('<literal>' AS DECIMAL(p, s))`` (digits and scale as
    written), spliced at its token, and the offset of the first edit (the
    text before it is unchanged); None when there is none."""
    if _LONG_NUMBER.search(sql) is None:
        return None  # the common case, decided without tokenizing
    edits: list[tuple[int, int, str]] = []
    for tok in tokenize(sql):
        if tok.token_type != TokenType.NUMBER:
            continue
        found = _exact_decimal(tok.text)
        if found is not None:
            edits.append((tok.start, tok.end + 1, found.sql()))
    if not edits:
        return None
    out = sql
    for a, b, text in reversed(edits):
        out = out[:a] + text + out[b:]
    return out, edits[0][0]
