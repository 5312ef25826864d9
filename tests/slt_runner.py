"""A sqllogictest runner (SQLite format) for the Kalam engine.

This module owns four things:

- parsing: ``.test`` text -> typed records (``Statement``, ``Query``, ``Control``);
- rendering and checking: result values -> the strings SQLite's sqllogictest
  driver prints (``I``/``T``/``R``, ``NULL``, ``(empty)``), sort modes, md5
  hashing above the ``hash-threshold``, labels;
- backends: ``KalamBackend`` (the engine, with the translation of SQLite-isms
  and the flush / reopen modes) and ``SqliteBackend`` (Python's ``sqlite3``, the
  reference the runner itself is validated against);
- reporting: pass/fail/skip counts by record kind and by statement verb, and the
  first failures with SQL, expected and actual. A record the engine refuses
  with an error naming a feature it lacks (``UNSUPPORTED_STATEMENT``, e.g.
  ``CREATE INDEX``) is counted "unsupported", apart from passes and failures,
  and the file keeps running; a run over many files ends with its failure
  and refusal classes and their counts.

SQLite-isms are translated here, never in the engine: a ``FLOAT``/``REAL``
column is SQLite's 8-byte REAL, so ``CREATE TABLE`` is rewritten on the sqlglot
AST to use ``DOUBLE``; differences in how values come back (an integer column
returned as a float, say) are handled by rendering, never by changing SQL.

CLI: ``python tests/slt_runner.py FILE|DIR... [--flush-every-statement]
[--reopen-every N] [--verbose] [--backend kalam|sqlite] [--sample-every N]
[--max-queries N]`` (the last two take a deterministic sample of a corpus).

A table created without a PRIMARY KEY (SHARED tables need one) gets a hidden
generated key, ``slt_rowid BIGINT PRIMARY KEY DEFAULT SNOWFLAKE_ID()``: INSERTs
without a column list name the visible columns, ``*`` over such a table is
spelled out as its visible columns, and the key never reaches a result.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import re
import shutil
import sqlite3
import sys
import tempfile
import time
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import sqlglot
from sqlglot import exp

REPO_ROOT = Path(__file__).resolve().parents[1]
# The corpus is kept in the repository (tests/slt/), so a fresh clone runs it.
SHARED_SLT_DIR = Path(__file__).resolve().parent / "slt"

SortMode = Literal["nosort", "rowsort", "valuesort"]
SORT_MODES: tuple[str, ...] = ("nosort", "rowsort", "valuesort")
COLUMN_TYPES = frozenset("ITR")

# Records the runner treats as the engine "kalam" for skipif/onlyif purposes.
KALAM_NAME = "kalam"


# --------------------------------------------------------------------------- records


class SltParseError(ValueError):
    """The .test text is not valid sqllogictest."""


@dataclass(frozen=True)
class Condition:
    """A ``skipif <db>`` or ``onlyif <db>`` guard on the next record."""

    kind: Literal["skipif", "onlyif"]
    engine: str

    def allows(self, engine: str) -> bool:
        same = self.engine.lower() == engine.lower()
        return not same if self.kind == "skipif" else same


@dataclass(frozen=True)
class Statement:
    line: int
    sql: str
    expect_error: bool
    conditions: tuple[Condition, ...] = ()


@dataclass(frozen=True)
class Query:
    line: int
    sql: str
    types: str
    sort: SortMode
    label: str | None
    # Exactly one of expected_values / expected_hash is set.
    expected_values: tuple[str, ...] | None
    expected_hash: tuple[int, str] | None
    conditions: tuple[Condition, ...] = ()


@dataclass(frozen=True)
class Control:
    """``hash-threshold N`` or ``halt``."""

    line: int
    command: Literal["hash-threshold", "halt"]
    value: int = 0
    conditions: tuple[Condition, ...] = ()


Record = Statement | Query | Control

_HASH_LINE = re.compile(r"^(\d+) values hashing to ([0-9a-f]{32})$")


def parse(text: str, *, filename: str = "<slt>") -> list[Record]:
    """Parse sqllogictest text into records (comments dropped, blank-line separated)."""
    records: list[Record] = []
    block: list[tuple[int, str]] = []
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.rstrip("\r")
        if line.startswith("#"):
            continue
        if line.strip() == "":
            if block:
                records.append(_parse_block(block, filename))
                block = []
            continue
        block.append((lineno, line))
    if block:
        records.append(_parse_block(block, filename))
    return records


def parse_file(path: str | Path) -> list[Record]:
    path = Path(path)
    return parse(path.read_text(encoding="utf-8"), filename=str(path))


def _parse_block(block: list[tuple[int, str]], filename: str) -> Record:
    conditions: list[Condition] = []
    i = 0
    while i < len(block):
        words = block[i][1].split()
        if words[0] not in ("skipif", "onlyif"):
            break
        if len(words) < 2:
            raise SltParseError(f"{filename}:{block[i][0]}: {words[0]} needs a database name")
        conditions.append(Condition(words[0], words[1]))  # type: ignore[arg-type]
        i += 1
    if i == len(block):
        raise SltParseError(f"{filename}:{block[0][0]}: guard without a record")
    lineno, head = block[i]
    words = head.split()
    body = [text for _, text in block[i + 1 :]]
    where = f"{filename}:{lineno}"
    guards = tuple(conditions)
    match words[0]:
        case "statement":
            if len(words) < 2 or words[1] not in ("ok", "error"):
                raise SltParseError(f"{where}: expected 'statement ok' or 'statement error'")
            if not body:
                raise SltParseError(f"{where}: statement without SQL")
            return Statement(lineno, "\n".join(body), words[1] == "error", guards)
        case "query":
            return _parse_query(words, body, lineno, where, guards)
        case "hash-threshold":
            if len(words) != 2 or not words[1].isdigit():
                raise SltParseError(f"{where}: hash-threshold needs a non-negative integer")
            return Control(lineno, "hash-threshold", int(words[1]), guards)
        case "halt":
            return Control(lineno, "halt", 0, guards)
        case _:
            raise SltParseError(f"{where}: unknown record {words[0]!r}")


def _parse_query(
    words: list[str], body: list[str], lineno: int, where: str, guards: tuple[Condition, ...]
) -> Query:
    if len(words) < 2 or not words[1] or set(words[1]) - COLUMN_TYPES:
        raise SltParseError(f"{where}: query needs column types made of I, T, R")
    sort = words[2] if len(words) > 2 else "nosort"
    if sort not in SORT_MODES:
        raise SltParseError(f"{where}: unknown sort mode {sort!r}")
    label = words[3] if len(words) > 3 else None
    if "----" in body:
        split = body.index("----")
        sql_lines, expected = body[:split], body[split + 1 :]
    else:
        sql_lines, expected = body, []
    if not sql_lines:
        raise SltParseError(f"{where}: query without SQL")
    hashed = _HASH_LINE.match(expected[0]) if len(expected) == 1 else None
    return Query(
        line=lineno,
        sql="\n".join(sql_lines),
        types=words[1],
        sort=sort,  # type: ignore[arg-type]
        label=label,
        expected_values=None if hashed else tuple(expected),
        expected_hash=(int(hashed.group(1)), hashed.group(2)) if hashed else None,
        conditions=guards,
    )


# --------------------------------------------------------------------------- rendering

_INT_PREFIX = re.compile(r"\s*([+-]?\d+)")
_REAL_PREFIX = re.compile(r"\s*([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)")
_I64_MIN, _I64_MAX = -(2**63), 2**63 - 1


def _as_int(value: Any) -> int:
    """SQLite's ``sqlite3_column_int64`` conversion."""
    if isinstance(value, bool | int):
        return int(value)
    if isinstance(value, float | Decimal):
        f = float(value)
        if math.isnan(f):
            return 0
        if f <= _I64_MIN:
            return _I64_MIN
        if f >= _I64_MAX:
            return _I64_MAX
        return int(f)  # truncates toward zero, like the C cast
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    m = _INT_PREFIX.match(text)
    return max(_I64_MIN, min(_I64_MAX, int(m.group(1)))) if m else 0


def _as_float(value: Any) -> float:
    """SQLite's ``sqlite3_column_double`` conversion."""
    if isinstance(value, bool | int | float | Decimal):
        return float(value)
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    m = _REAL_PREFIX.match(text)
    return float(m.group(1)) if m else 0.0


def _real_as_text(value: float) -> str:
    """SQLite's text form of a REAL (``%!.15g``: always shows a decimal point)."""
    if math.isinf(value):
        return "Inf" if value > 0 else "-Inf"
    text = f"{value:.15g}"
    if "e" in text:
        mantissa, exponent = text.split("e")
        return f"{mantissa if '.' in mantissa else mantissa + '.0'}e{exponent}"
    return text if "." in text else text + ".0"


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        text = str(int(value))
    elif isinstance(value, float):
        text = _real_as_text(value)
    elif isinstance(value, bytes):
        text = value.decode("latin-1")
    else:
        text = str(value)
    # The reference driver masks anything outside printable ASCII.
    return "".join(c if " " <= c <= "~" else "@" for c in text)


def render_value(value: Any, column_type: str) -> str:
    """One result value as sqllogictest prints it for column type I, T or R."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "NULL"
    if column_type == "I":
        text = str(_as_int(value))
    elif column_type == "R":
        text = f"{_as_float(value):.3f}"
    else:
        text = _as_text(value)
    return text or "(empty)"


def render_rows(rows: Iterable[Sequence[Any]], types: str) -> list[list[str]]:
    return [[render_value(v, t) for v, t in zip(row, types, strict=True)] for row in rows]


def sort_values(rows: list[list[str]], sort: SortMode) -> list[str]:
    """Flatten rendered rows after applying the record's sort mode."""
    if sort == "rowsort":
        return [v for row in sorted(rows) for v in row]
    flat = [v for row in rows for v in row]
    return sorted(flat) if sort == "valuesort" else flat


def hash_values(values: Sequence[str]) -> str:
    """md5 over the values, each followed by a newline."""
    digest = hashlib.md5()
    for value in values:
        digest.update(value.encode("utf-8"))
        digest.update(b"\n")
    return digest.hexdigest()


# --------------------------------------------------------------------------- SQL analysis


@dataclass(frozen=True)
class SqlInfo:
    """What the runner needs to know about one SQL statement."""

    verb: str  # CREATE, INSERT, DELETE, DROP, SELECT, UPDATE, ...
    created_table: str | None = None
    dropped_table: str | None = None
    written_table: str | None = None
    tables: frozenset[str] = frozenset()


_VERBS: dict[type[exp.Expression], str] = {
    exp.Create: "CREATE",
    exp.Insert: "INSERT",
    exp.Delete: "DELETE",
    exp.Update: "UPDATE",
    exp.Drop: "DROP",
    exp.Select: "SELECT",
    exp.Union: "SELECT",
    exp.Intersect: "SELECT",
    exp.Except: "SELECT",
    exp.Values: "SELECT",
}


def _first_word(sql: str) -> str:
    try:
        tokens = sqlglot.tokenize(sql, read="sqlite")
    except sqlglot.errors.SqlglotError:
        return "?"
    return tokens[0].text.upper() if tokens else "?"


def analyse_sql(sql: str) -> SqlInfo:
    """Classify a statement and name the tables it touches (names lower-cased)."""
    try:
        tree = sqlglot.parse_one(sql, read="sqlite")
    except sqlglot.errors.SqlglotError:
        return SqlInfo(verb=_first_word(sql))
    verb = _VERBS.get(type(tree)) or _first_word(sql)
    tables = frozenset(t.name.lower() for t in tree.find_all(exp.Table) if t.name)
    target = tree.this if isinstance(tree, exp.Insert | exp.Delete | exp.Update) else None
    if isinstance(target, exp.Schema):  # INSERT INTO t (cols) ...
        target = target.this
    kind = str(tree.args.get("kind") or "").upper()
    table_node = tree.this if isinstance(tree.this, exp.Table) else tree.find(exp.Table)
    table_name = table_node.name.lower() if table_node is not None else None
    return SqlInfo(
        verb=verb,
        created_table=table_name if isinstance(tree, exp.Create) and kind == "TABLE" else None,
        dropped_table=table_name if isinstance(tree, exp.Drop) and kind == "TABLE" else None,
        written_table=target.name.lower() if isinstance(target, exp.Table) else None,
        tables=tables,
    )


# The generated key a table without a PRIMARY KEY gets (SHARED tables need one):
# a snowflake id filled in by the engine, never shown in results.
HIDDEN_KEY = "slt_rowid"


def table_columns(sql: str) -> tuple[list[str], bool] | None:
    """(column names in order, has a PRIMARY KEY) of a CREATE TABLE, else None."""
    try:
        tree = sqlglot.parse_one(sql, read="sqlite")
    except sqlglot.errors.SqlglotError:
        return None
    if not isinstance(tree, exp.Create) or str(tree.args.get("kind")).upper() != "TABLE":
        return None
    if not isinstance(tree.this, exp.Schema):
        return None  # CREATE TABLE ... AS SELECT
    names = [c.name.lower() for c in tree.this.expressions if isinstance(c, exp.ColumnDef)]
    has_pk = any(
        isinstance(c, exp.PrimaryKey)
        or isinstance(c, exp.ColumnDef)
        and any(isinstance(k.kind, exp.PrimaryKeyColumnConstraint) for k in c.constraints)
        for c in tree.this.expressions
    )
    return names, has_pk


def translate_create_table(
    sql: str, *, dialect: str | None = None, hidden_key: bool = False
) -> str:
    """Rewrite SQLite column types the engine reads differently.

    SQLite stores FLOAT / REAL / DOUBLE columns as 8-byte REALs while the engine
    reads FLOAT / REAL as float32, so such columns become DOUBLE. Everything
    else (``INTEGER PRIMARY KEY`` included) is kept.
    """
    tree = sqlglot.parse_one(sql, read="sqlite")
    if not isinstance(tree, exp.Create) or str(tree.args.get("kind")).upper() != "TABLE":
        return sql
    real_types = {exp.DataType.Type.FLOAT, exp.DataType.Type.DOUBLE}
    for column in tree.find_all(exp.ColumnDef):
        kind = column.args.get("kind")
        if isinstance(kind, exp.DataType) and kind.this in real_types:
            column.set("kind", exp.DataType.build("DOUBLE"))
    if hidden_key and isinstance(tree.this, exp.Schema):
        key = sqlglot.parse_one(
            f"CREATE TABLE x ({HIDDEN_KEY} BIGINT PRIMARY KEY DEFAULT SNOWFLAKE_ID())",
            read="postgres",
        )
        tree.this.append("expressions", key.this.expressions[0])
    return tree.sql(dialect=dialect)


def expand_hidden_stars(tree: exp.Expression, hidden: dict[str, list[str]]) -> bool:
    """Replace ``*`` / ``t.*`` over tables with a hidden key by their visible
    columns (``hidden``: table -> visible columns). False when a star cannot be
    expanded (a derived table among the sources); True when nothing is left."""
    ok = True
    for select in list(tree.find_all(exp.Select)):
        stars = [p for p in select.expressions if _is_star(p)]
        if not stars:
            continue
        from_ = select.args.get("from_")
        items = ([from_.this] if from_ is not None else []) + [
            j.this for j in select.args.get("joins") or []
        ]
        sources: list[tuple[str, list[str] | None]] = []
        for item in items:
            if isinstance(item, exp.Table) and item.name.lower() in hidden:
                sources.append((item.alias_or_name, hidden[item.name.lower()]))
            else:
                sources.append((item.alias_or_name, None))
        if not any(cols is not None for _, cols in sources):
            continue
        projections: list[exp.Expression] = []
        for p in select.expressions:
            if not _is_star(p):
                projections.append(p)
                continue
            wanted = sources
            if isinstance(p, exp.Column):
                wanted = [s for s in sources if s[0].lower() == p.table.lower()]
            for name, cols in wanted:
                if cols is None:
                    if any(c is not None for _, c in wanted):
                        ok = False
                    projections.append(exp.Column(this=exp.Star(), table=exp.to_identifier(name)))
                    continue
                projections += [exp.column(c, table=name) for c in cols]
        select.set("expressions", projections)
    return ok


def _is_star(node: exp.Expression) -> bool:
    return isinstance(node, exp.Star) or (
        isinstance(node, exp.Column) and isinstance(node.this, exp.Star)
    )


_INSERT_HEAD = re.compile(
    r"^\s*(?:INSERT(?:\s+OR\s+\w+)?|REPLACE)\s+INTO\s+(\w+)\s*", re.IGNORECASE
)


_REPLACE = re.compile(r"^\s*REPLACE\s+INTO\b", re.IGNORECASE)


def add_insert_columns(sql: str, hidden: dict[str, list[str]]) -> str:
    """``INSERT INTO t VALUES ...`` over a table with a hidden key names the
    visible columns, so the key takes its default."""
    m = _INSERT_HEAD.match(sql)
    if m is None or m.group(1).lower() not in hidden:
        return sql
    rest = sql[m.end() :]
    if rest.startswith("(") and not rest[1:].lstrip().upper().startswith("SELECT"):
        return sql  # a column list is already there
    columns = ", ".join(hidden[m.group(1).lower()])
    return f"{sql[: m.end()]}({columns}) {sql[m.end() :]}"


# --------------------------------------------------------------------------- backends


class FeatureNotAvailable(RuntimeError):
    """The backend cannot run the requested mode (e.g. no FLUSH TABLE yet)."""


class _Refused(Exception):
    """A record the backend refused as an unsupported feature (its message)."""


_NUMBERS = re.compile(r"\d+(\.\d+)?")
_QUOTED = re.compile(r"'[^']*'")


def failure_class(outcome: Outcome) -> str:
    """A failure's message reduced to its class: first line, numbers and
    quoted values blanked, so one cause counts once however often it shows."""
    first = outcome.message.splitlines()[0] if outcome.message else ""
    if first.startswith(("expected:", "label ")):
        return "WRONG ANSWER: " + first.split(":")[0]
    return _QUOTED.sub("'?'", _NUMBERS.sub("N", first))[:140]


class Backend(ABC):
    """What the runner needs from a database."""

    name: str

    @abstractmethod
    def execute(self, sql: str, info: SqlInfo) -> None:
        """Run one statement; raise on failure."""

    @abstractmethod
    def query(self, sql: str) -> tuple[list[Sequence[Any]], int]:
        """Run one query; return (rows, number of columns)."""

    @abstractmethod
    def is_sql_error(self, error: BaseException) -> bool:
        """True for the errors a ``statement error`` record may expect."""

    def is_unsupported(self, error: BaseException) -> bool:
        """True when ``error`` is a refusal naming a feature the backend lacks."""
        return getattr(error, "code", None) in UNSUPPORTED_CODES

    def flush(self, tables: Sequence[str]) -> None:
        raise FeatureNotAvailable(f"{self.name}: flush is not a feature of this backend")

    def reopen(self) -> None:
        raise FeatureNotAvailable(f"{self.name}: reopen is not a feature of this backend")

    def close(self) -> None:  # noqa: B027 - optional hook
        pass


class SqliteBackend(Backend):
    """Python's sqlite3 on a file, so reopen can be exercised too."""

    name = "sqlite"

    def __init__(self, data_dir: str | Path | None = None) -> None:
        self._owned_dir = None if data_dir else tempfile.mkdtemp(prefix="slt-sqlite-")
        self.path = Path(data_dir or self._owned_dir) / "slt.db"  # type: ignore[arg-type]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = self._connect()

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None)
        # Durability is not under test here; fsync per statement only costs time.
        conn.execute("PRAGMA synchronous = OFF")
        return conn

    def execute(self, sql: str, info: SqlInfo) -> None:
        self._conn.execute(sql)

    def query(self, sql: str) -> tuple[list[Sequence[Any]], int]:
        cursor = self._conn.execute(sql)
        return cursor.fetchall(), len(cursor.description or ())

    def is_sql_error(self, error: BaseException) -> bool:
        return isinstance(error, sqlite3.Error)

    def flush(self, tables: Sequence[str]) -> None:
        pass  # one tier only: nothing to move, and correctness must not change

    def reopen(self) -> None:
        self._conn.close()
        self._conn = self._connect()

    def close(self) -> None:
        self._conn.close()
        if self._owned_dir:
            shutil.rmtree(self._owned_dir, ignore_errors=True)

    def __repr__(self) -> str:
        return f"<SqliteBackend {self.path}>"


class KalamBackend(Backend):
    """The engine under test, with CREATE TABLE translated from SQLite."""

    name = KALAM_NAME
    # Statement the cold-tier work is expected to accept (see CONTEXT.md).
    FLUSH_SQL = "FLUSH TABLE {table} WAIT"
    # Dialect the translated CREATE TABLE is written in: the one the engine's
    # parser reads (float64 comes out as DOUBLE PRECISION, which it maps to DOUBLE).
    WRITE_DIALECT: str | None = "postgres"

    def __init__(self, data_dir: str | Path | None = None, *, durability: str = "sync") -> None:
        from engine import Engine, KalamError

        self._engine_cls = Engine
        self._error_cls = KalamError
        self._owned_dir = None if data_dir else tempfile.mkdtemp(prefix="slt-kalam-")
        self.data_dir = Path(data_dir or self._owned_dir)  # type: ignore[arg-type]
        self.durability = durability
        self._engine = Engine.open(str(self.data_dir), durability=durability)
        self._flush_worked = False
        # Tables created without a PRIMARY KEY -> their visible columns.
        self.hidden: dict[str, list[str]] = {}
        # Evidence that the modes did something: a FLUSH that never moves a row
        # would otherwise let the flush mode pass without testing the cold tier.
        self.rows_flushed = 0
        self.reopens = 0

    def execute(self, sql: str, info: SqlInfo) -> None:
        created = table_columns(sql) if info.created_table is not None else None
        if info.created_table is not None:
            needs_key = created is not None and not created[1]
            sql = translate_create_table(sql, dialect=self.WRITE_DIALECT, hidden_key=needs_key)
        elif _REPLACE.match(sql):  # SQLite's REPLACE is INSERT OR REPLACE
            sql = _REPLACE.sub("INSERT OR REPLACE INTO", sql, count=1)
            if self.hidden:
                sql = add_insert_columns(sql, self.hidden)
        elif self.hidden and info.verb == "INSERT":
            sql = add_insert_columns(sql, self.hidden)
            sql = self._expand(sql)
        elif self.hidden and info.verb == "CREATE":
            sql = self._expand(sql)  # CREATE VIEW v AS SELECT * ...
        self._engine.execute(sql)
        if created is not None and info.created_table is not None:
            if created[1]:
                self.hidden.pop(info.created_table, None)
            else:
                self.hidden[info.created_table] = created[0]
        if info.dropped_table is not None:
            self.hidden.pop(info.dropped_table, None)

    def _expand(self, sql: str) -> str:
        """The SQL with stars over hidden-key tables spelled out (re-rendered),
        or as written when it has none."""
        if "*" not in sql:
            return sql
        try:
            tree = sqlglot.parse_one(sql, read="sqlite")
        except sqlglot.errors.SqlglotError:
            return sql
        before = tree.sql()
        expand_hidden_stars(tree, self.hidden)
        return sql if tree.sql() == before else tree.sql(dialect=self.WRITE_DIALECT)

    def query(self, sql: str) -> tuple[list[Sequence[Any]], int]:
        if self.hidden:
            sql = self._expand(sql)
        table = self._engine.execute(sql).table
        keep = [i for i, name in enumerate(table.column_names) if name != HIDDEN_KEY]
        columns = [table.column(i).to_pylist() for i in keep]
        return list(zip(*columns, strict=True)), len(keep)

    def is_sql_error(self, error: BaseException) -> bool:
        return isinstance(error, self._error_cls)

    def flush(self, tables: Sequence[str]) -> None:
        for table in tables:
            try:
                result = self._engine.execute(self.FLUSH_SQL.format(table=table))
            except self._error_cls as error:
                # Until one flush has worked, a rejection means the feature is
                # missing; afterwards it is a failure of the record.
                if not self._flush_worked and getattr(error, "code", "") in (
                    "UNSUPPORTED_STATEMENT",
                    "SQL_PARSE_ERROR",
                ):
                    raise FeatureNotAvailable(
                        f"FLUSH TABLE is not available in the engine yet: {error}"
                    ) from error
                raise
            self._flush_worked = True
            self.rows_flushed += result.rows_affected or 0

    def reopen(self) -> None:
        self._engine.close()
        self._engine = self._engine_cls.open(str(self.data_dir), durability=self.durability)
        self.reopens += 1

    def close(self) -> None:
        self._engine.close()
        if self._owned_dir:
            shutil.rmtree(self._owned_dir, ignore_errors=True)

    def __repr__(self) -> str:
        return f"<KalamBackend {self.data_dir}>"


# --------------------------------------------------------------------------- running


# "unsupported": the engine refused the record with an error that names a
# feature it does not have (``UNSUPPORTED_CODES``); such records are counted
# apart and the file keeps running, so its queries are still checked.
Status = Literal["passed", "failed", "skipped", "unsupported"]

# Error codes that mean "this engine does not have that feature" (a refusal
# that names the statement), as opposed to a failure.
UNSUPPORTED_CODES = frozenset({"UNSUPPORTED_STATEMENT"})


@dataclass(frozen=True)
class Outcome:
    record: Statement | Query
    status: Status
    verb: str
    # Reads or writes a table a DELETE has touched (directly or through
    # INSERT ... SELECT) since the table was created.
    depends_on_delete: bool
    message: str = ""

    @property
    def kind(self) -> str:
        return "query" if isinstance(self.record, Query) else "statement"


@dataclass
class Report:
    path: str
    mode: str
    outcomes: list[Outcome] = field(default_factory=list)
    elapsed_s: float = 0.0
    unavailable: str | None = None  # set when the mode cannot run on this backend
    halted_at: int | None = None

    def select(self, status: Status | None = None, **where: Any) -> list[Outcome]:
        return [
            o
            for o in self.outcomes
            if (status is None or o.status == status)
            and all(getattr(o, key) == value for key, value in where.items())
        ]

    @property
    def failures(self) -> list[Outcome]:
        return self.select("failed")

    @property
    def executed(self) -> int:
        """Records run and judged (skipped and unsupported ones are not)."""
        return sum(1 for o in self.outcomes if o.status in ("passed", "failed"))

    @property
    def pass_rate(self) -> float:
        executed = self.executed
        return len(self.select("passed")) / executed if executed else 0.0

    def counts_by(self, attribute: str) -> dict[str, Counter[str]]:
        table: dict[str, Counter[str]] = {}
        for outcome in self.outcomes:
            table.setdefault(getattr(outcome, attribute), Counter())[outcome.status] += 1
        return table

    def format(self, *, failures: int = 10) -> str:
        if self.unavailable:
            return f"{self.path} [{self.mode}]: NOT AVAILABLE - {self.unavailable}"
        lines = [
            f"{self.path} [{self.mode}]: {len(self.select('passed'))}/{self.executed} passed "
            f"({100 * self.pass_rate:.2f}%), {len(self.failures)} failed, "
            f"{len(self.select('skipped'))} skipped, "
            f"{len(self.select('unsupported'))} unsupported, {len(self.outcomes)} records, "
            f"{self.elapsed_s:.1f} s"
        ]
        if self.halted_at is not None:
            lines.append(f"  halted at line {self.halted_at}")
        for title, attribute in (("by kind", "kind"), ("by statement type", "verb")):
            lines.append(f"  {title}:")
            for key, counter in sorted(self.counts_by(attribute).items()):
                lines.append(
                    f"    {key:<10} total {sum(counter.values()):>6}  passed {counter['passed']:>6}"
                    f"  failed {counter['failed']:>6}  skipped {counter['skipped']:>6}"
                    f"  unsupported {counter['unsupported']:>6}"
                )
        for text, count in sorted(
            Counter(failure_class(o) for o in self.select("unsupported")).items()
        ):
            lines.append(f"  unsupported x{count}: {text}")
        for outcome in self.failures[:failures]:
            lines.append(f"  FAIL line {outcome.record.line}: {outcome.record.sql}")
            lines.extend("      " + text for text in outcome.message.splitlines())
        if len(self.failures) > failures:
            lines.append(f"  ... and {len(self.failures) - failures} more failures")
        return "\n".join(lines)


@dataclass(frozen=True)
class RunOptions:
    flush_every_statement: bool = False
    reopen_every: int | None = None
    verbose: bool = False
    # Stop a file after this many query records (a sample of a long file).
    max_queries: int | None = None

    @property
    def mode(self) -> str:
        parts = []
        if self.flush_every_statement:
            parts.append("flush-every-statement")
        if self.reopen_every:
            parts.append(f"reopen-every-{self.reopen_every}")
        return "+".join(parts) or "plain"


def _show(values: Sequence[str], limit: int = 12) -> str:
    if not values:
        return "(no values)"
    shown = " ".join(values[:limit])
    return shown + (f" ... ({len(values)} values)" if len(values) > limit else "")


class Runner:
    """Replays records against one backend and collects outcomes."""

    def __init__(
        self,
        backend: Backend,
        options: RunOptions | None = None,
        *,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.backend = backend
        self.options = options or RunOptions()
        self.log = log or (lambda _text: None)
        # Kept as state only: the expected text ("N values hashing to ..." or the
        # values) decides how a result is compared, whatever the threshold was.
        self.hash_threshold = 0
        self.labels: dict[str, tuple[str, int]] = {}
        self.live_tables: list[str] = []
        self.deleted_from: set[str] = set()
        self._analysis: dict[str, SqlInfo] = {}

    def info(self, sql: str) -> SqlInfo:
        found = self._analysis.get(sql)
        if found is None:
            found = self._analysis[sql] = analyse_sql(sql)
        return found

    def run(self, records: Sequence[Record], *, path: str = "<slt>") -> Report:
        report = Report(path=path, mode=self.options.mode)
        started = time.perf_counter()
        executed = queries = 0
        try:
            for record in records:
                if self.options.max_queries is not None and queries >= self.options.max_queries:
                    break
                if not all(c.allows(self.backend.name) for c in record.conditions):
                    if not isinstance(record, Control):
                        info = self.info(record.sql)
                        report.outcomes.append(Outcome(record, "skipped", info.verb, False))
                    continue
                if isinstance(record, Control):
                    if record.command == "halt":
                        report.halted_at = record.line
                        break
                    self.hash_threshold = record.value
                    continue
                outcome = self._run_one(record)
                report.outcomes.append(outcome)
                queries += isinstance(record, Query)
                if outcome.status == "failed":
                    self.log(f"FAIL line {record.line}: {record.sql}\n  {outcome.message}")
                executed += 1
                every = self.options.reopen_every
                if every and executed % every == 0:
                    self.backend.reopen()
        except FeatureNotAvailable as error:
            report.unavailable = str(error)
        report.elapsed_s = time.perf_counter() - started
        return report

    def _run_one(self, record: Statement | Query) -> Outcome:
        info = self.info(record.sql)
        depends = bool(info.tables & self.deleted_from)
        try:
            if isinstance(record, Statement):
                message = self._run_statement(record, info)
                self._track(info, depends)
            else:
                message = self._run_query(record)
        except _Refused as refusal:
            return Outcome(record, "unsupported", info.verb, depends, str(refusal))
        return Outcome(record, "failed" if message else "passed", info.verb, depends, message)

    def _track(self, info: SqlInfo, depends: bool) -> None:
        if info.created_table and info.created_table not in self.live_tables:
            self.live_tables.append(info.created_table)
            self.deleted_from.discard(info.created_table)
        if info.dropped_table in self.live_tables:
            self.live_tables.remove(info.dropped_table)
            self.deleted_from.discard(info.dropped_table)
        if info.written_table and (info.verb == "DELETE" or depends):
            self.deleted_from.add(info.written_table)

    def _run_statement(self, record: Statement, info: SqlInfo) -> str:
        try:
            self.backend.execute(record.sql, info)
        except Exception as error:
            if not self.backend.is_sql_error(error):
                return f"internal error (not a SQL error): {type(error).__name__}: {error}"
            if not record.expect_error:
                if self.backend.is_unsupported(error):
                    raise _Refused(f"{type(error).__name__}: {error}") from error
                return f"expected success, got {type(error).__name__}: {error}"
        else:
            if record.expect_error:
                return "expected an error, statement succeeded"
        if self.options.flush_every_statement:
            tables = [t for t in self.live_tables if t != info.dropped_table]
            if info.created_table and info.created_table not in tables:
                tables.append(info.created_table)
            try:
                self.backend.flush(tables)
            except FeatureNotAvailable:
                raise
            except Exception as error:
                return f"flush after the statement failed: {type(error).__name__}: {error}"
        return ""

    def _run_query(self, record: Query) -> str:
        try:
            rows, ncols = self.backend.query(record.sql)
        except Exception as error:
            if self.backend.is_sql_error(error) and self.backend.is_unsupported(error):
                raise _Refused(f"{type(error).__name__}: {error}") from error
            return f"query failed: {type(error).__name__}: {error}"
        if ncols != len(record.types):
            return f"expected {len(record.types)} column(s), got {ncols}"
        values = sort_values(render_rows(rows, record.types), record.sort)
        digest = hash_values(values)
        if record.expected_hash is not None:
            count, expected_digest = record.expected_hash
            if (len(values), digest) != (count, expected_digest):
                return (
                    f"expected: {count} values hashing to {expected_digest}\n"
                    f"actual:   {len(values)} values hashing to {digest}: {_show(values)}"
                )
        elif list(values) != list(record.expected_values or ()):
            expected = list(record.expected_values or ())
            return f"expected: {_show(expected)}\nactual:   {_show(values)}"
        if record.label:
            first = self.labels.setdefault(record.label, (digest, record.line))
            if first[0] != digest:
                return (
                    f"label {record.label}: result differs from the query at line {first[1]}"
                    f"\nactual: {_show(values)}"
                )
        return ""


def run_file(
    path: str | Path,
    backend: Backend,
    options: RunOptions | None = None,
    *,
    log: Callable[[str], None] | None = None,
) -> Report:
    """Parse and run one .test file; the caller owns (and closes) the backend."""
    return Runner(backend, options, log=log).run(parse_file(path), path=str(path))


# --------------------------------------------------------------------------- CLI


def corpus_files(paths: Sequence[Path], *, every: int = 1) -> list[Path]:
    """The .test files named, with directories searched recursively (sorted).
    ``every`` > 1 keeps the 1st, (1+every)th, ... file of each directory: a
    deterministic sample, the same in every mode."""
    out: list[Path] = []
    for path in paths:
        if not path.is_dir():
            out.append(path)
            continue
        by_dir: dict[Path, list[Path]] = {}
        for found in sorted(path.rglob("*.test")):
            by_dir.setdefault(found.parent, []).append(found)
        for directory in sorted(by_dir):
            out += by_dir[directory][::every]
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", type=Path, nargs="+", help=".test files or directories")
    parser.add_argument("--flush-every-statement", action="store_true")
    parser.add_argument("--reopen-every", type=int, metavar="N")
    parser.add_argument("--verbose", action="store_true", help="print each failure as it happens")
    parser.add_argument("--backend", choices=("kalam", "sqlite"), default="kalam")
    parser.add_argument("--data-dir", type=Path, help="default: a fresh temporary directory")
    parser.add_argument("--failures", type=int, default=10, help="failures shown per file")
    parser.add_argument(
        "--sample-every", type=int, default=1, metavar="N", help="every Nth file of a directory"
    )
    parser.add_argument(
        "--max-queries", type=int, metavar="N", help="stop each file after N query records"
    )
    args = parser.parse_args(argv)

    options = RunOptions(
        args.flush_every_statement, args.reopen_every, args.verbose, args.max_queries
    )
    if args.backend == "kalam":
        # Running as a script puts tests/ (not the repo root) on sys.path.
        sys.path.insert(0, str(REPO_ROOT))
    files = corpus_files(args.files, every=args.sample_every)
    passed = executed = unsupported = 0
    classes: Counter[str] = Counter()
    refusals: Counter[str] = Counter()
    status = 0
    for path in files:
        backend: Backend = (
            KalamBackend(args.data_dir) if args.backend == "kalam" else SqliteBackend(args.data_dir)
        )
        try:
            report = run_file(path, backend, options, log=print if args.verbose else None)
        finally:
            backend.close()
        print(report.format(failures=args.failures))
        if isinstance(backend, KalamBackend) and (
            options.flush_every_statement or options.reopen_every
        ):
            print(f"  engine: {backend.rows_flushed} row(s) flushed, {backend.reopens} reopen(s)")
        if report.unavailable:
            status = max(status, 2)
        elif report.failures:
            status = max(status, 1)
        passed += len(report.select("passed"))
        executed += report.executed
        unsupported += len(report.select("unsupported"))
        classes.update(failure_class(o) for o in report.failures)
        refusals.update(failure_class(o) for o in report.select("unsupported"))
        sys.stdout.flush()
    if len(files) > 1:
        rate = 100 * passed / executed if executed else 0.0
        print(
            f"TOTAL [{options.mode}]: {passed}/{executed} passed ({rate:.2f}%) in {len(files)} "
            f"files; {unsupported} unsupported"
        )
        for title, counter in (("failure", classes), ("unsupported", refusals)):
            for text, count in counter.most_common():
                print(f"  {title} class x{count}: {text}")
    return status


if __name__ == "__main__":
    sys.exit(main())
