"""A table's flush policy: when the scheduler moves its hot rows to Parquet.

Hot rows cost memory (their Arrow size, plus an index), so every table that
can be flushed has size bounds by default: it is flushed once it holds
``DEFAULT_ROWS`` hot row versions or ``DEFAULT_BYTES`` of them. ``FLUSH_POLICY``
sets its own bounds (``rows:N``, ``bytes:N``), adds a time bound
(``interval:S``: the oldest unflushed row's age; the default size bounds
still apply unless the policy names a size bound of its own) or opts out
(``none``: only ``FLUSH TABLE`` flushes). STREAM tables are never flushed.
"""

from __future__ import annotations

from engine.catalog.model import TableDef

DEFAULT_ROWS = 1_000_000
DEFAULT_BYTES = 64 * 2**20
# The stored form of FLUSH_POLICY = 'none'.
NONE = {"none": 1}
SIZE_KEYS = ("rows", "bytes")


def stored_policy(table: TableDef) -> dict[str, int]:
    """The policy as written in the catalog (``{}``: none given)."""
    found = table.options.get("flush_policy") or {}
    return dict(found)


def effective_policy(table: TableDef) -> dict[str, int]:
    """The bounds the scheduler applies to ``table`` (``{}``: never by policy)."""
    if table.table_type == "STREAM":
        return {}
    given = stored_policy(table)
    if given.get("none"):
        return {}
    if not any(k in given for k in SIZE_KEYS):
        given = {"rows": DEFAULT_ROWS, "bytes": DEFAULT_BYTES, **given}
    return given
