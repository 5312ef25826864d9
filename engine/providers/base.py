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
from datafusion import SessionContext, col

from engine.catalog.model import TableDef
from engine.errors import PrimaryKeyViolationError
from engine.exec.cast import type_stable_since
from engine.exec.pruning import prune_segments
from engine.gcpause import gc_paused
from engine.providers.cold_tier import ColdTier
from engine.providers.unique import check_unique
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
        cold: ColdTier,
        clock_ms: Callable[[], int],
    ) -> None:
        self.table_id = table_id
        self._clock_ms = clock_ms
        self._lookup = lookup
        self._store = store
        self._lock = lock
        self.cold = cold
        self.partitions: dict[str, HotPartition] = {}
        label = self.table.qualified_name
        with gc_paused():
            for key, raw in store.scan(keys.rows_prefix(table_id)):
                scope, pk, row = codec.decode_hot_row(key, raw, table=label)
                self.partitions.setdefault(scope, HotPartition()).rows[pk] = row
        self._drop_flushed_leftovers()

    def _drop_flushed_leftovers(self) -> None:
        """A flush that crashed after publishing its manifest may leave hot
        versions at or below the watermark: they are already in segments."""
        txn = Txn(self._store)
        for scope in set(self.cold.scopes_on_disk()) - set(self.partitions):
            self.cold.recover_scope(scope)  # cold-only scope whose hot copy was lost
        for scope, part in self.partitions.items():
            self.cold.recover_scope(scope)
            mark = self.cold.watermark(scope)
            if not mark:
                continue
            stale = [pk for pk, r in part.rows.items() if r[0] <= mark]
            for pk in stale:
                txn.batch.delete(keys.row_key(self.table_id, scope, pk))
                del part.rows[pk]
        txn.commit()

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
        """Which of ``pks`` have a live version in ``scope``, hot or cold."""
        part = self.partitions.get(scope)
        out: set[Any] = set()
        cold_candidates = []
        now = ScanOptions(now_ms=self._clock_ms())
        for pk in pks:
            r = part.rows.get(pk) if part is not None else None
            if r is None:
                cold_candidates.append(pk)
            elif not r[1] and self.row_visible(r[0], now):  # an expired STREAM row is gone
                out.add(pk)
        if cold_candidates:
            out.update(self.cold.live_versions(scope, self.table, cold_candidates))
        return out

    def insert(self, txn: Txn, scope: str, rows: list[dict[int, Any]], first_seq: int) -> list[int]:
        """Stage new rows (already coerced and checked for NOT NULL); returns their seqs."""
        pk = self.table.pk
        seqs = range(first_seq, first_seq + len(rows))
        if pk is not None:
            pk_id = pk.id
            staged = {
                values.get(pk_id): (seq, False, values)
                for values, seq in zip(rows, seqs, strict=True)
            }
            if len(staged) != len(rows):
                seen: set[Any] = set()
                for values in rows:
                    if values.get(pk_id) in seen:
                        raise self._pk_violation(values.get(pk_id))
                    seen.add(values.get(pk_id))
            clash = self.existing_keys(scope, staged.keys())
            if clash:
                raise self._pk_violation(min(clash, key=repr))
        else:
            staged = {seq: (seq, False, values) for values, seq in zip(rows, seqs, strict=True)}
        self.stage_versions(txn, scope, staged)
        return list(seqs)

    def stage_versions(self, txn: Txn, scope: str, versions: dict[Any, RowVersion]) -> None:
        """Write row versions (new rows, updates or tombstones) in ``txn``."""
        if self.table.has_unique:
            options = ScanOptions(hidden=True, now_ms=self._clock_ms())
            check_unique(self, scope, versions, options)
        prefix = keys.rows_prefix(self.table_id, scope)
        pack_key, encode = keys.pk_bytes, codec.encode_row
        txn.batch.put_many(
            [
                (prefix + pack_key(k), encode(seq, deleted, values))
                for k, (seq, deleted, values) in versions.items()
            ]
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
            column_name=pk.name,
        )

    def drop_scope(self, txn: Txn, scope: str) -> int:
        """Stage removing every row version of one scope (DROP USER), hot and
        cold (the scope's manifest; its directory goes after the commit).
        Returns how many live rows it held."""
        data, _ = self.merged(SessionContext(), scope, ScanOptions(now_ms=self._clock_ms()), None)
        live = data.num_rows if isinstance(data, pa.Table) else data.count()
        for key, _ in self._store.scan(keys.rows_prefix(self.table_id, scope)):
            txn.batch.delete(key)
        self.cold.drop_scope(txn, scope)
        txn.after_commit(lambda: self.partitions.pop(scope, None))
        return live

    def drop(self, txn: Txn) -> None:
        for key, _ in self._store.scan(keys.rows_prefix(self.table_id)):
            txn.batch.delete(key)
        self.cold.drop(txn)
        txn.after_commit(self.partitions.clear)

    # ---- read path
    def hot_rows(self, user: str) -> int:
        return sum(
            len(self.partitions[s].rows) for s in self.read_scopes(user) if s in self.partitions
        )

    def has_cold(self, user: str) -> bool:
        for scope in self.read_scopes(user):
            m = self.cold.manifest(scope)
            if m is not None and m.segments:
                return True
        return False

    def scan(self, user: str, options: ScanOptions) -> pa.Table:
        """The hot rows ``user`` may see, as one Arrow table."""
        table = self.table
        parts = [self._scan_partition(s, table, options) for s in self.read_scopes(user)]
        parts = [p for p in parts if p is not None]
        if not parts:
            return table.arrow_schema(hidden=options.hidden).empty_table()
        return parts[0] if len(parts) == 1 else pa.concat_tables(parts)

    def merged(
        self,
        ctx: SessionContext,
        user: str,
        options: ScanOptions,
        scans: list[tuple[Any, ...]] | None,
    ) -> tuple[Any, dict[str, int]]:
        """What ``user`` sees of this table: hot rows merged with the segments
        that survive pruning by ``scans`` (the filters of each scan of this
        table in the query; ``None`` = unknown, read every segment).

        Returns a pyarrow Table (hot only) or a DataFusion DataFrame."""
        # One consistent snapshot: a flush publishes its manifest and forgets
        # the flushed hot rows in one step under this lock, so reading both
        # here means no row is seen twice or missed.
        with self._lock:
            table = self.table
            hot = self.scan(user, options)
            snapshot = {
                scope: (
                    self.cold.manifest(scope),
                    list(self.partitions[scope].rows) if scope in self.partitions else [],
                )
                for scope in self.read_scopes(user)
            }
        stats = {
            "segments_total": 0,
            "segments_scanned": 0,
            "segments_pruned": 0,
            "hot_rows": hot.num_rows,
            "cold_rows_scanned": 0,
        }
        frames = []
        for scope, (manifest, hot_keys) in snapshot.items():
            if manifest is None or not manifest.segments:
                continue
            survivors = self._survivors(manifest.segments, scans, table)
            stats["segments_total"] += len(manifest.segments)
            stats["segments_scanned"] += len(survivors)
            stats["segments_pruned"] += len(manifest.segments) - len(survivors)
            stats["cold_rows_scanned"] += sum(e.row_count for e in survivors)
            cold = self.cold.frame(ctx, table, scope, survivors, hidden=True)
            if cold is None:
                continue
            cold = self._exclude_newer(
                ctx, cold, table, hot_keys, survivors, manifest.superseded_seqs
            )
            if not options.hidden:
                cold = cold.select(*[col(c.name) for c in table.columns])
            frames.append(cold)
        if not frames:
            return hot, stats
        out = frames[0]
        for f in frames[1:]:
            out = out.union(f)
        if hot.num_rows:
            out = out.union(ctx.from_arrow(hot))
        return out, stats

    def _survivors(
        self, segments: tuple[Any, ...], scans: list[tuple[Any, ...]] | None, table: TableDef
    ) -> list[Any]:
        if scans is None or any(not f for f in scans):
            return list(segments)  # unknown, or some scan reads the whole table
        ids = {c.name: c.id for c in table.columns}
        types = {c.name: type_stable_since(table, c.id) for c in table.columns}
        keep: dict[int, Any] = {}
        for filters in scans:
            for seg in prune_segments(list(filters), list(segments), ids, types)[0]:
                keep[seg.id] = seg
        return [keep[k] for k in sorted(keep)]

    def _exclude_newer(
        self,
        ctx: SessionContext,
        cold: Any,
        table: TableDef,
        hot_keys: list[Any],
        survivors: list[Any],
        superseded: tuple[int, ...],
    ) -> Any:
        """Hide cold versions that have a newer version: hot keys, superseded seqs.

        Only keys / seqs inside the surviving segments' ranges can matter, so
        a point query over many segments usually needs no anti-join at all."""
        pk = table.pk
        if pk is not None and hot_keys:
            hot_keys = _in_segment_ranges(hot_keys, survivors, pk)
            if hot_keys:
                keys_df = ctx.from_arrow(pa.table({"__k": pa.array(hot_keys, type=pk.arrow_type)}))
                cold = cold.join(keys_df, how="anti", left_on=[pk.name], right_on=["__k"])
        if superseded:
            lo = min(e.min_seq for e in survivors)
            hi = max(e.max_seq for e in survivors)
            stale = [q for q in superseded if lo <= q <= hi]
            if stale:
                seq_df = ctx.from_arrow(pa.table({"__s": pa.array(stale, type=pa.int64())}))
                cold = cold.join(seq_df, how="anti", left_on=["_seq"], right_on=["__s"])
        return cold

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
            with gc_paused():
                built = build_arrow(table, versions, hidden=options.hidden)
            if not ttl_sensitive:
                part.cache[cache_key] = (part.version, built)
            return built


def _in_segment_ranges(hot_keys: list[Any], segments: list[Any], pk: Any) -> list[Any]:
    """The hot keys that fall inside some segment's primary-key min/max."""
    bounds = []
    for e in segments:
        st = e.column_stats.get(str(pk.id)) or {}
        lo, hi = st.get("min"), st.get("max")
        if lo is None or hi is None or pk.type not in ("INT", "BIGINT", "SMALLINT", "TEXT"):
            return hot_keys  # unknown bounds (or an encoding we do not compare): keep all
        bounds.append((lo, hi))
    return [k for k in hot_keys if any(lo <= k <= hi for lo, hi in bounds)]


def build_arrow(table: TableDef, versions: list[RowVersion], *, hidden: bool) -> pa.Table:
    arrays = []
    for column in table.columns:
        cid, fill = column.id, column.fill
        arrays.append(pa.array([r[2].get(cid, fill) for r in versions], type=column.arrow_type))
    if hidden:
        arrays.append(pa.array([r[0] for r in versions], type=pa.int64()))
        arrays.append(pa.array([r[1] for r in versions], type=pa.bool_()))
    return pa.Table.from_arrays(arrays, schema=table.arrow_schema(hidden=hidden))
