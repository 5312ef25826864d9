"""Tokenizing statement text with sqlglot, and positions in it.

The dialect is PostgreSQL's, unless the text only tokenizes with ``$`` read
as a parameter sigil everywhere (``$1,$2`` trips Postgres' dollar quoting).
Tokenizer errors become ``SqlParseError`` with a line and column.

One statement's text is tokenized by several steps (splitting, parameter
placeholders, slips, the parse itself); the last few texts' tokens are kept,
so a 10,000-row VALUES list is scanned once, not eight times.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlglot
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import ParseError, SqlglotError, TokenError
from sqlglot.tokens import Token, TokenType

from engine.errors import SqlParseError
from engine.sql.dialect import Kalam, KalamPostgres
from engine.sql.statements import TextPart

DIALECT: Any = KalamPostgres
_OPEN = {TokenType.L_PAREN, TokenType.L_BRACKET}
_CLOSE = {TokenType.R_PAREN, TokenType.R_BRACKET}


@dataclass(frozen=True)
class StatementText:
    """One statement's text and where it starts in the submitted SQL (1-based)."""

    sql: str
    line: int
    column: int
    start: int


def position(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return line, column


_MEMO_SIZE = 8
_memo: OrderedDict[str, tuple[Any, tuple[Token, ...]]] = OrderedDict()
_memo_lock = threading.Lock()


def _scan(sql: str) -> tuple[Any, tuple[Token, ...]]:
    """The dialect ``sql`` tokenizes in, and its tokens (memoised); raises
    ``TokenError`` when it tokenizes in neither."""
    with _memo_lock:
        hit = _memo.get(sql)
        if hit is not None:
            _memo.move_to_end(sql)
            return hit
    try:
        found = (DIALECT, tuple(sqlglot.tokenize(sql, read=DIALECT)))
    except TokenError:
        found = (Kalam, tuple(sqlglot.tokenize(sql, read=Kalam)))
    with _memo_lock:
        _memo[sql] = found
        while len(_memo) > _MEMO_SIZE:
            _memo.popitem(last=False)
    return found


def dialect_for(sql: str) -> Any:
    """PostgreSQL's dialect, unless the text only tokenizes with ``$`` read as a
    parameter sigil everywhere (``$1,$2`` trips Postgres' dollar quoting)."""
    try:
        return _scan(sql)[0]
    except TokenError:
        return Kalam


def parse_tree(sql: str) -> Any:
    """``sqlglot.parse_one(sql)`` in ``dialect_for(sql)``, from the memoised tokens."""
    dialect, tokens = _scan(sql)
    result = Dialect.get_or_raise(dialect).parser().parse(list(tokens), sql)
    if not result or result[0] is None:
        raise ParseError(f"No expression was parsed from '{sql}'")
    return sqlglot.exp.Block(expressions=result) if len(result) > 1 else result[0]


# Trees of the last few query texts the rewrites read: a query goes through
# up to a dozen of them (engine/sql/retry.py), each reading the text it is
# given, and a notebook re-runs the same text. A copy costs a quarter of a
# parse (TPC-H: 0.2 vs 0.6-0.9 ms). Long texts (VALUES lists) are not kept.
_TREES_SIZE = 16
_TREE_TEXT_LIMIT = 20_000
_trees: OrderedDict[str, tuple[Any, Any]] = OrderedDict()


def parsed(sql: str) -> tuple[Any, Any] | None:
    """(tree, dialect) of ``sql``, for a rewrite that renders the tree back
    in the dialect it was read in; None when sqlglot cannot read it. The
    tree is the caller's own to change."""
    with _memo_lock:
        hit = _trees.get(sql)
        if hit is not None:
            _trees.move_to_end(sql)
    if hit is not None:
        return hit[0].copy(), hit[1]
    dialect = dialect_for(sql)
    try:
        tree = sqlglot.parse_one(sql, read=dialect)
    except SqlglotError:
        return None
    if len(sql) <= _TREE_TEXT_LIMIT:
        with _memo_lock:
            _trees[sql] = (tree.copy(), dialect)
            while len(_trees) > _TREES_SIZE:
                _trees.popitem(last=False)
    return tree, dialect


def peeked(sql: str) -> Any | None:
    """The tree of ``sql`` shared with every other reader, for a rewrite to
    look whether it has anything to do before it takes its own copy
    (``parsed``): it must not be changed. None when sqlglot cannot read it."""
    with _memo_lock:
        hit = _trees.get(sql)
    if hit is not None:
        return hit[0]
    read = parsed(sql)
    if read is None:
        return None
    with _memo_lock:
        hit = _trees.get(sql)
    return hit[0] if hit is not None else read[0]


def conjuncts_of(node: Any) -> list[Any]:
    """The terms of an AND chain (``node`` itself when it is no AND, none
    for None), as sqlglot's ``flatten`` gives them."""
    if node is None:
        return []
    return list(node.flatten()) if isinstance(node, sqlglot.exp.And) else [node]


def depth(node: Any) -> int:
    """How many ancestors a sqlglot node has (rewrites go innermost first)."""
    d = 0
    while node.parent is not None:
        node = node.parent
        d += 1
    return d


class FreshNames:
    """Private names ``<prefix>1``, ``<prefix>2``, ... that no identifier of
    ``tree`` uses already (a rewrite's derived tables and columns)."""

    def __init__(self, tree: Any, prefix: str) -> None:
        self._prefix = prefix
        self._taken = {
            i.name for i in tree.find_all(sqlglot.exp.Identifier) if i.name.startswith(prefix)
        }
        self._count = 0

    def next(self) -> str:
        self._count += 1
        while f"{self._prefix}{self._count}" in self._taken:
            self._count += 1
        return f"{self._prefix}{self._count}"


def rewritten(sql: str, rewrite: Callable[[Any], bool]) -> tuple[Any, str] | None:
    """``sql`` parsed, ``rewrite(tree)`` applied in place, and (tree, text
    rendered back) when it changed something; None when it did not or
    sqlglot cannot read ``sql``."""
    read = parsed(sql)
    if read is None or not rewrite(read[0]):
        return None
    tree, dialect = read
    return tree, tree.sql(dialect=dialect)


def tokenize(sql: str, *, at: StatementText | None = None) -> list[Token]:
    try:
        return list(_scan(sql)[1])
    except TokenError as exc:
        # sqlglot's message quotes the text up to where tokenizing failed.
        text = str(exc)
        context = (
            text.split("Error tokenizing '", 1)[-1][:-1] if "Error tokenizing '" in text else ""
        )
        offset = sql.find(context) + len(context) - 1 if context and sql.find(context) >= 0 else 0
        quote = last_open_quote(sql, offset)
        if quote is not None:
            offset = quote
        line, col = position(sql, max(offset, 0))
        if at is not None:
            col = (at.column - 1 if line == 1 else 0) + col
            line = at.line + line - 1
        what = "unterminated quoted text" if quote is not None else "cannot read the SQL text here"
        raise SqlParseError(f"Syntax error: {what}", line=line, column=col) from None


def last_open_quote(sql: str, upto: int) -> int | None:
    """Offset of the quote that opens an unterminated string / identifier, if the
    tokenizer stopped inside one."""
    for q in ("'", '"'):
        start = sql.rfind(q, 0, upto + 1)
        if start >= 0 and sql.count(q, start) % 2 == 1:
            return start
    return None


def depths(tokens: list[Token]) -> list[int]:
    """Bracket depth at each token (an opening bracket counts as outside itself)."""
    out: list[int] = []
    depth = 0
    for tok in tokens:
        if tok.token_type in _CLOSE:
            depth -= 1
        out.append(depth)
        if tok.token_type in _OPEN:
            depth += 1
    return out


def matching_close(tokens: list[Token], i: int) -> int:
    """Index of the bracket that closes the one at ``i`` (``len(tokens)`` if none)."""
    depth = 0
    for j in range(i, len(tokens)):
        if tokens[j].token_type in _OPEN:
            depth += 1
        elif tokens[j].token_type in _CLOSE:
            depth -= 1
            if depth == 0:
                return j
    return len(tokens)


def offset_of(text: str, line: int, column: int) -> int:
    """Offset of a 1-based (line, column) position in ``text``."""
    start = 0
    for _ in range(line - 1):
        nl = text.find("\n", start)
        if nl < 0:
            break
        start = nl + 1
    return min(start + max(column, 1) - 1, len(text))


Edit = tuple[int, int, str]  # replace text[start:end] with the string


def apply_edits(text: str, edits: list[Edit]) -> str:
    out = text
    for start, end, repl in sorted(edits, reverse=True):
        out = out[:start] + repl + out[end:]
    return out


def edited_to_original(edits: list[Edit], offset: int) -> int:
    """Where ``offset`` of the edited text came from in the original (an offset
    inside inserted text maps to the start of the edit)."""
    delta = 0
    for start, end, repl in sorted(edits):
        new_start = start + delta
        if offset < new_start:
            break
        if offset < new_start + len(repl):
            return start
        delta += len(repl) - (end - start)
    return offset - delta


class Composed:
    """SQL text generated around pieces of a statement kept exactly as written.

    ``locate(offset)`` maps a position in the generated text back to the
    statement's own (line, column), so an error DataFusion reports inside a
    piece points at what the user wrote; glue text maps to ``None``."""

    def __init__(self) -> None:
        self._chunks: list[str] = []
        self._pieces: list[tuple[int, TextPart]] = []  # (offset in the text, piece)
        self._size = 0

    def add(self, text: str) -> Composed:
        self._chunks.append(text)
        self._size += len(text)
        return self

    def piece(self, part: TextPart) -> Composed:
        """Append ``part`` verbatim."""
        self._pieces.append((self._size, part))
        return self.add(part.text)

    @property
    def text(self) -> str:
        return "".join(self._chunks)

    def locate(self, offset: int) -> tuple[int, int] | None:
        for start, part in self._pieces:
            if start <= offset < start + len(part.text):
                line, col = position(part.text, offset - start)
                if line == 1:
                    return part.line, part.column + col - 1
                return part.line + line - 1, col
        return None
