"""Table providers: the write path and the read path of a table, written once.

``TableProvider`` owns a table's hot partitions (one per scope) and their
exact in-memory mirror. USER / SHARED / STREAM tables differ only in how a
session user maps to scopes and in a few hooks (see ``kinds``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from engine.catalog.model import TableDef
from engine.errors import PrimaryKeyViolationError
from engine.storage import codec, keys
from engine.storage.hot import HotStore
from engine.txn import Txn
from engine.types import render_stored

RowVersion = tuple[int, bool, dict[int, Any]]  # (seq, deleted, {column id: value})


@dataclass
class HotPartition:
    """The newest hot version of every primary key of one scope."""

    rows: dict[Any, RowVersion] = field(default_factory=dict)
    version: int = 0
    cache: dict[tuple[Any, ...], tuple[int, pa.Table]] = field(default_factory=dict)

    def live_count(self) -> int:
        return sum(1 for r in self.rows.values() if not r[1])


@dataclass(frozen=True)
class ScanOptions:
    """What a query needs from a table scan."""

    hidden: bool = False  # expose _seq and _deleted
    include_deleted: bool = False  # keep tombstones (queries that name _deleted)
    now_ms: int = 0  # read time, for TTL


class TableProvider:
    """Base provider. Subclasses set ``table_type`` and override the scope hooks."""

    table_type = ""

    def __init__(
        self,
        table_id: int,
        lookup: Callable[[int], TableDef | None],
        store: HotStore,
        lock: threading.RLock,
    ) -> None:
        self.table_id = table_id
        self._lookup = lookup
        self._store = store
        self._lock = lock
        self.partitions: dict[str, HotPartition] = {}
        for key, raw in store.scan(keys.rows_prefix(table_id)):
            scope, pk = keys.split_row_key(key)
            self.partitions.setdefault(scope, HotPartition()).rows[pk] = codec.decode_row(raw)

    def __repr__(self) -> str:
        hot = sum(len(p.rows) for p in self.partitions.values())
        return f"<{type(self).__name__} {self.table.qualified_name}: {hot} hot row version(s)>"

    @property
    def table(self) -> TableDef:
        t = self._lookup(self.table_id)
        assert t is not None, f"table id {self.table_id} vanished from the catalog"
        return t

    # ---- scope hooks
    def write_scope(self, user: str) -> str:
        raise NotImplementedError

    def read_scopes(self, user: str) -> list[str]:
        raise NotImplementedError

    def row_visible(self, seq: int, options: ScanOptions) -> bool:
        """Whether a live row version is visible at read time (STREAM: TTL)."""
        return True

    def key_of(self, values: dict[int, Any], seq: int) -> Any:
        pk = self.table.pk
        return values.get(pk.id) if pk is not None else seq

    # ---- write path
    def existing_keys(self, scope: str, pks: Iterable[Any]) -> set[Any]:
        """Which of ``pks`` already have a live version in ``scope``.

        The base looks at the hot tier; the cold tier extends this."""
        part = self.partitions.get(scope)
        if part is None:
            return set()
        out = set()
        for pk in pks:
            r = part.rows.get(pk)
            if r is not None and not r[1]:
                out.add(pk)
        return out

    def insert(self, txn: Txn, scope: str, rows: list[dict[int, Any]], first_seq: int) -> list[int]:
        """Stage new rows (already coerced and checked for NOT NULL); returns their seqs."""
        table = self.table
        pk = table.pk
        seqs = list(range(first_seq, first_seq + len(rows)))
        staged: dict[Any, RowVersion] = {}
        for values, seq in zip(rows, seqs, strict=True):
            key = self.key_of(values, seq)
            if key in staged:
                raise self._pk_violation(key)
            staged[key] = (seq, False, values)
        if pk is not None:
            clash = self.existing_keys(scope, staged.keys())
            if clash:
                raise self._pk_violation(next(iter(clash)))
        self.stage_versions(txn, scope, staged)
        return seqs

    def stage_versions(self, txn: Txn, scope: str, versions: dict[Any, RowVersion]) -> None:
        """Write row versions (new rows, updates or tombstones) in ``txn``."""
        for key, (seq, deleted, values) in versions.items():
            txn.batch.put(
                keys.row_key(self.table_id, scope, key), codec.encode_row(seq, deleted, values)
            )

        def apply() -> None:
            part = self.partitions.setdefault(scope, HotPartition())
            part.rows.update(versions)
            part.version += 1

        txn.after_commit(apply)

    def _pk_violation(self, key: Any) -> PrimaryKeyViolationError:
        pk = self.table.pk
        assert pk is not None
        shown = render_stored(key, pk.type)
        return PrimaryKeyViolationError(
            f"Primary key violation: value '{shown}' already exists in column '{pk.name}'",
            value=key,
            column=pk.name,
        )

    def drop(self, txn: Txn) -> None:
        for key, _ in self._store.scan(keys.rows_prefix(self.table_id)):
            txn.batch.delete(key)
        txn.after_commit(self.partitions.clear)

    # ---- read path
    def hot_rows(self, user: str) -> int:
        return sum(len(self.partitions[s].rows) for s in self.read_scopes(user) if s in self.partitions)

    def scan(self, user: str, options: ScanOptions) -> pa.Table:
        """The rows ``user`` may see, hot tier only, as one Arrow table."""
        table = self.table
        parts = [self._scan_partition(s, table, options) for s in self.read_scopes(user)]
        parts = [p for p in parts if p is not None]
        if not parts:
            return table.arrow_schema(hidden=options.hidden).empty_table()
        return parts[0] if len(parts) == 1 else pa.concat_tables(parts)

    def _scan_partition(self, scope: str, table: TableDef, options: ScanOptions) -> pa.Table | None:
        part = self.partitions.get(scope)
        if part is None:
            return None
        ttl_sensitive = type(self).row_visible is not TableProvider.row_visible
        cache_key = (table.schema_version, options.hidden, options.include_deleted)
        with self._lock:
            hit = part.cache.get(cache_key)
            if hit is not None and hit[0] == part.version and not ttl_sensitive:
                return hit[1]
            versions = [
                r
                for r in part.rows.values()
                if (options.include_deleted or not r[1]) and self.row_visible(r[0], options)
            ]
            built = build_arrow(table, versions, hidden=options.hidden)
            if not ttl_sensitive:
                part.cache[cache_key] = (part.version, built)
            return built


def build_arrow(table: TableDef, versions: list[RowVersion], *, hidden: bool) -> pa.Table:
    arrays = []
    for col in table.columns:
        cid = col.id
        arrays.append(pa.array([r[2].get(cid) for r in versions], type=col.arrow_type))
    if hidden:
        arrays.append(pa.array([r[0] for r in versions], type=pa.int64()))
        arrays.append(pa.array([r[1] for r in versions], type=pa.bool_()))
    return pa.Table.from_arrays(arrays, schema=table.arrow_schema(hidden=hidden))
