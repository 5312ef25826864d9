"""FLUSH TABLE / FLUSH ALL, SHOW MANIFEST and REPAIR TABLE."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson
import pyarrow as pa

from engine.catalog.model import TableDef
from engine.errors import InvalidOptionError, KalamError, SqlParseError
from engine.jobs.flush import flush_table, pending_rows
from engine.manifest import Manifest, find_orphans, write_manifest_json
from engine.result import Result
from engine.sql import statements as st
from engine.storage.cold import file_checksum

if TYPE_CHECKING:
    from engine.api import Engine


def start_flush(
    engine: Engine,
    table: TableDef,
    *,
    wait: bool,
    progress: Callable[[int, int], None] | None = None,
) -> Result:
    if table.table_type == "STREAM":
        raise InvalidOptionError(
            f"Cannot flush {table.qualified_name}: STREAM tables keep rows hot until their TTL "
            "expires and are never flushed"
        )
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


def flush(engine: Engine, s: st.FlushTable, params: dict[str, Any], user: str) -> Result:
    if s.table is not None:
        return start_flush(engine, engine.resolve(s.table), wait=s.wait)
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
        message=f"{verb} {len(started)} table(s){where}"
        + (f", {rows} row(s)" if s.wait else ""),
        rows_affected=rows if s.wait else None,
        job_id=",".join(r.job_id or "" for r in started),
    )


_MANIFEST_SCHEMA = pa.schema(
    [
        ("scope", pa.string()),
        ("segment_id", pa.int64()),
        ("path", pa.string()),
        ("row_count", pa.int64()),
        ("size_bytes", pa.int64()),
        ("min_seq", pa.int64()),
        ("max_seq", pa.int64()),
        ("schema_version", pa.int64()),
        ("checksum", pa.string()),
        ("column_stats", pa.string()),
        ("manifest_version", pa.int64()),
        ("flushed_seq", pa.int64()),
    ]
)


def show_manifest(engine: Engine, s: st.KalamCommand, params: dict[str, Any], user: str) -> Result:
    words = list(s.words)
    if len(words) not in (3, 5) or (len(words) == 5 and words[3] != "."):
        raise SqlParseError("Syntax error: expected SHOW MANIFEST [namespace.]table")
    ref = st.TableRef(words[2].lower(), words[4].lower()) if len(words) == 5 else st.TableRef(None, words[2].lower())
    table = engine.resolve(ref)
    prov = engine.provider(table)
    rows = []
    scopes = prov.read_scopes(user) if table.table_type == "USER" else prov.cold.scopes()
    for scope in scopes:
        m = prov.cold.manifest(scope)
        if m is None:
            continue
        for seg in m.segments:
            rows.append(
                {
                    "scope": scope or None,
                    "segment_id": seg.id,
                    "path": seg.path,
                    "row_count": seg.row_count,
                    "size_bytes": seg.size_bytes,
                    "min_seq": seg.min_seq,
                    "max_seq": seg.max_seq,
                    "schema_version": seg.schema_version,
                    "checksum": seg.checksum,
                    "column_stats": orjson.dumps(seg.column_stats).decode(),
                    "manifest_version": m.version,
                    "flushed_seq": m.flushed_seq,
                }
            )
    return Result(table=pa.Table.from_pylist(rows, schema=_MANIFEST_SCHEMA), is_query=True)


def repair(engine: Engine, s: st.KalamCommand, params: dict[str, Any], user: str) -> Result:
    """Rebuild each scope's manifest from the segments it names that are intact."""
    words = list(s.words)
    if len(words) < 3 or words[1].upper() != "TABLE":
        raise SqlParseError("Syntax error: expected REPAIR TABLE [namespace.]table")
    ref = st.TableRef(words[2].lower(), words[4].lower()) if len(words) == 5 else st.TableRef(None, words[2].lower())
    table = engine.resolve(ref)
    prov = engine.provider(table)
    kept_total, dropped_total, orphans_total = 0, [], 0
    with engine.lock:
        for scope in prov.cold.scopes() or [""]:
            directory = prov.cold.scope_dir(scope)
            try:
                manifest = prov.cold.manifest(scope)
            except KalamError:
                manifest = None
            base = manifest or _manifest_from_files(table, scope)
            kept, dropped = [], []
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
            for orphan in find_orphans(directory, fixed):
                orphan.unlink(missing_ok=True)
                orphans_total += 1
            kept_total += len(kept)
            dropped_total += dropped
    msg = f"Repaired {table.qualified_name}: kept {kept_total} segment(s)"
    if dropped_total:
        msg += f", dropped {len(dropped_total)} damaged or missing: {', '.join(dropped_total)}"
    if orphans_total:
        msg += f", removed {orphans_total} orphaned file(s)"
    return Result(message=msg, rows_affected=kept_total)


def _manifest_from_files(table: TableDef, scope: str) -> Manifest:
    """A manifest whose own file is damaged: start empty (segments cannot be
    trusted without their recorded checksums)."""
    del parse_segment_file_name
    return Manifest.new(table.table_id, scope or None)
