"""Rewriting segments: read some of a scope's segments through the current
schema without their dead versions, and write the rows back as new segments.

Shared by compaction (every segment of a scope) and by Delta publishing
(only the segments a Delta reader must not see as they are: ones holding a
superseded version, or written under other column names or types).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc
from datafusion import SessionContext

from engine.catalog.model import TableDef
from engine.exec.cast import plain_strings
from engine.providers.cold_tier import physical_name
from engine.storage.cold import SegmentEntry, segment_options, write_segment

if TYPE_CHECKING:
    from engine.providers.base import TableProvider
    from engine.storage.fs import ColdPath

SEGMENT_ROWS = 1_000_000


def logical_names(table: TableDef) -> dict[int, str]:
    """{column id: column name}: how new segment files name their columns."""
    return {c.id: c.name for c in table.columns}


def live_rows(
    prov: TableProvider,
    table: TableDef,
    scope: str,
    entries: list[SegmentEntry],
    superseded: tuple[int, ...] | list[int],
) -> pa.Table:
    """The live versions held by ``entries`` as a segment table in the current
    schema (``c<id>`` columns, ``_seq``, ``_deleted``), sorted by primary key."""
    ctx = SessionContext()
    frame = prov.cold.frame(ctx, table, scope, list(entries), hidden=True)
    assert frame is not None
    data = plain_strings(frame.to_arrow_table())
    if superseded:
        dead = pa.array(superseded, type=pa.int64())
        data = data.filter(pc.invert(pc.is_in(data.column("_seq"), value_set=dead)))
    columns = [data.column(c.name).cast(c.arrow_type) for c in table.columns]
    columns += [data.column("_seq"), data.column("_deleted")]
    names = [physical_name(c.id) for c in table.columns] + ["_seq", "_deleted"]
    out = pa.Table.from_arrays(columns, names=names)
    key = table.key_columns
    if key and out.num_rows:
        out = out.sort_by([(physical_name(c.id), "ascending") for c in key])
    return out


def write_rows(
    directory: ColdPath, table: TableDef, rows: pa.Table, first_id: int
) -> list[SegmentEntry]:
    """``rows`` (from ``live_rows``) as segments ``first_id``, ``first_id + 1``, ...
    in the current schema and logical column names (nothing for no rows)."""
    key = table.key_columns
    sort_column: str | tuple[str, ...] = tuple(physical_name(c.id) for c in key) if key else "_seq"
    entries: list[SegmentEntry] = []
    for start in range(0, rows.num_rows, SEGMENT_ROWS):
        entries.append(
            write_segment(
                directory,
                first_id + len(entries),
                rows.slice(start, SEGMENT_ROWS),
                sort_column=sort_column,
                schema_version=table.schema_version,
                **segment_options(table.options),
                table_id=table.table_id,
                names=logical_names(table),
            )
        )
    return entries
