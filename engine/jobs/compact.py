"""Compaction: rewrite a scope's segments into fewer, larger ones without dead rows.

Flushes only ever add segments, and an update or delete of a cold row only
adds its ``_seq`` to the manifest's ``superseded_seqs``; so a table that is
written often piles up small segments and dead versions, and reads get slower
for ever. Compaction of one scope:

1. Under the table's commit lock (``engine.core.commit`` rule 1: no flush,
   ALTER, RENAME, DROP or REPAIR of the table commits meanwhile) read every
   segment through the current schema, drop the superseded versions, sort by
   primary key and write new segments (temp file, fsync, rename). Row
   versions keep their ``_seq``: the hot tier's versions and later flushes
   still compare against it. A crash here leaves orphan files no manifest
   names, swept by the next flush or compaction.
2. Commit the cold manifest copy (``manifest.json`` plus its change log,
   ``engine.manifest.files``) naming the new segments instead of the old ones,
   with ``superseded_seqs`` emptied (every seq it held belonged to a segment
   just rewritten without it).
3. Under the engine lock, commit the hot manifest copy (authoritative on
   open). A crash between 2 and 3 leaves the hot copy naming the old files,
   which are still there: reads are unchanged and the new files are orphans.
4. Commit the Delta version that swaps the files (``engine.delta.publish``),
   so no Delta reader is left naming a file about to be removed.
5. Retire the old files: they are removed once no statement that began
   before step 3 is still running (``engine.core.readers``).

Readers see either the old manifest or the new one, never a mix.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from engine.catalog.model import TableDef
from engine.delta.publish import publish_scope
from engine.errors import InvalidOptionError, KalamError
from engine.jobs.flush import check_flushable, orphans_possible, remove_scope_orphans
from engine.jobs.rewrite import live_rows, write_rows
from engine.manifest import Manifest, commit_manifest_json
from engine.providers.base import TableProvider
from engine.storage.cold import segment_path

if TYPE_CHECKING:
    from engine.core import Database

Progress = Callable[[int, int], None]  # (rows done, rows total)
CrashHook = Callable[[str], None]

# The automatic policy's defaults (table option COMPACT_POLICY overrides them):
# a scope is compacted when it has more than 64 segments, or when at least a
# quarter of its cold versions are dead and they number 10,000 or more (a
# small table with a few deletes is cheaper to read than to rewrite).
DEFAULT_POLICY = {"segments": 64, "dead_percent": 25, "min_dead": 10_000}


@dataclass
class CompactReport:
    table: str
    scopes: int = 0
    segments_before: int = 0
    segments_after: int = 0
    rows: int = 0
    dead_rows: int = 0

    @property
    def message(self) -> str:
        if not self.scopes:
            return f"Nothing to compact in {self.table}"
        return (
            f"Compacted {self.table}: {self.segments_before:,} segment(s) into "
            f"{self.segments_after:,}, {self.rows:,} live row(s) kept, {self.dead_rows:,} dead "
            "version(s) dropped" + (f" across {self.scopes} scope(s)" if self.scopes > 1 else "")
        )


def check_compactable(table: TableDef) -> None:
    if table.table_type == "STREAM":
        raise InvalidOptionError(
            f"Cannot compact {table.qualified_name}: STREAM tables have no segments"
        )
    check_flushable(table)


def parse_compact_policy(text: str) -> dict[str, int]:
    """``'none'`` or ``'segments:N[,dead:P]'`` (P: percent of cold rows dead)."""
    if text.strip().lower() == "none":
        return {}
    out: dict[str, int] = {}
    for part in text.split(","):
        key, _, value = part.strip().partition(":")
        name = {"segments": "segments", "dead": "dead_percent"}.get(key.strip().lower())
        if name is None or not value.strip().isdigit() or name in out:
            raise InvalidOptionError(
                f"Bad COMPACT_POLICY {text!r}: expected 'none' or 'segments:N,dead:P'"
            )
        out[name] = int(value)
    if out.get("segments", 2) < 2 or not 0 < out.get("dead_percent", 1) <= 100:
        raise InvalidOptionError(
            f"Bad COMPACT_POLICY {text!r}: segments must be at least 2 and dead a percentage"
        )
    return out


def policy_of(table: TableDef) -> dict[str, int]:
    given = table.options.get("compact_policy")
    return DEFAULT_POLICY if given is None else dict(given)


def scope_needs_compaction(manifest: Manifest | None, policy: dict[str, int]) -> bool:
    """What the automatic policy asks for (COMPACT TABLE compacts regardless)."""
    if manifest is None or not manifest.segments or not policy:
        return False
    if "segments" in policy and len(manifest.segments) > policy["segments"]:
        return True
    rows = manifest.row_count
    dead = len(manifest.superseded_seqs)
    return (
        "dead_percent" in policy
        and rows > 0
        and dead >= policy.get("min_dead", 1)
        and dead * 100 >= policy["dead_percent"] * rows
    )


def due_scopes(db: Database, table: TableDef) -> list[str]:
    policy = policy_of(table)
    if not policy or table.table_type == "STREAM":
        return []
    prov = db.provider(table)
    out = []
    for scope in prov.cold.scopes():
        try:
            if scope_needs_compaction(prov.cold.manifest(scope), policy):
                out.append(scope)
        except KalamError:
            continue  # damaged: REPAIR TABLE's business, not the policy's
    return out


def compact_table(
    db: Database,
    table: TableDef,
    *,
    scopes: list[str] | None = None,
    progress: Progress | None = None,
    crash: CrashHook | None = None,
) -> CompactReport:
    """Compact ``scopes`` (default: every scope with segments) of ``table``."""
    check_compactable(table)
    report = CompactReport(table.qualified_name)
    with db.table_locks.get(table.table_id):
        current = db.catalog.table_by_id(table.table_id)
        if current is None:
            return report  # dropped before this job ran
        report.table = current.qualified_name
        prov = db.provider(current)
        chosen = prov.cold.scopes() if scopes is None else scopes
        total = sum(_rows_of(prov, s) for s in chosen)
        done = 0
        for scope in chosen:
            n = _rows_of(prov, scope)
            try:
                before, after, rows, dead = _compact_scope(
                    db, prov, current, scope, crash or _no_crash
                )
                # Even an already compact scope may hold files a Delta reader cannot
                # take as they are (written before an ALTER): published anew.
                publish_scope(
                    db, prov, current, scope, operation="OPTIMIZE", crash=crash or _no_crash
                )
            except BaseException:
                orphans_possible(prov, scope)  # its new files may be left behind
                raise
            done += n
            if before:
                report.scopes += 1
                report.segments_before += before
                report.segments_after += after
                report.rows += rows
                report.dead_rows += dead
            if progress is not None:
                progress(min(done, total), total)
    return report


def _no_crash(step: str) -> None:
    return None


def _rows_of(prov: TableProvider, scope: str) -> int:
    m = prov.cold.manifests.get(scope)
    return m.row_count if m is not None else 0


def _compact_scope(
    db: Database, prov: TableProvider, table: TableDef, scope: str, crash: CrashHook
) -> tuple[int, int, int, int]:
    """(segments before, segments after, live rows, dead versions dropped)."""
    manifest = prov.cold.manifest(scope)  # raises on damage: REPAIR first
    if manifest is None or not manifest.segments:
        return 0, 0, 0, 0
    if len(manifest.segments) == 1 and not manifest.superseded_seqs:
        return 0, 0, 0, 0  # already compact
    directory = prov.cold.scope_dir(scope)
    remove_scope_orphans(db, prov, scope)  # a crashed flush's or compaction's
    live = live_rows(prov, table, scope, list(manifest.segments), manifest.superseded_seqs)
    dead = manifest.row_count - live.num_rows
    entries = write_rows(directory, table, live, manifest.next_segment_id())
    crash("segments_written")
    old = [s.id for s in manifest.segments]
    # Every superseded seq named a row of a segment just rewritten without it.
    new = replace(manifest.replace_segments(old, entries), superseded_seqs=())
    new = new.with_table(table.to_dict())
    commit_manifest_json(directory, manifest, new, crash=crash)
    crash("manifest_json_written")
    with db.lock:
        now = db.catalog.table_by_id(table.table_id)
        if now is None or now.schema_version != table.schema_version:
            raise AssertionError("compaction ran without its table's commit lock")
        txn = db.begin()
        prov.cold.stage_manifest(txn, scope, new)
        txn.commit()
        db.invalidate(table.table_id)
    crash("hot_manifest_committed")
    # The Delta log stops naming the old files before they are removed.
    publish_scope(db, prov, table, scope, operation="OPTIMIZE", crash=crash)
    db.readers.retire([segment_path(directory, s) for s in manifest.segments])
    return len(manifest.segments), len(entries), live.num_rows, dead
