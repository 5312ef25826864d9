"""Schema at a glance: ``%kalam tables [namespace]`` and ``%kalam describe [ns.]table``.

Both are built from the engine's system tables (``system.tables``,
``system.columns``, ``system.segments``) plus one ``count(*)`` per table,
whose scan figures give the hot rows the user can see, and are shown as
ordinary result tables. Nothing here reads the engine's internals.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from engine import Result
from kalam_magic.session import AnyEngine

COMMANDS = ("tables", "describe")
USAGE = "%kalam tables [namespace]   |   %kalam describe [namespace.]table"


class SchemaCommandError(ValueError):
    """A schema command used the wrong way (shown as a usage error)."""


def _query(engine: AnyEngine, user: str, sql: str, params: dict[str, Any] | None = None) -> Result:
    return engine.execute(sql, params, user=user)


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


def _hot_rows(engine: AnyEngine, user: str, namespace: str, table: str) -> int:
    qualified = f'"{namespace}"."{table}"'
    res = _query(engine, user, f"SELECT count(*) FROM {qualified}")
    return sum(f.get("hot_rows", 0) for f in res.stats.values())


def _segments(engine: AnyEngine, user: str, namespace: str | None) -> dict[tuple[str, str], dict]:
    sql = "SELECT namespace, table_name, row_count, size_bytes, created_at FROM system.segments"
    params = None
    if namespace is not None:
        sql += " WHERE namespace = :ns"
        params = {"ns": namespace}
    out: dict[tuple[str, str], dict] = {}
    for ns, name, rows, size, created in _query(engine, user, sql, params).rows():
        info = out.setdefault((ns, name), {"segments": 0, "rows": 0, "size": 0, "last": None})
        info["segments"] += 1
        info["rows"] += rows or 0
        info["size"] += size or 0
        if created is not None and (info["last"] is None or created > info["last"]):
            info["last"] = created
    return out


def tables(engine: AnyEngine, user: str, namespace: str | None = None) -> Result:
    """One row per table: type, columns, primary key, hot rows, segments, size, last flush."""
    where = " WHERE namespace = :ns" if namespace else ""
    params = {"ns": namespace} if namespace else None
    listed = _query(
        engine,
        user,
        f"SELECT namespace, table_name, table_type FROM system.tables{where} "
        "ORDER BY namespace, table_name",
        params,
    ).rows()
    if namespace and not listed:
        known = _query(
            engine, user, "SELECT namespace FROM system.namespaces WHERE namespace = :ns", params
        )
        if len(known) == 0:
            raise SchemaCommandError(f"there is no namespace {namespace!r}")
    columns: dict[tuple[str, str], list[tuple[str, bool]]] = {}
    for ns, name, col, pk in _query(
        engine,
        user,
        f"SELECT namespace, table_name, column_name, is_primary_key FROM system.columns{where} "
        "ORDER BY namespace, table_name, ordinal",
        params,
    ).rows():
        columns.setdefault((ns, name), []).append((col, bool(pk)))
    segments = _segments(engine, user, namespace)
    rows = []
    for ns, name, kind in listed:
        cols = columns.get((ns, name), [])
        seg = segments.get((ns, name), {"segments": 0, "size": 0, "last": None})
        rows.append(
            {
                "namespace": ns,
                "table": name,
                "type": kind,
                "columns": len(cols),
                "primary key": ", ".join(c for c, pk in cols if pk) or None,
                "hot rows": _hot_rows(engine, user, ns, name),
                "segments": seg["segments"],
                "size": _size(seg["size"]),
                "last flush": seg["last"],
            }
        )
    schema = pa.schema(
        [
            ("namespace", pa.string()),
            ("table", pa.string()),
            ("type", pa.string()),
            ("columns", pa.int64()),
            ("primary key", pa.string()),
            ("hot rows", pa.int64()),
            ("segments", pa.int64()),
            ("size", pa.string()),
            ("last flush", pa.timestamp("us")),
        ]
    )
    return Result(table=pa.Table.from_pylist(rows, schema=schema), is_query=True)


def _split_name(name: str, default_namespace: str) -> tuple[str, str]:
    parts = name.split(".")
    if len(parts) == 1:
        return default_namespace, parts[0]
    if len(parts) == 2 and all(parts):
        return parts[0], parts[1]
    raise SchemaCommandError(f"describe takes a table name, [namespace.]table, got {name!r}")


def describe(
    engine: AnyEngine, user: str, name: str, *, namespace: str = "default"
) -> list[Result]:
    """A summary line of the table, then one row per column."""
    ns, table = _split_name(name, namespace)
    found = _query(
        engine,
        user,
        "SELECT table_type, schema_version FROM system.tables "
        "WHERE namespace = :ns AND table_name = :t",
        {"ns": ns, "t": table},
    ).rows()
    if not found:
        raise SchemaCommandError(f"there is no table {ns}.{table}")
    kind, version = found[0]
    cols = _query(
        engine,
        user,
        'SELECT column_name AS "column", data_type AS "type", is_primary_key AS "primary key", '
        'nullable, "default" FROM system.columns WHERE namespace = :ns AND table_name = :t '
        "ORDER BY ordinal",
        {"ns": ns, "t": table},
    )
    seg = _segments(engine, user, ns).get((ns, table), {"segments": 0, "size": 0, "last": None})
    hot = _hot_rows(engine, user, ns, table)
    flushed = seg["last"].isoformat(sep=" ", timespec="seconds") if seg["last"] else "never"
    summary = (
        f"{ns}.{table} · {kind} · schema version {version} · {hot:,} hot row(s) · "
        f"{seg['segments']:,} segment(s), {_size(seg['size'])} · last flush {flushed}"
    )
    return [Result(message=summary), Result(table=cols.table, is_query=True)]
