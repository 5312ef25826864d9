"""System tables: read-only views of engine state, built on demand.

Each entry is a function ``(engine, user) -> pyarrow.Table``; nothing is
maintained on the write path. Only ``dba`` and ``system`` may read them,
except ``system.live_queries``, where every user sees its own rows. The check
happens where a query's tables are resolved, so it holds for every query
shape (subqueries, CTEs, UNION, EXPLAIN, joins).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC
from typing import TYPE_CHECKING, Any

import orjson
import pyarrow as pa

from engine.errors import KalamError, PermissionDeniedError, TableNotFoundError

if TYPE_CHECKING:
    from engine.core import Database

_TS = pa.timestamp("us")


def _table(rows: list[dict[str, Any]], fields: list[tuple[str, pa.DataType]]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=pa.schema(fields))


def _namespaces(engine: Database, user: str) -> pa.Table:
    counts: dict[str, int] = {}
    for t in engine.catalog.tables():
        counts[t.namespace] = counts.get(t.namespace, 0) + 1
    rows = [
        {
            "namespace": ns.name,
            "created_at": ns.created_at,
            "table_count": counts.get(ns.name, 0),
            "options": orjson.dumps(ns.options).decode(),
        }
        for ns in sorted(engine.catalog.namespaces.values(), key=lambda n: n.name)
    ]
    return _table(
        rows,
        [
            ("namespace", pa.string()),
            ("created_at", _TS),
            ("table_count", pa.int64()),
            ("options", pa.string()),
        ],
    )


def _tables(engine: Database, user: str) -> pa.Table:
    from engine.sql.ddl import options_json

    rows = [
        {
            "namespace": t.namespace,
            "table_name": t.name,
            "table_type": t.table_type,
            "created_at": t.created_at,
            "updated_at": t.updated_at,
            "schema_version": t.schema_version,
            "options": options_json(t),
        }
        for t in engine.catalog.tables()
    ]
    from engine.sql.views import view_rows

    rows = sorted(rows + view_rows(engine), key=lambda r: (r["namespace"], r["table_name"]))
    return _table(
        rows,
        [
            ("namespace", pa.string()),
            ("table_name", pa.string()),
            ("table_type", pa.string()),
            ("created_at", _TS),
            ("updated_at", _TS),
            ("schema_version", pa.int64()),
            ("options", pa.string()),
        ],
    )


def _columns(engine: Database, user: str) -> pa.Table:
    rows = [
        {
            "namespace": t.namespace,
            "table_name": t.name,
            "column_id": c.id,
            "column_name": c.name,
            "data_type": c.type,
            "nullable": c.nullable,
            "default": c.default.text if c.default else None,
            "is_primary_key": c.primary_key,
            "ordinal": i,
            # 1-based place in the primary key (a composite key has several).
            "key_position": t.key_columns.index(c) + 1 if c.primary_key else None,
        }
        for t in engine.catalog.tables()
        for i, c in enumerate(t.columns, start=1)
    ]
    return _table(
        rows,
        [
            ("namespace", pa.string()),
            ("table_name", pa.string()),
            ("column_id", pa.int64()),
            ("column_name", pa.string()),
            ("data_type", pa.string()),
            ("nullable", pa.bool_()),
            ("default", pa.string()),
            ("is_primary_key", pa.bool_()),
            ("ordinal", pa.int64()),
            ("key_position", pa.int64()),
        ],
    )


def _jobs(engine: Database, user: str) -> pa.Table:
    rows = [
        {
            "job_id": j.job_id,
            "job_type": j.job_type,
            "namespace": j.namespace,
            "table_name": j.table_name,
            "scope": j.scope,
            "status": j.status,
            "rows": j.rows,
            "segments": j.segments,
            "message": j.message,
            "error": j.error,
            "created_at": j.created_at,
            "started_at": j.started_at,
            "finished_at": j.finished_at,
        }
        for j in list(engine.jobs.jobs.values())
    ]
    return _table(
        rows,
        [
            ("job_id", pa.string()),
            ("job_type", pa.string()),
            ("namespace", pa.string()),
            ("table_name", pa.string()),
            ("scope", pa.string()),
            ("status", pa.string()),
            ("rows", pa.int64()),
            ("segments", pa.int64()),
            ("message", pa.string()),
            ("error", pa.string()),
            ("created_at", _TS),
            ("started_at", _TS),
            ("finished_at", _TS),
        ],
    )


def _each_manifest(engine: Database) -> Any:
    for t in engine.catalog.tables():
        cold = engine.provider(t).cold
        for scope in cold.scopes():
            try:
                m = cold.manifest(scope)
            except KalamError:
                m = cold.hot_manifest(scope)
            if m is not None:
                yield t, scope, m


def _manifests(engine: Database, user: str) -> pa.Table:
    from engine.manifest import encode, manifest_path, read_manifest_json

    rows = []
    for t, scope, m in _each_manifest(engine):
        path = manifest_path(engine.provider(t).cold.scope_dir(scope))
        text = encode(m, pretty=True)
        try:
            # The cold copy is manifest.json with its change log replayed.
            in_sync = orjson.loads(encode(read_manifest_json(path))) == orjson.loads(text)
        except (OSError, KalamError):
            in_sync = False
        rows.append(
            {
                "namespace": t.namespace,
                "table_name": t.name,
                "scope": scope or None,
                "version": m.version,
                "segment_count": len(m.segments),
                "row_count": m.row_count,
                "size_bytes": m.size_bytes,
                "flushed_seq": m.flushed_seq,
                "in_sync": in_sync,
                "manifest_json": text.decode(),
            }
        )
    return _table(
        rows,
        [
            ("namespace", pa.string()),
            ("table_name", pa.string()),
            ("scope", pa.string()),
            ("version", pa.int64()),
            ("segment_count", pa.int64()),
            ("row_count", pa.int64()),
            ("size_bytes", pa.int64()),
            ("flushed_seq", pa.int64()),
            ("in_sync", pa.bool_()),
            ("manifest_json", pa.string()),
        ],
    )


SEGMENT_FIELDS: list[tuple[str, pa.DataType]] = [
    ("namespace", pa.string()),
    ("table_name", pa.string()),
    ("scope", pa.string()),
    ("segment_id", pa.int64()),
    ("path", pa.string()),
    ("row_count", pa.int64()),
    ("size_bytes", pa.int64()),
    ("min_seq", pa.int64()),
    ("max_seq", pa.int64()),
    ("schema_version", pa.int64()),
    ("checksum", pa.string()),
    ("created_at", _TS),
    ("column_stats", pa.string()),
]


def segment_row(table: Any, scope: str, s: Any) -> dict[str, Any]:
    """One segment as system.segments (and SHOW MANIFEST) shows it."""
    return {
        "namespace": table.namespace,
        "table_name": table.name,
        "scope": scope or None,
        "segment_id": s.id,
        "path": s.path,
        "row_count": s.row_count,
        "size_bytes": s.size_bytes,
        "min_seq": s.min_seq,
        "max_seq": s.max_seq,
        "schema_version": s.schema_version,
        "checksum": s.checksum,
        "created_at": s.created_at.astimezone(UTC).replace(tzinfo=None),
        "column_stats": orjson.dumps(s.column_stats).decode(),
    }


def _segments(engine: Database, user: str) -> pa.Table:
    rows = [segment_row(t, scope, s) for t, scope, m in _each_manifest(engine) for s in m.segments]
    return _table(rows, SEGMENT_FIELDS)


def _live_queries(engine: Database, user: str) -> pa.Table:
    """Running statements (kind query / dml / command / subscribe) and live
    subscriptions (kind ``subscription``, state ``live`` until they end)."""
    role = engine.users.get(user).role
    now_us = engine.now_us()
    rows = [
        {
            "query_id": q.query_id,
            "session_id": q.session_id,
            "user": q.user,
            "sql": q.sql,
            "start_time": q.start_time,
            "duration_ms": q.duration_ms,
            "state": q.state,
            "kind": q.kind,
            "table_name": None,
            "changes_delivered": None,
        }
        for q in engine.live.snapshot()
        if role in ("dba", "system") or q.user == user
    ]
    rows += [
        {
            "query_id": sub.id,
            "session_id": engine.session_id,
            "user": sub.user,
            "sql": sub.sql,
            "start_time": sub.created_us,
            "duration_ms": max(now_us - sub.created_us, 0) / 1000,
            "state": "live",
            "kind": "subscription",
            "table_name": sub.table_name,
            "changes_delivered": sub.changes_delivered,
        }
        for sub in engine.subscriptions.snapshot()
        if role in ("dba", "system") or sub.user == user
    ]
    return _table(
        rows,
        [
            ("query_id", pa.string()),
            ("session_id", pa.string()),
            ("user", pa.string()),
            ("sql", pa.string()),
            ("start_time", _TS),
            ("duration_ms", pa.float64()),
            ("state", pa.string()),
            ("kind", pa.string()),
            ("table_name", pa.string()),
            ("changes_delivered", pa.int64()),
        ],
    )


def _stats(engine: Database, user: str) -> pa.Table:
    from engine.version import __version__

    tables = engine.catalog.tables()
    hot = segments = size = 0
    for t in tables:
        prov = engine.provider(t)
        hot += sum(len(p.rows) for p in prov.partitions.values())
    for _, _, m in _each_manifest(engine):
        segments += len(m.segments)
        size += m.size_bytes
    flushes = sum(
        1 for j in engine.jobs.jobs.values() if j.job_type == "flush" and j.status == "completed"
    )
    metrics = [
        ("namespaces", len(engine.catalog.namespaces)),
        ("tables", len(tables)),
        ("hot_rows", hot),
        ("segments", segments),
        ("bytes_on_disk", size),
        ("statements_run", engine.metrics["statements"]),
        ("queries_run", engine.metrics["queries"]),
        ("segments_pruned", engine.metrics["segments_pruned"]),
        ("flushes", flushes),
        ("uptime_seconds", round(time.time() - engine.opened_at, 3)),
        ("engine_version", __version__),
        ("data_format_version", engine.format.version),  # see engine.storage.format
        *(("data_format_upgrade", action) for action in engine.format.actions),
        *engine.segment_cache.figures().items(),  # the warm cache of decoded segments
    ]
    return _table(
        [{"metric": k, "value": str(v)} for k, v in metrics],
        [("metric", pa.string()), ("value", pa.string())],
    )


def _users(engine: Database, user: str) -> pa.Table:
    rows = [
        {
            "user": u.user,
            "role": u.role,
            "created_at": u.created_at,
            # Whether a password is set; the hash itself is never shown.
            "has_password": u.password_hash is not None,
            "failed_login_attempts": u.failed_login_attempts,
            "locked_until": u.locked_until,
        }
        for u in sorted(engine.users.users.values(), key=lambda u: u.user)
    ]
    return _table(
        rows,
        [
            ("user", pa.string()),
            ("role", pa.string()),
            ("created_at", _TS),
            ("has_password", pa.bool_()),
            ("failed_login_attempts", pa.int32()),
            ("locked_until", _TS),
        ],
    )


def _storages(engine: Database, user: str) -> pa.Table:
    from engine.sql.storage_defs import storages_table

    return storages_table(engine)


SYSTEM_TABLES: dict[str, Callable[[Database, str], pa.Table]] = {
    "namespaces": _namespaces,
    "tables": _tables,
    "columns": _columns,
    "jobs": _jobs,
    "manifests": _manifests,
    "segments": _segments,
    "live_queries": _live_queries,
    "stats": _stats,
    "users": _users,
    "storages": _storages,
}
OPEN_TO_ALL = frozenset({"live_queries"})  # rows filtered to the caller's own


def system_table(engine: Database, name: str, user: str, role: str) -> pa.Table:
    fn = SYSTEM_TABLES.get(name)
    if fn is None:
        known = ", ".join(f"system.{n}" for n in sorted(SYSTEM_TABLES))
        raise TableNotFoundError(f"System table 'system.{name}' does not exist. Known: {known}")
    if role not in ("dba", "system") and name not in OPEN_TO_ALL:
        raise PermissionDeniedError(
            f"Permission denied: system.{name} is readable by the dba and system roles only"
        )
    return fn(engine, user)
