"""Which common table expressions of a query are computed once, and the texts
that compute them.

Within one statement a CTE has one value (PostgreSQL 12+ and DuckDB
materialise a CTE referenced more than once). DataFusion 55 inlines every
CTE, so a CTE referenced twice is computed twice, and a float ``sum`` merged
from many partitions in a different order, or ``random()``, gives the two
references two different values: TPC-H Q15's ``total_revenue = (SELECT
max(total_revenue) FROM revenue0)`` then matched nothing at random.

``plan_ctes`` reads the statement's leading ``WITH`` (not ``WITH
RECURSIVE``). A CTE is materialised when it is referenced more than once
after its definition (in later CTEs, the main query and any subquery of
them), or when written ``AS MATERIALIZED``; ``AS NOT MATERIALIZED`` keeps it
inlined. The runner computes each materialised CTE from ``CtePlan.ctes[i].sql``
(``WITH <the CTEs up to it> SELECT * FROM <it>``) and hands the result to
the main query as a table, ``STAND_IN_NAMESPACE.<name>``: the main query's
text keeps the CTE's name and column list, and only its body becomes
``SELECT * FROM`` that table, so name scoping stays DataFusion's own.
sqlglot's tree decides what to edit; the edits splice text at token
positions (``engine.sql.tokens.Edit``), so every error position maps back
to what the user wrote. DataFusion cannot parse ``[NOT] MATERIALIZED``, so
those words are always taken out.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.tokens import Token, TokenType

from engine.errors import KalamError
from engine.sql.mapping import ident
from engine.sql.tokens import Edit, apply_edits, matching_close, parse_tree, tokenize

# Never a namespace a user can name (engine.names: names start with a letter),
# so a stand-in cannot be confused with, or reached as, a table of theirs.
STAND_IN_NAMESPACE = "_kalam_cte"
_NOT_A_NAME = {
    TokenType.L_PAREN,
    TokenType.R_PAREN,
    TokenType.COMMA,
    TokenType.ALIAS,
    TokenType.STRING,
    TokenType.NUMBER,
    TokenType.SEMICOLON,
}


@dataclass(frozen=True)
class Materialised:
    """One CTE computed once: ``sql`` computes it (``edits`` made it from the
    runner's text), its result is registered as ``(STAND_IN_NAMESPACE, name)``."""

    name: str
    references: int
    sql: str
    edits: list[Edit]


@dataclass(frozen=True)
class CtePlan:
    """``sql``: the main query's text (``edits`` made it from the runner's
    text); ``inlined``: the text with every CTE inlined as DataFusion plans
    it (for the scan filters that prune segments, see ``QueryRunner.run``);
    ``ctes``: the CTEs to compute first, in ``WITH`` order."""

    sql: str
    edits: list[Edit]
    inlined: str
    inlined_edits: list[Edit]
    ctes: list[Materialised]
    analyze: bool  # EXPLAIN ANALYZE: the CTEs run for real


@dataclass(frozen=True)
class _Cte:
    name: str
    written: str  # the name as written (quotes kept)
    marker: tuple[int, int] | None  # [NOT] MATERIALIZED, as offsets
    body: tuple[int, int]  # "( ... )", the brackets included
    forced: bool | None  # True: MATERIALIZED, False: NOT MATERIALIZED


def quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def stand_in(name: str) -> str:
    return f"{quoted(STAND_IN_NAMESPACE)}.{quoted(name)}"


def plan_ctes(sql: str, tree: exp.Expression | None = None) -> CtePlan | None:
    """The CTEs of ``sql`` (a query, maybe behind EXPLAIN) to compute once;
    ``None`` when it has no leading ``WITH`` or it cannot be read (DataFusion
    then reports what is wrong with it as written). ``tree``: the query's
    sqlglot tree when at hand (parsing Q15 again cost 1.6 ms); it only
    counts references, and its CTEs must be the text's, name for name."""
    if "with" not in sql.lower():
        return None
    try:
        start, tokens, analyze = _query_tokens(sql)
        ctes = _ctes(sql, start, tokens)
    except (KalamError, SqlglotError, IndexError):
        return None  # IndexError: the text ends inside the WITH
    if not ctes:
        return None
    if not isinstance(tree, exp.Query) or not isinstance(tree.args.get("with_"), exp.With):
        try:
            tree = parse_tree(sql[start:])
        except (KalamError, SqlglotError):
            return None
    with_ = tree.args.get("with_") if isinstance(tree, exp.Query) else None
    if not isinstance(with_, exp.With) or len(with_.expressions) != len(ctes):
        return None
    counts = _reference_counts(tree, with_.expressions)
    if [c.name for c in ctes] != [ident(c.args["alias"].this) for c in with_.expressions]:
        return None
    markers: list[Edit] = [(*c.marker, "") for c in ctes if c.marker is not None]
    chosen = [
        i for i, c in enumerate(ctes) if c.forced is True or (c.forced is None and counts[i] > 1)
    ]
    bodies: dict[int, Edit] = {
        i: (*ctes[i].body, f"(SELECT * FROM {stand_in(ctes[i].name)})") for i in chosen
    }
    computed: list[Materialised] = []
    for i in chosen:
        cut = ctes[i].body[1]
        edits: list[Edit] = [(0, start, "")] if start else []
        edits += [m for m in markers if m[1] <= cut]
        edits += [bodies[j] for j in chosen if j < i]
        edits.append((cut, len(sql), f" SELECT * FROM {ctes[i].written}"))
        computed.append(Materialised(ctes[i].name, counts[i], apply_edits(sql, edits), edits))
    outer = markers + list(bodies.values())
    return CtePlan(
        sql=apply_edits(sql, outer),
        edits=outer,
        inlined=apply_edits(sql, markers),
        inlined_edits=markers,
        ctes=computed,
        analyze=analyze,
    )


def _query_tokens(sql: str) -> tuple[int, list[Token], bool]:
    """Offset where the query starts, past a leading EXPLAIN [ANALYZE]
    [VERBOSE], the tokens of the query (offsets relative to it), and whether
    ANALYZE was among those words."""
    offset = 0
    analyze = False
    while True:
        tokens = tokenize(sql[offset:])
        word = tokens[0].text.upper() if tokens else ""
        if word not in ("EXPLAIN", "ANALYZE", "VERBOSE"):
            return offset, tokens, analyze
        analyze = analyze or word == "ANALYZE"
        offset += tokens[0].end + 1


def _ctes(sql: str, start: int, tokens: list[Token]) -> list[_Cte] | None:
    """The leading WITH's CTEs as written (offsets into ``sql``); None unless
    it is a plain WITH."""
    if len(tokens) < 2 or tokens[0].token_type != TokenType.WITH:
        return None
    if tokens[1].text.upper() == "RECURSIVE":
        return None
    out: list[_Cte] = []
    i = 1
    while True:
        name = tokens[i]
        if name.token_type in _NOT_A_NAME:
            return None  # (a keyword such as FIRST may name a CTE: the tree decides)
        written = sql[start + name.start : start + name.end + 1]
        i += 1
        if tokens[i].token_type == TokenType.L_PAREN:  # the column list
            i = matching_close(tokens, i) + 1
        if i >= len(tokens) or tokens[i].token_type != TokenType.ALIAS:
            return None
        i += 1
        forced: bool | None = None
        first = i
        if tokens[i].token_type == TokenType.NOT:
            forced = False
            i += 1
        if tokens[i].text.upper() == "MATERIALIZED":
            forced = forced is None
            i += 1
        elif forced is False:
            return None
        marker = (start + tokens[first].start, start + tokens[i].start) if i > first else None
        if i >= len(tokens) or tokens[i].token_type != TokenType.L_PAREN:
            return None
        close = matching_close(tokens, i)
        if close >= len(tokens):
            return None
        body = (start + tokens[i].start, start + tokens[close].end + 1)
        folded = name.text if name.token_type == TokenType.IDENTIFIER else name.text.lower()
        out.append(_Cte(folded, written, marker, body, forced))
        i = close + 1
        if i >= len(tokens):
            return None
        if tokens[i].token_type != TokenType.COMMA:
            return out
        i += 1


def _reference_counts(tree: exp.Expression, ctes: list[exp.CTE]) -> list[int]:
    """How often each CTE's name is read as a table after its definition:
    in later CTEs and in the main query, subqueries included. A name a
    nested WITH redefines is over-counted: that only computes a CTE once
    that did not need it, never changes what a name means."""
    position = {id(cte): i for i, cte in enumerate(ctes)}
    names = [ident(cte.args["alias"].this) for cte in ctes]
    counts = [0] * len(ctes)
    for table in tree.find_all(exp.Table):
        if table.args.get("db") or not isinstance(table.this, exp.Identifier):
            continue
        name = ident(table.this)
        if name not in names:
            continue
        node: exp.Expr | None = table
        while node is not None and id(node) not in position:
            node = node.parent
        within = position[id(node)] if node is not None else len(ctes)  # len: the main query
        for i, cte_name in enumerate(names):
            if cte_name == name and i < within:
                counts[i] += 1
    return counts
