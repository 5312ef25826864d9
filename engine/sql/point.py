"""Primary-key point lookups: ``WHERE pk = <literal | parameter>``.

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
    """(True, stored key) when ``where`` is ``pk = value`` (or has it as a
    top-level AND term when ``names`` — the names the table goes by — is given
    for a SELECT); (False, None) otherwise. ``alias`` is the name an UPDATE /
    DELETE gives its table (``UPDATE t AS x``): then only ``x.pk`` qualifies.

    The key is None for ``pk = NULL``: that matches no row (SQL's ``=`` is
    never true against NULL), which ``live_version`` honours."""
    pk = table.pk
    if pk is None:
        return False, None
    terms = conjuncts(where) if names else [where]
    qualifiers = (set(names) | {table.name}) if names or alias is None else {alias}
    for term in terms:
        if not isinstance(term, exp.EQ):
            continue
        for col_side, val_side in ((term.this, term.expression), (term.expression, term.this)):
            if (
                isinstance(col_side, exp.Column)
                and ident(col_side) == pk.name
                and (not col_side.table or ident(col_side.args.get("table")) in qualifiers)
            ):
                try:
                    return True, coerce(simple_value(val_side, params), pk.type, pk.name)
                except (NotSimple, KeyError, KalamError):
                    return False, None  # let DataFusion apply its own comparison rules
    return False, None


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
