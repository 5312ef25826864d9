"""Table providers: the write path and the read path of a table, written once.

``TableProvider`` owns a table's hot partitions (one per scope) and their
exact in-memory mirror. USER / SHARED / STREAM tables differ only in how a
session user maps to scopes and in a few hooks (see ``kinds``).
"""

from __future__ import annotations

import bisect
import functools
import itertools
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from datafusion import SessionContext, col

from engine.catalog.model import TableDef
from engine.errors import PrimaryKeyViolationError
from engine.exec.cast import plain_strings, type_stable_since
from engine.exec.frames import arrow_frame
from engine.exec.pruning import prune_segments
from engine.gcpause import gc_paused
from engine.providers.cold_tier import ColdTier
from engine.providers.hot_rows import (
    INT_KEY_TYPES,
    BatchVersions,
    HotRows,
    stored_list,
    versions_batch,
)
from engine.providers.live_masks import LiveRows, ScopeMasks
from engine.providers.unique import check_unique
from engine.storage import codec, keys
from engine.storage.hot import HotStore
from engine.txn import Txn
from engine.types import render_stored

RowVersion = tuple[int, bool, dict[int, Any]]  # (seq, deleted, {column id: value})

_LOAD_CHUNK = 65_536
# Bulk inserts of at least this many rows are stored as one chunk record.
CHUNK_MIN_ROWS = 1024


class HotPartition:
    """The newest hot version of every primary key of one scope (columnar:
    ``engine.providers.hot_rows``), and the Arrow views built from it."""

    def __init__(self, table: Callable[[], TableDef]) -> None:
        self.rows = HotRows(table)
        self.version = 0
        self.cache: dict[tuple[Any, ...], tuple[int, pa.Table]] = {}

    def __repr__(self) -> str:
        return f"<HotPartition v{self.version} {self.rows!r}>"

    def live_count(self) -> int:
        return self.rows.live_count()


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
        # scope -> (manifest, schema version, (live cold rows, their sorted int keys))
        self._cold_key_cache: dict[str, tuple[Any, int, tuple[int, KeyMatcher | None]]] = {}
        # scope -> (manifest, (hot partition, its version, schema version), cold
        # rows hidden by hot keys); manifest and partition compared by identity
        self._hidden_cache: dict[str, tuple[Any, tuple[Any, int, int], int]] = {}
        # scope -> the deletion masks of its cached segments (live_masks)
        self._masks: dict[str, ScopeMasks] = {}
        # Called with (table, scope, versions) once staged versions committed
        # (live queries; set by the database that owns this provider).
        self.on_commit: Callable[[TableDef, str, dict[Any, RowVersion]], None] | None = None
        self._load()
        self._drop_flushed_leftovers()

    def _partition(self, scope: str) -> HotPartition:
        part = self.partitions.get(scope)
        if part is None:
            part = self.partitions[scope] = HotPartition(lambda: self.table)
        return part

    def _load(self) -> None:
        """Read the hot rows into the columnar partitions, a chunk at a time
        (never a Python tuple per row for the whole table at once)."""
        label = self.table.qualified_name
        pending: dict[str, dict[Any, RowVersion]] = {}

        def settle(scope: str) -> None:
            found = pending.pop(scope, None)
            if found:
                part = self._partition(scope)
                part.rows.update(found)
                part.rows.fold()

        chunks: list[tuple[int, bytes]] = []
        with gc_paused():
            for key, raw in self._store.scan_some(keys.rows_prefix(self.table_id), _not_chunk):
                if raw is None:
                    found = keys.split_chunk_key(key)
                    assert found is not None
                    chunks.append((found[1], key))  # read after the rows, oldest first
                    continue
                scope, pk, row = codec.decode_hot_row(key, raw, table=label)
                rows = pending.setdefault(scope, {})
                rows[pk] = row
                if len(rows) >= _LOAD_CHUNK:
                    settle(scope)
            for scope in list(pending):
                settle(scope)
        for _, key in sorted(chunks):
            raw = self._store.get(key)
            if raw is None:
                continue
            scope, first, batch = codec.decode_chunk(key, raw, table=label)
            seqs = np.arange(first, first + batch.num_rows, dtype=np.int64)
            part = self._partition(scope)
            deleted = _is_tombstones(batch)
            if deleted:
                batch = batch.replace_schema_metadata(None)
            part.rows.merge_older(self._batch_keys(batch, seqs), batch, first, deleted=deleted)

    def _batch_keys(self, batch: pa.RecordBatch, seqs: np.ndarray) -> Any:
        """The hot key of each row of a record batch of physical columns (a
        numpy array for many integer keys, else a list)."""
        key = self.table.key_columns
        if not key:
            return seqs if len(seqs) > 1024 else list(seqs.tolist())
        names = batch.schema.names
        if len(key) == 1 and key[0].type in INT_KEY_TYPES and batch.num_rows > 1024:
            # Integer keys stay a numpy array: no Python int per row.
            column = batch.column(names.index(f"c{key[0].id}"))
            return column.to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
        columns = [stored_list(batch.column(names.index(f"c{c.id}"))) for c in key]
        return columns[0] if len(columns) == 1 else list(zip(*columns, strict=True))

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
            for pk in part.rows.keys_through(mark):
                txn.batch.delete(keys.row_key(self.table_id, scope, pk))
            part.rows.forget_through(mark)
            for key, _ in self._store.scan(keys.chunk_prefix(self.table_id, scope)):
                found = keys.split_chunk_key(key)
                if found is not None and found[2] <= mark:
                    txn.batch.delete(key)
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
        """The hot key of a row version: its primary key (a tuple for a
        composite key), or its seq in a table without one."""
        table = self.table
        return table.key_of(values) if table.key_columns else seq

    # ---- write path
    def existing_keys(self, scope: str, pks: Iterable[Any]) -> set[Any]:
        """Which of ``pks`` have a live version in ``scope``, hot or cold."""
        part = self.partitions.get(scope)
        out: set[Any] = set()
        cold_candidates: list[Any] = []
        now = ScanOptions(now_ms=self._clock_ms())
        if part is not None and part.rows.int_keys and not isinstance(pks, (set, frozenset)):
            if not isinstance(pks, np.ndarray):
                pks = list(pks)
            if len(pks) > 256:  # many keys (bulk loads): one vectorised lookup
                seqs, dels = part.rows.states_of(pks)
                found = np.flatnonzero((seqs >= 0) & ~dels)
                for pk, seq in zip(
                    np.asarray(pks)[found].tolist(), seqs[found].tolist(), strict=True
                ):
                    if self.row_visible(seq, now):
                        out.add(pk)
                cold_candidates = np.asarray(pks)[seqs < 0].tolist()
                pks = []
        elif isinstance(pks, np.ndarray):
            pks = pks.tolist()
        if part is None:  # nothing hot in the scope: every key is a cold question
            cold_candidates, pks = list(pks), []
        for pk in pks:
            r = part.rows.state_of(pk) if part is not None else None
            if r is None:
                cold_candidates.append(pk)
            elif not r[1] and self.row_visible(r[0], now):  # an expired STREAM row is gone
                out.add(pk)
        if cold_candidates:
            out.update(self.cold.live_versions(scope, self.table, cold_candidates))
        return out

    def insert(self, txn: Txn, scope: str, rows: list[dict[int, Any]], first_seq: int) -> list[int]:
        """Stage new rows (already coerced and checked for NOT NULL); returns their seqs."""
        table = self.table
        seqs = range(first_seq, first_seq + len(rows))
        if table.key_columns:
            pk = table.pk
            # One key column (the common case): a plain dict lookup per row.
            key_of = (lambda v, i=pk.id: v.get(i)) if pk is not None else table.key_of
            staged = {
                key_of(values): (seq, False, values) for values, seq in zip(rows, seqs, strict=True)
            }
            if len(staged) != len(rows):
                seen: set[Any] = set()
                for values in rows:
                    if key_of(values) in seen:
                        raise self._pk_violation(key_of(values))
                    seen.add(key_of(values))
            clash = self.existing_keys(scope, staged.keys())
            if clash:
                raise self._pk_violation(min(clash, key=repr))
        else:
            staged = {seq: (seq, False, values) for values, seq in zip(rows, seqs, strict=True)}
        self.stage_versions(txn, scope, staged)
        return list(seqs)

    def insert_batch(self, txn: Txn, scope: str, batch: pa.RecordBatch, first_seq: int) -> int:
        """Stage new rows given as one record batch of physical columns
        (``bulk.arrow_batch``); returns how many. The columnar twin of
        ``insert``: keys are checked with one vectorised lookup, the hot
        store still gets one row version per key (the layout every reader,
        flush and REPAIR knows), and memory gets the batch itself."""
        table = self.table
        n = batch.num_rows
        seqs = np.arange(first_seq, first_seq + n, dtype=np.int64)
        pks = self._batch_keys(batch, seqs)
        if table.key_columns:
            if isinstance(pks, np.ndarray) and _all_distinct(pks):
                pass  # no key twice in the batch
            elif len(set(pks)) != n:
                seen: set[Any] = set()
                for k in pks:
                    if k in seen:
                        raise self._pk_violation(k)
                    seen.add(k)
            clash = self.existing_keys(scope, pks)
            if clash:
                raise self._pk_violation(min(clash, key=repr))
        staged = BatchVersions(pks, batch, seqs)
        if table.has_unique:
            # check_unique only reads its versions as a mapping.
            options = ScanOptions(hidden=True, now_ms=self._clock_ms())
            check_unique(self, scope, staged, options)  # type: ignore[arg-type]
        # A big batch is one hot-store value (an Arrow IPC chunk) instead of a
        # msgpack record per row; rows that expire one by one (STREAM) keep
        # records per row so eviction can delete them.
        chunked = n >= CHUNK_MIN_ROWS and type(self).row_visible is TableProvider.row_visible
        if chunked:
            txn.batch.put(
                keys.chunk_key(self.table_id, scope, first_seq, first_seq + n - 1),
                codec.encode_chunk(batch),
            )
        else:
            columns = [stored_list(c) for c in batch.columns]
            ids = [int(name[1:]) for name in batch.schema.names]
            if isinstance(pks, np.ndarray):
                pks = pks.tolist()
            prefix = keys.rows_prefix(self.table_id, scope)
            pack_key, encode = keys.pk_bytes, codec.encode_row
            txn.batch.put_many(
                [
                    (prefix + pack_key(k), encode(q, False, dict(zip(ids, values, strict=True))))
                    for k, q, values in zip(
                        pks, seqs.tolist(), zip(*columns, strict=True), strict=True
                    )
                ]
            )

        def apply() -> None:
            part = self._partition(scope)
            part.rows.append(pks, batch, seqs, np.zeros(n, np.bool_), chunked=chunked)
            part.version += 1
            if self.on_commit is not None:
                self.on_commit(self.table, scope, staged)  # type: ignore[arg-type]

        txn.after_commit(apply)
        return n

    def stage_versions(self, txn: Txn, scope: str, versions: dict[Any, RowVersion]) -> None:
        """Write row versions (new rows, updates or tombstones) in ``txn``."""
        if self.table.has_unique:
            options = ScanOptions(hidden=True, now_ms=self._clock_ms())
            check_unique(self, scope, versions, options)
        chunk = self._as_chunk(versions)
        if chunk is not None:
            batch, seqs = chunk
            first, last = int(seqs[0]), int(seqs[-1])
            txn.batch.put(
                keys.chunk_key(self.table_id, scope, first, last), codec.encode_chunk(batch)
            )
        else:
            prefix = keys.rows_prefix(self.table_id, scope)
            pack_key, encode = keys.pk_bytes, codec.encode_row
            txn.batch.put_many(
                [
                    (prefix + pack_key(k), encode(seq, deleted, values))
                    for k, (seq, deleted, values) in versions.items()
                ]
            )

        def apply() -> None:
            part = self._partition(scope)
            if chunk is not None:
                part.rows.append(
                    list(versions),
                    chunk[0],
                    chunk[1],
                    np.zeros(len(chunk[1]), np.bool_),
                    chunked=True,
                )
            else:
                part.rows.update(versions)
                part.rows.settle()
            part.version += 1
            if self.on_commit is not None:
                self.on_commit(self.table, scope, versions)

        txn.after_commit(apply)

    def stage_batch(
        self,
        txn: Txn,
        scope: str,
        batch: pa.RecordBatch,
        first_seq: int,
        old_seqs: np.ndarray,
        *,
        deleted: bool,
    ) -> BatchVersions:
        """Stage new versions of existing rows given as one record batch of
        physical columns (a set-based UPDATE, or DELETE's tombstones when
        ``deleted``); row i gets seq ``first_seq + i`` and replaces the
        version whose seq was ``old_seqs[i]``.
        The columnar twin of ``stage_versions``: returns the staged versions
        as a mapping (built per row only if someone reads it)."""
        n = batch.num_rows
        seqs = np.arange(first_seq, first_seq + n, dtype=np.int64)
        part = self.partitions.get(scope)
        if not self.table.key_columns and part is not None:
            old_seqs = part.rows.keys_at_seqs(old_seqs)  # a keyless row's key is its first seq
        pks = self._batch_keys(batch, old_seqs)
        staged = BatchVersions(pks, batch, seqs, deleted)
        if n < CHUNK_MIN_ROWS:  # a few rows: the per-key path keeps them in the tail
            self.stage_versions(txn, scope, dict(staged.items()))
            return staged
        if self.table.has_unique:
            options = ScanOptions(hidden=True, now_ms=self._clock_ms())
            check_unique(self, scope, staged, options)  # type: ignore[arg-type]
        # Rows that expire one by one (STREAM, keyless) keep records per row.
        chunked = (
            bool(self.table.key_columns) and type(self).row_visible is TableProvider.row_visible
        )
        if chunked:
            # A chunk of tombstones says so in its schema's metadata.
            stored = batch.replace_schema_metadata(_TOMBSTONES) if deleted else batch
            txn.batch.put(
                keys.chunk_key(self.table_id, scope, first_seq, first_seq + n - 1),
                codec.encode_chunk(stored),
            )
        else:
            columns = [stored_list(c) for c in batch.columns]
            ids = [int(name[1:]) for name in batch.schema.names]
            prefix = keys.rows_prefix(self.table_id, scope)
            pack_key, encode = keys.pk_bytes, codec.encode_row
            txn.batch.put_many(
                [
                    (prefix + pack_key(k), encode(q, deleted, dict(zip(ids, values, strict=True))))
                    for k, q, values in zip(
                        staged.keys_list, seqs.tolist(), zip(*columns, strict=True), strict=True
                    )
                ]
            )

        def apply() -> None:
            part = self._partition(scope)
            part.rows.append(pks, batch, seqs, np.full(n, deleted, np.bool_), chunked=chunked)
            part.version += 1
            if self.on_commit is not None:
                self.on_commit(self.table, scope, staged)  # type: ignore[arg-type]

        txn.after_commit(apply)
        return staged

    def _as_chunk(
        self, versions: dict[Any, RowVersion]
    ) -> tuple[pa.RecordBatch, np.ndarray] | None:
        """A big set of new live versions with consecutive seqs (a set-based
        UPDATE) as one chunk record: (its rows, their seqs); None otherwise."""
        n = len(versions)
        if (
            n < CHUNK_MIN_ROWS
            or not self.table.key_columns
            or type(self).row_visible is not TableProvider.row_visible
        ):
            return None
        seqs = np.fromiter((v[0] for v in versions.values()), np.int64, n)
        if not (np.diff(seqs) == 1).all() or any(v[1] for v in versions.values()):
            return None
        return versions_batch(self.table, list(versions.values())), seqs

    def _pk_violation(self, key: Any) -> PrimaryKeyViolationError:
        found = self.table.key_columns
        assert found
        if len(found) == 1:
            shown = render_stored(key, found[0].type)
            return PrimaryKeyViolationError(
                f"Primary key violation: value '{shown}' already exists in column '{found[0].name}'",
                value=key,
                column_name=found[0].name,
            )
        names = ", ".join(c.name for c in found)
        shown = ", ".join(render_stored(v, c.type) for v, c in zip(key, found, strict=True))
        return PrimaryKeyViolationError(
            f"Primary key violation: key ({shown}) already exists in columns ({names})",
            value=key,
            column_name=names,
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

    def can_prune(self, user: str) -> bool:
        """Whether pruning by a query's filters can skip a segment here: some
        scope holds two or more. One segment is left to DataFusion's own
        row-group pruning: learning the filters costs a second planning of
        the query (2-4 ms for a TPC-H query), more than it could save."""
        for scope in self.read_scopes(user):
            m = self.cold.manifest(scope)
            if m is not None and len(m.segments) > 1:
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
                    manifest := self.cold.manifest(scope),
                    self._hiding_versions(scope, manifest),
                )
                for scope in self.read_scopes(user)
            }
        stats = {
            "segments_total": 0,
            "segments_scanned": 0,
            "segments_pruned": 0,
            "hot_rows": hot.num_rows,
            "cold_rows_scanned": 0,
            "segments_cached": 0,  # scanned from the warm cache (engine.exec.segment_cache)
        }
        frames = []
        for scope, (manifest, hiding) in snapshot.items():
            if manifest is None or not manifest.segments:
                continue
            survivors = self._survivors(manifest.segments, scans, table)
            stats["segments_total"] += len(manifest.segments)
            stats["segments_scanned"] += len(survivors)
            stats["segments_pruned"] += len(manifest.segments) - len(survivors)
            stats["cold_rows_scanned"] += sum(e.row_count for e in survivors)
            live = None
            if hiding is not None and (len(hiding[1]) or manifest.superseded_seqs):
                masks, keys, seqs = hiding
                live = LiveRows(
                    masks,
                    table,
                    manifest.superseded_seqs,
                    keys,
                    seqs,
                    functools.partial(
                        self._exclude_newer,
                        ctx,
                        table=table,
                        hot_keys=keys,
                        survivors=survivors,
                        superseded=manifest.superseded_seqs,
                    ),
                )
            cold = self.cold.frame(
                ctx, table, scope, survivors, hidden=True, stats=stats, live=live
            )
            if cold is None:
                continue
            if not options.hidden:
                cold = cold.select(*[col(c.name) for c in table.columns])
            frames.append(cold)
        if not frames:
            return hot, stats
        out = frames[0]
        for f in frames[1:]:
            out = out.union(f)
        if hot.num_rows:
            out = out.union(arrow_frame(hot))
        return out, stats

    def _hiding_versions(self, scope: str, manifest: Any) -> tuple[ScopeMasks, Any, Any] | None:
        """The scope's masks state and the keys and seqs of its hot versions,
        which hide cold rows of the same keys, read under the lock with the
        manifest (a flush in between would stamp masks made with the old
        manifest's markers as the new one's); None when the scope has no
        segment. The versions are kept per partition version: a query after
        no write copies nothing."""
        if manifest is None or not manifest.segments:
            self._masks.pop(scope, None)
            return None
        part = self.partitions.get(scope)
        stamp = (
            manifest,
            self.table.schema_version,
            part,
            -1 if part is None else part.rows.removals,
        )
        masks = self._masks.get(scope)
        if masks is None or not masks.matches(stamp):
            # (the one replaced gives its copies' bytes back when dropped)
            limit = self.cold.memory_budget() // 4
            masks = self._masks[scope] = ScopeMasks(stamp, limit)
        if part is None or not len(part.rows):
            return masks, np.zeros(0, np.int64), np.zeros(0, np.int64)
        known = masks.versions
        if known is None or known[0] != part.version:
            keys, seqs = part.rows.versions()
            known = masks.versions = (part.version, keys, seqs)
        return masks, known[1], known[2]

    def aggregates_from_metadata(
        self,
        user: str,
        options: ScanOptions,
        wanted: list[tuple[str, str | None]],
        ctx: SessionContext | None = None,
    ) -> tuple[list[Any], dict[str, int]] | None:
        """``count(*)`` / ``min(c)`` / ``max(c)`` over what ``user`` sees, from
        the manifests' segment statistics plus the hot rows, without running
        the plan; ``wanted`` is [("count", None) | ("min" | "max", column)];
        ``ctx`` reads cold keys when they are needed (``_cold_keys``).

        ``count(*)`` alone is also answered when hot versions hide cold rows
        or delete markers name dead ones: live cold rows (``_cold_keys``,
        read once per manifest) minus the cold rows hot keys hide plus the
        live hot rows. min/max also come from statistics when hot keys fall
        in a segment's key range but hide no cold row. ``None`` whenever the
        answer cannot be proven: min/max with a hot version or a marker that
        hides a cold row,
        rows that expire (STREAM), a segment that predates the column or its
        type, statistics that are not exact (floats omit NaN, text is
        truncated), hiding hot keys that are not one integer column."""
        if options.hidden or type(self).row_visible is not TableProvider.row_visible:
            return None
        ctx = ctx if ctx is not None else SessionContext()
        counts_only = all(fn == "count" for fn, _ in wanted)
        with self._lock:
            table = self.table
            hot = None if counts_only else self.scan(user, options)
            hot_live = 0
            snapshot: list[tuple[str, Any, tuple[Any, int, int], Any, Any]] = []
            for scope in self.read_scopes(user):
                manifest = self.cold.manifest(scope)
                part = self.partitions.get(scope)
                if part is not None:
                    hot_live += part.live_count()
                if manifest is None or not manifest.segments:
                    continue
                version = part.version if part is not None else -1
                stamp = (part, version, table.schema_version)
                known = self._hidden_cache.get(scope)
                if (
                    known is not None
                    and known[0] is manifest
                    and known[1][0] is part
                    and known[1][1:] == stamp[1:]
                ):
                    snapshot.append((scope, manifest, stamp, None, known[2]))
                else:
                    snapshot.append((scope, manifest, stamp, self._hiding_keys(part), None))
        if hot is not None:
            hot_live = hot.num_rows
        segments: list[Any] = []
        cold_live = 0
        for scope, manifest, stamp, hot_keys, hidden in snapshot:
            for entry in manifest.segments:
                # Damage stays loud even when no row is read (invariant 5): a
                # stat per segment, the checksum on first use or after a change.
                self.cold.segment_file(scope, entry)
            segments += manifest.segments
            if hidden is None:
                hidden = self._hidden_rows(ctx, scope, manifest, table, hot_keys)
                if hidden is not _UNKNOWN:
                    self._hidden_cache[scope] = (manifest, stamp, hidden)
            if not manifest.superseded_seqs and hidden == 0:
                cold_live += manifest.row_count  # the statistics are the answer
                continue
            if not counts_only:
                return None  # a dead or hidden cold row may hold the extreme
            found = self._cold_keys(ctx, scope, manifest, table) if hidden is not _UNKNOWN else None
            if found is None:
                return None
            cold_live += found[0] - hidden
        columns = {c.name: c for c in table.columns}
        out: list[Any] = []
        for fn, name in wanted:
            if fn == "count":
                out.append(cold_live + hot_live)
                continue
            assert hot is not None
            column = columns.get(name or "")
            if column is None or column.type not in _EXACT_STATS:
                return None
            found_extreme = _stat_extreme(fn, column, segments, type_stable_since(table, column.id))
            if found_extreme is _UNKNOWN:
                return None
            values = [
                v
                for v in (found_extreme, _hot_extreme(fn, hot.column(column.name)))
                if v is not None
            ]
            out.append((min if fn == "min" else max)(values) if values else None)
        stats = {
            "segments_total": len(segments),
            "segments_scanned": 0,
            "segments_pruned": 0,
            "hot_rows": hot_live,
            "cold_rows_scanned": 0,
        }
        return out, stats

    def first_rows(
        self, ctx: SessionContext, user: str, options: ScanOptions, n: int
    ) -> tuple[pa.Table, dict[str, int]] | None:
        """``n`` rows of what ``user`` sees, for ``SELECT <columns> FROM t
        LIMIT n`` (no ORDER BY: any n live rows are an answer), without the
        anti-join of every cold row against the hot keys.

        Live hot rows come first: each is a live row of the table (the newest
        version of its key, visible now). When they are too few, the rest are
        cold rows read a few at a time (``_cold_top_up``), skipping those a
        hot key or a delete marker hides. ``None`` (run the plan) when the
        query keeps tombstones (it names ``_deleted``), or the cold rows
        cannot be skipped by one key column, or nothing hides a cold row (the
        plan then has no anti-join either)."""
        if options.include_deleted:
            return None
        with self._lock:
            table = self.table
            hot = self.scan(user, options)
            snapshot = [
                (scope, manifest, self._hiding_keys(self.partitions.get(scope)))
                for scope in self.read_scopes(user)
                if (manifest := self.cold.manifest(scope)) is not None and manifest.segments
            ]
        figures = {
            "segments_total": sum(len(m.segments) for _, m, _ in snapshot),
            "segments_scanned": 0,
            "segments_pruned": 0,
            "hot_rows": min(n, hot.num_rows),
            "cold_rows_scanned": 0,
            "limit_shortcut": 1,
        }
        if hot.num_rows >= n:
            return hot.slice(0, n), figures
        if not snapshot:
            return None  # hot rows only, fewer than n: the plan reads them as they are
        pieces = [hot]
        needed = n - hot.num_rows
        for scope, manifest, hot_keys in snapshot:
            if not needed:
                break
            found = self._cold_top_up(ctx, table, scope, manifest, hot_keys, needed)
            if found is None:
                return None
            rows, read, scanned = found
            figures["segments_scanned"] += scanned
            figures["cold_rows_scanned"] += read
            pieces.append(rows.cast(hot.schema))
            needed -= rows.num_rows
        return pa.concat_tables(pieces), figures

    def _cold_top_up(
        self,
        ctx: SessionContext,
        table: TableDef,
        scope: str,
        manifest: Any,
        hot_keys: Any,
        needed: int,
    ) -> tuple[pa.Table, int, int] | None:
        """Up to ``needed`` live cold rows of one scope (user columns), how
        many rows were read and from how many segments. Segments are read one
        at a time, each only up to ``needed + hidden`` rows, where ``hidden``
        (hot keys plus delete markers) bounds how many rows read can be dead,
        until enough live rows are found: the cost depends on n, not on the
        table's size or segment count. ``None`` when that cannot be told
        cheaply: something to skip and not one key column, or too much to
        skip or to hold."""
        key = table.key_columns
        markers = manifest.superseded_seqs
        hidden = len(hot_keys) + len(markers)
        if (hidden and len(key) != 1) or hidden > _TOP_UP_SKIP_LIMIT or needed > _TOP_UP_SKIP_LIMIT:
            return None  # many rows to hold at once: the plan streams them
        names = [c.name for c in table.columns]
        pieces: list[pa.Table] = []
        read = scanned = 0
        for entry in manifest.segments:
            if not needed:
                break
            frame = self.cold.frame(ctx, table, scope, [entry], hidden=bool(hidden))
            if frame is None:
                continue
            wanted = needed + hidden
            got = plain_strings(frame.limit(wanted).to_arrow_table())
            read += got.num_rows
            scanned += 1
            live = got.select(names) if not hidden else self._live_cold(got, key, hot_keys, markers)
            if live.num_rows < needed and got.num_rows == wanted and hidden:
                return None  # more dead rows than keys to skip (a key twice): the plan decides
            live = live.slice(0, needed)
            pieces.append(live)
            needed -= live.num_rows
        if not pieces:
            return table.arrow_schema().empty_table(), read, scanned
        return pa.concat_tables(pieces), read, scanned

    @staticmethod
    def _live_cold(got: pa.Table, key: tuple[Any, ...], hot_keys: Any, markers: Any) -> pa.Table:
        """Rows of ``got`` (cold rows with ``_seq``) that no hot key hides and
        no delete marker names, in user columns."""
        dead = np.zeros(got.num_rows, np.bool_)
        if len(hot_keys):
            keys = got.column(key[0].name)
            if isinstance(hot_keys, np.ndarray):
                dead |= np.isin(keys.to_numpy(), hot_keys)
            else:
                probe = pa.array(hot_keys, type=key[0].arrow_type)
                dead |= pc.is_in(keys, value_set=probe).to_numpy(zero_copy_only=False)
        if markers:
            dead |= np.isin(got.column("_seq").to_numpy(), np.asarray(markers, dtype=np.int64))
        names = [n for n in got.schema.names if n not in ("_seq", "_deleted")]
        return got.filter(pa.array(~dead)).select(names)

    def _hiding_keys(self, part: HotPartition | None) -> Any:
        """The hot keys (live or tombstone) of a scope, which hide cold rows
        of the same key: an int64 array for one integer key column, else a list."""
        if part is None:
            return []
        if part.rows.int_keys and self.table.key_columns:
            return part.rows.key_array()
        return list(part.rows)

    def _hidden_rows(
        self, ctx: SessionContext, scope: str, manifest: Any, table: TableDef, hot_keys: Any
    ) -> Any:
        """How many live cold rows of ``manifest`` the hot keys hide: 0 when
        no hot key falls in a segment's key range, else counted against the
        cold key index (one integer key column only); ``_UNKNOWN`` when that
        cannot be proven."""
        if not len(hot_keys) or not _may_shadow(hot_keys, manifest.segments, table):
            return 0
        if not isinstance(hot_keys, np.ndarray):
            return _UNKNOWN
        found = self._cold_keys(ctx, scope, manifest, table)
        if found is None or found[1] is None:
            return _UNKNOWN
        return found[1].matches(hot_keys)

    def _cold_keys(
        self, ctx: SessionContext, scope: str, manifest: Any, table: TableDef
    ) -> tuple[int, KeyMatcher | None] | None:
        """(how many cold rows of ``manifest`` are live, a matcher of their
        keys or ``None`` unless the key is one integer column); ``None`` for
        a table without a key. Read once per manifest object (a flush,
        compact, publish or REPAIR replaces the manifest, so a stale entry is
        never used) as ONE scan of the key and ``_seq`` columns of every
        segment, through the same frame the plan reads (old segments through
        the current schema): reading each segment's key index instead cost
        ~1 ms a segment (200 segments: 190 ms for the first count)."""
        key = table.key_columns
        if not key:
            return None
        hit = self._cold_key_cache.get(scope)
        if hit is not None and hit[0] is manifest and hit[1] == table.schema_version:
            return hit[2]
        as_ints = len(key) == 1 and key[0].type in INT_KEY_TYPES
        frame = self.cold.frame(ctx, table, scope, list(manifest.segments), hidden=True)
        if frame is None:
            return None
        names = ["_seq", key[0].name] if as_ints else ["_seq"]
        data = frame.select(*[col(n) for n in names]).to_arrow_table()
        seqs = data.column(0).to_numpy()
        markers = np.asarray(manifest.superseded_seqs, dtype=np.int64)
        live = np.isin(seqs, markers, invert=True) if len(markers) else None
        live_total = len(seqs) if live is None else int(live.sum())
        matcher = None
        if as_ints and data.column(1).null_count == 0:
            keys_np = data.column(1).to_numpy().astype(np.int64, copy=False)
            if live is not None:
                keys_np = keys_np[live]
            # Segments are written in key order: already sorted is the usual case.
            if len(keys_np) > 1 and not bool((keys_np[1:] >= keys_np[:-1]).all()):
                keys_np = np.sort(keys_np, kind="stable")
            matcher = KeyMatcher(keys_np)
        found = (live_total, matcher)
        self._cold_key_cache[scope] = (manifest, table.schema_version, found)
        return found

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
        *,
        table: TableDef,
        hot_keys: Any,
        survivors: list[Any],
        superseded: tuple[int, ...],
    ) -> Any:
        """Hide cold versions that have a newer version: hot keys, superseded
        seqs, for segments read from files (cached segments are masked
        instead: ``engine.providers.live_masks``).

        Only keys / seqs inside the surviving segments' ranges can matter, so
        a point query over many segments usually needs no anti-join at all.
        The anti-join is built on the small side (the hot keys): written as
        ``hot RIGHT JOIN cold ... WHERE hot key IS NULL``, DataFusion hashes
        the hot keys and streams the cold rows past them (a LEFT ANTI join
        would hash every cold row)."""
        key = table.key_columns
        if key and len(hot_keys):
            hot_keys = _in_segment_ranges(hot_keys, survivors, key)
            if len(hot_keys):
                cold = _anti_join_on_small(
                    arrow_frame(_keys_table(hot_keys, key), "hot_keys"),
                    [f"__k{i}" for i in range(len(key))],
                    cold,
                    [c.name for c in key],
                )
        if superseded:
            lo = min(e.min_seq for e in survivors)
            hi = max(e.max_seq for e in survivors)
            stale = [q for q in superseded if lo <= q <= hi]
            if stale:
                seqs = pa.table({"__s": pa.array(stale, type=pa.int64())})
                cold = _anti_join_on_small(arrow_frame(seqs, "superseded"), ["__s"], cold, ["_seq"])
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
            visible = None
            if ttl_sensitive:

                def visible(seqs: np.ndarray) -> np.ndarray:
                    return np.fromiter(
                        (self.row_visible(q, options) for q in seqs.tolist()), np.bool_, len(seqs)
                    )

            with gc_paused():
                batches, seqs, deleted = part.rows.select(
                    table, include_deleted=options.include_deleted, visible=visible
                )
                built = _logical(table, batches, seqs, deleted, hidden=options.hidden)
            if not ttl_sensitive:
                part.cache[cache_key] = (part.version, built)
            return built


def _logical(
    table: TableDef,
    batches: list[pa.RecordBatch],
    seqs: np.ndarray,
    deleted: np.ndarray,
    *,
    hidden: bool,
) -> pa.Table:
    """Physical hot batches as a table of the column names (zero-copy)."""
    schema = table.arrow_schema(hidden=hidden)
    columns: list[Any] = [
        pa.chunked_array([b.column(i) for b in batches], type=f.type)
        for i, f in enumerate(table.arrow_schema())
    ]
    if hidden:
        columns += [pa.array(seqs, pa.int64()), pa.array(deleted, pa.bool_())]
    return pa.Table.from_arrays(columns, schema=schema)


def _all_distinct(values: np.ndarray) -> bool:
    """No value twice (a sort: numpy's hash-based unique took 1.1 s for 500k keys)."""
    ordered = np.sort(values)
    return not bool((ordered[1:] == ordered[:-1]).any())


# Schema metadata of a bulk chunk record whose rows are tombstones (DELETE).
_TOMBSTONES = {b"kalam.deleted": b"true"}


def _is_tombstones(batch: pa.RecordBatch) -> bool:
    meta = batch.schema.metadata
    return bool(meta) and meta.get(b"kalam.deleted") == b"true"


def _not_chunk(key: bytes) -> bool:
    return keys.split_chunk_key(key) is None


def _keys_table(hot_keys: list[Any], key: tuple[Any, ...]) -> pa.Table:
    """Hot keys as columns ``__k0``, ``__k1``... (one per key column)."""
    if len(key) == 1:
        return pa.table({"__k0": pa.array(hot_keys, type=key[0].arrow_type)})
    parts = list(zip(*hot_keys, strict=True))
    return pa.table(
        {
            f"__k{i}": pa.array(part, type=c.arrow_type)
            for i, (c, part) in enumerate(zip(key, parts, strict=True))
        }
    )


# ``SELECT ... LIMIT n`` tops hot rows up with cold ones while n and the
# number of hot keys and delete markers that can hide a cold row are at most
# this (it holds n plus that many rows of a scope at once); beyond it the
# plan's anti-join is the cheaper way.
_TOP_UP_SKIP_LIMIT = 65_536

# Types whose manifest min/max are exact (stored as integers, or booleans).
_EXACT_STATS = ("SMALLINT", "INT", "BIGINT", "DATE", "TIMESTAMP", "BOOLEAN")
_UNKNOWN = object()


def _may_shadow(hot_keys: Any, segments: tuple[Any, ...], table: TableDef) -> bool:
    """Whether some hot version may be a newer version of a cold row
    (``hot_keys``: a list, or an int64 array for one integer key column)."""
    key = table.key_columns
    if not key:  # the key is the first version's seq
        newest = max(e.max_seq for e in segments)
        return any(k <= newest for k in hot_keys)
    if isinstance(hot_keys, np.ndarray):
        return bool(_int_keys_in_ranges(hot_keys, list(segments), key[0]).any())
    return len(_in_segment_ranges(hot_keys, list(segments), key)) > 0


def _int_keys_in_ranges(values: np.ndarray, segments: list[Any], first: Any) -> np.ndarray:
    """Which integer hot keys fall inside some segment's key min/max (all of
    them when a segment's bounds are unknown)."""
    bounds = []
    for e in segments:
        st = e.column_stats.get(str(first.id)) or {}
        lo, hi = st.get("min"), st.get("max")
        if type(lo) is not int or type(hi) is not int:  # unknown, or written as another type
            return np.ones(len(values), np.bool_)
        bounds.append((lo, hi))
    if not bounds or not len(values):
        return np.zeros(len(values), np.bool_)
    bounds.sort()
    los = np.asarray([lo for lo, _ in bounds], dtype=np.int64)
    reach = np.maximum.accumulate(np.asarray([hi for _, hi in bounds], dtype=np.int64))
    last = np.searchsorted(los, values, side="right") - 1
    return (last >= 0) & (values <= reach[np.maximum(last, 0)])


class KeyMatcher:
    """The live cold keys of a scope (integer keys), to count how many of
    them a set of hot keys hides: the hidden-row count ``count(*)`` subtracts.

    Binary search of 10,000 hot keys in 1M sorted keys costs ~1 ms a pass
    (cache misses); ids are usually dense, so a key set whose span is at most
    ``_BITMAP_SPAN`` times its size is held as a byte per value of the span
    instead (no more memory than the keys themselves), and a hot key is one
    lookup. A key twice among live cold rows (never, unless a flush broke
    its invariant) is counted as often as it occurs, like the plan's anti-join."""

    def __init__(self, sorted_keys: np.ndarray) -> None:
        self.lo = int(sorted_keys[0]) if len(sorted_keys) else 0
        span = int(sorted_keys[-1]) - self.lo + 1 if len(sorted_keys) else 0
        self.unique = not bool((sorted_keys[1:] == sorted_keys[:-1]).any())
        self.bitmap: np.ndarray | None = None
        self.sorted_keys: np.ndarray | None = sorted_keys
        if len(sorted_keys) and self.unique and span <= _BITMAP_SPAN * len(sorted_keys):
            self.bitmap = np.zeros(span, np.bool_)
            self.bitmap[sorted_keys - self.lo] = True
            self.sorted_keys = None

    def __repr__(self) -> str:
        kind = "bitmap" if self.bitmap is not None else "sorted"
        return f"<KeyMatcher {kind} from {self.lo}>"

    def matches(self, hot_keys: np.ndarray) -> int:
        """How many (hot key, live cold row) pairs share a key (hot keys distinct)."""
        if not len(hot_keys):
            return 0
        if self.bitmap is not None:
            # Compared before subtracting: a difference can overflow int64.
            inside = (hot_keys >= self.lo) & (hot_keys < self.lo + len(self.bitmap))
            return int(self.bitmap[hot_keys[inside] - self.lo].sum())
        keys = self.sorted_keys
        assert keys is not None
        if not len(keys):
            return 0
        probe = np.sort(hot_keys)
        left = np.searchsorted(keys, probe, side="left")
        if self.unique:
            return int((keys[np.minimum(left, len(keys) - 1)] == probe).sum())
        right = np.searchsorted(keys, probe, side="right")
        return int((right - left).sum())


_BITMAP_SPAN = 8


def _stat_extreme(fn: str, column: Any, segments: list[Any], stable_since: int) -> Any:
    """The min or max of ``column`` over ``segments`` from their statistics
    (``None``: no non-NULL value; ``_UNKNOWN``: the statistics cannot tell)."""
    found = None
    for e in segments:
        st = e.column_stats.get(str(column.id))
        if st is None or e.schema_version < stable_since:
            return _UNKNOWN  # written before the column existed, or in another type
        value = st.get(fn)
        if value is None:
            if st.get("null_count") != e.row_count:
                return _UNKNOWN
            continue
        if found is None or (value < found if fn == "min" else value > found):
            found = value
    return found


def _hot_extreme(fn: str, values: pa.ChunkedArray) -> Any:
    """The min or max of hot values in their stored form (dates and
    timestamps as integers, like the manifest's statistics)."""
    if pa.types.is_date32(values.type):
        values = values.cast(pa.int32())
    elif pa.types.is_timestamp(values.type):
        values = values.cast(pa.int64())
    return pc.min_max(values)[fn].as_py()


def _anti_join_on_small(small: Any, small_keys: list[str], big: Any, big_keys: list[str]) -> Any:
    """The rows of ``big`` whose key is not in ``small``, hashing ``small``
    (key columns are never NULL, so a NULL first key column means no match)."""
    names = big.schema().names
    joined = small.join(big, how="right", left_on=small_keys, right_on=big_keys)
    return joined.filter(col(small_keys[0]).is_null()).select(*[col(n) for n in names])


def _in_segment_ranges(hot_keys: Any, segments: list[Any], key: tuple[Any, ...]) -> Any:
    """The hot keys (a list, or an int64 array for one integer key column)
    that fall inside some segment's primary-key min/max (the first key
    column's, for a composite key); an int64 array for one integer key.

    Vectorised for integer keys (a binary search over the sorted ranges): a
    notebook that updated 1% of a million rows has 10,000 hot keys, and a
    key-by-key, range-by-range loop cost 26 ms a query (measured)."""
    first = key[0]
    bounds = []
    for e in segments:
        st = e.column_stats.get(str(first.id)) or {}
        lo, hi = st.get("min"), st.get("max")
        if lo is None or hi is None or first.type not in ("INT", "BIGINT", "SMALLINT", "TEXT"):
            return hot_keys  # unknown bounds (or an encoding we do not compare): keep all
        bounds.append((lo, hi))
    if not bounds or not len(hot_keys):
        return []
    bounds.sort()
    los = [lo for lo, _ in bounds]
    # reach[i]: the highest key any of the first i + 1 ranges (by low end) covers;
    # a key is in some range iff it is <= reach of the last range starting at or below it.
    reach = list(itertools.accumulate((hi for _, hi in bounds), max))
    firsts = hot_keys if len(key) == 1 else [k[0] for k in hot_keys]
    if first.type == "TEXT":
        out = []
        for k, f in zip(hot_keys, firsts, strict=True):
            at = bisect.bisect_right(los, f) - 1
            if at >= 0 and f <= reach[at]:
                out.append(k)
        return out
    if isinstance(firsts, np.ndarray):
        values = firsts.astype(np.int64, copy=False)
    else:
        values = np.fromiter(firsts, dtype=np.int64, count=len(firsts))
    last = np.searchsorted(np.asarray(los, dtype=np.int64), values, side="right") - 1
    inside = (last >= 0) & (values <= np.asarray(reach, dtype=np.int64)[np.maximum(last, 0)])
    if len(key) == 1:
        return values[inside]
    return [k for k, keep in zip(hot_keys, inside.tolist(), strict=True) if keep]


def build_arrow(table: TableDef, versions: list[RowVersion], *, hidden: bool) -> pa.Table:
    arrays = []
    for column in table.columns:
        cid, fill = column.id, column.fill
        arrays.append(pa.array([r[2].get(cid, fill) for r in versions], type=column.arrow_type))
    if hidden:
        arrays.append(pa.array([r[0] for r in versions], type=pa.int64()))
        arrays.append(pa.array([r[1] for r in versions], type=pa.bool_()))
    return pa.Table.from_arrays(arrays, schema=table.arrow_schema(hidden=hidden))
