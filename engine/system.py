"""System tables: read-only views of engine state, built on demand.

Each entry is a function ``(engine, user) -> pyarrow.Table``; nothing is
maintained on the write path."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pyarrow as pa

from engine.errors import TableNotFoundError

if TYPE_CHECKING:
    from engine.api import Engine

_TS = pa.timestamp("us")


def _namespaces(engine: Engine, user: str) -> pa.Table:
    counts: dict[str, int] = {}
    for t in engine.catalog.tables():
        counts[t.namespace] = counts.get(t.namespace, 0) + 1
    rows = [
        {"namespace": ns.name, "created_at": ns.created_at, "table_count": counts.get(ns.name, 0),
         "options": "{}"}
        for ns in sorted(engine.catalog.namespaces.values(), key=lambda n: n.name)
    ]
    schema = pa.schema([("namespace", pa.string()), ("created_at", _TS),
                        ("table_count", pa.int64()), ("options", pa.string())])
    return pa.Table.from_pylist(rows, schema=schema)


def _tables(engine: Engine, user: str) -> pa.Table:
    from engine.sql.ddl import options_json

    rows = [
        {"namespace": t.namespace, "table_name": t.name, "table_type": t.table_type,
         "created_at": t.created_at, "updated_at": t.updated_at,
         "schema_version": t.schema_version, "options": options_json(t)}
        for t in engine.catalog.tables()
    ]
    schema = pa.schema([("namespace", pa.string()), ("table_name", pa.string()),
                        ("table_type", pa.string()), ("created_at", _TS), ("updated_at", _TS),
                        ("schema_version", pa.int64()), ("options", pa.string())])
    return pa.Table.from_pylist(rows, schema=schema)


def _columns(engine: Engine, user: str) -> pa.Table:
    rows = [
        {"namespace": t.namespace, "table_name": t.name, "column_id": c.id,
         "column_name": c.name, "data_type": c.type, "nullable": c.nullable,
         "default": c.default.text if c.default else None, "is_primary_key": c.primary_key,
         "ordinal": i}
        for t in engine.catalog.tables()
        for i, c in enumerate(t.columns, start=1)
    ]
    schema = pa.schema([("namespace", pa.string()), ("table_name", pa.string()),
                        ("column_id", pa.int64()), ("column_name", pa.string()),
                        ("data_type", pa.string()), ("nullable", pa.bool_()),
                        ("default", pa.string()), ("is_primary_key", pa.bool_()),
                        ("ordinal", pa.int64())])
    return pa.Table.from_pylist(rows, schema=schema)


SYSTEM_TABLES: dict[str, Callable[[Engine, str], pa.Table]] = {
    "namespaces": _namespaces,
    "tables": _tables,
    "columns": _columns,
}


def system_table(engine: Engine, name: str, user: str) -> pa.Table:
    fn = SYSTEM_TABLES.get(name)
    if fn is None:
        known = ", ".join(f"system.{n}" for n in sorted(SYSTEM_TABLES))
        raise TableNotFoundError(f"System table 'system.{name}' does not exist. Known: {known}")
    return fn(engine, user)
