"""A table's cold tier: its manifests (one per scope) and reading segments.

Versions across tiers are resolved without any window function:

* the hot tier only ever holds versions newer than everything flushed, so a
  cold row whose primary key has a hot version (live or tombstone) is hidden
  by an anti-join against the scope's hot keys;
* when a flush writes a newer version (or a tombstone) of a key that an older
  segment holds, the old version's ``_seq`` goes into the manifest's
  ``superseded_seqs`` (a delete marker kept in the manifest); readers
  anti-join segments against that set. Segments themselves never change.

Segments in the warm cache skip the anti-join: their hidden rows are masked
(``engine.providers.live_masks``; ``frame(..., live=...)``).
"""

from __future__ import annotations

import bisect
import functools
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq
from datafusion import DataFrame, SessionContext, col, lit
from datafusion import functions as dff
from datafusion.catalog import Table

from engine.catalog.model import TableDef
from engine.errors import ObjectStorageError, StorageCorruptionError
from engine.exec.cast import (
    cast_array,
    cast_expr,
    parquet_read_type,
    stored_values,
    type_chain,
    type_stable_since,
)
from engine.exec.frames import batches_frame
from engine.exec.segment_cache import SegmentCache, SegmentKey, reading_files_only
from engine.manifest import Manifest, find_manifest_json, manifest_path
from engine.manifest import hot as hot_copy
from engine.storage import fs
from engine.storage.cold import (
    SegmentEntry,
    SegmentVerifier,
    float_stats_untrusted,
    segment_path,
)
from engine.storage.fs import ColdPath, ObjectPath
from engine.storage.fs_cache import ObjectCache
from engine.storage.hot import HotStore
from engine.txn import Txn
from engine.types import arrow_type, coerce


@contextmanager
def reading_segment(path: ColdPath) -> Iterator[None]:
    """Any failure to read a segment file is damage that names the file (a
    failed request to an object store is not: it says so and names the key)."""
    try:
        yield
    except (StorageCorruptionError, ObjectStorageError):
        raise
    except Exception as exc:
        raise StorageCorruptionError(
            f"Segment file {path} is unreadable: {exc}", file=str(path)
        ) from None


def physical_name(column_id: int) -> str:
    return f"c{column_id}"


def physical_schema(table: TableDef) -> pa.Schema:
    fields = [pa.field(physical_name(c.id), c.arrow_type) for c in table.columns]
    return pa.schema([*fields, pa.field("_seq", pa.int64()), pa.field("_deleted", pa.bool_())])


@dataclass
class _KeyIndex:
    """A segment's primary keys (in file order, which is key order) and their
    seqs, for key lookups (cached). Numeric keys also as a numpy array for
    binary search. For a composite key ``keys`` is the first key column (the
    file is sorted by it first) and ``rest`` the others."""

    keys: pa.Array
    seqs: pa.Array
    sorted_keys: Any = None
    rest: tuple[pa.Array, ...] = ()

    def matches_rest(self, pos: int, rest: tuple[Any, ...], key: tuple[Any, ...]) -> bool:
        """Whether row ``pos`` has the composite key's other columns (stored forms)."""
        return all(
            _norm(arr[pos].as_py(), c.type) == v
            for arr, c, v in zip(self.rest, key[1:], rest, strict=True)
        )


@dataclass(frozen=True)
class RowMask:
    """Which rows of a cached segment are live (``live[i]``), for a scan that
    keeps them without an anti-join (``engine.providers.live_masks``);
    ``token`` identifies this mask's content for memoising. ``kept(start,
    batch)``: the batch of rows ``start...`` with its hidden rows dropped,
    or None to leave that to a filter in the plan."""

    token: int
    live: Any  # pa.BooleanArray, one value per row of the decoded segment
    kept: Callable[[list[pa.RecordBatch]], list[pa.RecordBatch | None]] | None = None
    landed: Callable[[], int] | None = None  # changes when ``kept`` has more to give


# A segment whose hidden rows cannot be matched in memory: anti-join it.
CANNOT_MASK = RowMask(-1, None)
# The boolean column a masked in-memory scan filters on (dropped after).
LIVE_COLUMN = "__live"


class LiveRows(Protocol):
    """What ``ColdTier.frame`` needs to hide cold rows that newer versions
    replace: a mask per cached segment, and the anti-join for the rest."""

    def mask(self, entry: SegmentEntry, data: pa.Table) -> RowMask | None: ...

    def exclude(self, frame: DataFrame) -> DataFrame: ...


# A decoded row group's identity: (table id, scope, segment id, checksum, row
# group), plus the key column's file name when only it and ``_seq`` are held.
# Never a file path: a table re-created under a dropped table's name writes
# files with the same names.
GroupKey = tuple[int, str, int, str, int] | tuple[int, str, int, str, int, str]


class GroupCache:
    """Decoded row groups of recently read segments, bounded by bytes (LRU).

    One per engine, shared by every table, so the bound holds engine-wide."""

    def __init__(self, limit_bytes: int = 64 << 20) -> None:
        self._limit = limit_bytes
        self._used = 0
        self._items: OrderedDict[GroupKey, pa.Table] = OrderedDict()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<GroupCache {len(self._items)} row group(s), {self._used} bytes>"

    def get(self, key: GroupKey) -> pa.Table | None:
        with self._lock:
            hit = self._items.get(key)
            if hit is not None:
                self._items.move_to_end(key)
            return hit

    def put(self, key: GroupKey, table: pa.Table) -> None:
        with self._lock:
            if key in self._items:
                return
            self._items[key] = table
            self._used += table.nbytes
            while self._used > self._limit and len(self._items) > 1:
                _, old = self._items.popitem(last=False)
                self._used -= old.nbytes

    def forget_table(self, table_id: int, scope: str | None = None) -> None:
        with self._lock:
            for key in [
                k for k in self._items if k[0] == table_id and (scope is None or k[1] == scope)
            ]:
                self._used -= self._items.pop(key).nbytes


_NUMERIC = ("SMALLINT", "INT", "BIGINT")
# Segments whose footers a table keeps (a footer is a few KB).
FRAGMENT_CACHE_SEGMENTS = 20_000
# Segment DataFrames a table keeps between queries (a plan each: small).
FRAME_CACHE_SEGMENTS = 256
# Cached segments are held (and handed to DataFusion) as batches of this
# many rows, each with buffers of its own (``_decode``), round robin over
# this many partitions (the shared context's target partitions). Batches of
# DataFusion's own 8192 rows cut from the 10k-row row groups of a segment
# cost more per row in every operator and, as slices sharing their row
# group's buffers, overstated each table's byte size to the join planner
# (1.8x for TPC-H orders), which compares byte sizes to pick a build side.
# Measured through the engine, warm TPC-H, CPU medians in one process,
# 32,768 vs 8,192 rows: SF 1 geomean 0.93x (every query 0.79-0.99x), SF 0.1
# 0.95x; 65,536 rows did less (0.94x / 0.97x; Q07 1.33x).
MEMORY_BATCH_ROWS = 32_768
MEMORY_PARTITIONS = 2
# Up to this many cached segments with hidden rows are scanned as one
# in-memory table each (see ``_live_frames``), more as one table.
MASKED_FRAMES = 32
# From this many surviving segments of one layout on, a scope is read by one
# dataset scan instead of one Parquet scan per segment (see ``frame``).
DATASET_SCAN_SEGMENTS = 16


def _may_hold(entry: SegmentEntry, pk: Any, lo: Any, hi: Any) -> bool:
    """Whether a segment's primary-key min/max admits keys in [lo, hi] (``pk``:
    the first key column, ``lo``/``hi`` its values)."""
    if pk.type not in _NUMERIC:
        return True
    st = entry.column_stats.get(str(pk.id)) or {}
    smin, smax = st.get("min"), st.get("max")
    return smin is None or smax is None or not (hi < smin or lo > smax)


_RANGE_TYPES = ("SMALLINT", "INT", "BIGINT", "TEXT")


class SegmentRanges:
    """The first key column's min/max of every segment of one manifest, sorted
    by the low end, so a key maps to the segments that may hold it by binary
    search instead of a test per segment (2,000 segments: ~2 ms of Python a
    lookup before). Built once per manifest (a flush or any commit replaces
    the manifest object, so a stale index is never consulted).

    A segment whose bounds are unknown, or were written while the key column
    had another type, is a candidate for every key."""

    def __init__(self, segments: tuple[SegmentEntry, ...], key: Any, stable_since: int) -> None:
        self.numeric = key.type in _NUMERIC
        self._count = len(segments)
        self._always: list[int] = []
        bounded: list[tuple[Any, Any, int]] = []
        for i, entry in enumerate(segments):
            st = entry.column_stats.get(str(key.id)) or {}
            lo, hi = st.get("min"), st.get("max")
            if (
                key.type not in _RANGE_TYPES
                or lo is None
                or hi is None
                or entry.schema_version < stable_since
            ):
                self._always.append(i)
            else:
                bounded.append((lo, hi, i))
        bounded.sort(key=lambda b: b[0])
        self._los: Any = [b[0] for b in bounded]
        self._his: Any = [b[1] for b in bounded]
        self._pos: Any = [b[2] for b in bounded]
        if self.numeric and bounded:
            self._los = np.asarray(self._los, dtype=np.int64)
            self._his = np.asarray(self._his, dtype=np.int64)
            self._pos = np.asarray(self._pos, dtype=np.int64)

    def candidates(self, first: Any) -> list[int]:
        """Positions (in the manifest) of the segments whose range admits
        ``first`` (a stored value of the first key column), newest first."""
        if self.numeric and len(self._los):
            if not isinstance(first, int) or not -(2**63) <= first < 2**63:
                return list(range(self._count - 1, -1, -1))  # not comparable: every segment
            upto = int(np.searchsorted(self._los, first, side="right"))
            found = self._pos[:upto][self._his[:upto] >= first].tolist()
        else:
            upto = bisect.bisect_right(self._los, first) if self._los else 0
            pairs = zip(self._pos[:upto], self._his[:upto], strict=True)
            found = [p for p, hi in pairs if hi >= first]
        return sorted(found + self._always, reverse=True)


class ColdTier:
    """Manifests of one table, by scope, mirrored from the hot store."""

    def __init__(
        self,
        table_id: int,
        store: HotStore,
        scope_dir: Any,  # Callable[[str], ColdPath]
        verifier: SegmentVerifier,
        groups: GroupCache | None = None,
        *,
        fragment_limit: int = FRAGMENT_CACHE_SEGMENTS,
        dataset_scan_segments: int = DATASET_SCAN_SEGMENTS,
        objects: ObjectCache | None = None,
        segments: SegmentCache | None = None,
    ) -> None:
        self.table_id = table_id
        self._store = store
        self._scope_dir = scope_dir
        self._verifier = verifier
        self._lock = threading.Lock()
        self.manifests: dict[str, Manifest] = {}
        self._bad: dict[str, StorageCorruptionError] = {}
        self._checked: set[str] = set()
        self._key_index: dict[tuple[str, int, str], _KeyIndex] = {}
        self._files: dict[tuple[str, int, str], pq.ParquetFile] = {}  # (scope, id, checksum)
        self._dirs: dict[str, ColdPath] = {}  # scope -> its directory (dropped on commits)
        # (scope, file name) -> the segment's path (dropped with _dirs): pathlib
        # joins cost ~10 us each, paid per segment by every query.
        self._paths: dict[tuple[str, str], ColdPath] = {}
        # scope -> (the manifest, schema version, its key ranges, its superseded seqs)
        self._ranges: dict[str, tuple[Manifest, int, SegmentRanges, frozenset[int]]] = {}
        # (scope, segment id, checksum, key column) -> row groups' key bounds
        self._bounds: dict[tuple[str, int, str, str], list[tuple[int, Any, Any]]] = {}
        # (scope, segment id, checksum) -> fragment with its footer read (LRU)
        self._fragments: OrderedDict[tuple[str, int, str], ds.Fragment] = OrderedDict()
        self._fragment_limit = fragment_limit
        # (scope, segment id, checksum, schema version) -> (context, DataFrame) (LRU)
        self._frames: OrderedDict[tuple[Any, ...], tuple[Any, DataFrame]] = OrderedDict()
        # (scope, segment id, checksum, schema version) -> (its path, its layout)
        self._layouts: dict[tuple[str, int, str, int], tuple[ColdPath, _Layout]] = {}
        self.dataset_scan_segments = dataset_scan_segments
        self._groups = groups if groups is not None else GroupCache()
        self._objects = objects  # local copies of segments kept in a bucket
        self._segments = segments  # the engine's warm cache of decoded segments
        # scopes whose hot copy is stored one key per segment (engine.manifest.hot)
        self.manifests, self._bad, self._layered = hot_copy.load(store, table_id)

    def __repr__(self) -> str:
        segs = sum(len(m.segments) for m in self.manifests.values())
        return (
            f"<ColdTier table {self.table_id}: {len(self.manifests)} scope(s), {segs} segment(s)>"
        )

    # ---- manifests
    def recover_scope(self, scope: str) -> None:
        """Startup rule: the hot copy is authoritative; only when it is missing
        is ``manifest.json`` loaded into it. A ``manifest.json`` of another
        table (left by a DROP that crashed before removing its directory) is a
        foreign leftover: never adopted, removed by this table's first flush."""
        if scope in self.manifests or scope in self._bad:
            return
        try:
            found = find_manifest_json(self.scope_dir(scope))
        except StorageCorruptionError as exc:
            self._bad[scope] = exc
            return
        if found is not None and found.table_id == self.table_id:
            batch_txn = Txn(self._store)
            hot_copy.stage(batch_txn.batch, self._store, self.table_id, scope, found, None)
            batch_txn.commit()
            self.manifests[scope] = found
            self._layered.add(scope)

    def manifest(self, scope: str) -> Manifest | None:
        """The scope's manifest; raises if its hot copy or ``manifest.json`` is damaged."""
        bad = self._bad.get(scope)
        if bad is not None:
            raise bad
        m = self.manifests.get(scope)
        if m is not None and scope not in self._checked:
            # First use in this process: the cold copy must at least be readable
            # and this table's (the hot copy exists, so a flush of ours wrote it).
            try:
                cold = find_manifest_json(self.scope_dir(scope))
                if cold is not None and cold.table_id != self.table_id:
                    path = manifest_path(self.scope_dir(scope))
                    raise StorageCorruptionError(
                        f"Manifest file {path} belongs to table id {cold.table_id}, "
                        f"not to this table (id {self.table_id})",
                        file=str(path),
                    )
            except StorageCorruptionError as exc:
                self._bad[scope] = exc
                raise
            self._checked.add(scope)
        return m

    def hot_manifest(self, scope: str) -> Manifest | None:
        """The hot copy alone (REPAIR uses it to rewrite a damaged manifest.json)."""
        return self.manifests.get(scope)

    def scopes(self) -> list[str]:
        return sorted(set(self.manifests) | set(self._bad))

    def scopes_on_disk(self) -> list[str]:
        """Scopes with a ``manifest.json`` under the table's directory. Only
        open-time recovery of lost hot copies looks (readers never list
        directories): a scope with no hot rows and no hot copy would otherwise
        read as empty."""
        from engine.errors import InvalidNameError
        from engine.names import check_user

        base = self.scope_dir("")
        found = [""] if (base / "manifest.json").is_file() else []
        if base.is_dir():
            for child in base.iterdir():
                if child.is_dir() and (child / "manifest.json").is_file():
                    try:
                        found.append(check_user(child.name))
                    except InvalidNameError:
                        continue  # not a scope of ours
        return found

    def drop_scope(self, txn: Txn, scope: str) -> None:
        hot_copy.delete(txn.batch, self._store, self.table_id, scope)

        def apply() -> None:
            self._layered.discard(scope)
            self.manifests.pop(scope, None)
            self._bad.pop(scope, None)
            self._checked.discard(scope)

        txn.after_commit(apply)
        txn.after_commit(lambda: self.forget_segments(scope))

    def scope_dir(self, scope: str) -> ColdPath:
        # Resolving and checking the path costs ~0.1 ms (two Path.resolve calls);
        # a point read needs it per row. A RENAME drops it with forget_all().
        found = self._dirs.get(scope)
        if found is None:
            found = self._dirs[scope] = self._scope_dir(scope)
        return found

    def stage_manifest(self, txn: Txn, scope: str, manifest: Manifest) -> None:
        # Only what changed since the stored copy (engine.manifest.hot): a
        # flush's commit does not grow with the number of segments.
        stored = self.manifests.get(scope) if scope in self._layered else None
        hot_copy.stage(txn.batch, self._store, self.table_id, scope, manifest, stored)

        def apply() -> None:
            self.manifests[scope] = manifest
            self._layered.add(scope)
            self._bad.pop(scope, None)
            self._checked.add(scope)

        txn.after_commit(apply)

    def drop(self, txn: Txn) -> None:
        hot_copy.delete_table(txn.batch, self._store, self.table_id, self.scopes())

    def watermark(self, scope: str) -> int:
        m = self.manifests.get(scope)
        return m.flushed_seq if m is not None else 0

    # ---- segments
    def segment_file(self, scope: str, entry: SegmentEntry) -> ColdPath:
        path = self._paths.get((scope, entry.path))
        if path is None:
            path = self._paths[(scope, entry.path)] = segment_path(self.scope_dir(scope), entry)
        return self._readable(path, entry)

    def _readable(self, path: ColdPath, entry: SegmentEntry) -> ColdPath:
        """The verified file to read a segment from: itself on local disk; for
        an object in a bucket its local copy (``engine.storage.fs_cache``)."""
        if isinstance(path, ObjectPath) and self._objects is not None:
            return self._objects.local_copy(path, entry, self._verifier)
        self._verifier.verify(path, entry)  # checksum on first open (invariant 5)
        return path

    def frame(
        self,
        ctx: SessionContext,
        table: TableDef,
        scope: str,
        entries: list[SegmentEntry],
        *,
        hidden: bool,
        stats: dict[str, int] | None = None,
        live: LiveRows | None = None,
    ) -> DataFrame | None:
        """The surviving segments of ``scope`` as one DataFrame in user column
        names (old segments read through the current schema).

        Segments are grouped by *layout* (which physical columns a segment
        has and the types they went through since): one group in the usual
        case, one more after each ADD COLUMN or MODIFY COLUMN that segments
        predate. A group of many segments is read by ONE dataset scan over
        its files; a group of a few by DataFusion's own Parquet reader, one
        file each: that reader is 4-8x faster per file (page index, batches
        that never cross into Python), while a union of many files costs
        more than linearly to plan (see bench/README.md).

        Segments in the engine's warm cache (``engine.exec.segment_cache``)
        are read from memory instead, one in-memory table per layout;
        ``stats["segments_cached"]`` counts them.

        ``live`` (None: every row as stored) hides the rows newer versions
        replace: cached segments through their masks (``_live_frames``), the
        others through ``live.exclude`` (the anti-join), applied once to all
        of them."""
        if not entries:
            return None
        directory = self.scope_dir(scope)  # resolved once, not per segment
        chains: dict[int, dict[int, tuple[str, ...]]] = {}  # per schema version
        groups: dict[_Layout, list[tuple[SegmentEntry, ColdPath]]] = {}
        # A bucket without a local cache is read through one pyarrow dataset
        # over its filesystem: DataFusion's own Parquet reader only knows
        # local paths.
        remote = isinstance(directory, ObjectPath) and self._objects is None
        for entry in entries:
            # Path and layout once per segment identity and schema version:
            # ~0.1 ms of Python a segment a query otherwise (2,000 segments).
            ident = (scope, entry.id, entry.checksum, table.schema_version)
            known = self._layouts.get(ident)
            if known is None:
                if entry.schema_version not in chains:
                    chains[entry.schema_version] = column_chains(table, entry.schema_version)
                known = (
                    segment_path(directory, entry),
                    _layout(table, entry, chains[entry.schema_version]),
                )
                with self._lock:
                    self._layouts[ident] = known
            # Checksum on first open (invariant 5); a bucket object's local copy.
            path = self._readable(known[0], entry)
            groups.setdefault(known[1], []).append((entry, path))
        frames = []
        # In-memory (warm) frames after the file scans: a UNION takes its first
        # input's types, so the files' Utf8View TEXT is not cast to Utf8.
        cached: list[DataFrame] = []
        done: list[DataFrame] = []  # rows ``live`` already hid (masked cached segments)
        warm = self._segments is not None and self._segments.enabled and not reading_files_only()
        for layout, members in groups.items():
            if warm:
                members, decoded, hits = self._from_memory(scope, members)
                if stats is not None:
                    stats["segments_cached"] = stats.get("segments_cached", 0) + hits
                if decoded and live is not None:
                    decoded = self._live_frames(table, scope, layout, decoded, entries, live, done)
                if decoded:
                    cached.append(self._memory_frame(table, scope, layout, decoded))
                if not members:
                    continue
            if remote or len(members) >= self.dataset_scan_segments:
                frames.append(self._dataset_frame(ctx, table, scope, layout, members))
            else:
                for entry, _ in members:
                    if entry.schema_version not in chains:
                        chains[entry.schema_version] = column_chains(table, entry.schema_version)
                frames += [
                    self._segment_frame(ctx, table, scope, e, p, chains, layout) for e, p in members
                ]
        frames += cached
        if frames and live is not None:
            rest = frames[0]
            for f in frames[1:]:
                rest = rest.union(f)
            frames = [live.exclude(rest)]
        frames += done
        out = frames[0]
        for f in frames[1:]:
            out = out.union(f)
        return out

    def _live_frames(
        self,
        table: TableDef,
        scope: str,
        layout: _Layout,
        decoded: list[tuple[SegmentKey, pa.Table]],
        entries: list[SegmentEntry],
        live: LiveRows,
        done: list[DataFrame],
    ) -> list[tuple[SegmentKey, pa.Table]]:
        """Hide replaced rows of cached segments by their masks: those with
        hidden rows become one in-memory table with a ``__live`` column and a
        filter on it, those with none hidden the memoised plain frame (both
        appended to ``done``); returned are the cached segments whose mask
        cannot be made (the anti-join hides their rows)."""
        by_id = {e.id: e for e in entries}
        plain: list[tuple[SegmentKey, pa.Table]] = []
        unmaskable: list[tuple[SegmentKey, pa.Table]] = []
        masked: list[tuple[SegmentKey, pa.Table, RowMask]] = []
        for key, data in decoded:
            found = live.mask(by_id[key[2]], data)
            if found is None:
                plain.append((key, data))
            elif found is CANNOT_MASK:
                unmaskable.append((key, data))
            else:
                masked.append((key, data, found))
        if plain:
            done.append(self._memory_frame(table, scope, layout, plain))
        if len(masked) <= MASKED_FRAMES:
            # One memoised table each: a write that touches one segment
            # rebuilds that one (a table of 1M rows costs ~8 ms to hand over).
            done += [self._masked_frame(table, layout, [m]) for m in masked]
        else:  # a union of many tables costs more to plan than it saves
            done.append(self._masked_frame(table, layout, masked))
        return unmaskable

    def _masked_frame(
        self,
        table: TableDef,
        layout: _Layout,
        masked: list[tuple[SegmentKey, pa.Table, RowMask]],
    ) -> DataFrame:
        """Cached segments with their masks as in-memory tables, memoised by
        the cache per set of masks: batches with no hidden row as they are,
        the others with their hidden rows dropped (``RowMask.kept``: once per
        batch and set of hidden rows, so a repeated query runs at the speed
        of a clean table), or, past the memory those copies may take, with a
        ``__live`` column and a filter on it (DataFusion then filters only the
        columns a query reads, at every query)."""
        assert self._segments is not None
        members = tuple(key for key, _, _ in masked)
        marks = tuple((m.token, m.landed() if m.landed is not None else 0) for _, _, m in masked)
        ident = ("live", members, marks, table.schema_version)

        def build() -> DataFrame:
            schema = _layout_schema(layout)
            with_live = schema.append(pa.field(LIVE_COLUMN, pa.bool_(), False))
            ready: list[pa.RecordBatch] = []  # live rows only
            pending: list[pa.RecordBatch] = []  # with their ``__live`` column
            for _, data, mask in masked:
                laid = _as_layout(data, schema).to_batches(max_chunksize=MEMORY_BATCH_ROWS)
                found = mask.kept(laid) if mask.kept is not None else [None] * len(laid)
                start = 0
                for b, got in zip(laid, found, strict=True):
                    if got is not None:
                        ready.append(got)
                    else:
                        live = mask.live.slice(start, b.num_rows)
                        pending.append(
                            pa.RecordBatch.from_arrays([*b.columns, live], schema=with_live)
                        )
                    start += b.num_rows
            frames = []
            for batches, filtered in ((ready, False), (pending, True)):
                if not batches:
                    continue
                parts = [batches[i::MEMORY_PARTITIONS] for i in range(MEMORY_PARTITIONS)]
                df = batches_frame(parts, with_live if filtered else schema)
                if filtered:
                    df = df.filter(col(LIVE_COLUMN))
                frames.append(_current_columns(df, table, layout, nan_guard=False))
            return frames[0] if len(frames) == 1 else frames[0].union(frames[1])

        return self._segments.frame(ident, members, build)

    def memory_budget(self) -> int:
        """The warm cache's budget in bytes (0: no cache)."""
        return self._segments.budget if self._segments is not None else 0

    def _from_memory(
        self, scope: str, members: list[tuple[SegmentEntry, ColdPath]]
    ) -> tuple[list[tuple[SegmentEntry, ColdPath]], list[tuple[SegmentKey, pa.Table]], int]:
        """Split ``members`` into those still to read from their files and
        those read from the warm cache (decoding the small segments it admits
        now, queueing the big ones); also how many were cache hits (in memory
        before this scan)."""
        assert self._segments is not None
        cache = self._segments
        rest: list[tuple[SegmentEntry, ColdPath]] = []
        decoded: list[tuple[SegmentKey, pa.Table]] = []
        hits = 0
        # Decoding in the scan is bounded per scan (many small segments: the rest wait).
        inline_left = cache.inline_bytes
        for entry, path in members:
            key = (self.table_id, scope, entry.id, entry.checksum)
            data = cache.get(key)
            if data is not None:
                hits += 1
                decoded.append((key, data))
                continue
            size = self._decoded_size(scope, entry, path)
            if cache.admit(key, size):
                if size > inline_left:
                    cache.decode_later(key, functools.partial(_decode, path))
                else:  # small: decoded now, read from memory at once
                    inline_left -= size
                    data = _decode(path)
                    if cache.put(key, data):
                        decoded.append((key, data))
                        continue
            rest.append((entry, path))  # this scan reads the file
        return rest, decoded, hits

    def _decoded_size(self, scope: str, entry: SegmentEntry, path: ColdPath) -> int:
        """About what a segment takes decoded: its row groups' uncompressed
        size, from the footer (read once per identity)."""
        meta = self._fragment(scope, entry, path).metadata
        return sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))

    def _memory_frame(
        self,
        table: TableDef,
        scope: str,
        layout: _Layout,
        decoded: list[tuple[SegmentKey, pa.Table]],
    ) -> DataFrame:
        """Cached segments of one layout as ONE in-memory table in the current
        schema (the same renaming select as a file scan), memoised by the
        cache until one of its segments is evicted."""
        assert self._segments is not None
        members = tuple(key for key, _ in decoded)
        ident = ("memory", members, table.schema_version)

        def build() -> DataFrame:
            schema = _layout_schema(layout)
            batches: list[pa.RecordBatch] = []
            for _, data in decoded:
                batches += _as_layout(data, schema).to_batches(max_chunksize=MEMORY_BATCH_ROWS)
            # Round robin over the partitions DataFusion runs in parallel.
            parts = [batches[i::MEMORY_PARTITIONS] for i in range(MEMORY_PARTITIONS)]
            df = batches_frame(parts, schema)
            return _current_columns(df, table, layout, nan_guard=False)

        return self._segments.frame(ident, members, build)

    def _dataset_frame(
        self,
        ctx: SessionContext,
        table: TableDef,
        scope: str,
        layout: _Layout,
        members: list[tuple[SegmentEntry, ColdPath]],
    ) -> DataFrame:
        """Segments of one layout as one dataset scan, built once per set of
        segments (by identity) and schema version, like ``_segment_frame``."""
        ident = (
            scope,
            tuple((e.id, e.checksum) for e, _ in members),
            table.schema_version,
        )
        with self._lock:  # (another query's put may be evicting meanwhile)
            hit = self._frames.get(ident)
            if hit is not None and hit[0] is ctx:
                self._frames.move_to_end(ident)
                return hit[1]
        fragments = [self._fragment(scope, entry, path) for entry, path in members]
        df = _layout_frame(ctx, table, layout, fragments)
        with self._lock:
            self._frames[ident] = (ctx, df)
            while len(self._frames) > FRAME_CACHE_SEGMENTS:
                self._frames.popitem(last=False)
        return df

    def _segment_frame(
        self,
        ctx: SessionContext,
        table: TableDef,
        scope: str,
        entry: SegmentEntry,
        path: ColdPath,
        chains: dict[int, dict[int, tuple[str, ...]]],
        layout: _Layout,
    ) -> DataFrame:
        """One segment's DataFrame, built once per context and schema version:
        a DataFrame is an immutable plan, and building it (``read_parquet``
        and the renaming select) cost ~1 ms a table a query, 5-8 ms for a
        TPC-H join. Keyed by identity (scope, segment id, checksum, schema
        version), never by path; commits drop it with the other caches."""
        ident = (scope, entry.id, entry.checksum, table.schema_version)
        with self._lock:  # (another query's put may be evicting meanwhile)
            hit = self._frames.get(ident)
            if hit is not None and hit[0] is ctx:
                self._frames.move_to_end(ident)
                return hit[1]
        with reading_segment(path):
            untrusted = float_stats_untrusted(path, entry)
        if untrusted:
            # Parquet float min/max that omit the segment's NaNs (written
            # before float columns lost their file statistics): DataFusion's
            # reader would prune on them, with the file statistics the shared
            # context collects. The dataset scan never sees a float predicate.
            df = _layout_frame(ctx, table, layout, [self._fragment(scope, entry, path)])
        else:
            df = _segment_frame(ctx, table, entry, path, chains[entry.schema_version])
        with self._lock:
            self._frames[ident] = (ctx, df)
            while len(self._frames) > FRAME_CACHE_SEGMENTS:
                self._frames.popitem(last=False)
        return df

    def _fragment(self, scope: str, entry: SegmentEntry, path: ColdPath) -> ds.Fragment:
        """The segment as a pyarrow fragment whose footer is read once and
        kept (the Parquet metadata cache), keyed by identity, never by path."""
        ident = (scope, entry.id, entry.checksum)
        hit = self._fragments.get(ident)
        if hit is not None:
            self._fragments.move_to_end(ident)
            return hit
        with reading_segment(path):
            filesystem, where = fs.filesystem_of(path)
            frag = _PARQUET.make_fragment(where, filesystem)
            frag.ensure_complete_metadata()
        with self._lock:
            self._fragments[ident] = frag
            while len(self._fragments) > self._fragment_limit:
                self._fragments.popitem(last=False)
        return frag

    # ---- key lookups (primary-key checks, flush supersession)
    def key_index(self, scope: str, entry: SegmentEntry, pk_column: int, *more: int) -> _KeyIndex:
        """The key index of a segment: ``pk_column`` (the first key column) and
        ``more`` (the other columns of a composite key)."""
        cache_key = (scope, entry.id, entry.checksum)
        hit = self._key_index.get(cache_key)
        if hit is not None:
            return hit
        path = self.segment_file(scope, entry)
        names = [entry.file_column(c) for c in (pk_column, *more)]
        with reading_segment(path):
            data = fs.read_parquet(path, columns=[*names, "_seq"])
        keys_arr = data.column(0).combine_chunks()
        idx = _KeyIndex(
            keys_arr,
            data.column("_seq").combine_chunks(),
            rest=tuple(data.column(n).combine_chunks() for n in names[1:]),
        )
        if pa.types.is_integer(keys_arr.type) and keys_arr.null_count == 0:
            idx.sorted_keys = keys_arr.to_numpy()
        with self._lock:
            self._key_index[cache_key] = idx
        return idx

    def live_versions(self, scope: str, table: TableDef, pks: Iterable[Any]) -> dict[Any, int]:
        """{pk: seq} of the live cold versions of ``pks`` in ``scope``."""
        wanted = list(pks)
        if len(wanted) == 1:  # the common case (point DML, INSERT of one row): binary search
            hit = self.locate(scope, table, wanted[0])
            return {} if hit is None else {wanted[0]: hit[2]}
        manifest = self.manifest(scope)
        key = table.key_columns
        if manifest is None or not manifest.segments or not key or not wanted:
            return {}
        if len(key) > 1:
            return self._live_composite(scope, manifest, key, wanted)
        pk = key[0]
        superseded = set(manifest.superseded_seqs)
        found: dict[Any, int] = {}
        lo, hi = min(wanted), max(wanted)
        probe = pa.array(wanted, type=pk.arrow_type)
        for entry in manifest.segments:
            if not _may_hold(entry, pk, lo, hi):
                continue
            idx = self.key_index(scope, entry, pk.id)
            mask = pc.is_in(idx.keys, value_set=probe)
            if not pc.any(mask).as_py():
                continue
            hits_k = pc.filter(idx.keys, mask).to_pylist()
            hits_s = pc.filter(idx.seqs, mask).to_pylist()
            for k, s in zip(hits_k, hits_s, strict=True):
                if s not in superseded and s > found.get(_norm(k, pk.type), -1):
                    found[_norm(k, pk.type)] = s
        return found

    def _live_composite(
        self, scope: str, manifest: Manifest, key: tuple[Any, ...], wanted: list[Any]
    ) -> dict[Any, int]:
        """``live_versions`` for a composite key: candidates by the first key
        column (vectorised), then the whole key compared per candidate."""
        superseded = set(manifest.superseded_seqs)
        wanted_set = set(wanted)
        firsts = [k[0] for k in wanted]
        lo, hi = min(firsts), max(firsts)
        probe = pa.array(sorted(set(firsts)), type=key[0].arrow_type)
        found: dict[Any, int] = {}
        for entry in manifest.segments:
            if not _may_hold(entry, key[0], lo, hi):
                continue
            idx = self.key_index(scope, entry, *(c.id for c in key))
            mask = pc.is_in(idx.keys, value_set=probe)
            if not pc.any(mask).as_py():
                continue
            parts = [
                [_norm(v, c.type) for v in pc.filter(arr, mask).to_pylist()]
                for arr, c in zip((idx.keys, *idx.rest), key, strict=True)
            ]
            seqs = pc.filter(idx.seqs, mask).to_pylist()
            for k, s in zip(zip(*parts, strict=True), seqs, strict=True):
                if k in wanted_set and s not in superseded and s > found.get(k, -1):
                    found[k] = s
        return found

    def key_ranges(
        self, scope: str, manifest: Manifest, table: TableDef
    ) -> tuple[SegmentRanges, frozenset[int]]:
        """The manifest's segment key ranges and superseded seqs, built once
        per manifest object and schema version."""
        hit = self._ranges.get(scope)
        if hit is not None and hit[0] is manifest and hit[1] == table.schema_version:
            return hit[2], hit[3]
        first = table.key_columns[0]
        ranges = SegmentRanges(manifest.segments, first, type_stable_since(table, first.id))
        superseded = frozenset(manifest.superseded_seqs)
        with self._lock:
            self._ranges[scope] = (manifest, table.schema_version, ranges, superseded)
        return ranges, superseded

    def locate(self, scope: str, table: TableDef, key: Any) -> tuple[SegmentEntry, int, int] | None:
        """(segment, row position, seq) of ``key``'s live cold version, if any."""
        manifest = self.manifest(scope)
        columns = table.key_columns
        if manifest is None or not manifest.segments or not columns:
            return None
        pk = columns[0]
        # A composite key is looked up by its first column, then checked whole.
        first, rest = (key[0], tuple(key[1:])) if len(columns) > 1 else (key, ())
        ranges, superseded = self.key_ranges(scope, manifest, table)
        for at in ranges.candidates(first):  # newest first
            entry = manifest.segments[at]
            if pk.type in _NUMERIC and isinstance(first, int):
                hits = self._positions_by_row_group(scope, entry, columns, first)
            else:
                hits = self._positions_by_key_index(scope, entry, columns, first)
            for pos, seq in hits:
                if seq in superseded:
                    continue
                if rest and not self._row_has_rest(scope, entry, columns, pos, rest):
                    continue
                return entry, pos, seq
        return None

    def _positions_by_key_index(
        self, scope: str, entry: SegmentEntry, columns: tuple[Any, ...], first: Any
    ) -> list[tuple[int, int]]:
        """(row position, seq) of the rows whose first key column is ``first``,
        from the segment's whole key index."""
        pk = columns[0]
        idx = self.key_index(scope, entry, *(c.id for c in columns))
        mask = pc.equal(idx.keys, pa.scalar(first, type=pk.arrow_type))
        return [(p, idx.seqs[p].as_py()) for p in pc.indices_nonzero(mask).to_pylist()]

    def _positions_by_row_group(
        self, scope: str, entry: SegmentEntry, columns: tuple[Any, ...], first: int
    ) -> list[tuple[int, int]]:
        """The same for an integer key, reading only the row groups whose
        Parquet statistics admit ``first`` (32k rows each by default), reading
        their key column and ``_seq`` only (the row itself is read whole
        later, by ``_read_row``): one footer and one row group per lookup,
        never the whole key column."""
        pf, path = self._parquet_file(scope, entry)
        name = entry.file_column(columns[0].id)
        out: list[tuple[int, int]] = []
        for rg, (start, lo, hi) in enumerate(self._group_bounds(scope, entry, pf, name)):
            if lo is not None and not lo <= first <= hi:
                continue
            group = self._key_group(scope, entry, pf, path, rg, name)
            keys_arr = group.column(name).combine_chunks()
            if keys_arr.null_count == 0 and pa.types.is_integer(keys_arr.type):
                # Segments are written in key order: a binary search.
                values = keys_arr.to_numpy()
                left = int(values.searchsorted(first, side="left"))
                right = int(values.searchsorted(first, side="right"))
                found = range(left, right)
            else:
                mask = pc.equal(keys_arr, pa.scalar(first, type=keys_arr.type))
                found = pc.indices_nonzero(mask).to_pylist()
            seqs = group.column("_seq")
            out += [(start + p, seqs[p].as_py()) for p in found]
        return out

    def _group_bounds(
        self, scope: str, entry: SegmentEntry, pf: pq.ParquetFile, name: str
    ) -> list[tuple[int, Any, Any]]:
        """[(first row, key min, key max)] of each row group of a segment, from
        its footer (min/max None: no integer statistics). Kept per segment
        identity: walking pyarrow's footer objects costs ~0.1 ms a lookup."""
        ident = (scope, entry.id, entry.checksum, name)
        hit = self._bounds.get(ident)
        if hit is not None:
            return hit
        meta = pf.metadata
        names = meta.schema.names
        at = names.index(name) if name in names else None
        out: list[tuple[int, Any, Any]] = []
        start = 0
        for rg in range(meta.num_row_groups):
            group = meta.row_group(rg)
            stats = group.column(at).statistics if at is not None else None
            if stats is not None and stats.has_min_max and isinstance(stats.min, int):
                out.append((start, stats.min, stats.max))
            else:
                out.append((start, None, None))
            start += group.num_rows
        with self._lock:
            self._bounds[ident] = out
        return out

    def _row_has_rest(
        self,
        scope: str,
        entry: SegmentEntry,
        columns: tuple[Any, ...],
        pos: int,
        rest: tuple[Any, ...],
    ) -> bool:
        """Whether row ``pos`` has a composite key's other columns (stored forms)."""
        row = self._read_row(scope, entry, pos)
        return all(
            _norm(row.get(entry.file_column(c.id)), c.type) == v
            for c, v in zip(columns[1:], rest, strict=True)
        )

    def read_row_values(
        self, scope: str, table: TableDef, entry: SegmentEntry, pos: int
    ) -> dict[int, Any]:
        """The stored values ({column id: value}) of row ``pos`` of a segment,
        read through the current schema."""
        return self._values_now(table, entry, self._read_row(scope, entry, pos))

    def _parquet_file(self, scope: str, entry: SegmentEntry) -> tuple[pq.ParquetFile, ColdPath]:
        """The segment opened (footer parsed) once, keyed by identity."""
        path = self.segment_file(scope, entry)
        ident = (scope, entry.id, entry.checksum)
        pf = self._files.get(ident)
        if pf is None:
            with reading_segment(path):
                pf = fs.parquet_file(path)
            with self._lock:
                self._files[ident] = pf
        return pf, path

    def _row_group(
        self, scope: str, entry: SegmentEntry, pf: pq.ParquetFile, path: ColdPath, rg: int
    ) -> pa.Table:
        key = (self.table_id, scope, entry.id, entry.checksum, rg)
        group = self._groups.get(key)
        if group is None:
            with reading_segment(path):
                # One small read: the calling thread is faster than a pool
                # hand-off (and steadier on a loaded machine).
                group = pf.read_row_group(rg, use_threads=False)
            self._groups.put(key, group)
        return group

    def _key_group(
        self,
        scope: str,
        entry: SegmentEntry,
        pf: pq.ParquetFile,
        path: ColdPath,
        rg: int,
        name: str,
    ) -> pa.Table:
        """A row group's key column and ``_seq``: the whole group when it is
        already decoded, else just those two columns (a 32k-row group of a
        16-column table: 0.3 ms against 8.6 ms whole), so probing a segment
        whose statistics admit a key it does not hold stays cheap."""
        whole = self._groups.get((self.table_id, scope, entry.id, entry.checksum, rg))
        if whole is not None:
            return whole
        key = (self.table_id, scope, entry.id, entry.checksum, rg, name)
        group = self._groups.get(key)
        if group is None:
            with reading_segment(path):
                group = pf.read_row_group(rg, columns=[name, "_seq"], use_threads=False)
            self._groups.put(key, group)
        return group

    def _read_row(self, scope: str, entry: SegmentEntry, pos: int) -> dict[str, Any]:
        """One row of a segment, through a small cache of decoded row groups."""
        pf, path = self._parquet_file(scope, entry)
        bounds = self._group_bounds(scope, entry, pf, "_seq")
        for rg in range(len(bounds) - 1, -1, -1):
            start = bounds[rg][0]
            if start <= pos:
                group = self._row_group(scope, entry, pf, path, rg)
                if pos - start < group.num_rows:
                    return group.slice(pos - start, 1).to_pylist()[0]
                break
        raise StorageCorruptionError(
            f"Segment file {path} has fewer rows than its key index", file=str(path)
        )

    def _values_now(
        self, table: TableDef, entry: SegmentEntry, data: dict[str, Any]
    ) -> dict[int, Any]:
        """A segment row's values in the current schema: the casts ``frame``
        applies (``engine.exec.cast``), one row at a time."""
        chains = column_chains(table, entry.schema_version)
        values: dict[int, Any] = {}
        for c in table.columns:
            name = entry.file_column(c.id)
            chain = chains.get(c.id, ())
            if name not in data or not chain:
                values[c.id] = c.fill
                continue
            raw = data[name]
            if raw is None:
                values[c.id] = None
            elif len(chain) > 1:  # already the stored form of the current type
                arr = cast_array(pa.array([raw], type=arrow_type(chain[0])), chain)
                values[c.id] = stored_values(arr, c.type)[0]
            else:
                values[c.id] = coerce(raw, c.type, c.name)
        return values

    def forget_segments(self, scope: str) -> None:
        """Drop cached decodings of one scope's segments (REPAIR rewrote them)."""
        with self._lock:
            for k in [k for k in self._key_index if k[0] == scope]:
                del self._key_index[k]
            for f in [f for f in self._files if f[0] == scope]:
                del self._files[f]
            for f in [f for f in self._fragments if f[0] == scope]:
                del self._fragments[f]
            self._ranges.pop(scope, None)
            for fk in [fk for fk in self._frames if fk[0] == scope]:
                del self._frames[fk]
            for lk in [lk for lk in self._layouts if lk[0] == scope]:
                del self._layouts[lk]
            for b in [b for b in self._bounds if b[0] == scope]:
                del self._bounds[b]
            others = [
                (s, e.id, e.checksum)
                for s, m in self.manifests.items()
                if s != scope
                for e in m.segments
            ]
        self._groups.forget_table(self.table_id, scope)
        if self._segments is not None:
            self._segments.forget(self.table_id, keep=others)

    def forget_all(self) -> None:
        """Drop every cached decoding of this table (after a metadata commit),
        and the warm-cache entries of segments its manifests no longer name
        (compacted away, or of a dropped scope). Segments still named stay
        warm: they are immutable, and an ALTER only changes how they are read."""
        if self._segments is not None:
            with self._lock:
                live = [
                    (scope, e.id, e.checksum)
                    for scope, m in self.manifests.items()
                    for e in m.segments
                ]
            self._segments.forget(self.table_id, keep=live)
        with self._lock:
            self._key_index.clear()
            self._files.clear()
            self._fragments.clear()
            self._dirs.clear()
            self._paths.clear()
            self._ranges.clear()
            self._frames.clear()
            self._layouts.clear()
            self._bounds.clear()
        self._groups.forget_table(self.table_id)


def _decode(path: ColdPath) -> pa.Table:
    """A whole segment decoded (every column as written), for the warm cache,
    in batches of ``MEMORY_BATCH_ROWS`` rows. One thread: the decoding runs
    beside queries and must leave them a core."""
    with reading_segment(path):
        data = fs.read_parquet(path, use_threads=False)
    return compact_batches(data, MEMORY_BATCH_ROWS)


def compact_batches(data: pa.Table, rows: int) -> pa.Table:
    """``data`` re-cut into batches of ``rows`` rows (the last one shorter),
    each with buffers of its own: a slice of a longer array keeps its whole
    buffers alive and DataFusion counts them all in the table's byte size
    (its join planner compares byte sizes). One copy of the data; the
    decoded row groups it came from are freed with ``data``."""
    if data.num_rows == 0:
        return data
    batches = [
        pa.RecordBatch.from_arrays(
            [pa.concat_arrays(column.chunks) for column in part.columns], schema=data.schema
        )
        for part in (data.slice(start, rows) for start in range(0, data.num_rows, rows))
    ]
    return pa.Table.from_batches(batches, schema=data.schema)


def _norm(value: Any, type_name: str) -> Any:
    """Arrow scalars come back as Python values; keep them comparable with
    stored keys (timestamps / dates are stored as ints)."""
    from engine.types import coerce

    return coerce(value, type_name, "")


def _fill_literal(column: Any) -> Any:
    """What a segment written before ``column`` existed reads for it."""
    return lit(pa.scalar(column.fill, type=column.arrow_type))


def column_chains(table: TableDef, version: int) -> dict[int, tuple[str, ...]]:
    """{column id: the types it went through since schema ``version``} for the
    current columns that existed then."""
    out = {}
    for c in table.columns:
        chain = type_chain(table, c.id, version)
        if chain:
            out[c.id] = chain
    return out


# A value for a NOT NULL column's NULLs in a segment (a superseded version's,
# or one a type change could not convert): such rows are never live, so the
# value is never seen; it only lets the frame keep the column NOT NULL.
_NEVER_SEEN = {
    "BOOLEAN": False,
    "TEXT": "",
    "BYTES": b"",
    "TIMESTAMP": 0,
    "DATE": 0,
}


# Which physical columns a segment has, each with its name in the file, the
# types it went through since the segment was written and whether it is
# declared NOT NULL there.
_Layout = tuple[tuple[int, str, tuple[str, ...], bool], ...]
_PARQUET = ds.ParquetFileFormat()
_FLOAT_TYPES = ("FLOAT", "DOUBLE")


def _layout(table: TableDef, entry: SegmentEntry, chains: dict[int, tuple[str, ...]]) -> _Layout:
    stats = entry.column_stats
    out = []
    nullable = {c.id: c.nullable for c in table.columns}
    for cid, chain in sorted(chains.items()):
        if str(cid) not in stats:
            continue  # ADD COLUMN since this segment was written
        # Declared NOT NULL only where the segment has no NULL (DataFusion checks).
        not_null = not nullable[cid] and stats[str(cid)]["null_count"] == 0
        out.append((cid, entry.file_column(cid), chain, not_null))
    return tuple(out)


def _layout_frame(
    ctx: SessionContext, table: TableDef, layout: _Layout, fragments: list[ds.Fragment]
) -> DataFrame:
    """Segments of one layout as one dataset scan in the current schema: user
    column names, types cast as hot rows were at each MODIFY COLUMN, NOT NULL
    kept in the schema."""
    schema = _layout_schema(layout)
    # Each fragment reads through its own filesystem (local or a bucket's).
    dataset = ds.FileSystemDataset(fragments, schema, _PARQUET, fragments[0].filesystem)
    return _current_columns(ctx.read_table(Table(dataset)), table, layout, nan_guard=True)


def _layout_schema(layout: _Layout) -> pa.Schema:
    """The physical schema segments of one layout are read with."""
    fields = [
        pa.field(name, arrow_type(chain[0]), nullable=not not_null)
        for _, name, chain, not_null in layout
    ]
    return pa.schema(
        [*fields, pa.field("_seq", pa.int64(), False), pa.field("_deleted", pa.bool_(), False)]
    )


def _as_layout(data: pa.Table, schema: pa.Schema) -> pa.Table:
    """A decoded segment (every column it was written with) as ``schema``:
    only the layout's columns, each with the declared type and nullability
    (no copy unless a type differs)."""
    columns = []
    for field in schema:
        column = data.column(field.name)
        if column.type != field.type:
            column = column.cast(field.type)
        columns.append(column)
    return pa.Table.from_arrays(columns, schema=schema)


def _current_columns(
    df: DataFrame, table: TableDef, layout: _Layout, *, nan_guard: bool
) -> DataFrame:
    """A scan of segments of one layout in the current schema: user column
    names, types cast as hot rows were at each MODIFY COLUMN, NOT NULL kept.
    ``nan_guard``: the scan is a pyarrow dataset, which must never get a
    float predicate (see below)."""
    declared = {cid: (name, chain, not_null) for cid, name, chain, not_null in layout}
    exprs = []
    for c in table.columns:
        if c.id not in declared:  # ADD COLUMN since these segments were written
            exprs.append(_fill_literal(c).alias(c.name))
            continue
        name, chain, not_null = declared[c.id]
        e = col(name)
        floats = nan_guard and chain[0] in _FLOAT_TYPES
        if floats:
            # pyarrow evaluates the filters DataFusion pushes into a dataset
            # scan itself, and orders NaN unlike DataFusion (and prunes row
            # groups on footers whose float min/max omit NaN). nanvl(x, x) is
            # x, but DataFusion cannot push a filter through it, so float
            # predicates are always DataFusion's.
            e = dff.nanvl(e, e)  # (DataFusion declares its result nullable)
        e = cast_expr(e, chain)
        if not c.nullable and (not not_null or len(chain) > 1 or floats):
            e = dff.coalesce(e, lit(pa.scalar(_NEVER_SEEN.get(c.type, 0), type=c.arrow_type)))
        exprs.append(e.alias(c.name))
    exprs.append(col("_seq"))
    exprs.append(col("_deleted"))
    return df.select(*exprs)


def _segment_frame(
    ctx: SessionContext,
    table: TableDef,
    entry: SegmentEntry,
    path: ColdPath,
    chains: dict[int, tuple[str, ...]],
) -> DataFrame:
    """One segment in the current schema: user column names, types cast as
    hot rows were at each MODIFY COLUMN, NOT NULL kept in the schema."""
    stats = entry.column_stats
    fields = []
    present = []
    for cid, chain in sorted(chains.items()):
        if str(cid) not in stats:
            continue
        present.append(cid)
        column = next(c for c in table.columns if c.id == cid)
        # Declared NOT NULL only where the segment has no NULL (DataFusion checks).
        not_null = not column.nullable and stats[str(cid)]["null_count"] == 0
        fields.append(
            pa.field(entry.file_column(cid), parquet_read_type(chain[0]), nullable=not not_null)
        )
    schema = pa.schema(
        [*fields, pa.field("_seq", pa.int64(), False), pa.field("_deleted", pa.bool_(), False)]
    )
    with reading_segment(path):
        df = ctx.read_parquet(str(path), schema=schema)
    # By column id: a file name alone could be another column's (a column
    # named ``c7`` in a file predating column 7).
    declared = {cid: f.nullable for cid, f in zip(present, fields, strict=True)}
    exprs = []
    for c in table.columns:
        if c.id not in declared:  # ADD COLUMN since this segment was written
            exprs.append(_fill_literal(c).alias(c.name))
            continue
        name = entry.file_column(c.id)
        chain = chains[c.id]
        e = cast_expr(col(name), chain)
        if not c.nullable and (declared[c.id] or len(chain) > 1):
            e = dff.coalesce(e, lit(pa.scalar(_NEVER_SEEN.get(c.type, 0), type=c.arrow_type)))
        exprs.append(e.alias(c.name))
    exprs.append(col("_seq"))
    exprs.append(col("_deleted"))
    return df.select(*exprs)
