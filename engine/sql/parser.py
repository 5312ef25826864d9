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
from dataclasses import dataclass, replace
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError
from sqlglot.tokens import Token, TokenType

from engine.errors import ParameterError, SqlParseError, UnsupportedStatementError
from engine.sql import statements as st
from engine.sql.dialect import Kalam

DIALECT: Any = "postgres"
_CACHE_SIZE = 512
# sqlglot logs a warning when it falls back to a generic command; we report errors ourselves.
logging.getLogger("sqlglot").setLevel(logging.ERROR)


@dataclass(frozen=True)
class StatementText:
    """One statement's text and where it starts in the submitted SQL (1-based)."""

    sql: str
    line: int
    column: int
    start: int


def _position(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return line, column


def _dialect_for(sql: str) -> Any:
    """PostgreSQL's dialect, unless the text only tokenizes with ``$`` read as a
    parameter sigil everywhere (``$1,$2`` trips Postgres' dollar quoting)."""
    try:
        sqlglot.tokenize(sql, read=DIALECT)
        return DIALECT
    except TokenError:
        return Kalam


def _tokenize(sql: str, *, at: StatementText | None = None) -> list[Token]:
    try:
        return sqlglot.tokenize(sql, read=_dialect_for(sql))
    except TokenError as exc:
        # sqlglot's message quotes the text up to where tokenizing failed.
        text = str(exc)
        context = (
            text.split("Error tokenizing '", 1)[-1][:-1] if "Error tokenizing '" in text else ""
        )
        offset = sql.find(context) + len(context) - 1 if context and sql.find(context) >= 0 else 0
        quote = _last_open_quote(sql, offset)
        if quote is not None:
            offset = quote
        line, col = _position(sql, max(offset, 0))
        if at is not None:
            col = (at.column - 1 if line == 1 else 0) + col
            line = at.line + line - 1
        what = "unterminated quoted text" if quote is not None else "cannot read the SQL text here"
        raise SqlParseError(f"Syntax error: {what}", line=line, column=col) from None


def _last_open_quote(sql: str, upto: int) -> int | None:
    """Offset of the quote that opens an unterminated string / identifier, if the
    tokenizer stopped inside one."""
    for q in ("'", '"'):
        start = sql.rfind(q, 0, upto + 1)
        if start >= 0 and sql.count(q, start) % 2 == 1:
            return start
    return None


# sqlglot folds everything after these keywords into one string token.
_COMMAND_TOKENS = {TokenType.SHOW, TokenType.EXECUTE, TokenType.COMMAND, TokenType.FETCH}


def _statement_tokens(sql: str, *, at: StatementText | None = None) -> list[Token]:
    """Tokens of one statement, with command tails (``SHOW ...``) tokenized too."""
    tokens = _tokenize(sql, at=at)
    if (
        len(tokens) == 2
        and tokens[0].token_type in _COMMAND_TOKENS
        and (tokens[1].token_type == TokenType.STRING and sql[tokens[1].start] not in "'\"$")
    ):
        offset = tokens[0].end + 1
        tail = _tokenize(sql[offset:])
        shifted = [
            Token(t.token_type, t.text, t.line, t.col, t.start + offset, t.end + offset, t.comments)
            for t in tail
        ]
        return [tokens[0], *shifted]
    return tokens


def split_statements(sql: str) -> list[StatementText]:
    """Split ``sql`` on ``;`` tokens; empty statements are dropped."""
    tokens = _tokenize(sql)
    out: list[StatementText] = []
    start_tok: Token | None = None
    last: Token | None = None
    for tok in [*tokens, None]:
        if tok is None or tok.token_type == TokenType.SEMICOLON:
            if start_tok is not None and last is not None:
                text = sql[start_tok.start : last.end + 1]
                line, col = _position(sql, start_tok.start)
                out.append(StatementText(text, line, col, start_tok.start))
            start_tok = last = None
            continue
        if start_tok is None:
            # A comment before the first token belongs to the statement's text.
            start_tok = tok
        last = tok
    return out


# ---------------------------------------------------------------- parameters


def _param_spec(sql: str, tokens: list[Token]) -> tuple[st.ParamSpec, str]:
    """Find placeholders; return their spec and the text with ``?`` and
    ``:name`` rewritten to DataFusion's ``$n`` / ``$name`` form."""
    styles: set[str] = set()
    names: list[str] = []
    numbers: set[int] = set()
    edits: list[tuple[int, int, str]] = []
    qmarks = 0
    for i, tok in enumerate(tokens):
        nxt = tokens[i + 1] if i + 1 < len(tokens) else None
        adjacent = nxt is not None and nxt.start == tok.end + 1
        if tok.token_type == TokenType.PLACEHOLDER and tok.text == "?":
            qmarks += 1
            styles.add("qmark")
            edits.append((tok.start, tok.end + 1, f"${qmarks}"))
        elif (
            tok.token_type == TokenType.COLON
            and adjacent
            and nxt is not None
            and (nxt.token_type in (TokenType.VAR, TokenType.NAME) or nxt.text.isidentifier())
        ):
            prev = tokens[i - 1] if i else None
            if (
                prev is not None
                and prev.end + 1 == tok.start
                and prev.token_type
                in (
                    TokenType.VAR,
                    TokenType.NUMBER,
                    TokenType.IDENTIFIER,
                    TokenType.R_PAREN,
                    TokenType.R_BRACKET,
                )
            ):
                continue  # slice syntax like a[1:2] or x:y, not a parameter
            styles.add("named")
            if nxt.text not in names:
                names.append(nxt.text)
            edits.append((tok.start, nxt.end + 1, f"${nxt.text}"))
        elif tok.token_type == TokenType.PARAMETER and adjacent and nxt is not None:
            if nxt.token_type == TokenType.NUMBER and nxt.text.isdigit():
                styles.add("numeric")
                numbers.add(int(nxt.text))
        elif (
            tok.token_type == TokenType.L_BRACE
            and nxt is not None
            and nxt.token_type
            in (
                TokenType.VAR,
                TokenType.NAME,
            )
        ):
            after = tokens[i + 2] if i + 2 < len(tokens) else None
            if after is not None and after.token_type == TokenType.R_BRACE:
                line, col = _position(sql, tok.start)
                raise ParameterError(
                    f"'{{{nxt.text}}}' templates are not supported: values are bound, never "
                    f"spliced into SQL. Write :{nxt.text} instead",
                    line=line,
                    column=col,
                )
    if len(styles) > 1:
        raise ParameterError("Do not mix ?, $n and :name placeholders in one statement")
    if not styles:
        return st.ParamSpec(), sql
    style = styles.pop()
    out = sql
    for start, end, repl in reversed(edits):
        out = out[:start] + repl + out[end:]
    if style == "qmark":
        return st.ParamSpec("qmark", qmarks), out
    if style == "numeric":
        return st.ParamSpec("numeric", max(numbers)), out
    return st.ParamSpec("named", 0, tuple(names)), out


def parameter_names(sql: str) -> list[str]:
    """The ``:name`` placeholders of ``sql`` in order of first use (for the magic)."""
    names: list[str] = []
    for piece in split_statements(sql):
        spec, _ = _param_spec(piece.sql, _tokenize(piece.sql))
        names.extend(n for n in spec.names if n not in names)
    return names


def bind_params(spec: st.ParamSpec, params: Any) -> dict[str, Any]:
    """Turn user ``params`` into DataFusion-style keys: ``"1"``.. or ``"name"``."""
    if spec.style is None:
        if params:
            raise ParameterError("Parameters were given but the statement has no placeholders")
        return {}
    if params is None:
        raise ParameterError(
            f"The statement has placeholders but no parameters were given ({_expected(spec)})"
        )
    if spec.style == "named":
        if not hasattr(params, "keys"):
            raise ParameterError("Named placeholders (:name) need a mapping of parameters")
        missing = [n for n in spec.names if n not in params]
        if missing:
            raise ParameterError(f"Missing value for parameter :{missing[0]}")
        return {n: params[n] for n in spec.names}
    if hasattr(params, "keys") or isinstance(params, (str, bytes)):
        raise ParameterError(
            f"Positional placeholders need a sequence of parameters ({_expected(spec)})"
        )
    values = list(params)
    if len(values) != spec.count:
        raise ParameterError(f"The statement needs {spec.count} parameter(s), {len(values)} given")
    return {str(i + 1): v for i, v in enumerate(values)}


def _expected(spec: st.ParamSpec) -> str:
    if spec.style == "named":
        return "named: " + ", ".join(f":{n}" for n in spec.names)
    return f"{spec.count} positional"


# ---------------------------------------------------------------- parsing

_cache: OrderedDict[str, list[st.Statement]] = OrderedDict()


def parse(sql: str) -> list[st.Statement]:
    """Parse ``sql`` (one or more statements). Cached by text."""
    hit = _cache.get(sql)
    if hit is not None:
        _cache.move_to_end(sql)
        return hit
    result = [parse_one(piece) for piece in split_statements(sql)]
    _cache[sql] = result
    if len(_cache) > _CACHE_SIZE:
        _cache.popitem(last=False)
    return result


def parse_one(piece: StatementText) -> st.Statement:
    tokens = _statement_tokens(piece.sql, at=piece)
    params, df_sql = _param_spec(piece.sql, tokens)
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
        line, col = _position(self.piece.sql, tok.start)
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
    if words[:3] == ["EXECUTE", "AS", "USER"]:
        return _parse_execute_as(tokens, base, piece)
    if (
        words[:1] in (["REPAIR"], ["KILL"])
        or (
            words[:1] in (["CREATE"], ["ALTER"], ["DROP"])
            and words[1:2] == ["USER"]
            and words[2:3] != ["TABLE"]
        )
        or words[:2] == ["SHOW", "MANIFEST"]
    ):
        return st.KalamCommand(**base, words=tuple(t.text for t in tokens))
    return None


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
    line, col = _position(piece.sql, offset)
    inner = parse_one(
        StatementText(
            text,
            piece.line + line - 1,
            (piece.column - 1 if line == 1 else 0) + col,
            piece.start + offset,
        )
    )
    return st.ExecuteAs(**base, user=name, inner=inner)


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


def _parse_explain(tokens: list[Token], base: dict[str, Any], piece: StatementText) -> st.Statement:
    # sqlglot tokenizes EXPLAIN as a command whose rest is one string: re-tokenize the rest.
    inner = piece.sql[tokens[0].end + 1 :]
    inner_tokens = _tokenize(inner)
    while inner_tokens and inner_tokens[0].text.upper() in ("ANALYZE", "VERBOSE"):
        inner = inner[inner_tokens[0].end + 1 :]
        inner_tokens = _tokenize(inner)
    if not inner_tokens:
        raise SqlParseError(
            "Syntax error: EXPLAIN needs a query", line=piece.line, column=piece.column
        )
    _, inner_df = _param_spec(inner, inner_tokens)
    tree = sqlglot.parse_one(inner_df, read=_dialect_for(inner_df))
    if not isinstance(tree, exp.Query):
        raise UnsupportedStatementError("EXPLAIN supports queries (SELECT) only")
    _, df_sql = _param_spec(piece.sql, tokens)
    return st.Query(**base, tree=tree, explain=True, explain_sql=df_sql)


_TYPE_WORDS = {"USER", "SHARED", "STREAM"}


def _parse_standard(piece: StatementText, df_sql: str, base: dict[str, Any]) -> st.Statement:
    sql = df_sql
    table_type = None
    tokens = _tokenize(sql)
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
    sql = _modify_to_alter_column(sql, tokens)
    tree = sqlglot.parse_one(sql, read=_dialect_for(sql))
    from engine.sql import mapping  # late: mapping imports this module's helpers

    stmt = mapping.to_statement(tree, base, table_type, sql)  # type: ignore[arg-type]
    if isinstance(stmt, st.Insert) and stmt.query is not None:
        # Hand DataFusion the SELECT exactly as written (sqlglot would re-case names).
        stmt = replace(stmt, query_sql=_alias_projections(_insert_query_text(sql, tokens)))
    return stmt


_CLAUSE_END = {
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


def _alias_projections(query: str) -> str:
    """Name each top-level projection of an INSERT's SELECT positionally.

    INSERT ... SELECT binds columns by position, but DataFusion refuses a
    projection with two identical names (``SELECT value, value``)."""
    tokens = _tokenize(query)
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
        elif depth == 0 and tt in _CLAUSE_END:
            end = i
            break
    spans.append((first, end - 1))
    edits = []
    for n, (a, b) in enumerate(spans):
        if a > b or tokens[b].token_type == TokenType.STAR:
            return query  # `*` cannot be aliased; leave the query as written
        if b - 1 >= a and tokens[b - 1].token_type == TokenType.ALIAS:
            edits.append((tokens[b - 1].start, tokens[b].end + 1, f'AS "__kalam_c{n}"'))
        elif (
            b - 1 >= a
            and tokens[b].token_type in (TokenType.VAR, TokenType.IDENTIFIER)
            and tokens[b - 1].token_type
            in (TokenType.NUMBER, TokenType.VAR, TokenType.IDENTIFIER, TokenType.R_PAREN)
        ):  # implicit alias: `expr name`
            edits.append((tokens[b].start, tokens[b].end + 1, f'"__kalam_c{n}"'))
        else:
            edits.append((tokens[b].end + 1, tokens[b].end + 1, f' AS "__kalam_c{n}"'))
    out = query
    for a, b, text in reversed(edits):
        out = out[:a] + text + out[b:]
    return out


def _modify_to_alter_column(sql: str, tokens: list[Token]) -> str:
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


def _insert_query_text(sql: str, tokens: list[Token]) -> str:
    i = 1
    if i < len(tokens) and tokens[i].token_type == TokenType.INTO:
        i += 1
    i += 1  # table name
    while i + 1 < len(tokens) and tokens[i].token_type == TokenType.DOT:
        i += 2
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
    for tok in tokens[i:]:
        if tok.token_type == TokenType.L_PAREN:
            depth += 1
        elif tok.token_type == TokenType.R_PAREN:
            depth -= 1
        elif depth == 0 and tok.token_type == TokenType.RETURNING:
            end = tok.start
            break
    return sql[start:end].strip()
