"""SQL text -> typed statements.

sqlglot tokenizes every cell; statements are split on ``;`` tokens (never on
characters, so ``';'`` inside a string is safe). Kalam-specific statements
(namespaces, FLUSH, SHOW, DESCRIBE, ...) are recognised from their leading
tokens; everything else is parsed by sqlglot and mapped to a statement by
node type. Parsed statements are cached by text, so a repeated statement with
bound parameters is parsed once.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import replace
from typing import Any

from sqlglot import exp
from sqlglot.errors import ParseError
from sqlglot.tokens import Token, TokenType

from engine.errors import KalamError, SqlParseError, UnsupportedStatementError
from engine.sql import limits, spans
from engine.sql import statements as st
from engine.sql.params import bind_params, param_spec
from engine.sql.rewrite import alias_projections, insert_query_text, modify_to_alter_column
from engine.sql.slips import check_slips
from engine.sql.tokens import StatementText, parse_tree, position, tokenize

__all__ = [
    "StatementText",
    "bind_params",
    "parameter_names",
    "parse",
    "split_statements",
    "subscription_of",
]

_CACHE_SIZE = 512
# sqlglot logs a warning when it falls back to a generic command; we report errors ourselves.
logging.getLogger("sqlglot").setLevel(logging.ERROR)


# sqlglot folds everything after these keywords into one string token.
_COMMAND_TOKENS = {TokenType.SHOW, TokenType.EXECUTE, TokenType.COMMAND, TokenType.FETCH}


def _statement_tokens(sql: str, *, at: StatementText | None = None) -> list[Token]:
    """Tokens of one statement, with command tails (``SHOW ...``) tokenized too."""
    tokens = tokenize(sql, at=at)
    if (
        len(tokens) == 2
        and tokens[0].token_type in _COMMAND_TOKENS
        and (tokens[1].token_type == TokenType.STRING and sql[tokens[1].start] not in "'\"$")
    ):
        offset = tokens[0].end + 1
        tail = tokenize(sql[offset:])
        shifted = [
            Token(t.token_type, t.text, t.line, t.col, t.start + offset, t.end + offset, t.comments)
            for t in tail
        ]
        return [tokens[0], *shifted]
    return tokens


def split_statements(sql: str) -> list[StatementText]:
    """Split ``sql`` on ``;`` tokens; empty statements are dropped."""
    tokens = tokenize(sql)
    out: list[StatementText] = []
    start_tok: Token | None = None
    last: Token | None = None
    for tok in [*tokens, None]:
        if tok is None or tok.token_type == TokenType.SEMICOLON:
            if start_tok is not None and last is not None:
                text = sql[start_tok.start : last.end + 1]
                line, col = position(sql, start_tok.start)
                out.append(StatementText(text, line, col, start_tok.start))
            start_tok = last = None
            continue
        if start_tok is None:
            # A comment before the first token belongs to the statement's text.
            start_tok = tok
        last = tok
    return out


# ---------------------------------------------------------------- parsing

_cache: OrderedDict[str, list[st.Statement]] = OrderedDict()
_cache_bytes = 0  # characters of statement text held by _cache
_CACHE_CHARS = 4 << 20
_CACHE_ENTRY_CHARS = 64 << 10


def parameter_names(sql: str) -> list[str]:
    """The ``:name`` placeholders of ``sql`` in order of first use (for the magic)."""
    names: list[str] = []
    for piece in split_statements(sql):
        spec, _ = param_spec(piece.sql, tokenize(piece.sql))
        names.extend(n for n in spec.names if n not in names)
    return names


def parse(sql: str) -> list[st.Statement]:
    """Parse ``sql`` (one or more statements). Cached by text, bounded by bytes."""
    global _cache_bytes
    hit = _cache.get(sql)
    if hit is not None:
        _cache.move_to_end(sql)
        return hit
    limits.check_text(sql)
    result = [parse_one(piece) for piece in split_statements(sql)]
    if len(sql) <= _CACHE_ENTRY_CHARS:  # a parsed bulk statement is many times its text
        _cache[sql] = result
        _cache_bytes += len(sql)
        while len(_cache) > _CACHE_SIZE or _cache_bytes > _CACHE_CHARS:
            old, _ = _cache.popitem(last=False)
            _cache_bytes -= len(old)
    return result


def parse_one(piece: StatementText) -> st.Statement:
    tokens = _statement_tokens(piece.sql, at=piece)
    limits.check_tokens(tokens, piece)
    check_slips(tokens, piece.sql, piece.line, piece.column)
    params, df_sql = param_spec(piece.sql, tokens)
    base = {"sql": piece.sql, "line": piece.line, "column": piece.column, "params": params}
    words = [t.text.upper() for t in tokens[:4]]
    try:
        kalam = _parse_kalam(tokens, words, base, piece)
        if kalam is not None:
            return kalam
        return _parse_standard(piece, df_sql, base)
    except ParseError as exc:
        raise _parse_error(exc, piece) from None


def _parse_error(exc: ParseError, piece: StatementText) -> SqlParseError:
    info = exc.errors[0] if exc.errors else {}
    line = info.get("line") or 1
    col = info.get("col") or 1
    highlight = info.get("highlight") or ""
    desc = str(info.get("description") or exc).split(". Line")[0]
    if "<Token" in desc:
        desc = desc.split("<Token")[0] + f"'{highlight}'"
    if desc.startswith("Required keyword") or "<class" in desc:
        # sqlglot names its own AST classes here; say what a person can act on.
        desc = f"incomplete expression near '{highlight}'" if highlight else "incomplete statement"
    abs_line = piece.line + line - 1
    # sqlglot reports the column of the token's last character; we want its first.
    first = max(col - len(highlight), 0) + 1
    abs_col = (piece.column - 1 if line == 1 else 0) + first
    return SqlParseError(f"Syntax error: {desc}", line=abs_line, column=max(abs_col, 1))


class _Tokens:
    """A cursor over a statement's tokens for the Kalam-specific forms."""

    def __init__(self, tokens: list[Token], piece: StatementText) -> None:
        self.toks = tokens
        self.i = 0
        self.piece = piece

    def peek(self, ahead: int = 0) -> str:
        j = self.i + ahead
        return self.toks[j].text.upper() if j < len(self.toks) else ""

    def accept(self, *words: str) -> bool:
        if all(self.peek(k) == w for k, w in enumerate(words)):
            self.i += len(words)
            return True
        return False

    def expect(self, word: str) -> None:
        if not self.accept(word):
            self.fail(f"expected {word}")

    def fail(self, what: str) -> None:
        tok = self.toks[self.i] if self.i < len(self.toks) else self.toks[-1]
        line, col = position(self.piece.sql, tok.start)
        got = "end of statement" if self.i >= len(self.toks) else f"'{tok.text}'"
        raise SqlParseError(
            f"Syntax error: {what}, got {got}",
            line=self.piece.line + line - 1,
            column=(self.piece.column - 1 if line == 1 else 0) + col,
        )

    def name(self) -> str:
        if self.i >= len(self.toks):
            self.fail("expected a name")
        tok = self.toks[self.i]
        if tok.token_type in (TokenType.STRING, TokenType.NUMBER) or not (
            tok.text.replace("_", "a").isalnum() or tok.token_type == TokenType.IDENTIFIER
        ):
            self.fail("expected a name")
        self.i += 1
        return tok.text if tok.token_type == TokenType.IDENTIFIER else tok.text.lower()

    def table(self) -> st.TableRef:
        first = self.name()
        if self.accept("."):
            return st.TableRef(first, self.name())
        return st.TableRef(None, first)

    def done(self) -> None:
        if self.i < len(self.toks):
            self.fail("unexpected text")


def _parse_kalam(
    tokens: list[Token], words: list[str], base: dict[str, Any], piece: StatementText
) -> st.Statement | None:
    c = _Tokens(tokens, piece)
    if c.accept("CREATE", "NAMESPACE"):
        ine = c.accept("IF", "NOT", "EXISTS")
        name = c.name()
        c.done()
        return st.CreateNamespace(**base, name=name, if_not_exists=ine)
    if c.accept("DROP", "NAMESPACE"):
        ie = c.accept("IF", "EXISTS")
        name = c.name()
        cascade = c.accept("CASCADE")
        c.done()
        return st.DropNamespace(**base, name=name, if_exists=ie, cascade=cascade)
    if c.accept("SHOW", "NAMESPACES"):
        c.done()
        return st.ShowNamespaces(**base)
    if c.accept("SHOW", "TABLES"):
        ns = c.name() if (c.accept("IN") or c.accept("FROM")) else None
        c.done()
        return st.ShowTables(**base, namespace=ns)
    if c.accept("USE"):
        c.accept("NAMESPACE")
        name = c.name()
        c.done()
        return st.UseNamespace(**base, name=name)
    if c.accept("DESCRIBE") or c.accept("DESC"):
        c.accept("TABLE")
        table = c.table()
        history = c.accept("HISTORY")
        c.done()
        return st.DescribeTable(**base, table=table, history=history)
    if c.accept("STORAGE", "FLUSH") or c.accept("FLUSH"):
        return _parse_flush(c, base)
    if c.accept("STORAGE", "COMPACT") or c.accept("COMPACT"):
        return _parse_compact(c, base)
    if c.accept("EXPORT"):
        return _parse_export(c, base)
    if words[:2] in (["CREATE", "STORAGE"], ["DROP", "STORAGE"], ["SHOW", "STORAGES"]):
        return _parse_storage(c, base)
    if words[:3] == ["CREATE", "UNIQUE", "INDEX"]:
        return _parse_unique_index(c, base)
    if words[:1] == ["CREATE"] and words[1:2] in (["UNIQUE"], ["INDEX"]):
        c.accept("CREATE")
        c.accept("UNIQUE")
        c.expect("INDEX")
        while c.i < len(tokens) and c.peek() != "ON":
            c.i += 1
        c.expect("ON")
        return st.CreateIndex(**base, table=c.table())
    if words[:1] == ["EXPLAIN"]:
        return _parse_explain(tokens, base, piece)
    view = _parse_view(c, words, base, piece)
    if view is not None:
        return view
    if words[:3] == ["EXECUTE", "AS", "USER"]:
        return _parse_execute_as(tokens, base, piece)
    if words[:2] == ["SUBSCRIBE", "TO"]:
        return _parse_subscribe(tokens, base, piece)
    if (
        words[:1] in (["REPAIR"], ["KILL"])
        or (
            words[:1] in (["CREATE"], ["ALTER"], ["DROP"])
            and words[1:2] == ["USER"]
            and words[2:3] != ["TABLE"]
        )
        or words[:2] == ["SHOW", "MANIFEST"]
        or words[:2] == ["SHOW", "DELTA"]
    ):
        return _masked_password(tokens, base, piece) or st.KalamCommand(
            **base, words=tuple(t.text for t in tokens)
        )
    return None


PASSWORD_MASK = "***"


def _masked_password(
    tokens: list[Token], base: dict[str, Any], piece: StatementText
) -> st.KalamCommand | None:
    """``... PASSWORD '<secret>' ...`` as a command whose text and words show a
    mask instead of the password (which is kept in ``secret`` only). Every
    other string literal after PASSWORD, bar a quoted role, is masked too, so
    a mistyped statement cannot leak a password either."""
    at = next(
        (
            i + 1
            for i, tok in enumerate(tokens[:-1])
            if tok.text.upper() == "PASSWORD" and tokens[i + 1].token_type == TokenType.STRING
        ),
        None,
    )
    if at is None:
        return None
    hidden = [
        i
        for i in range(at, len(tokens))
        if tokens[i].token_type == TokenType.STRING
        and (i == at or tokens[i - 1].text.upper() != "ROLE")
    ]
    sql, words = piece.sql, [t.text for t in tokens]
    for i in reversed(hidden):  # token offsets are within piece.sql; right to left keeps them valid
        sql = sql[: tokens[i].start] + f"'{PASSWORD_MASK}'" + sql[tokens[i].end + 1 :]
        words[i] = PASSWORD_MASK
    return st.KalamCommand(**{**base, "sql": sql}, words=tuple(words), secret=tokens[at].text)


def _parse_execute_as(
    tokens: list[Token], base: dict[str, Any], piece: StatementText
) -> st.Statement:
    c = _Tokens(tokens, piece)
    c.expect("EXECUTE")
    c.expect("AS")
    c.expect("USER")
    if c.i >= len(tokens):
        c.fail("expected a user name")
    who = tokens[c.i]
    name = who.text if who.token_type == TokenType.STRING else who.text.lower()
    c.i += 1
    if c.peek() != "(" or tokens[-1].token_type != TokenType.R_PAREN:
        c.fail("expected ( statement )")
    inner_start, inner_end = tokens[c.i].end + 1, tokens[-1].start
    text = piece.sql[inner_start:inner_end].strip()
    if not text:
        c.fail("expected a statement inside the parentheses")
    offset = piece.sql.index(text, inner_start)
    line, col = position(piece.sql, offset)
    inner = parse_one(
        StatementText(
            text,
            piece.line + line - 1,
            (piece.column - 1 if line == 1 else 0) + col,
            piece.start + offset,
        )
    )
    return st.ExecuteAs(**base, user=name, inner=inner)


def _parse_subscribe(
    tokens: list[Token], base: dict[str, Any], piece: StatementText
) -> st.Statement:
    """``SUBSCRIBE TO SELECT ...`` or KalamDB's ``SUBSCRIBE TO ns.t [WHERE ...]``."""
    c = _Tokens(tokens, piece)
    c.expect("SUBSCRIBE")
    c.expect("TO")
    if c.i >= len(tokens):
        c.fail("expected SELECT ... or a table name")
    if any(t.text.upper() == "OPTIONS" for t in tokens[c.i :]):
        raise UnsupportedStatementError(
            "SUBSCRIBE ... OPTIONS (last_rows, batch_size, from) is not supported: "
            "the subscription starts with all current matching rows"
        )
    offset = tokens[c.i].start
    text = piece.sql[offset:]
    line, col = position(piece.sql, offset)
    short = c.peek() != "SELECT"
    if short:
        text = "SELECT * FROM " + text  # the short form reads every column
    inner = parse_one(
        StatementText(
            text,
            piece.line + line - 1,
            (piece.column - 1 if line == 1 else 0) + col - (14 if short else 0),
            piece.start + offset,
        )
    )
    return subscription_of(inner, base)


def subscription_of(inner: st.Statement, base: dict[str, Any] | None = None) -> st.Subscribe:
    """The live query of a parsed ``SELECT`` (``base``: the SUBSCRIBE
    statement's text and position; by default the SELECT's own)."""
    from engine.live.shape import check_shape, select_parts

    if not isinstance(inner, st.Query) or inner.explain:
        raise UnsupportedStatementError("SUBSCRIBE TO takes a SELECT query or a table name")
    if inner.params.style is not None:
        raise UnsupportedStatementError(
            "SUBSCRIBE takes no parameters: write the values into the query"
        )
    table = check_shape(inner.tree)
    projection, target, where = select_parts(inner.explain_sql, tokenize(inner.explain_sql))
    if base is None:
        base = {"sql": inner.sql, "line": inner.line, "column": inner.column}
    return st.Subscribe(
        **base,
        table=table,
        query=inner,
        projection_sql=projection,
        target_sql=target,
        where_sql=where,
    )


def _parse_unique_index(c: _Tokens, base: dict[str, Any]) -> st.Statement:
    c.accept("CREATE", "UNIQUE", "INDEX")
    ine = c.accept("IF", "NOT", "EXISTS")
    name = c.name()
    c.expect("ON")
    table = c.table()
    c.expect("(")
    columns = []
    while True:
        columns.append(c.name())
        if not (c.accept("ASC") or c.accept("DESC")):
            pass
        if not c.accept(","):
            break
    c.expect(")")
    c.done()
    return st.CreateUniqueIndex(
        **base, table=table, name=name, columns=tuple(columns), if_not_exists=ine
    )


def _parse_view(
    c: _Tokens, words: list[str], base: dict[str, Any], piece: StatementText
) -> st.Statement | None:
    """CREATE [OR REPLACE] VIEW, DROP VIEW [IF EXISTS], SHOW VIEWS [IN ns]."""
    if words[:2] == ["CREATE", "VIEW"] or words[:4] == ["CREATE", "OR", "REPLACE", "VIEW"]:
        c.accept("CREATE")
        replace_ = c.accept("OR", "REPLACE")
        c.expect("VIEW")
        table = c.table()
        columns: list[str] = []
        if c.accept("("):
            columns.append(c.name())
            while c.accept(","):
                columns.append(c.name())
            c.expect(")")
        c.expect("AS")
        if c.i >= len(c.toks):
            c.fail("expected a query")
        query = piece.sql[c.toks[c.i].start :].strip().rstrip(";").strip()
        return st.CreateView(
            **base, table=table, query_sql=query, columns=tuple(columns), or_replace=replace_
        )
    if words[:2] == ["DROP", "VIEW"]:
        c.accept("DROP", "VIEW")
        if_exists = c.accept("IF", "EXISTS")
        table = c.table()
        c.done()
        return st.DropView(**base, table=table, if_exists=if_exists)
    if words[:2] == ["SHOW", "VIEWS"]:
        c.accept("SHOW", "VIEWS")
        ns = c.name() if (c.accept("IN") or c.accept("FROM")) else None
        c.done()
        return st.ShowViews(**base, namespace=ns)
    return None


def _parse_flush(c: _Tokens, base: dict[str, Any]) -> st.Statement:
    if c.accept("ALL"):
        ns = c.name() if c.accept("IN") else None
        wait = c.accept("WAIT")
        c.done()
        return st.FlushTable(**base, table=None, namespace=ns, wait=wait)
    c.expect("TABLE")
    table = c.table()
    wait = c.accept("WAIT")
    c.done()
    return st.FlushTable(**base, table=table, wait=wait)


def _parse_compact(c: _Tokens, base: dict[str, Any]) -> st.Statement:
    if c.accept("ALL"):
        ns = c.name() if c.accept("IN") else None
        wait = c.accept("WAIT")
        c.done()
        return st.CompactTable(**base, table=None, namespace=ns, wait=wait)
    c.expect("TABLE")
    table = c.table()
    wait = c.accept("WAIT")
    c.done()
    return st.CompactTable(**base, table=table, wait=wait)


def _parse_export(c: _Tokens, base: dict[str, Any]) -> st.Statement:
    c.expect("TABLE")
    table = c.table()
    c.expect("TO")
    if c.i >= len(c.toks) or c.toks[c.i].token_type != TokenType.STRING:
        c.fail("expected the destination path as a quoted string")
    path = c.toks[c.i].text
    c.i += 1
    fmt = "parquet"
    if c.accept("FORMAT"):
        fmt = c.name().lower()
        if fmt not in ("parquet", "delta"):
            c.i -= 1
            c.fail("expected FORMAT parquet or FORMAT delta")
    c.done()
    return st.ExportTable(**base, table=table, path=path, format=fmt)


def _parse_storage(c: _Tokens, base: dict[str, Any]) -> st.Statement:
    """CREATE STORAGE [IF NOT EXISTS] name TYPE t WITH (k = 'v', ...),
    DROP STORAGE [IF EXISTS] name, SHOW STORAGES."""
    if c.accept("SHOW", "STORAGES"):
        c.done()
        return st.ShowStorages(**base)
    if c.accept("DROP", "STORAGE"):
        ie = c.accept("IF", "EXISTS")
        name = c.name()
        c.done()
        return st.DropStorage(**base, name=name, if_exists=ie)
    c.expect("CREATE")
    c.expect("STORAGE")
    ine = c.accept("IF", "NOT", "EXISTS")
    name = c.name()
    c.expect("TYPE")
    kind = c.name().lower()
    options: list[tuple[str, str]] = []
    if c.accept("WITH"):
        c.expect("(")
        while True:
            key = c.name().lower()
            c.expect("=")
            if c.i >= len(c.toks) or c.toks[c.i].token_type != TokenType.STRING:
                c.fail(f"expected the value of {key} as a quoted string")
            options.append((key, c.toks[c.i].text))
            c.i += 1
            if not c.accept(","):
                break
        c.expect(")")
    c.done()
    return st.CreateStorage(
        **base, name=name, storage_type=kind, options=tuple(options), if_not_exists=ine
    )


def _parse_explain(tokens: list[Token], base: dict[str, Any], piece: StatementText) -> st.Statement:
    # sqlglot tokenizes EXPLAIN as a command whose rest is one string: re-tokenize the rest.
    inner = piece.sql[tokens[0].end + 1 :]
    inner_tokens = tokenize(inner)
    while inner_tokens and inner_tokens[0].text.upper() in ("ANALYZE", "VERBOSE"):
        inner = inner[inner_tokens[0].end + 1 :]
        inner_tokens = tokenize(inner)
    if not inner_tokens:
        raise SqlParseError(
            "Syntax error: EXPLAIN needs a query", line=piece.line, column=piece.column
        )
    _, inner_df = param_spec(inner, inner_tokens)
    tree = parse_tree(inner_df)
    if not isinstance(tree, exp.Query):
        raise UnsupportedStatementError("EXPLAIN supports queries (SELECT) only")
    _, df_sql = param_spec(piece.sql, tokens)
    return st.Query(**base, tree=tree, explain=True, explain_sql=df_sql)


_TYPE_WORDS = {"USER", "SHARED", "STREAM"}


def _parse_standard(piece: StatementText, df_sql: str, base: dict[str, Any]) -> st.Statement:
    sql = df_sql
    table_type = None
    tokens = tokenize(sql)
    if (
        len(tokens) > 2
        and tokens[0].text.upper() == "CREATE"
        and tokens[1].text.upper() in _TYPE_WORDS
        and tokens[2].text.upper() == "TABLE"
    ):
        table_type = tokens[1].text.upper()
        sql = (
            sql[: tokens[1].start]
            + " " * (tokens[1].end + 1 - tokens[1].start)
            + sql[tokens[1].end + 1 :]
        )
    sql = modify_to_alter_column(sql, tokens)
    tree = parse_tree(sql)
    from engine.sql import mapping  # late: mapping imports this module's helpers

    stmt = mapping.to_statement(tree, base, table_type, sql)  # type: ignore[arg-type]
    if isinstance(stmt, st.Insert) and stmt.query is not None:
        # Hand DataFusion the SELECT exactly as written (sqlglot would re-case names).
        stmt = replace(stmt, query_sql=alias_projections(_insert_select_text(sql, tokens)))
    return _with_text_parts(stmt, sql, tokens, tree)


def _insert_select_text(sql: str, tokens: list[Token]) -> str:
    """The SELECT of an INSERT as written, with the CTEs of a leading
    ``WITH ... INSERT`` in front of it."""
    if tokens[0].token_type != TokenType.WITH:
        return insert_query_text(sql, tokens)
    depth = 0
    for k, tok in enumerate(tokens):
        if tok.token_type == TokenType.L_PAREN:
            depth += 1
        elif tok.token_type == TokenType.R_PAREN:
            depth -= 1
        elif depth == 0 and tok.token_type == TokenType.INSERT:
            prefix = sql[tokens[0].start : tok.start]
            return prefix + insert_query_text(sql, tokens[k:])
    return insert_query_text(sql, tokens)


def _with_text_parts(stmt: st.Statement, sql: str, tokens: list[Token], tree: Any) -> st.Statement:
    """Attach the expressions DataFusion evaluates for DML, sliced as written."""
    if isinstance(stmt, (st.Update, st.Delete)) and tokens[0].token_type not in (
        TokenType.UPDATE,
        TokenType.DELETE,
    ):
        raise UnsupportedStatementError("WITH before UPDATE / DELETE is not supported")
    if isinstance(stmt, st.Update):
        target, values, where = spans.update_parts(sql, tokens, len(stmt.assignments))
        from_ = spans.from_part(sql, tokens) if stmt.tree.args.get("from_") else None
        return replace(stmt, target_sql=target, set_sql=values, where_sql=where, from_sql=from_)
    if isinstance(stmt, st.Delete):
        target, where = spans.delete_parts(sql, tokens)
        using = spans.using_part(sql, tokens) if stmt.tree.args.get("using") else None
        return replace(stmt, target_sql=target, where_sql=where, using_sql=using)
    if isinstance(stmt, st.Insert) and stmt.on_conflict is not None:
        oc = stmt.on_conflict
        if oc.action == "update" and oc.assignments:
            values, where = spans.conflict_parts(sql, tokens, len(oc.assignments))
            stmt = replace(stmt, on_conflict=replace(oc, set_sql=values, where_sql=where))
    if isinstance(stmt, st.Insert) and stmt.rows is not None:
        source = tree.expression
        widths = [
            len(r.expressions) if isinstance(r, exp.Tuple) else None for r in source.expressions
        ]
        return replace(stmt, values_sql=spans.values_parts(sql, tokens, widths))
    return stmt


def is_query(sql: str) -> bool:
    """Whether ``sql`` is one SELECT (not EXPLAIN): what a chart can aggregate over.

    For the notebook layer, which never reads SQL itself; text that does not
    parse is not a query (running it reports the error)."""
    try:
        stmts = parse(sql)
    except KalamError:
        return False
    return len(stmts) == 1 and isinstance(stmts[0], st.Query) and not stmts[0].explain
