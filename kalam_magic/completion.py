"""Tab completion of namespaces, tables and columns inside ``%%kalam`` / ``%kalam``.

A v2 IPython matcher (used by ipykernel in JupyterLab and by the terminal
IPython alike). It looks only at the word under the cursor and the word
before it: after FROM / JOIN / INTO / UPDATE / TABLE it offers namespaces and
tables, after ``name.`` it offers the tables of a namespace or the columns of
a table. This is the one place in the magic that reads the typed text; it
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

TABLE_KEYWORDS = frozenset({"FROM", "JOIN", "INTO", "UPDATE", "TABLE"})
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


def suggest(text: str, catalog: Catalog | Unavailable) -> tuple[str, list[Suggestion]] | None:
    """(fragment being completed, suggestions) for SQL ``text`` typed before the cursor."""
    end = len(text)
    start = end
    while start > 0 and text[start - 1] in _WORD_CHARS:
        start -= 1
    fragment = text[start:]
    before = text[:start].split()
    previous = before[-1].upper() if before else ""
    after_table_keyword = previous in TABLE_KEYWORDS

    if "." in fragment:
        qualifier, _, partial = fragment.rpartition(".")
        parts = qualifier.split(".")
        if len(parts) == 1 and parts[0] in catalog.namespaces():
            names = [(f"{qualifier}.{t}", "table") for t in catalog.tables(parts[0])]
        elif len(parts) == 1:
            names = [
                (f"{qualifier}.{c}", "column") for c in catalog.columns(DEFAULT_NAMESPACE, parts[0])
            ]
        elif len(parts) == 2:
            names = [(f"{qualifier}.{c}", "column") for c in catalog.columns(parts[0], parts[1])]
        else:
            return None
        matches = [Suggestion(n, k) for n, k in names if n.rsplit(".", 1)[1].startswith(partial)]
        return fragment, matches

    if after_table_keyword:
        names = [(ns, "namespace") for ns in catalog.namespaces()]
        names += [(t, "table") for t in catalog.tables(DEFAULT_NAMESPACE)]
        return fragment, [Suggestion(n, k) for n, k in names if n.startswith(fragment)]
    return None


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
            found = suggest(text, catalog)
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
