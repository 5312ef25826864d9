"""What a table and its segments look like in Delta Lake terms.

``delta_schema(table)`` is the Delta schema (logical names, no column
mapping: the segment files carry these names themselves). ``file_stats``
turns a segment's manifest statistics into the ``add`` action's ``stats``
(record count, null counts, and min/max where our bounds are exact in Delta's
terms: integers, dates, finite floats of a NaN-free column, booleans are left
out as Delta keeps none, strings only when not cut short). ``delta_fresh``
says whether a segment file can be published as it is: it must hold exactly
the current columns, under their current names and types (our readers cast
old files through schema changes; other engines would not).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from engine.catalog.model import TableDef
from engine.storage.cold import STATS_PREFIX_LEN, SegmentEntry
from engine.types import decimal_spec

_PRIMITIVE = {
    "BOOLEAN": "boolean",
    "SMALLINT": "short",
    "INT": "integer",
    "BIGINT": "long",
    "FLOAT": "float",
    "DOUBLE": "double",
    "TEXT": "string",
    "BYTES": "binary",
    "DATE": "date",
    # Delta's ``timestamp`` is microseconds, UTC-adjusted: what ours hold.
    "TIMESTAMP": "timestamp",
}


def delta_type(canonical: str) -> str:
    found = _PRIMITIVE.get(canonical)
    if found is not None:
        return found
    spec = decimal_spec(canonical)
    if spec is None:
        raise ValueError(f"no Delta type for column type {canonical}")
    return f"decimal({spec[0]},{spec[1]})"


def delta_schema(table: TableDef) -> dict[str, Any]:
    return {
        "type": "struct",
        "fields": [
            {"name": c.name, "type": delta_type(c.type), "nullable": c.nullable, "metadata": {}}
            for c in table.columns
        ],
    }


def delta_fresh(table: TableDef, entry: SegmentEntry) -> bool:
    """Whether the segment's file holds exactly the current columns, by name and type."""
    if entry.columns is None or len(entry.columns) != len(table.columns):
        return False
    for c in table.columns:
        stats = entry.column_stats.get(str(c.id))
        if entry.columns.get(str(c.id)) != c.name or stats is None:
            return False
        if stats["type"] != str(c.arrow_type):
            return False
    return True


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _bound(canonical: str, stat: dict[str, Any], which: str) -> Any:
    value = stat.get(which)
    if value is None:
        return None
    if canonical in ("SMALLINT", "INT", "BIGINT"):
        return value
    if canonical in ("FLOAT", "DOUBLE"):
        if stat.get("nan_count") or isinstance(value, str):
            return None  # NaN or an infinity: no JSON bound a reader could trust
        return value
    if canonical == "TEXT":
        return value if len(value) < STATS_PREFIX_LEN else None  # possibly cut short
    if canonical == "DATE":
        return (_EPOCH + timedelta(days=value)).date().isoformat()
    if canonical == "TIMESTAMP":
        moment = _EPOCH + timedelta(microseconds=value)
        return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")
    return None  # booleans, bytes, decimals: leave the bound unknown


def file_stats(table: TableDef, entry: SegmentEntry) -> dict[str, Any]:
    lo: dict[str, Any] = {}
    hi: dict[str, Any] = {}
    nulls: dict[str, int] = {}
    for c in table.columns:
        stat = entry.column_stats.get(str(c.id))
        if stat is None:
            continue
        nulls[c.name] = stat["null_count"]
        low, high = _bound(c.type, stat, "min"), _bound(c.type, stat, "max")
        if low is not None and high is not None:
            lo[c.name], hi[c.name] = low, high
    return {"numRecords": entry.row_count, "minValues": lo, "maxValues": hi, "nullCount": nulls}
