"""Primary-key point lookups: ``WHERE pk = <literal | parameter>`` (every
column of a composite key pinned: ``WHERE a = 1 AND b = 'x'``).

When a statement pins one primary key, the engine reads that key's live
version straight from the hot partition or from its cold segment (via the
segment's key index) instead of planning a scan: point UPDATE / DELETE and
single-table point SELECTs use this.
"""

from __future__ import annotations

from typing import Any

from sqlglot import exp

from engine.catalog.model import TableDef
from engine.errors import KalamError
from engine.providers.base import ScanOptions, TableProvider
from engine.sql.mapping import ident
from engine.sql.values import NotSimple, simple_value
from engine.storage.cold import SegmentEntry
from engine.types import coerce


def conjuncts(where: Any) -> list[exp.Expression]:
    if where is None:
        return []
    if isinstance(where, exp.And):
        return conjuncts(where.this) + conjuncts(where.expression)
    if isinstance(where, exp.Paren):
        return conjuncts(where.this)
    return [where]


def point_key(
    table: TableDef,
    where: Any,
    params: dict[str, Any],
    *,
    names: tuple[str, ...] = (),
    alias: str | None = None,
) -> tuple[bool, Any]:
    """(True, stored key) when ``where`` pins the whole primary key: ``pk =
    value``, or ``a = v1 AND b = v2`` for a composite key (then the key is a
    tuple in key order). With ``names`` — the names the table goes by, for a
    SELECT — the equalities may be some of the top-level AND terms; an
    UPDATE / DELETE needs the predicate to be exactly them. ``alias`` is the
    name an UPDATE / DELETE gives its table (``UPDATE t AS x``): then only
    ``x.pk`` qualifies. (False, None) otherwise.

    The key is None when a key column is compared with NULL: that matches no
    row (SQL's ``=`` is never true against NULL), which ``live_version`` honours."""
    columns = table.key_columns
    if not columns:
        return False, None
    terms = conjuncts(where)
    if not names and len(terms) != len(columns):
        return False, None  # an UPDATE / DELETE predicate with more than the key
    qualifiers = (set(names) | {table.name}) if names or alias is None else {alias}
    wanted = {c.name: c for c in columns}
    found: dict[str, Any] = {}
    for term in terms:
        if not isinstance(term, exp.EQ):
            continue
        for col_side, val_side in ((term.this, term.expression), (term.expression, term.this)):
            if not (
                isinstance(col_side, exp.Column)
                and ident(col_side) in wanted
                and (not col_side.table or ident(col_side.args.get("table")) in qualifiers)
            ):
                continue
            column = wanted[ident(col_side)]
            try:
                value = coerce(simple_value(val_side, params), column.type, column.name)
            except (NotSimple, KeyError, KalamError):
                return False, None  # let DataFusion apply its own comparison rules
            if column.name in found and found[column.name] != value:
                return True, None  # a = 1 AND a = 2: no row
            found[column.name] = value
            break
    if len(found) != len(columns) or (not names and len(terms) != len(found)):
        return False, None
    if any(v is None for v in found.values()):
        return True, None
    if len(columns) == 1:
        return True, found[columns[0].name]
    return True, tuple(found[c.name] for c in columns)


def live_version(
    prov: TableProvider, table: TableDef, scope: str, key: Any, now_ms: int
) -> tuple[tuple[int, dict[int, Any]] | None, SegmentEntry | None]:
    """((seq, {column id: value}) or None, the segment it was read from, if any).

    A None key (``pk = NULL``) has no version: a primary key is never NULL."""
    if key is None:
        return None, None
    part = prov.partitions.get(scope)
    hot = part.rows.get(key) if part is not None else None
    if hot is not None:
        seq, deleted, values = hot
        if deleted or not prov.row_visible(seq, ScanOptions(now_ms=now_ms)):
            return None, None
        return (seq, {c.id: values.get(c.id, c.fill) for c in table.columns}), None
    hit = prov.cold.locate(scope, table, key)
    if hit is None:
        return None, None
    entry, pos, seq = hit
    return (seq, prov.cold.read_row_values(scope, table, entry, pos)), entry
