"""REPAIR TABLE: make a damaged table usable again without making it worse.

Per table, under its commit lock and the engine lock:

1. Hot rows that no longer decode are deleted (and counted): they would make
   every query of the table fail.
2. Per scope, the base manifest is chosen: an intact ``manifest.json`` newer
   than the hot copy (or replacing a damaged or missing one) is adopted, and
   the provider is rebuilt so hot versions at or below its watermark are
   dropped exactly as at startup (nothing is duplicated); otherwise the hot
   copy. Only when neither copy is intact is the manifest rebuilt from the
   segment files this table owns, and the report says delete markers may be
   lost with it. A ``manifest.json`` of another table is never adopted.
3. Every segment is checked against its checksum. A damaged one is replaced
   by a new segment holding its provably intact row groups (see
   ``salvage_segment``); the damaged file is kept as ``<name>.damaged``. The
   number of rows that could not be recovered is reported exactly.
4. The fixed manifest is written whole (a new ``manifest.json`` checkpoint
   and a fresh ``manifest.jsonl`` log, then the hot copy) and orphaned files
   are removed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from engine.catalog.model import TableDef
from engine.delta.publish import publish_scope
from engine.errors import KalamError
from engine.manifest import Manifest, find_orphans, manifest_path, write_manifest_json
from engine.manifest.files import manifest_files, read_manifest_json
from engine.names import check_user
from engine.result import Result
from engine.storage import codec, fs, keys
from engine.storage.cold import (
    COLUMNS_KEY,
    SegmentEntry,
    compute_column_stats,
    file_checksum,
    parse_segment_file_name,
    salvage_segment,
    segment_options,
    segment_owner,
    write_segment,
)
from engine.storage.fs import ColdPath

if TYPE_CHECKING:
    from engine.core import Database


@dataclass
class Outcome:
    """What REPAIR TABLE did, for its message and the job record."""

    table: str
    kept: int = 0
    salvaged: int = 0
    rows_lost: int = 0
    hot_rows_dropped: int = 0
    orphans: int = 0
    dropped: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def message(self) -> str:
        msg = f"Repaired {self.table}: kept {self.kept} segment(s)"
        if self.dropped:
            msg += (
                f", dropped {len(self.dropped)} damaged or missing: {', '.join(self.dropped)}"
                " (damaged files kept as <name>.damaged)"
            )
        if self.salvaged:
            msg += f", wrote {self.salvaged} segment(s) of salvaged row groups"
        msg += f"; {self.rows_lost:,} flushed row(s) could not be recovered"
        if self.hot_rows_dropped:
            msg += f"; dropped {self.hot_rows_dropped:,} damaged hot row(s)"
        if self.orphans:
            msg += f"; removed {self.orphans} orphaned file(s)"
        return msg + "".join(f"; {n}" for n in self.notes)


def repair_table(engine: Database, table: TableDef) -> Result:
    def run(job: Any) -> str:
        out = Outcome(table.qualified_name)
        # The table's commit lock: no flush publishes or cleans up meanwhile.
        with engine.changing(table):
            _drop_damaged_hot_rows(engine, table, out)
            for scope in _repair_scopes(engine, table):
                _repair_scope(engine, table, scope, out)
            # Reload hot rows and manifests: startup's rule then drops hot
            # versions at or below an adopted manifest's watermark.
            engine.forget_provider(table.table_id)
            prov = engine.provider(table)
            _publish_delta(engine, prov, table)
        job.segments, job.rows, job.message = out.kept + out.salvaged, out.rows_lost, out.message
        return out.message

    job = engine.jobs.run_inline("repair", run, namespace=table.namespace, table_name=table.name)
    if isinstance(job.result, BaseException):
        raise job.result
    return Result(message=job.message, rows_affected=job.segments, job_id=job.job_id)


def _publish_delta(engine: Database, prov: Any, table: TableDef) -> None:
    """The repaired manifests as Delta commits (they no longer name damaged files)."""
    current = engine.catalog.table_by_id(table.table_id) or table
    for scope in prov.cold.scopes():
        try:
            publish_scope(engine, prov, current, scope, operation="REPAIR")
        except KalamError:
            continue  # still damaged: the report says so


def _drop_damaged_hot_rows(engine: Database, table: TableDef, out: Outcome) -> None:
    txn = engine.begin()
    for key, raw in engine.store.scan(keys.rows_prefix(table.table_id)):
        try:
            codec.check_hot_record(key, raw, table=table.qualified_name)
        except KalamError:
            txn.batch.delete(key)
            out.hot_rows_dropped += 1
    if out.hot_rows_dropped:
        txn.commit()
        engine.forget_provider(table.table_id)


def _repair_scopes(engine: Database, table: TableDef) -> list[str]:
    """Every scope that may hold cold files: known manifests, hot partitions and,
    for USER tables, the user directories on disk (REPAIR may look at disk)."""
    prov = engine.provider(table)
    if table.table_type != "USER":
        return [""]
    scopes = set(prov.cold.scopes()) | set(prov.partitions)
    root = prov.cold.scope_dir("")  # the table's directory (local or in a bucket)
    if root.is_dir():
        for child in root.iterdir():
            try:
                if child.is_dir() and check_user(child.name):
                    scopes.add(child.name)
            except KalamError:
                continue
    return sorted(scopes)


def _cold_copy(directory: ColdPath, table_id: int) -> tuple[Manifest | None, str]:
    """(manifest.json if intact and this table's, state: ok / absent / foreign / damaged)."""
    path = manifest_path(directory)
    if not path.exists():
        return None, "absent"
    try:
        m = read_manifest_json(path)
    except KalamError:
        return None, "damaged"
    if m.table_id != table_id:
        return None, "foreign"
    return m, "ok"


def _repair_scope(engine: Database, table: TableDef, scope: str, out: Outcome) -> None:
    prov = engine.provider(table)
    directory = prov.cold.scope_dir(scope)
    hot = prov.cold.hot_manifest(scope)
    cold, state = _cold_copy(directory, table.table_id)
    if hot is None and cold is None and state != "damaged":
        # Never flushed by this table: every file here is an orphan of a crashed
        # first flush, or a leftover of a dropped table of the same name.
        removed = find_orphans(directory, None)
        if state == "foreign":
            removed += [p for p in manifest_files(directory) if p.exists()]
        for orphan in removed:
            orphan.unlink(missing_ok=True)
        out.orphans += len(removed)
        return
    if cold is not None and (hot is None or cold.version > hot.version):
        base = cold  # newer than (or replacing) the hot copy: keep its delete markers
    elif hot is not None:
        base = hot
    else:
        base = _manifest_from_files(table, scope, directory, out)
    fixed = _verified(engine, table, scope, directory, base, out).with_table(table.to_dict())
    write_manifest_json(directory, fixed)
    txn = engine.begin()
    prov.cold.stage_manifest(txn, scope, fixed)
    txn.commit()
    prov.cold.forget_segments(scope)
    removed = find_orphans(directory, fixed)
    for orphan in removed:
        orphan.unlink(missing_ok=True)
    out.orphans += len(removed)


def _verified(
    engine: Database, table: TableDef, scope: str, directory: ColdPath, base: Manifest, out: Outcome
) -> Manifest:
    """``base`` with each damaged segment replaced by its salvaged row groups."""
    damaged: list[SegmentEntry] = []
    added: list[SegmentEntry] = []
    next_id = base.next_segment_id()
    for seg in base.segments:
        path = directory / seg.path
        intact = path.is_file() and path.stat().st_size == seg.size_bytes
        if intact and file_checksum(path) == seg.checksum:
            out.kept += 1
            continue
        damaged.append(seg)
        salvage = salvage_segment(path, seg, table_id=table.table_id)
        if salvage.table is not None:
            added.append(
                write_segment(
                    directory,
                    next_id,
                    by_column_id(salvage.table, seg.columns),
                    sort_column=tuple(f"c{c.id}" for c in table.key_columns) or "_seq",
                    schema_version=seg.schema_version,
                    **segment_options(table.options),
                    table_id=table.table_id,
                    names=None
                    if seg.columns is None
                    else {int(k): v for k, v in seg.columns.items()},
                )
            )
            next_id += 1
            out.salvaged += 1
        out.rows_lost += salvage.rows_lost
        out.dropped.append(f"{seg.path} ({salvage.rows_lost:,} of {seg.row_count:,} row(s) lost)")
        if path.exists():  # keep damaged data for inspection, out of the way
            fs.set_aside(path, f"{seg.path}.damaged")
    return base.replace_segments([s.id for s in damaged], added)


def _manifest_from_files(
    table: TableDef, scope: str, directory: ColdPath, out: Outcome
) -> Manifest:
    """Rebuild a scope's manifest from the segment files this table owns (used
    only when neither manifest copy is intact). Unreadable files are left for
    ``_verified`` to report; where several segments hold a key, the newest
    version wins. Delete markers lived only in the manifest: a row deleted
    after it was flushed can come back, which the report says."""
    entries: list[SegmentEntry] = []
    newest: dict[Any, int] = {}
    superseded: list[int] = []
    key_names = [f"c{c.id}" for c in table.key_columns]
    files = sorted(
        (p for p in directory.iterdir() if parse_segment_file_name(p.name) is not None),
        key=lambda p: parse_segment_file_name(p.name) or 0,
    )
    for path in files:
        if segment_owner(path) not in (table.table_id, None):
            continue  # another table's leftover: removed as an orphan afterwards
        try:
            data = fs.read_parquet(path, page_checksum_verification=True)
            meta = data.schema.metadata or {}
            names = (
                orjson.loads(meta[COLUMNS_KEY.encode()]) if COLUMNS_KEY.encode() in meta else None
            )
            data = by_column_id(data, names)
            seqs = pc.min_max(data.column("_seq"))
            entry = SegmentEntry(
                id=parse_segment_file_name(path.name) or 0,
                path=path.name,
                row_count=data.num_rows,
                size_bytes=path.stat().st_size,
                created_at=_mtime(path),
                min_seq=seqs["min"].as_py(),
                max_seq=seqs["max"].as_py(),
                schema_version=int(meta.get(b"kalam.schema_version", b"1")),
                checksum=file_checksum(path),
                column_stats=compute_column_stats(data),
                columns=names,
            )
        except Exception:  # noqa: BLE001 - any unreadable file is reported as dropped
            out.dropped.append(f"{path.name} (unreadable; row count unknown)")
            fs.set_aside(path, f"{path.name}.damaged")
            continue
        entries.append(entry)
        if key_names and all(n in data.column_names for n in key_names):
            key_values = list(zip(*(data.column(n).to_pylist() for n in key_names), strict=True))
            for k, q in zip(key_values, data.column("_seq").to_pylist(), strict=True):
                old = newest.get(k)
                if old is None or q > old:
                    if old is not None:
                        superseded.append(old)
                    newest[k] = q
                else:
                    superseded.append(q)
    out.notes.append(
        f"both manifest copies of scope {scope or 'shared'} were damaged: rebuilt from "
        f"{len(entries)} segment file(s); rows deleted after a flush may have reappeared"
    )
    base = Manifest.new(table.table_id, scope or None)
    if not entries:
        return base
    return base.with_segments(
        entries, flushed_seq=max(e.max_seq for e in entries), superseded=superseded
    )


def by_column_id(data: pa.Table, names: dict[str, str] | None) -> pa.Table:
    """A segment's rows with user columns named ``c<id>`` again (``names``:
    the file's {column id: name} map, ``None`` for files already so named)."""
    if names is None:
        return data
    back = {name: f"c{cid}" for cid, name in names.items()}
    return data.rename_columns([back.get(n, n) for n in data.column_names])


def _mtime(path: ColdPath) -> Any:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(path.stat().st_mtime, UTC)
