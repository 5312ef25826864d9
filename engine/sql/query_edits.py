"""Edits of a query's text just before DataFusion runs it, where what the
user wrote must change to mean what it says: keeping the hidden columns out
of ``*`` when a query registered them, and routing ``ANY`` / ``SOME`` /
``ALL`` subqueries around a DataFusion 55 bug. sqlglot's AST decides what to
edit; each edit splices text at token positions, so the rest of the query
reaches DataFusion exactly as written (never re-rendered in another dialect).
"""

from __future__ import annotations

from collections.abc import Callable

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError
from sqlglot.tokens import Token, TokenType

from engine.errors import UnsupportedStatementError
from engine.sql.mapping import ident
from engine.sql.rewrite import CLAUSE_END
from engine.sql.tokens import Edit, depths, dialect_for, matching_close, tokenize

# ------------------------------------------------- hidden columns and ``*``

_HIDDEN_EXCLUDE = ' EXCLUDE ("_seq", "_deleted")'


def _query_text(sql: str) -> tuple[int, list[Token]]:
    """Offset where the query starts, past a leading EXPLAIN [ANALYZE] [VERBOSE]
    (sqlglot reads EXPLAIN as a command whose rest is one string token), and
    the tokens of the query."""
    offset = 0
    while True:
        tokens = tokenize(sql[offset:])
        if not tokens or tokens[0].text.upper() not in ("EXPLAIN", "ANALYZE", "VERBOSE"):
            return offset, tokens
        offset += tokens[0].end + 1


def _shifted(edits: list[Edit], offset: int) -> list[Edit]:
    return [(a + offset, b + offset, text) for a, b, text in edits]


def hidden_star_edits(sql: str, is_base: Callable[[str | None, str], bool]) -> list[Edit]:
    """Edits that keep ``_seq`` / ``_deleted`` out of each ``*`` / ``t.*`` over a
    Kalam table, for a query that registered them because it names one.

    The query text stays as written: a star gets DataFusion's own
    ``EXCLUDE (...)`` spliced in after it, and a bare ``*`` over several
    sources becomes one qualified star per source (``*`` EXCLUDE over a join
    of two Kalam tables is ambiguous). sqlglot only decides which star belongs
    to which SELECT, through the token positions of the tables' names."""
    if "*" not in sql:
        return []  # no star at all: nothing to tokenize
    offset, tokens = _query_text(sql)
    text = sql[offset:]
    if not any(
        t.token_type == TokenType.STAR and nxt.token_type in (TokenType.COMMA, TokenType.FROM)
        for t, nxt in zip(tokens, tokens[1:], strict=False)
    ):
        return []  # multiplication or count(*) only: no projection star to parse for
    try:
        tree = sqlglot.parse_one(text, read=dialect_for(text))
    except ParseError:
        return []  # DataFusion reports the syntax error itself
    depth = depths(tokens)
    index = {t.start: i for i, t in enumerate(tokens)}
    edits: list[Edit] = []
    for select in tree.find_all(exp.Select):
        sources = _sources(select, is_base, text)
        if not any(src.base for src in sources):
            continue
        stars = [p for p in select.expressions if _is_star(p)]
        anchor = min((src.at for src in sources if src.at is not None), default=None)
        if not stars or anchor is None or anchor not in index:
            continue
        star_tokens = _projection_stars(tokens, depth, index[anchor])
        if len(star_tokens) != len(stars):
            continue  # e.g. `* EXCEPT (...)` as written: leave it alone
        for node, i in zip(stars, star_tokens, strict=True):
            edit = _star_edit(node, tokens[i], sources)
            if edit is not None:
                edits.append(edit)
    return _shifted(edits, offset)


def _is_star(node: exp.Expression) -> bool:
    return isinstance(node, exp.Star) or (
        isinstance(node, exp.Column) and isinstance(node.this, exp.Star)
    )


class _Source:
    """One FROM / JOIN item of a SELECT: the names a star may qualify it by,
    its qualifier as written, whether it is a Kalam table, and where its
    table name starts (offset in the parsed text)."""

    def __init__(self, names: set[str], qualifier: str | None, base: bool, at: int | None):
        self.names, self.qualifier, self.base, self.at = names, qualifier, base, at


def _span(sql: str, first: exp.Expression, last: exp.Expression) -> str | None:
    a, b = first.meta.get("start"), last.meta.get("end")
    if a is None or b is None:
        return None
    return sql[a : b + 1]


def _sources(
    select: exp.Select, is_base: Callable[[str | None, str], bool], sql: str
) -> list[_Source]:
    from_ = select.args.get("from_")
    items = [from_.this] if from_ is not None else []
    items += [j.this for j in select.args.get("joins") or []]
    out: list[_Source] = []
    for item in items:
        alias = item.args.get("alias")
        alias_id = alias.this if isinstance(alias, exp.TableAlias) else None
        alias_text = (
            _span(sql, alias_id, alias_id) if isinstance(alias_id, exp.Identifier) else None
        )
        if isinstance(item, exp.Table) and isinstance(item.this, exp.Identifier):
            db = item.args.get("db")
            ns = ident(db) if db else None
            name = ident(item.this)
            base = is_base(ns, name)
            at = item.this.meta.get("start")
            if alias_text is not None:
                out.append(_Source({item.alias}, alias_text, base, at))
            else:
                qualifier = _span(sql, db if db else item.this, item.this)
                out.append(_Source({name}, qualifier, base, at))
        else:
            out.append(_Source({item.alias_or_name}, alias_text, False, None))
    return out


def _projection_stars(tokens: list[Token], depth: list[int], table_at: int) -> list[int]:
    """Star tokens of the projection of the SELECT whose FROM holds the token
    at ``table_at``."""
    d = depth[table_at]
    j = table_at - 1
    while j >= 0 and not (
        depth[j] == d
        and tokens[j].token_type == TokenType.FROM
        and tokens[j - 1].token_type != TokenType.DISTINCT  # IS [NOT] DISTINCT FROM
    ):
        j -= 1
    k = j - 1
    while k >= 0 and not (depth[k] == d and tokens[k].token_type == TokenType.SELECT):
        k -= 1
    if j < 0 or k < 0:
        return []
    return [
        i
        for i in range(k + 1, j)
        if depth[i] == d
        and tokens[i].token_type == TokenType.STAR
        and tokens[i + 1].token_type in (TokenType.COMMA, TokenType.FROM)
    ]


def _star_edit(node: exp.Expression, tok: Token, sources: list[_Source]) -> Edit | None:
    after = (tok.end + 1, tok.end + 1, _HIDDEN_EXCLUDE)
    if isinstance(node, exp.Column):  # t.*
        name = ident(node.args.get("table"))
        match = next((s for s in sources if name in s.names), None)
        return after if match is not None and match.base else None
    if len(sources) == 1:
        return after
    if any(s.qualifier is None for s in sources):
        return None  # an unnamed derived table: no way to qualify its star
    stars = [f"{s.qualifier}.*" + (_HIDDEN_EXCLUDE if s.base else "") for s in sources]
    return (tok.start, tok.end + 1, ", ".join(stars))


# --------------------------------------- comparisons with ANY / SOME / ALL

_COMPARISONS = {
    TokenType.EQ,
    TokenType.NEQ,
    TokenType.LT,
    TokenType.LTE,
    TokenType.GT,
    TokenType.GTE,
}
_QUANTIFIERS = {TokenType.ANY, TokenType.SOME, TokenType.ALL}
_PROJECTION_END = CLAUSE_END | {
    TokenType.WINDOW,
    TokenType.QUALIFY,
    TokenType.INTO,
    TokenType.OFFSET,
    TokenType.FETCH,
}


def quantified_subquery_edits(sql: str) -> list[Edit]:
    """Edits that route ``x <op> ANY|SOME|ALL (subquery)`` around a DataFusion
    55 bug: when the subquery's output column has the same name as a column
    of ``x`` (``id = ANY (SELECT id FROM t WHERE ...)``), the comparison is
    resolved inside the subquery and every row (or none) qualifies.

    The subquery's column gets a private alias. A ``SELECT *`` subquery
    cannot be aliased: ``= ANY`` becomes ``IN`` and ``<> ALL`` becomes
    ``NOT IN`` (the same three-valued logic); other comparisons are refused."""
    offset, tokens = _query_text(sql)
    sql = sql[offset:]
    depth = depths(tokens)
    edits: list[Edit] = []
    for i in range(1, len(tokens) - 1):
        tok = tokens[i]
        if not (
            tok.token_type in _QUANTIFIERS
            and tokens[i - 1].token_type in _COMPARISONS
            and tokens[i + 1].token_type == TokenType.L_PAREN
        ):
            continue
        close = matching_close(tokens, i + 1)
        selects = [j for j in range(i + 2, close) if tokens[j].token_type == TokenType.SELECT]
        if not selects:
            continue  # ANY (array)
        top = min(depth[j] for j in selects)
        select = next(j for j in selects if depth[j] == top)
        inner = sql[tokens[i + 2].start : tokens[close - 1].end + 1]
        try:
            tree = sqlglot.parse_one(inner, read=dialect_for(inner))
        except ParseError:
            continue
        while isinstance(tree, (exp.Subquery, exp.Paren)):
            tree = tree.this
        first = tree
        while isinstance(first, exp.SetOperation):
            first = first.this
        while isinstance(first, exp.Subquery):
            first = first.this
        if not isinstance(first, exp.Select) or len(first.expressions) != 1:
            continue
        projection = first.expressions[0]
        alias = f'"__kalam_any_{len(edits)}"'
        if _is_star(projection):
            edits.append(_star_quantifier(tokens[i - 1], tok))
            continue
        start = select + 1
        while tokens[start].token_type in (TokenType.DISTINCT, TokenType.ALL):
            start += 1
            if tokens[start].token_type == TokenType.ON:
                start = matching_close(tokens, start + 1) + 1
        end = start
        while (
            end < close
            and depth[end] >= top
            and not (depth[end] == top and _ends_projection(tokens, end))
        ):
            end += 1
        last = tokens[end - 1]
        if isinstance(projection, exp.Alias) and end - 1 > start:
            # `expr AS name` / `expr name`: replace the name (its token is the last one).
            edits.append((last.start, last.end + 1, alias))
        else:
            edits.append((last.end + 1, last.end + 1, f" AS {alias}"))
    return _shifted(edits, offset)


def _ends_projection(tokens: list[Token], i: int) -> bool:
    tt = tokens[i].token_type
    if tt == TokenType.FROM and tokens[i - 1].token_type == TokenType.DISTINCT:
        return False  # `a IS [NOT] DISTINCT FROM b` is an expression
    return tt in _PROJECTION_END


def _star_quantifier(op: Token, quantifier: Token) -> Edit:
    word = quantifier.token_type
    if op.token_type == TokenType.EQ and word in (TokenType.ANY, TokenType.SOME):
        return (op.start, quantifier.end + 1, "IN")
    if op.token_type == TokenType.NEQ and word == TokenType.ALL:
        return (op.start, quantifier.end + 1, "NOT IN")
    raise UnsupportedStatementError(
        f"'{op.text} {quantifier.text} (SELECT * ...)' is not supported: name the subquery's "
        f"column (SELECT col ...) instead of *"
    )
