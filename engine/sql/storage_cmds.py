"""FLUSH TABLE / FLUSH ALL, COMPACT TABLE / COMPACT ALL, SHOW MANIFEST and REPAIR TABLE."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from engine.catalog.model import TableDef
from engine.delta.publish import delta_pending, delta_rows
from engine.errors import SqlParseError
from engine.jobs.compact import check_compactable, compact_table
from engine.jobs.flush import check_flushable, flush_table, pending_rows
from engine.result import Result
from engine.sql import statements as st
from engine.system import SEGMENT_FIELDS, segment_row

if TYPE_CHECKING:
    from engine.core import Database


def _job(
    engine: Database, kind: str, table: TableDef, run: Callable[[Any], Any], *, wait: bool
) -> Result:
    """Run ``run`` as a ``kind`` job on ``table``: its id at once, or (``wait``)
    its outcome, the job's own error re-raised."""
    job = engine.jobs.submit(kind, run, namespace=table.namespace, table_name=table.name)
    if not wait:
        noun = "Flush" if kind == "flush" else "Compaction"
        return Result(
            message=f"{noun} job {job.job_id} started for {table.qualified_name}",
            job_id=job.job_id,
        )
    engine.jobs.wait(job)
    if isinstance(job.result, BaseException):
        raise job.result
    return Result(message=job.message, rows_affected=job.rows, job_id=job.job_id)


def _tables_of(engine: Database, namespace: str | None) -> list[TableDef]:
    """The tables FLUSH ALL / COMPACT ALL [IN ns] act on (streams are never flushed)."""
    if namespace is not None:
        engine.catalog.get_namespace(namespace)
    return [t for t in engine.catalog.tables(namespace) if t.table_type != "STREAM"]


def start_flush(
    engine: Database,
    table: TableDef,
    *,
    wait: bool,
    progress: Callable[[int, int], None] | None = None,
) -> Result:
    check_flushable(table)
    prov = engine.provider(table)
    if not pending_rows(prov) and not delta_pending(engine, table):
        return Result(message=f"Nothing to flush in {table.qualified_name}", rows_affected=0)

    def run(job: Any) -> Any:
        report = flush_table(engine, table, progress=progress)
        job.rows, job.segments, job.message = report.rows, report.segments, report.message
        return report

    return _job(engine, "flush", table, run, wait=wait)


def flush(engine: Database, s: st.FlushTable, params: dict[str, Any], user: str) -> Result:
    progress = engine.call_progress()
    if s.table is not None:
        table = engine.resolve(s.table)
        return start_flush(engine, table, wait=s.wait or progress is not None, progress=progress)
    results = [start_flush(engine, t, wait=s.wait) for t in _tables_of(engine, s.namespace)]
    started = [r for r in results if r.job_id]
    rows = sum(r.rows_affected or 0 for r in results)
    where = f" in {s.namespace}" if s.namespace else ""
    if not started:
        return Result(message=f"Nothing to flush{where}", rows_affected=0)
    verb = "Flushed" if s.wait else "Started flushing"
    return Result(
        message=f"{verb} {len(started)} table(s){where}" + (f", {rows:,} row(s)" if s.wait else ""),
        rows_affected=rows if s.wait else None,
        job_id=",".join(r.job_id or "" for r in started),
    )


def start_compact(
    engine: Database,
    table: TableDef,
    *,
    wait: bool,
    progress: Callable[[int, int], None] | None = None,
) -> Result:
    check_compactable(table)

    def run(job: Any) -> Any:
        def step(done: int, total: int) -> None:
            job.rows = done
            job.message = f"Compacting {table.qualified_name}: {done:,} of {total:,} row(s) read"
            if progress is not None:
                progress(done, total)

        report = compact_table(engine, table, progress=step)
        job.rows, job.segments, job.message = report.rows, report.segments_after, report.message
        return report

    return _job(engine, "compact", table, run, wait=wait)


def compact(engine: Database, s: st.CompactTable, params: dict[str, Any], user: str) -> Result:
    progress = engine.call_progress()
    if s.table is not None:
        table = engine.resolve(s.table)
        return start_compact(engine, table, wait=s.wait or progress is not None, progress=progress)
    results = [start_compact(engine, t, wait=s.wait) for t in _tables_of(engine, s.namespace)]
    where = f" in {s.namespace}" if s.namespace else ""
    if not results:
        return Result(message=f"Nothing to compact{where}", rows_affected=0)
    verb = "Compacted" if s.wait else "Started compacting"
    return Result(
        message=f"{verb} {len(results)} table(s){where}",
        job_id=",".join(r.job_id or "" for r in results),
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


def show_delta(engine: Database, s: st.KalamCommand, params: dict[str, Any], user: str) -> Result:
    """SHOW DELTA [namespace.]table: per scope, the Delta version and the
    manifest version it was derived from, its files and rows."""
    table = engine.resolve(_command_table(s, "SHOW DELTA"))
    prov = engine.provider(table)
    scopes = prov.read_scopes(user) if table.table_type == "USER" else prov.cold.scopes()
    rows = delta_rows(engine, table, [sc for sc in scopes if sc in prov.cold.scopes()])
    return Result(table=pa.Table.from_pylist(rows, schema=_DELTA_SCHEMA), is_query=True)


_DELTA_SCHEMA = pa.schema(
    [
        ("scope", pa.string()),
        ("path", pa.string()),
        ("delta_version", pa.int64()),
        ("manifest_version", pa.int64()),
        ("current_manifest_version", pa.int64()),
        ("files", pa.int64()),
        ("rows", pa.int64()),
        ("in_sync", pa.bool_()),
        ("publishing", pa.bool_()),
    ]
)


def repair(engine: Database, s: st.KalamCommand, params: dict[str, Any], user: str) -> Result:
    """REPAIR TABLE [namespace.]table (the work is in ``engine.sql.repair``)."""
    from engine.sql.repair import repair_table

    return repair_table(engine, engine.resolve(_command_table(s, "REPAIR TABLE")))
