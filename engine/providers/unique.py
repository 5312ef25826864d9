"""UNIQUE columns: no two live rows of one scope share a non-NULL value.

Checked where every write stages its row versions (``stage_versions``: INSERT,
UPDATE, upsert, bulk loads), against the scope's live rows -- hot and cold,
merged exactly as a query sees them -- with the statement's own versions
applied (a row the statement rewrites or deletes no longer holds its old
value). NULLs never clash (SQL). A USER table is checked per user: the scope
is the writer's. Writers hold the engine lock, so the check and the write are
one step. The check reads the whole scope: its cost grows with the table, and
only tables with a UNIQUE column pay it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pyarrow as pa
from datafusion import SessionContext

from engine.errors import UniqueViolationError
from engine.types import coerce, render_stored

if TYPE_CHECKING:
    from engine.providers.base import RowVersion, TableProvider


def check_unique(prov: TableProvider, scope: str, versions: dict[Any, RowVersion]) -> None:
    """Raise ``UniqueViolationError`` if staging ``versions`` in ``scope`` would
    repeat a value of a UNIQUE column."""
    from engine.providers.base import ScanOptions

    table = prov.table
    columns = [c for c in table.columns if getattr(c, "unique", False)]
    if not columns or not any(not deleted for _, deleted, _ in versions.values()):
        return
    pk = table.pk
    options = ScanOptions(hidden=pk is None, now_ms=prov._clock_ms())
    data, _ = prov.merged(SessionContext(), scope, options, None)
    if not isinstance(data, pa.Table):
        data = data.to_arrow_table()
    if pk is not None:
        keys = [
            coerce(v, pk.type, pk.name) if v is not None else None for v in _values(data, pk.name)
        ]
    else:
        keys = _values(data, "_seq")
    written = set(versions)
    for column in columns:
        owner: dict[Any, Any] = {}
        for key, value in zip(keys, _values(data, column.name), strict=True):
            if value is not None and key not in written:
                owner[coerce(value, column.type, column.name)] = key
        for key, (_, deleted, values) in versions.items():
            value = values.get(column.id)
            if deleted or value is None:
                continue
            if owner.get(value, key) != key:
                shown = render_stored(value, column.type)
                raise UniqueViolationError(
                    f"Unique constraint violation: value '{shown}' already exists in column "
                    f"'{column.name}' of {table.qualified_name}",
                    value=value,
                    column_name=column.name,
                )
            owner[value] = key


def _values(data: pa.Table, name: str) -> list[Any]:
    return data.column(name).to_pylist()
