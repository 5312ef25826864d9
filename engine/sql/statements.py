"""Typed statements: what the parser produces and the dispatcher consumes.

Every statement is a frozen dataclass. Value expressions the engine
evaluates itself (INSERT ... VALUES, DEFAULT) are kept as sqlglot nodes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class TableRef:
    namespace: str | None
    name: str
    # ``UPDATE t AS x``: the name the statement's expressions use for the table.
    # Not part of the table's identity.
    alias: str | None = field(default=None, compare=False)

    def __str__(self) -> str:
        return f"{self.namespace}.{self.name}" if self.namespace else self.name


@dataclass(frozen=True)
class TextPart:
    """A piece of a statement's text exactly as written (placeholders in
    DataFusion's ``$n`` form) and where it starts in the statement (1-based).
    Value expressions and predicates reach DataFusion as these pieces."""

    text: str
    line: int = 1
    column: int = 1


@dataclass(frozen=True)
class ParamSpec:
    """How a statement's placeholders bind: by position, by ``$n`` or by name."""

    style: str | None = None  # None | "qmark" | "numeric" | "named"
    count: int = 0
    names: tuple[str, ...] = ()


@dataclass(frozen=True)
class Statement:
    sql: str
    line: int = 1
    column: int = 1
    params: ParamSpec = field(default_factory=ParamSpec)


@dataclass(frozen=True)
class CreateNamespace(Statement):
    name: str = ""
    if_not_exists: bool = False


@dataclass(frozen=True)
class DropNamespace(Statement):
    name: str = ""
    if_exists: bool = False
    cascade: bool = False


@dataclass(frozen=True)
class ShowNamespaces(Statement):
    pass


@dataclass(frozen=True)
class UseNamespace(Statement):
    name: str = ""


@dataclass(frozen=True)
class ColumnSpec:
    name: str
    type_name: str
    nullable: bool = True
    primary_key: bool = False
    default: Any = None  # a sqlglot expression, or None
    key_position: int = 0  # place in a table-level PRIMARY KEY (a, b); 0: column-level
    unique: bool = False


@dataclass(frozen=True)
class CreateTable(Statement):
    table: TableRef = TableRef(None, "")
    table_type: str | None = None  # from the keyword form: USER / SHARED / STREAM
    columns: tuple[ColumnSpec, ...] = ()
    options: tuple[tuple[str, Any], ...] = ()
    if_not_exists: bool = False


@dataclass(frozen=True)
class DropTable(Statement):
    table: TableRef = TableRef(None, "")
    if_exists: bool = False


@dataclass(frozen=True)
class ShowTables(Statement):
    namespace: str | None = None


@dataclass(frozen=True)
class DescribeTable(Statement):
    table: TableRef = TableRef(None, "")
    history: bool = False


@dataclass(frozen=True)
class CreateIndex(Statement):
    table: TableRef = TableRef(None, "")


@dataclass(frozen=True)
class Insert(Statement):
    table: TableRef = TableRef(None, "")
    columns: tuple[str, ...] | None = None
    rows: tuple[tuple[Any, ...], ...] | None = None  # sqlglot expressions
    query_sql: str | None = None  # INSERT ... SELECT: the SELECT, run in DataFusion
    query: Any = None  # the parsed SELECT (sqlglot)
    returning: tuple[str, ...] | None = None  # column names, or ("*",)
    on_conflict: OnConflict | None = None
    values_sql: tuple[tuple[TextPart, ...], ...] | None = None  # each VALUES item as written


@dataclass(frozen=True)
class OnConflict:
    """What an INSERT does with a row whose primary key already has a live row.

    ``action`` is ``"nothing"`` (ON CONFLICT DO NOTHING, INSERT OR IGNORE),
    ``"update"`` (ON CONFLICT (pk) DO UPDATE SET ... [WHERE ...]) or
    ``"replace"`` (INSERT OR REPLACE: the new row replaces the old one whole)."""

    action: str
    target: tuple[str, ...] = ()  # the conflict columns as written; () = not given
    assignments: tuple[tuple[str, Any], ...] = ()  # (column, sqlglot expression)
    where: Any = None  # sqlglot expression over the existing row and EXCLUDED
    # As written, for DataFusion: each SET value, the WHERE predicate.
    set_sql: tuple[TextPart, ...] = ()
    where_sql: TextPart | None = None


@dataclass(frozen=True)
class Query(Statement):
    """A SELECT (or EXPLAIN SELECT); runs in DataFusion."""

    tree: Any = None  # sqlglot expression of the query (without EXPLAIN)
    explain: bool = False
    explain_sql: str = ""  # the text after EXPLAIN [ANALYZE|VERBOSE]


@dataclass(frozen=True)
class Update(Statement):
    table: TableRef = TableRef(None, "")
    assignments: tuple[tuple[str, Any], ...] = ()  # (column, sqlglot expression)
    where: Any = None
    tree: Any = None
    returning: tuple[str, ...] | None = None  # column names, or ("*",)
    # As written: the table reference (with its alias), each SET value, the WHERE predicate.
    target_sql: TextPart | None = None
    set_sql: tuple[TextPart, ...] = ()
    where_sql: TextPart | None = None
    from_sql: TextPart | None = None  # UPDATE ... FROM <tables>, as written


@dataclass(frozen=True)
class Delete(Statement):
    table: TableRef = TableRef(None, "")
    where: Any = None
    tree: Any = None
    returning: tuple[str, ...] | None = None  # column names, or ("*",)
    # As written: the table reference (with its alias) and the WHERE predicate.
    target_sql: TextPart | None = None
    where_sql: TextPart | None = None
    using_sql: TextPart | None = None  # DELETE ... USING <tables>, as written


@dataclass(frozen=True)
class AlterTable(Statement):
    table: TableRef = TableRef(None, "")
    tree: Any = None  # the sqlglot Alter node; engine/sql/alter.py owns its meaning


@dataclass(frozen=True)
class FlushTable(Statement):
    table: TableRef | None = None  # None: FLUSH ALL
    namespace: str | None = None  # FLUSH ALL IN ns
    wait: bool = False


@dataclass(frozen=True)
class CompactTable(Statement):
    """STORAGE COMPACT TABLE t / COMPACT TABLE t [WAIT] (COMPACT ALL [IN ns])."""

    table: TableRef | None = None  # None: COMPACT ALL
    namespace: str | None = None
    wait: bool = False


@dataclass(frozen=True)
class ExportTable(Statement):
    """EXPORT TABLE t TO 'path' [FORMAT parquet|delta]."""

    table: TableRef = TableRef(None, "")
    path: str = ""
    format: str = "parquet"


@dataclass(frozen=True)
class KalamCommand(Statement):
    """A Kalam-specific statement parsed from tokens: ``words`` are its keywords
    and names in order (e.g. ``("REPAIR", "TABLE", "ns.t")``)."""

    words: tuple[str, ...] = ()
    # A password given in the statement (CREATE / ALTER USER): ``words`` and
    # ``sql`` hold a mask in its place, so it never reaches a repr, a log or
    # system.live_queries.
    secret: str | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class ExecuteAs(Statement):
    """``EXECUTE AS USER 'name' (<statement>)``."""

    user: str = ""
    inner: Any = None  # the wrapped Statement


@dataclass(frozen=True)
class Subscribe(Statement):
    """``SUBSCRIBE TO SELECT <projection> FROM ns.t [WHERE ...]`` (or the
    KalamDB short form ``SUBSCRIBE TO ns.t [WHERE ...]``): a live query over
    one table. The parts are the query's text as written, for DataFusion."""

    table: TableRef = TableRef(None, "")
    query: Any = None  # the inner SELECT as a ``Query``
    projection_sql: str = "*"  # between SELECT and FROM
    target_sql: str = ""  # the table reference with its alias
    where_sql: str | None = None  # the predicate after WHERE


@dataclass(frozen=True)
class CreateView(Statement):
    """``CREATE [OR REPLACE] VIEW [ns.]v [(cols)] AS <query>`` (query as written)."""

    table: TableRef = TableRef(None, "")
    query_sql: str = ""
    columns: tuple[str, ...] = ()
    or_replace: bool = False


@dataclass(frozen=True)
class DropView(Statement):
    table: TableRef = TableRef(None, "")
    if_exists: bool = False


@dataclass(frozen=True)
class ShowViews(Statement):
    namespace: str | None = None


@dataclass(frozen=True)
class CreateUniqueIndex(Statement):
    """``CREATE UNIQUE INDEX [IF NOT EXISTS] name ON t (c [ASC|DESC], ...)``: a
    UNIQUE constraint over the columns (enforced; no lookup structure)."""

    table: TableRef = TableRef(None, "")
    name: str = ""
    columns: tuple[str, ...] = ()
    if_not_exists: bool = False


@dataclass(frozen=True)
class CreateStorage(Statement):
    """CREATE STORAGE [IF NOT EXISTS] name TYPE s3 WITH (bucket = '...', ...)."""

    name: str = ""
    storage_type: str = ""
    options: tuple[tuple[str, str], ...] = ()
    if_not_exists: bool = False


@dataclass(frozen=True)
class DropStorage(Statement):
    name: str = ""
    if_exists: bool = False


@dataclass(frozen=True)
class ShowStorages(Statement):
    pass
