"""Tab completion inside ``%%kalam`` / ``%kalam``: namespaces, tables, columns,
functions and keywords.

A v2 IPython matcher (used by ipykernel in JupyterLab and by the terminal
IPython alike). It reads the word under the cursor, the word before it, and
the table references (``FROM t [AS] a``, ``JOIN ns.t a``) of the cell:
after FROM / JOIN / INTO / UPDATE / TABLE / USE it offers namespaces and the
tables of the current namespace (the one ``USE`` chose); after ``ns.`` the
tables of ``ns``; after ``table.`` or ``alias.`` that table's columns;
elsewhere the columns of the tables the statement reads, SQL functions and
keywords. This is the one place in the magic that reads the typed text; it
never changes what is executed. Names come from the engine's system tables.
When the engine cannot be opened (the directory is held by another process)
or its server cannot be reached, the list holds one entry whose type says why.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from IPython.core.completer import CompletionContext, SimpleCompletion, context_matcher

from engine import KalamError
from engine.errors import ServerUnavailableError

if TYPE_CHECKING:
    from kalam_magic.session import AnyEngine

TABLE_KEYWORDS = frozenset({"FROM", "JOIN", "INTO", "UPDATE", "TABLE", "DESCRIBE"})
#: After USE only namespaces make sense.
NAMESPACE_KEYWORDS = frozenset({"USE", "NAMESPACE"})
KEYWORDS = [
    "SELECT",
    "FROM",
    "WHERE",
    "GROUP",
    "BY",
    "ORDER",
    "HAVING",
    "LIMIT",
    "OFFSET",
    "JOIN",
    "LEFT",
    "RIGHT",
    "FULL",
    "INNER",
    "OUTER",
    "CROSS",
    "ON",
    "USING",
    "AS",
    "AND",
    "OR",
    "NOT",
    "IN",
    "IS",
    "NULL",
    "LIKE",
    "ILIKE",
    "BETWEEN",
    "CASE",
    "WHEN",
    "THEN",
    "ELSE",
    "END",
    "DISTINCT",
    "UNION",
    "ALL",
    "EXCEPT",
    "INTERSECT",
    "WITH",
    "ASC",
    "DESC",
    "NULLS",
    "FIRST",
    "LAST",
    "OVER",
    "PARTITION",
    "INSERT",
    "INTO",
    "VALUES",
    "UPDATE",
    "SET",
    "DELETE",
    "RETURNING",
    "CREATE",
    "TABLE",
    "NAMESPACE",
    "DROP",
    "ALTER",
    "ADD",
    "COLUMN",
    "RENAME",
    "TO",
    "PRIMARY",
    "KEY",
    "DEFAULT",
    "USE",
    "FLUSH",
    "SHOW",
    "DESCRIBE",
    "EXPLAIN",
    "CAST",
    "TRUE",
    "FALSE",
]
FUNCTIONS = [
    "abs",
    "avg",
    "ceil",
    "coalesce",
    "concat",
    "count",
    "date_part",
    "date_trunc",
    "extract",
    "floor",
    "greatest",
    "approx_percentile_cont",
    "array_agg",
    "least",
    "length",
    "lower",
    "ltrim",
    "max",
    "median",
    "min",
    "now",
    "nullif",
    "power",
    "random",
    "regexp_like",
    "regexp_replace",
    "replace",
    "round",
    "row_number",
    "rank",
    "dense_rank",
    "lag",
    "lead",
    "rtrim",
    "split_part",
    "sqrt",
    "starts_with",
    "stddev",
    "string_agg",
    "strpos",
    "substr",
    "sum",
    "to_char",
    "to_date",
    "to_timestamp",
    "trim",
    "trunc",
    "upper",
    "var",
]
_WORD_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.")
DEFAULT_NAMESPACE = "default"


class CatalogUnavailable(Exception):
    """No names can be read: the reason, one line, is shown in the completion list."""


@dataclass(frozen=True)
class Catalog:
    """Names visible to one user of one engine, read through the engine's SQL
    (over HTTP when the engine is a client of a ``kalam serve``)."""

    engine: AnyEngine
    user: str

    def _column(self, sql: str, params: dict[str, Any] | None = None) -> list[str]:
        try:
            result = self.engine.execute(sql, params, user=self.user)
        except ServerUnavailableError as err:
            raise CatalogUnavailable(f"{type(err).__name__}: {err.message}") from None
        except KalamError:
            return []
        return sorted({str(v) for v in result.table.column(0).to_pylist() if v is not None})

    def namespaces(self) -> list[str]:
        # The system namespace is virtual, so system.namespaces does not list it.
        return sorted({*self._column("SELECT namespace FROM system.namespaces"), "system"})

    def tables(self, namespace: str) -> list[str]:
        return self._column(
            "SELECT table_name FROM system.tables WHERE namespace = :ns", {"ns": namespace}
        )

    def current_namespace(self) -> str:
        """The namespace ``USE`` chose for this user (``default`` until then)."""
        try:
            return self.engine.namespace_of(self.user)
        except (KalamError, AttributeError):
            return DEFAULT_NAMESPACE

    def columns(self, namespace: str, table: str) -> list[str]:
        return self._column(
            "SELECT column_name FROM system.columns WHERE namespace = :ns AND table_name = :t",
            {"ns": namespace, "t": table},
        )


@dataclass(frozen=True)
class Unavailable:
    """Stands in for a ``Catalog`` when the engine cannot be opened or reached."""

    reason: str

    def namespaces(self) -> list[str]:
        raise CatalogUnavailable(self.reason)

    def tables(self, namespace: str) -> list[str]:
        raise CatalogUnavailable(self.reason)

    def columns(self, namespace: str, table: str) -> list[str]:
        raise CatalogUnavailable(self.reason)

    def current_namespace(self) -> str:
        raise CatalogUnavailable(self.reason)


@dataclass(frozen=True)
class Suggestion:
    text: str
    kind: str


def kalam_text_before_cursor(full_text: str, cursor_line: int, cursor_position: int) -> str | None:
    """The SQL typed before the cursor when it is inside a ``%%kalam`` cell or ``%kalam`` line."""
    lines = full_text.split("\n")
    if cursor_line >= len(lines):
        return None
    current = lines[cursor_line][:cursor_position]
    if lines[0].lstrip().startswith("%%kalam"):
        if cursor_line == 0:
            return None  # the magic line holds options, not SQL
        return "\n".join([*lines[1:cursor_line], current])
    stripped = current.lstrip()
    if stripped.startswith("%kalam ") or "= %kalam " in current:
        return current.split("%kalam ", 1)[1]
    return None


def table_references(sql: str) -> dict[str, tuple[str | None, str]]:
    """``{name or alias: (namespace, table)}`` for the tables after FROM / JOIN in ``sql``.

    A plain word scan, good enough to complete ``alias.``; it never decides
    what runs."""
    words = sql.replace(",", " , ").replace("(", " ( ").replace(")", " ) ").split()
    refs: dict[str, tuple[str | None, str]] = {}
    for i, word in enumerate(words[:-1]):
        if word.upper() not in ("FROM", "JOIN", "UPDATE", "INTO"):
            continue
        name = words[i + 1].strip('"')
        if not name or not all(c in _WORD_CHARS for c in name) or name.count(".") > 1:
            continue
        ns, _, table = name.rpartition(".")
        ref = (ns or None, table)
        refs[table] = ref
        rest = words[i + 2 : i + 4]
        if rest and rest[0].upper() == "AS":
            rest = rest[1:]
        if rest and rest[0].isidentifier() and rest[0].upper() not in _NOT_ALIAS:
            refs[rest[0]] = ref
    return refs


_NOT_ALIAS = frozenset(
    {
        "WHERE",
        "JOIN",
        "ON",
        "USING",
        "GROUP",
        "ORDER",
        "LIMIT",
        "LEFT",
        "RIGHT",
        "INNER",
        "FULL",
        "CROSS",
        "OUTER",
        "UNION",
        "HAVING",
        "SET",
        "VALUES",
        "WINDOW",
        "EXCEPT",
        "INTERSECT",
        "OFFSET",
        "RETURNING",
    }
)


def kalam_cell_text(full_text: str) -> str | None:
    """The SQL of a ``%%kalam`` cell (the lines after the magic line), else None."""
    lines = full_text.split("\n")
    if lines and lines[0].lstrip().startswith("%%kalam"):
        return "\n".join(lines[1:])
    return None


def suggest(
    text: str, catalog: Catalog | Unavailable, *, statement: str | None = None
) -> tuple[str, list[Suggestion]] | None:
    """(fragment being completed, suggestions) for SQL ``text`` typed before the cursor.

    ``statement`` is the whole text around the cursor (for its table aliases);
    by default, ``text``."""
    end = len(text)
    start = end
    while start > 0 and text[start - 1] in _WORD_CHARS:
        start -= 1
    fragment = text[start:]
    before = text[:start].split()
    previous = before[-1].upper() if before else ""
    current = catalog.current_namespace()

    if "." in fragment:
        return fragment, _after_dot(fragment, catalog, current, statement or text)
    if previous in NAMESPACE_KEYWORDS:
        names = [(ns, "namespace") for ns in catalog.namespaces()]
        return fragment, [Suggestion(n, k) for n, k in names if n.startswith(fragment)]
    if previous in TABLE_KEYWORDS:
        names = [(ns, "namespace") for ns in catalog.namespaces()]
        names += [(t, "table") for t in catalog.tables(current)]
        return fragment, [Suggestion(n, k) for n, k in names if n.startswith(fragment)]
    return _anywhere(fragment, catalog, current, statement or text)


def _after_dot(
    fragment: str, catalog: Catalog | Unavailable, current: str, statement: str
) -> list[Suggestion]:
    qualifier, _, partial = fragment.rpartition(".")
    parts = qualifier.split(".")
    refs = table_references(statement)
    if len(parts) == 1 and parts[0] in refs:
        ns, table = refs[parts[0]]
        names = [(f"{qualifier}.{c}", "column") for c in catalog.columns(ns or current, table)]
    elif len(parts) == 1 and parts[0] in catalog.namespaces():
        names = [(f"{qualifier}.{t}", "table") for t in catalog.tables(parts[0])]
    elif len(parts) == 1:
        names = [(f"{qualifier}.{c}", "column") for c in catalog.columns(current, parts[0])]
    elif len(parts) == 2:
        names = [(f"{qualifier}.{c}", "column") for c in catalog.columns(parts[0], parts[1])]
    else:
        return []
    return [Suggestion(n, k) for n, k in names if n.rsplit(".", 1)[1].startswith(partial)]


def _anywhere(
    fragment: str, catalog: Catalog | Unavailable, current: str, statement: str
) -> tuple[str, list[Suggestion]] | None:
    """Columns of the statement's tables, then functions and keywords."""
    columns: list[str] = []
    for ns, table in dict.fromkeys(table_references(statement).values()):
        columns += [c for c in catalog.columns(ns or current, table) if c not in columns]
    if not fragment:
        found = [Suggestion(c, "column") for c in columns]
        return (fragment, found) if found else None
    low = fragment.lower()
    found = [Suggestion(c, "column") for c in columns if c.lower().startswith(low)]
    found += [Suggestion(f, "function") for f in FUNCTIONS if f.startswith(low)]
    found += [Suggestion(k, "keyword") for k in sorted(KEYWORDS) if k.startswith(fragment.upper())]
    if fragment.islower():
        found = [Suggestion(s.text.lower(), s.kind) if s.kind == "keyword" else s for s in found]
    return (fragment, found) if found else None


def _fragment(text: str) -> str:
    start = len(text)
    while start > 0 and text[start - 1] in _WORD_CHARS:
        start -= 1
    return text[start:]


def unavailable_reply(text: str, reason: str) -> dict[str, Any]:
    """One entry that explains why no names are offered: it inserts nothing new
    (its text is what was typed) and its type, shown beside it, is the reason."""
    fragment = _fragment(text)
    one_line = " ".join(f"Kalam completion unavailable: {reason}".split())
    return {
        "completions": [SimpleCompletion(fragment, type=one_line)],
        "matched_fragment": fragment,
        "suppress": True,
        "ordered": True,
    }


def make_matcher(
    catalog_for: Callable[[], Catalog | Unavailable | None],
) -> Callable[[CompletionContext], Any]:
    """An IPython v2 matcher; ``catalog_for`` gives the catalog of the current connection
    (``Unavailable`` with the reason when the engine cannot be opened or reached)."""

    @context_matcher(identifier="kalam_magic.completion", priority=100)
    def kalam_matcher(context: CompletionContext) -> dict[str, Any]:
        empty: dict[str, Any] = {"completions": [], "suppress": False}
        text = kalam_text_before_cursor(
            context.full_text, context.cursor_line, context.cursor_position
        )
        if text is None:
            return empty
        catalog = catalog_for()
        if catalog is None:
            return empty
        try:
            found = suggest(text, catalog, statement=kalam_cell_text(context.full_text) or text)
        except CatalogUnavailable as why:
            return unavailable_reply(text, str(why))
        if found is None:
            return empty
        fragment, suggestions = found
        return {
            "completions": [SimpleCompletion(s.text, type=s.kind) for s in suggestions],
            "matched_fragment": fragment,
            "suppress": bool(suggestions),
            "ordered": True,
        }

    return kalam_matcher
