"""UNIQUE constraints: no two live rows of one scope share a value of the
constrained column(s). A column declared UNIQUE is one constraint; a
``CREATE UNIQUE INDEX`` adds one over its columns (the table's
``unique_sets`` option, by column id).

Checked where every write stages its row versions (``stage_versions``:
INSERT, UPDATE, upsert, bulk loads), against the scope's live rows -- hot and
cold, merged exactly as a query sees them -- with the statement's own
versions applied (a row the statement rewrites or deletes no longer holds its
old value). A NULL in any constrained column never clashes (SQL). A USER
table is checked per user: the scope is the writer's. Writers hold the engine
lock, so the check and the write are one step. The check reads the whole
scope: its cost grows with the table, and only tables with a constraint pay it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pyarrow as pa
from datafusion import SessionContext

from engine.errors import UniqueViolationError
from engine.exec.cast import plain_strings
from engine.types import coerce, render_stored

if TYPE_CHECKING:
    from engine.catalog.model import TableDef

# (seq, deleted, {column id: value}), as engine/providers/base.py stages them.
RowVersion = tuple[int, bool, dict[int, Any]]


def constraints(table: TableDef) -> list[tuple[int, ...]]:
    """The table's UNIQUE constraints as tuples of column ids."""
    ids = {c.id for c in table.columns}
    out: list[tuple[int, ...]] = [(c.id,) for c in table.columns if c.unique]
    for group in table.options.get("unique_sets", []):
        if all(i in ids for i in group):  # a dropped column ends the constraint
            out.append(tuple(group))
    return out


def constraint_name(table: TableDef, ids: Any) -> str:
    by_id = {c.id: c.name for c in table.columns}
    names = [by_id[i] for i in ids]
    return f"column '{names[0]}'" if len(names) == 1 else f"columns ({', '.join(names)})"


def _key(table: TableDef, ids: Any, values: dict[int, Any]) -> tuple[Any, ...] | None:
    key = tuple(values.get(i) for i in ids)
    return None if any(v is None for v in key) else key


def _stored_rows(table: TableDef, data: pa.Table) -> list[dict[int, Any]]:
    """The rows of ``data`` as {column id: stored value}."""
    columns = [(c, data.column(c.name).to_pylist()) for c in table.columns]
    return [
        {
            c.id: (coerce(col[i], c.type, c.name) if col[i] is not None else None)
            for c, col in columns
        }
        for i in range(data.num_rows)
    ]


def _shown(table: TableDef, ids: Any, key: tuple[Any, ...]) -> str:
    types = {c.id: c.type for c in table.columns}
    parts = [render_stored(v, types[i]) for i, v in zip(ids, key, strict=True)]
    return f"'{parts[0]}'" if len(parts) == 1 else "(" + ", ".join(parts) + ")"


def duplicate_in(table: TableDef, ids: Any, data: pa.Table) -> str | None:
    """A value the rows of ``data`` repeat in columns ``ids`` (shown), or None."""
    seen: set[tuple[Any, ...]] = set()
    for row in _stored_rows(table, data):
        key = _key(table, ids, row)
        if key is None:
            continue
        if key in seen:
            return _shown(table, ids, key)
        seen.add(key)
    return None


def check_unique(prov: Any, scope: str, versions: dict[Any, RowVersion], options: Any) -> None:
    """Raise ``UniqueViolationError`` if staging ``versions`` in ``scope`` of
    ``prov`` (a table provider) would repeat a value of a UNIQUE constraint.
    ``options`` is the provider's ScanOptions for a scan with ``_seq``."""
    table = prov.table
    groups = constraints(table)
    if not groups or all(deleted for _, deleted, _ in versions.values()):
        return
    data, _ = prov.merged(SessionContext(), scope, options, None)
    if not isinstance(data, pa.Table):
        data = plain_strings(data.to_arrow_table())
    rows = _stored_rows(table, data)
    # Keyed as the staged versions are (a tuple for a composite key): a row
    # the statement rewrites must be recognised as itself, not as a clash.
    seqs = data.column("_seq").to_pylist()
    keys = [prov.key_of(row, seq) for row, seq in zip(rows, seqs, strict=True)]
    written = set(versions)
    for ids in groups:
        owner: dict[tuple[Any, ...], Any] = {}
        for key, row in zip(keys, rows, strict=True):
            value = _key(table, ids, row)
            if value is not None and key not in written:
                owner[value] = key
        for key, (_, deleted, values) in versions.items():
            value = None if deleted else _key(table, ids, values)
            if value is None:
                continue
            if owner.get(value, key) != key:
                raise UniqueViolationError(
                    f"Unique constraint violation: value {_shown(table, ids, value)} already "
                    f"exists in {constraint_name(table, ids)} of {table.qualified_name}",
                    column_name=constraint_name(table, ids),
                )
            owner[value] = key
