"""FLUSH TABLE / FLUSH ALL, SHOW MANIFEST and REPAIR TABLE."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from engine.catalog.model import TableDef
from engine.errors import KalamError, SqlParseError
from engine.jobs.flush import check_flushable, flush_table, pending_rows
from engine.manifest import Manifest, find_orphans, manifest_path, write_manifest_json
from engine.names import check_user
from engine.result import Result
from engine.sql import statements as st
from engine.storage.cold import file_checksum, parse_segment_file_name
from engine.system import SEGMENT_FIELDS, segment_row

if TYPE_CHECKING:
    from engine.core import Database


def start_flush(
    engine: Database,
    table: TableDef,
    *,
    wait: bool,
    progress: Callable[[int, int], None] | None = None,
) -> Result:
    check_flushable(table)
    prov = engine.provider(table)
    if not pending_rows(prov):
        return Result(message=f"Nothing to flush in {table.qualified_name}", rows_affected=0)

    def run(job: Any) -> Any:
        report = flush_table(engine, table, progress=progress)
        job.rows, job.segments, job.message = report.rows, report.segments, report.message
        return report

    job = engine.jobs.submit("flush", run, namespace=table.namespace, table_name=table.name)
    if not wait:
        return Result(
            message=f"Flush job {job.job_id} started for {table.qualified_name}",
            job_id=job.job_id,
        )
    engine.jobs.wait(job)
    if isinstance(job.result, KalamError):
        raise job.result
    if isinstance(job.result, BaseException):
        raise job.result
    return Result(message=job.message, rows_affected=job.rows, job_id=job.job_id)


def flush(engine: Database, s: st.FlushTable, params: dict[str, Any], user: str) -> Result:
    progress = engine.call_progress()
    if s.table is not None:
        table = engine.resolve(s.table)
        return start_flush(engine, table, wait=s.wait or progress is not None, progress=progress)
    if s.namespace is not None:
        engine.catalog.get_namespace(s.namespace)
    tables = [t for t in engine.catalog.tables(s.namespace) if t.table_type != "STREAM"]
    results = [start_flush(engine, t, wait=s.wait) for t in tables]
    started = [r for r in results if r.job_id]
    rows = sum(r.rows_affected or 0 for r in results)
    where = f" in {s.namespace}" if s.namespace else ""
    if not started:
        return Result(message=f"Nothing to flush{where}", rows_affected=0)
    verb = "Flushed" if s.wait else "Started flushing"
    return Result(
        message=f"{verb} {len(started)} table(s){where}" + (f", {rows} row(s)" if s.wait else ""),
        rows_affected=rows if s.wait else None,
        job_id=",".join(r.job_id or "" for r in started),
    )


def _command_table(s: st.KalamCommand, form: str) -> st.TableRef:
    """The ``[namespace.]table`` that ends a two-keyword command (``REPAIR TABLE t``)."""
    words = list(s.words[2:])
    if len(words) == 1:
        return st.TableRef(None, words[0].lower())
    if len(words) == 3 and words[1] == ".":
        return st.TableRef(words[0].lower(), words[2].lower())
    raise SqlParseError(f"Syntax error: expected {form} [namespace.]table")


def show_manifest(
    engine: Database, s: st.KalamCommand, params: dict[str, Any], user: str
) -> Result:
    table = engine.resolve(_command_table(s, "SHOW MANIFEST"))
    prov = engine.provider(table)
    scopes = prov.read_scopes(user) if table.table_type == "USER" else prov.cold.scopes()
    rows = []
    for scope in scopes:
        m = prov.cold.manifest(scope)
        if m is None:
            continue
        for seg in m.segments:
            row = segment_row(table, scope, seg)
            row.update(manifest_version=m.version, flushed_seq=m.flushed_seq)
            rows.append(row)
    return Result(table=pa.Table.from_pylist(rows, schema=_MANIFEST_SCHEMA), is_query=True)


_MANIFEST_SCHEMA = pa.schema(
    [*SEGMENT_FIELDS, ("manifest_version", pa.int64()), ("flushed_seq", pa.int64())]
)


def repair(engine: Database, s: st.KalamCommand, params: dict[str, Any], user: str) -> Result:
    """Rebuild each scope's manifest from the segments it names that are intact."""
    table = engine.resolve(_command_table(s, "REPAIR TABLE"))

    def run(job: Any) -> str:
        kept_total, dropped_total, orphans_total = 0, [], 0
        # The table's commit lock: no flush publishes or cleans up meanwhile.
        with engine.changing(table):
            for scope in _repair_scopes(engine, table):
                kept, dropped, orphans = _repair_scope(engine, table, scope)
                kept_total += kept
                dropped_total += dropped
                orphans_total += orphans
        msg = f"Repaired {table.qualified_name}: kept {kept_total} segment(s)"
        if dropped_total:
            msg += (
                f", dropped {len(dropped_total)} damaged or missing: {', '.join(dropped_total)}"
                " (damaged files kept as <name>.damaged)"
            )
        if orphans_total:
            msg += f", removed {orphans_total} orphaned file(s)"
        job.segments, job.message = kept_total, msg
        return msg

    job = engine.jobs.run_inline("repair", run, namespace=table.namespace, table_name=table.name)
    if isinstance(job.result, BaseException):
        raise job.result
    return Result(message=job.message, rows_affected=job.segments, job_id=job.job_id)


def _repair_scopes(engine: Database, table: TableDef) -> list[str]:
    """Every scope that may hold cold files: known manifests, hot partitions and,
    for USER tables, the user directories on disk (REPAIR may look at disk)."""
    prov = engine.provider(table)
    if table.table_type != "USER":
        return [""]
    scopes = set(prov.cold.scopes()) | set(prov.partitions)
    root = engine.table_dir(table)
    if root.is_dir():
        for child in root.iterdir():
            try:
                if child.is_dir() and check_user(child.name):
                    scopes.add(child.name)
            except KalamError:
                continue
    return sorted(scopes)


def _repair_scope(engine: Database, table: TableDef, scope: str) -> tuple[int, list[str], int]:
    """(segments kept, names dropped, orphans removed) for one scope."""
    prov = engine.provider(table)
    directory = prov.cold.scope_dir(scope)
    manifest = prov.cold.hot_manifest(scope)
    dropped: list[str] = []
    if manifest is None and not manifest_path(directory).exists():
        # Never flushed: every file here is an orphan of a crashed first flush.
        removed = find_orphans(directory, None)
        for orphan in removed:
            orphan.unlink(missing_ok=True)
        return 0, [], len(removed)
    if manifest is None:  # manifest.json exists but could not be loaded: rebuild it
        base, dropped = _manifest_from_files(table, scope, directory)
    else:
        base = manifest
    kept = []
    for seg in base.segments:
        path = directory / seg.path
        if path.exists() and file_checksum(path) == seg.checksum:
            kept.append(seg)
        else:
            dropped.append(seg.path)
    fixed = base.replace_segments([x.id for x in base.segments if x.path in dropped], [])
    write_manifest_json(directory, fixed)
    txn = engine.begin()
    prov.cold.stage_manifest(txn, scope, fixed)
    txn.commit()
    prov.cold.forget_segments(scope)
    for name in dropped:  # keep damaged data for inspection, out of the way
        damaged = directory / name
        if damaged.exists():
            damaged.replace(directory / f"{name}.damaged")
    removed = find_orphans(directory, fixed)
    for orphan in removed:
        orphan.unlink(missing_ok=True)
    return len(kept), dropped, len(removed)


def _manifest_from_files(table: TableDef, scope: str, directory: Any) -> tuple[Manifest, list[str]]:
    """Rebuild a scope's manifest from the segment files in its directory
    (used only when no intact manifest exists). Unreadable files are dropped;
    where several segments hold a key, the newest version wins."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from engine.storage.cold import SegmentEntry, compute_column_stats

    entries: list[SegmentEntry] = []
    dropped: list[str] = []
    newest: dict[Any, int] = {}
    superseded: list[int] = []
    pk_name = f"c{table.pk.id}" if table.pk is not None else None
    files = (
        sorted(
            (p for p in directory.iterdir() if parse_segment_file_name(p.name) is not None),
            key=lambda p: parse_segment_file_name(p.name) or 0,
        )
        if directory.is_dir()
        else []
    )
    for path in files:
        try:
            data = pq.read_table(path)
            meta = data.schema.metadata or {}
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
            )
        except Exception:  # noqa: BLE001 - any unreadable file is reported as dropped
            dropped.append(path.name)
            continue
        entries.append(entry)
        if pk_name is not None and pk_name in data.column_names:
            for k, q in zip(
                data.column(pk_name).to_pylist(), data.column("_seq").to_pylist(), strict=True
            ):
                old = newest.get(k)
                if old is None or q > old:
                    if old is not None:
                        superseded.append(old)
                    newest[k] = q
                else:
                    superseded.append(q)
    base = Manifest.new(table.table_id, scope or None)
    if not entries:
        return base, dropped
    rebuilt = base.with_segments(
        entries, flushed_seq=max(e.max_seq for e in entries), superseded=superseded
    )
    return rebuilt, dropped


def _mtime(path: Any) -> Any:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(path.stat().st_mtime, UTC)
