"""Flush: move a table's hot versions into Parquet segments, scope by scope.

Steps for one scope, and why a crash at any of them loses and duplicates
nothing (invariant 4):

1. Under the engine lock, snapshot the scope's hot versions; the highest
   ``_seq`` among them becomes the new flush watermark.
2. Write the live versions as one segment (temp file, fsync, rename). A crash
   here leaves an orphan file no manifest names: ignored, later removed.
3. Commit the cold manifest copy: one fsync'd line appended to
   ``manifest.jsonl`` (or, now and then, a new ``manifest.json`` checkpoint;
   see ``engine.manifest.files``; a torn line is not committed). A crash here
   leaves the hot manifest copy (authoritative) unchanged, so the new segment
   is still an orphan; if no hot copy existed yet, startup loads the cold copy
   and drops hot versions at or below its watermark, which the segment
   already holds.
4. Under the lock, one batch stores the new hot manifest copy (its header and
   the new segments' keys only, ``engine.manifest.hot``) and removes the
   first chunk of flushed hot rows; later chunks follow in their own batches.
   Startup drops any hot version at or below the watermark, so a crash
   between chunks is harmless.

5. After every scope is flushed, each scope's Delta log is brought in line
   with its manifest (``engine.delta.publish``; crash-safe on its own: the
   manifest is the truth and open-time recovery derives a missing commit).

Tombstones are not written to segments: a delete (or update) of a key held by
an older segment records that version's ``_seq`` in the manifest's
``superseded_seqs``, which readers anti-join away.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from weakref import WeakKeyDictionary

import pyarrow as pa

from engine.catalog.model import TableDef
from engine.delta.publish import publish_scope
from engine.errors import FlushAbandonedError, InvalidOptionError, KalamError
from engine.jobs.rewrite import SEGMENT_ROWS, logical_names
from engine.manifest import Manifest, commit_manifest_json, find_orphans
from engine.providers.base import RowVersion, TableProvider
from engine.providers.cold_tier import physical_name
from engine.storage import keys
from engine.storage.cold import SegmentEntry, segment_options, write_segment

if TYPE_CHECKING:
    from engine.core import Database

Progress = Callable[[int, int], None]  # (rows done, rows total)
CrashHook = Callable[[str], None]  # called with a step name; tests kill the process there

DELETE_CHUNK = 50_000


@dataclass
class FlushReport:
    table: str
    rows: int = 0
    segments: int = 0
    scopes: int = 0
    superseded: int = 0

    @property
    def message(self) -> str:
        if not self.rows and not self.superseded:
            return f"Nothing to flush in {self.table}"
        return f"Flushed {self.rows:,} row(s) of {self.table} into {self.segments:,} segment(s)" + (
            f" across {self.scopes} scope(s)" if self.scopes > 1 else ""
        )


def pending_rows(prov: TableProvider) -> int:
    return sum(len(p.rows) for p in prov.partitions.values())


def check_flushable(table: TableDef) -> None:
    if table.table_type == "STREAM":
        raise InvalidOptionError(
            f"Cannot flush {table.qualified_name}: STREAM tables keep rows hot until their TTL "
            "expires and are never flushed"
        )


def flush_table(
    engine: Database,
    table: TableDef,
    *,
    progress: Progress | None = None,
    crash: CrashHook | None = None,
) -> FlushReport:
    check_flushable(table)
    report = FlushReport(table.qualified_name)
    # The table's commit lock, from the snapshot of hot rows to the last removal
    # (engine.core.commit, rule 1): no ALTER, RENAME, DROP or REPAIR commits in
    # between, and no second flush of the table snapshots the same hot rows or
    # mistakes this flush's unpublished files for orphans.
    with engine.table_locks.get(table.table_id):
        current = engine.catalog.table_by_id(table.table_id)
        if current is None:
            return report  # dropped before this flush ran
        prov = engine.provider(current)
        total = pending_rows(prov)
        done = 0
        try:
            for scope in sorted(prov.partitions):
                remove_scope_orphans(engine, prov, scope)
                done += len(prov.partitions[scope].rows)
                rows, segs, sup = _flush_scope(engine, prov, scope, crash or _no_crash)
                if rows or sup:
                    report.scopes += 1
                report.rows += rows
                report.segments += segs
                report.superseded += sup
                if progress is not None:
                    progress(min(done, total), total)
            # Each scope's Delta log follows its manifest (also scopes with nothing
            # hot: an ALTER since the last flush changes what a Delta reader sees).
            flushed = set(prov.partitions)
            for scope in prov.cold.scopes():
                try:
                    publish_scope(
                        engine, prov, current, scope, operation="WRITE", crash=crash or _no_crash
                    )
                except KalamError:
                    orphans_possible(prov, scope)
                    if scope in flushed:
                        raise
                    # a damaged scope this flush did not touch: REPAIR TABLE's business
        except BaseException:
            orphans_possible(prov)  # a failed step may have left files behind
            raise
    return report


# Scopes (per cold tier) whose directory was swept for orphans in this
# process. Orphans come from a crash (so from an earlier process) or from a
# failed flush, compaction or publish here, which marks its scope to be swept
# again (``orphans_possible``); listing the directory on every flush would
# cost O(segments) each time.
_swept: WeakKeyDictionary[Any, set[str]] = WeakKeyDictionary()


def orphans_possible(prov: TableProvider, scope: str | None = None) -> None:
    """The next flush or compaction of ``scope`` (default: every scope) sweeps again."""
    if scope is None:
        _swept.pop(prov.cold, None)
    else:
        _swept.get(prov.cold, set()).discard(scope)


def remove_scope_orphans(engine: Database, prov: TableProvider, scope: str) -> None:
    """Temp and unpublished segment files left by a crashed flush or compaction
    of this scope (not the files a compaction retired that a query still reads).
    Once per scope and process, again after a failure (``orphans_possible``)."""
    swept = _swept.setdefault(prov.cold, set())
    if scope in swept:
        return
    try:
        manifest = prov.cold.manifest(scope)
    except KalamError:
        return  # damaged: leave every file alone for REPAIR TABLE
    retired = engine.readers.retired()
    for orphan in find_orphans(prov.cold.scope_dir(scope), manifest):
        if orphan not in retired:
            orphan.unlink(missing_ok=True)
    swept.add(scope)


def _no_crash(step: str) -> None:
    return None


def _flush_scope(
    engine: Database, prov: TableProvider, scope: str, crash: CrashHook
) -> tuple[int, int, int]:
    with engine.lock:
        part = prov.partitions.get(scope)
        if part is None or not len(part.rows):
            return 0, 0, 0
        table = prov.table
        # Columnar: every key with its seq, and the live versions as one
        # physical Arrow table (no Python tuple per row).
        every_key, flushed, seqs, live = part.rows.snapshot(table)
        manifest = prov.cold.manifest(scope) or Manifest.new(table.table_id, scope or None)
    watermark = int(seqs.max())
    older = prov.cold.live_versions(scope, table, every_key) if manifest.segments else {}
    superseded = sorted(older.values())
    directory = prov.cold.scope_dir(scope)
    entries: list[SegmentEntry] = []
    next_id = manifest.next_segment_id()
    key = table.key_columns
    sort_column = tuple(physical_name(c.id) for c in key) if key else "_seq"
    for start in range(0, live.num_rows, SEGMENT_ROWS):
        segment_data = live.slice(start, SEGMENT_ROWS)
        entries.append(
            write_segment(
                directory,
                next_id + len(entries),
                segment_data,
                sort_column=sort_column,
                schema_version=table.schema_version,
                **segment_options(table.options),
                table_id=table.table_id,
                names=logical_names(table),
            )
        )
    crash("segment_written")
    with engine.lock:
        _check_unchanged(engine, prov, table, scope, directory, entries)
    new = manifest.with_segments(
        entries, flushed_seq=watermark, superseded=superseded, table=table.to_dict()
    )
    # One appended log line (engine.manifest.files), not the whole manifest.
    commit_manifest_json(directory, manifest, new, crash=crash)
    crash("manifest_json_written")
    with engine.lock:
        _check_unchanged(engine, prov, table, scope, directory, entries)
        txn = engine.begin()
        prov.cold.stage_manifest(txn, scope, new)
        first, rest = flushed[:DELETE_CHUNK], flushed[DELETE_CHUNK:]
        _stage_removal(txn, prov, scope, watermark, first)
        # Bulk chunks hold whole statements: every one committed before the
        # snapshot ends at or below the watermark (older records per key it
        # superseded are dropped at open, being at or below it too).
        for chunk, _ in engine.store.scan(keys.chunk_prefix(prov.table_id, scope)):
            found = keys.split_chunk_key(chunk)
            if found is not None and found[2] <= watermark:
                txn.batch.delete(chunk)

        def forget() -> None:
            current = prov.partitions.get(scope)
            if current is None:
                return
            # Every version at or below the watermark that is still the newest
            # of its key is one this flush wrote (later writes have higher seqs).
            current.rows.forget_through(watermark)
            current.version += 1
            current.cache.clear()

        txn.after_commit(forget)
        txn.commit()
    crash("hot_manifest_committed")
    for start in range(0, len(rest), DELETE_CHUNK):
        with engine.lock:
            txn = engine.begin()
            _stage_removal(txn, prov, scope, watermark, rest[start : start + DELETE_CHUNK])
            txn.commit()
        crash("hot_rows_partly_removed")
    return live.num_rows, len(entries), len(superseded)


def _check_unchanged(
    engine: Database,
    prov: TableProvider,
    table: TableDef,
    scope: str,
    directory: Any,
    entries: list[SegmentEntry],
) -> None:
    """A flush prepared against one schema version and directory publishes
    only if both still hold (the commit lock guarantees it; this re-check
    keeps a broken lock from ever publishing stale work)."""
    now = engine.catalog.table_by_id(table.table_id)
    if (
        now is not None
        and now.schema_version == table.schema_version
        and prov.cold.scope_dir(scope) == directory
    ):
        return
    for entry in entries:  # unpublished: nothing names them
        (directory / entry.path).unlink(missing_ok=True)
    raise FlushAbandonedError(
        f"Flush of {table.qualified_name} abandoned: the table changed while it ran "
        "(its rows stay hot; flush again)"
    )


def _stage_removal(
    txn: Any, prov: TableProvider, scope: str, watermark: int, pks: list[Any]
) -> None:
    """Delete flushed versions from the hot store unless a newer one replaced
    them (a version newer than the flush has a seq above its watermark)."""
    part = prov.partitions.get(scope)
    current = part.rows.seqs_of(pks).tolist() if part is not None else [-1] * len(pks)
    prefix, pack, delete = keys.rows_prefix(prov.table_id, scope), keys.pk_bytes, txn.batch.delete
    for k, seq in zip(pks, current, strict=True):
        if seq <= watermark:  # -1: no hot version left
            delete(prefix + pack(k))


def physical_table(table: TableDef, versions: list[RowVersion]) -> pa.Table:
    """Versions as a segment table: ``c<id>`` columns, ``_seq``, ``_deleted``."""
    arrays = [
        pa.array([v[2].get(c.id, c.fill) for v in versions], type=c.arrow_type)
        for c in table.columns
    ]
    arrays.append(pa.array([v[0] for v in versions], type=pa.int64()))
    arrays.append(pa.array([v[1] for v in versions], type=pa.bool_()))
    names = [physical_name(c.id) for c in table.columns] + ["_seq", "_deleted"]
    return pa.Table.from_arrays(arrays, names=names)


def evict_expired(engine: Database, table: TableDef) -> int:
    """STREAM tables: delete rows older than TTL_SECONDS from the hot store."""
    prov = engine.provider(table)
    from engine.providers.base import ScanOptions

    opts = ScanOptions(now_ms=engine.clock_ms())
    removed = 0
    with engine.lock:
        txn = engine.begin()
        gone: list[tuple[str, Any]] = []
        for scope, part in prov.partitions.items():
            for k, v in part.rows.items():
                if not prov.row_visible(v[0], opts):
                    txn.batch.delete(keys.row_key(prov.table_id, scope, k))
                    gone.append((scope, k))

        def apply() -> None:
            for scope, k in gone:
                part = prov.partitions[scope]
                part.rows.pop(k, None)
                part.version += 1

        txn.after_commit(apply)
        txn.commit()
        removed = len(gone)
    return removed
