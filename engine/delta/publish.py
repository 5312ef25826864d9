"""Publishing a scope's cold tier as a Delta Lake table, derived from its manifest.

The manifest stays the only truth (invariant 4); the Delta log is a view of
it that other engines read. ``publish_scope`` runs under the table's commit
lock after a flush or compaction has published its manifest (and at open,
``recover_delta``), and makes the scope directory's Delta log describe
exactly the manifest's live rows:

1. **Clean.** A Delta reader knows nothing of ``superseded_seqs`` nor of our
   per-segment column names, so a segment that holds a superseded (updated
   or deleted) version, or was written under other column names or types
   (before an ALTER), is rewritten without its dead rows in the current
   schema (``engine.jobs.rewrite``), published like a compaction: new files,
   ``manifest.json``, then the hot copy. A crash before the hot copy leaves
   the old manifest and orphan files; the next publish does it again.
2. **Commit.** One Delta version: ``add`` for every manifest segment the log
   does not name, ``remove`` for every file it names that the manifest no
   longer does, ``metaData`` when the schema changed, and a ``commitInfo``
   carrying ``kalam.manifest_version`` / ``kalam.schema_version``. A crash
   before the commit file exists leaves the previous version (whose files
   are all still on disk: replaced files are retired only after this commit);
   the next publish or open derives the missing commit from the manifest.
3. The caller retires files the clean step replaced.

A scope is in sync when its last commit names the manifest's version and
the table's schema version, so the check at open reads one small file.

A table with ``DELTA = false`` publishes nothing (its old log is left as
it was, and is brought up to date when publishing is turned back on).
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import orjson

from engine.catalog.model import TableDef
from engine.delta.log import (
    LOG_DIR,
    MANIFEST_VERSION_KEY,
    SCHEMA_VERSION_KEY,
    TABLE_ID_KEY,
    DeltaLog,
    Snapshot,
    add_action,
    commit_file_name,
    commit_info_action,
    metadata_action,
    protocol_action,
    remove_action,
)
from engine.delta.schema import delta_fresh, delta_schema, file_stats
from engine.errors import KalamError
from engine.jobs.rewrite import live_rows, write_rows
from engine.manifest import Manifest, commit_manifest_json
from engine.providers.cold_tier import ColdTier
from engine.storage import fs
from engine.storage.cold import SegmentEntry, segment_path
from engine.storage.fs import ColdPath

if TYPE_CHECKING:
    from engine.core import Database
    from engine.providers.base import TableProvider

CrashHook = Callable[[str], None]


def delta_enabled(table: TableDef) -> bool:
    """Whether ``table`` publishes a Delta log (option DELTA, on by default)."""
    return table.table_type != "STREAM" and bool(table.options.get("delta", True))


def table_uuid(table: TableDef, scope: str) -> str:
    """The Delta table id of one scope: stable, so a re-derived commit keeps it."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"kalam:{table.table_id}:{scope}"))


def delta_log(db: Database, directory: ColdPath) -> DeltaLog:
    """The (cached) log of ``directory`` (on disk or in a bucket): its replayed
    snapshot is kept."""
    logs: dict[ColdPath, DeltaLog] = db.delta_logs
    found = logs.get(directory)
    if found is None:
        files = fs.ObjectLogFiles() if isinstance(directory, fs.ObjectPath) else None
        found = logs[directory] = DeltaLog(directory, files)
    return found


def _no_crash(step: str) -> None:
    return None


def publish_scope(
    db: Database,
    prov: TableProvider,
    table: TableDef,
    scope: str,
    *,
    operation: str,
    crash: CrashHook = _no_crash,
) -> int | None:
    """Bring ``scope``'s Delta log in line with its manifest (under the table's
    commit lock); returns the Delta version that matches it, or ``None`` when
    the table does not publish or the scope never flushed."""
    if not delta_enabled(table):
        return None
    manifest = prov.cold.manifest(scope)
    if manifest is None:
        return None
    directory = prov.cold.scope_dir(scope)
    log = delta_log(db, directory)
    if in_sync(log, table, manifest):
        return log.versions()[-1]
    manifest, replaced = _clean(db, prov, table, scope, manifest, crash)
    version = _commit(log, table, scope, manifest, operation)
    crash("delta_committed")
    if replaced:
        db.readers.retire([segment_path(directory, s) for s in replaced])
    return version


def in_sync(log: DeltaLog, table: TableDef, manifest: Manifest) -> bool:
    """Whether the log's last commit was derived from this manifest version
    under this schema version (reads only the last commit file)."""
    versions = log.versions()
    if not versions:
        return False
    last = log.files.read(log.log_dir / commit_file_name(versions[-1]))
    for line in reversed(last.splitlines()):
        try:
            action = orjson.loads(line)
        except orjson.JSONDecodeError:
            return False
        info = action.get("commitInfo") if isinstance(action, dict) else None
        if info is not None:
            # The table id too: a log left by a dropped table of the same name
            # can carry the same version numbers.
            return bool(
                info.get(MANIFEST_VERSION_KEY) == manifest.version
                and info.get(SCHEMA_VERSION_KEY) == table.schema_version
                and info.get(TABLE_ID_KEY) == table.table_id
            )
    return False


def _dead_segments(
    prov: TableProvider, scope: str, manifest: Manifest, candidates: list[SegmentEntry]
) -> list[SegmentEntry]:
    """The segments among ``candidates`` holding a superseded version."""
    dead = manifest.superseded_seqs
    if not dead:
        return []
    out = []
    for entry in candidates:
        inside = {q for q in dead if entry.min_seq <= q <= entry.max_seq}
        if not inside:
            continue
        path = prov.cold.segment_file(scope, entry)
        seqs = fs.read_parquet(path, columns=["_seq"]).column(0).to_pylist()
        if inside.intersection(seqs):
            out.append(entry)
    return out


# (columns signature, segment checksum) -> delta_fresh: a flush checks only its
# new segments, not every segment again. ``delta_fresh`` depends on nothing
# else (the checksum fixes the file and so its columns and statistics).
_FRESH: dict[tuple[Any, str], bool] = {}
_FRESH_LIMIT = 200_000


def _columns_signature(table: TableDef) -> tuple[Any, ...]:
    return tuple((c.id, c.name, str(c.arrow_type)) for c in table.columns)


def _fresh(sig: tuple[Any, ...], table: TableDef, entry: SegmentEntry) -> bool:
    key = (sig, entry.checksum)
    got = _FRESH.get(key)
    if got is None:
        if len(_FRESH) >= _FRESH_LIMIT:
            _FRESH.clear()
        got = _FRESH[key] = delta_fresh(table, entry)
    return got


def _clean(
    db: Database,
    prov: TableProvider,
    table: TableDef,
    scope: str,
    manifest: Manifest,
    crash: CrashHook,
) -> tuple[Manifest, list[SegmentEntry]]:
    """The manifest with every segment a Delta reader cannot take as it is
    rewritten (step 1); also the replaced entries, to retire after the commit."""
    sig = _columns_signature(table)
    flags = [(s, _fresh(sig, table, s)) for s in manifest.segments]
    stale = [s for s, ok in flags if not ok]
    fresh = [s for s, ok in flags if ok]
    stale += _dead_segments(prov, scope, manifest, fresh)
    if not stale:
        return manifest, []
    directory = prov.cold.scope_dir(scope)
    rows = live_rows(prov, table, scope, stale, manifest.superseded_seqs)
    entries = write_rows(directory, table, rows, manifest.next_segment_id())
    crash("delta_segments_written")
    kept = [s for s in manifest.segments if s not in stale]
    # A marker whose seq no kept segment can hold belonged to a rewritten one.
    remaining = tuple(
        q for q in manifest.superseded_seqs if any(s.min_seq <= q <= s.max_seq for s in kept)
    )
    new = manifest.replace_segments([s.id for s in stale], entries)
    new = replace(new, superseded_seqs=remaining).with_table(table.to_dict())
    commit_manifest_json(directory, manifest, new)  # appends to the manifest's log
    crash("delta_manifest_json_written")
    with db.lock:
        txn = db.begin()
        prov.cold.stage_manifest(txn, scope, new)
        txn.commit()
        db.invalidate(table.table_id)
    crash("delta_hot_manifest_committed")
    return new, stale


def _commit(log: DeltaLog, table: TableDef, scope: str, manifest: Manifest, operation: str) -> int:
    snap = log.snapshot()
    ours = table_uuid(table, scope)
    if snap.metadata is not None and snap.metadata.get("id") != ours:
        # A log left by a dropped table of the same name (a DROP that crashed
        # before removing the directory): not ours to extend.
        if isinstance(log.log_dir, fs.ObjectPath):
            log.log_dir.remove_tree()
        else:
            shutil.rmtree(log.log_dir, ignore_errors=True)
        log.forget()
        snap = Snapshot()
    now_ms = _now_ms()
    target = {s.path: s for s in manifest.segments}
    actions: list[dict[str, Any]] = []
    if snap.version < 0:
        actions.append(protocol_action())
    schema = delta_schema(table)
    if snap.schema_string is None or orjson.loads(snap.schema_string) != schema:
        created = (snap.metadata or {}).get("createdTime", now_ms)
        actions.append(metadata_action(schema, table_id=ours, created_ms=created, name=table.name))
    for path, entry in target.items():
        if path not in snap.files:
            actions.append(
                add_action(
                    path,
                    size=entry.size_bytes,
                    modified_ms=int(entry.created_at.timestamp() * 1000),
                    stats=file_stats(table, entry),
                )
            )
    for path, add in snap.files.items():
        if path not in target:
            actions.append(remove_action(path, size=add.get("size"), deleted_ms=now_ms))
    actions.append(
        commit_info_action(
            operation,
            now_ms=now_ms,
            manifest_version=manifest.version,
            schema_version=table.schema_version,
            table_id=table.table_id,
        )
    )
    version = snap.version + 1
    log.commit(version, actions)
    return version


def _now_ms() -> int:
    import time

    return int(time.time() * 1000)


def recover_delta(db: Database) -> list[str]:
    """At open: derive every scope's missing Delta commit from its manifest
    (a crash between a manifest publish and its Delta commit). Returns what
    was done. Only the manifests' hot copies and each log's last commit are
    read; a table's provider (its hot rows) is opened only when a commit is
    missing, and a damaged table or scope is left for REPAIR TABLE."""
    done = []
    for table in db.catalog.tables():
        if not delta_enabled(table):
            continue
        with db.table_locks.get(table.table_id):
            cold = ColdTier(
                table.table_id,
                db.store,
                lambda scope, tid=table.table_id: db.scope_dir(tid, scope),
                db.verifier,
            )
            for scope in cold.scopes():
                try:
                    manifest = cold.manifest(scope)
                    if manifest is None:
                        continue
                    if in_sync(delta_log(db, cold.scope_dir(scope)), table, manifest):
                        continue
                    prov = db.provider(table)
                    version = publish_scope(db, prov, table, scope, operation="RECOVER")
                except (KalamError, OSError):
                    continue  # the next flush tries again; opening must not fail on it
                done.append(
                    f"{table.qualified_name} scope {scope or 'shared'}: Delta version {version} "
                    f"derived from manifest version {manifest.version}"
                )
    return done


def delta_pending(db: Database, table: TableDef) -> bool:
    """Whether a FLUSH with no hot rows still has a Delta commit to make (an
    ALTER since the last one, or publishing turned back on)."""
    if not delta_enabled(table):
        return False
    prov = db.provider(table)
    for scope in prov.cold.scopes():
        try:
            manifest = prov.cold.manifest(scope)
            if manifest is not None and not in_sync(
                delta_log(db, prov.cold.scope_dir(scope)), table, manifest
            ):
                return True
        except KalamError:
            continue
    return False


def delta_rows(db: Database, table: TableDef, scopes: list[str]) -> list[dict[str, Any]]:
    """SHOW DELTA: per scope, the Delta version, the manifest version it was
    derived from, its file and row counts, and whether it is in sync."""
    prov = db.provider(table)
    out = []
    for scope in scopes:
        manifest = prov.cold.manifest(scope)
        directory = prov.cold.scope_dir(scope)
        log = delta_log(db, directory)
        snap = log.snapshot()
        out.append(
            {
                "scope": scope or None,
                "path": str(directory),
                "delta_version": snap.version if snap.version >= 0 else None,
                "manifest_version": snap.manifest_version,
                "current_manifest_version": manifest.version if manifest else None,
                "files": len(snap.files),
                "rows": snap.rows,
                "in_sync": manifest is not None and in_sync(log, table, manifest),
                "publishing": delta_enabled(table),
            }
        )
    return out


__all__ = [
    "LOG_DIR",
    "delta_enabled",
    "delta_pending",
    "delta_rows",
    "publish_scope",
    "recover_delta",
]
