"""Handlers for namespaces, CREATE / DROP TABLE, SHOW and DESCRIBE."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson
import pyarrow as pa

from engine.catalog import flush_policy
from engine.catalog.model import TABLE_TYPES, Column, Namespace, TableDef
from engine.catalog.views import delete_view, list_views
from engine.errors import (
    InvalidOptionError,
    NamespaceExistsError,
    NamespaceNotEmptyError,
    SchemaError,
    TableExistsError,
    UnsupportedStatementError,
)
from engine.jobs.compact import parse_compact_policy
from engine.names import check_column, check_name, check_namespace
from engine.result import Result
from engine.sql import statements as st
from engine.sql.values import compile_default
from engine.types import canonical_type

if TYPE_CHECKING:
    from engine.core import Database

# Option name -> (validator, help). Every WITH option is declared here once.
TABLE_OPTIONS: dict[str, str] = {
    "TYPE": "USER, SHARED or STREAM",
    "FLUSH_POLICY": "'rows:N', 'bytes:N', 'interval:S' (comma-separated) or 'none'",
    "DELTA": "true (default) or false: publish the cold tier as a Delta Lake table",
    "COMPACT_POLICY": "'none' or 'segments:N,dead:P' (compact a scope above N segments or "
    "P% dead versions; default segments:64,dead:25 once 10,000 versions are dead)",
    "TTL_SECONDS": "STREAM tables: seconds a row stays visible",
    "COMPRESSION": "Parquet compression of flushed segments: zstd, snappy or none",
    "ROW_GROUP_SIZE": "rows per Parquet row group in flushed segments (default 32768)",
    "STORAGE_ID": "where the cold tier lives: 'local' (default) or a storage made with "
    "CREATE STORAGE (an S3-compatible bucket)",
}


def status(message: str, rows: int | None = None) -> Result:
    return Result(message=message, rows_affected=rows)


def table_result(rows: list[dict[str, Any]], schema: pa.Schema) -> Result:
    return Result(table=pa.Table.from_pylist(rows, schema=schema), is_query=True)


# ---------------------------------------------------------------- namespaces


def create_namespace(engine: Database, s: st.CreateNamespace, params: dict, user: str) -> Result:
    name = check_namespace(s.name, creating=True)
    with engine.lock:
        if engine.catalog.find_namespace(name) is not None:
            if s.if_not_exists:
                return status(f"Namespace {name} already exists", 0)
            raise NamespaceExistsError(f"Namespace '{name}' already exists", namespace=name)
        txn = engine.begin()
        engine.catalog.put_namespace(txn, Namespace(name, engine.now_us()))
        txn.commit()
    return status(f"Namespace {name} created", 0)


def drop_namespace(engine: Database, s: st.DropNamespace, params: dict, user: str) -> Result:
    name = check_name(s.name, "namespace")
    if engine.catalog.find_namespace(name) is None:
        if s.if_exists:
            return status(f"Namespace {name} does not exist", 0)
        engine.catalog.get_namespace(name)
    if name == "default":
        raise InvalidOptionError("The default namespace cannot be dropped")
    while True:
        listed = engine.catalog.tables(name)
        with engine.changing(*listed) as tables:
            if {t.table_id for t in engine.catalog.tables(name)} != {t.table_id for t in tables}:
                continue  # a table was created or dropped meanwhile: lock the new set
            # Its views go with it (a view left behind would reappear in a
            # namespace created later under the same name).
            views = list_views(engine.store, name)
            if (tables or views) and not s.cascade:
                raise NamespaceNotEmptyError(
                    f"Namespace '{name}' has {len(tables)} table(s) and {len(views)} view(s); "
                    f"drop them first or use DROP NAMESPACE {name} CASCADE",
                    namespace=name,
                )
            txn = engine.begin()
            removals = [_stage_drop_table(engine, txn, t) for t in tables]
            for view in views:
                delete_view(txn, view)
            engine.catalog.delete_namespace(txn, name)
            txn.commit()
            for remove in removals:
                remove()
            if engine.namespace == name:
                engine.namespace = "default"
            _remove_dir(engine, name)
        return status(f"Namespace {name} dropped", 0)


def show_namespaces(engine: Database, s: st.ShowNamespaces, params: dict, user: str) -> Result:
    schema = pa.schema([("namespace", pa.string()), ("table_count", pa.int64())])
    counts: dict[str, int] = {}
    for t in engine.catalog.tables():
        counts[t.namespace] = counts.get(t.namespace, 0) + 1
    rows = [
        {"namespace": n, "table_count": counts.get(n, 0)} for n in sorted(engine.catalog.namespaces)
    ]
    return table_result(rows, schema)


def use_namespace(engine: Database, s: st.UseNamespace, params: dict, user: str) -> Result:
    engine.catalog.get_namespace(s.name)
    engine.namespace = s.name
    return status(f"Using namespace {s.name}")


# ---------------------------------------------------------------- tables


def _options(s: st.CreateTable) -> tuple[str, dict[str, Any]]:
    given: dict[str, Any] = {}
    for key, value in s.options:
        if key not in TABLE_OPTIONS:
            known = ", ".join(sorted(TABLE_OPTIONS))
            raise InvalidOptionError(f"Unknown table option '{key}'. Known options: {known}")
        if key in given:
            raise InvalidOptionError(f"Option '{key}' is given twice")
        given[key] = value
    table_type = s.table_type
    if "TYPE" in given:
        declared = str(given.pop("TYPE")).upper()
        if declared not in TABLE_TYPES:
            raise InvalidOptionError(f"TYPE must be USER, SHARED or STREAM, not '{declared}'")
        if table_type is not None and table_type != declared:
            raise InvalidOptionError(
                f"CREATE {table_type} TABLE conflicts with TYPE = '{declared}'"
            )
        table_type = declared
    table_type = table_type or "SHARED"
    options: dict[str, Any] = {}

    if "TTL_SECONDS" in given:
        if table_type != "STREAM":
            raise InvalidOptionError("TTL_SECONDS applies to STREAM tables only")
        ttl = given.pop("TTL_SECONDS")
        if isinstance(ttl, str) and ttl.isdigit():
            ttl = int(ttl)
        if not isinstance(ttl, int) or isinstance(ttl, bool) or ttl <= 0:
            raise InvalidOptionError(f"TTL_SECONDS must be a positive integer, not {ttl!r}")
        options["ttl_seconds"] = ttl
    elif table_type == "STREAM":
        raise InvalidOptionError("STREAM tables need TTL_SECONDS, e.g. WITH (TTL_SECONDS = 3600)")
    if "FLUSH_POLICY" in given:
        if table_type == "STREAM":
            raise InvalidOptionError("STREAM tables are never flushed: FLUSH_POLICY does not apply")
        options["flush_policy"] = parse_flush_policy(str(given.pop("FLUSH_POLICY")))
    if "COMPACT_POLICY" in given:
        if table_type == "STREAM":
            raise InvalidOptionError(
                "STREAM tables have no segments: COMPACT_POLICY does not apply"
            )
        options["compact_policy"] = parse_compact_policy(str(given.pop("COMPACT_POLICY")))
    if "COMPRESSION" in given:
        comp = str(given.pop("COMPRESSION")).lower()
        if comp not in ("zstd", "snappy", "none"):
            raise InvalidOptionError(f"COMPRESSION must be zstd, snappy or none, not '{comp}'")
        options["compression"] = comp
    if "ROW_GROUP_SIZE" in given:
        rg = given.pop("ROW_GROUP_SIZE")
        if not isinstance(rg, int) or rg < 1:
            raise InvalidOptionError("ROW_GROUP_SIZE must be a positive integer")
        options["row_group_size"] = rg
    if "DELTA" in given:
        if table_type == "STREAM":
            raise InvalidOptionError("STREAM tables have no segments: DELTA does not apply")
        options["delta"] = parse_delta_option(given.pop("DELTA"))
    if "STORAGE_ID" in given:
        options["storage_id"] = str(given.pop("STORAGE_ID")).lower()
    return table_type, options


def check_storage_id(engine: Database, table_type: str, options: dict[str, Any]) -> None:
    """STORAGE_ID names 'local' or a registered storage; STREAM tables have no cold tier."""
    sid = options.get("storage_id")
    if sid is None or sid == "local":
        return
    engine.storages.get(sid)  # raises StorageNotFoundError naming the known ones
    if table_type == "STREAM":
        raise InvalidOptionError("STREAM tables are never flushed: STORAGE_ID does not apply")


def parse_delta_option(value: Any) -> bool:
    """DELTA = true | false (also 'on'/'off', 1/0): publish a Delta Lake log."""
    text = str(value).strip().lower()
    if text in ("true", "on", "1"):
        return True
    if text in ("false", "off", "0"):
        return False
    raise InvalidOptionError(f"DELTA must be true or false, not {value!r}")


def parse_flush_policy(text: str) -> dict[str, int]:
    """FLUSH_POLICY text as stored (see ``engine.catalog.flush_policy``)."""
    if text.replace(" ", "").lower() == "none":
        return dict(flush_policy.NONE)
    policy: dict[str, int] = {}
    for part in text.replace(" ", "").split(","):
        key, _, value = part.partition(":")
        if (
            key not in ("rows", "bytes", "interval")
            or not value.isdigit()
            or int(value) <= 0
            or key in policy
        ):
            raise InvalidOptionError(
                f"Invalid FLUSH_POLICY '{text}': use 'rows:N', 'bytes:N', 'interval:S' "
                "(comma-separated, e.g. 'rows:N,interval:S') or 'none'"
            )
        policy[key] = int(value)
    return policy


def create_table(engine: Database, s: st.CreateTable, params: dict, user: str) -> Result:
    ns = check_name(s.table.namespace or engine.namespace, "namespace")
    name = check_name(s.table.name, "table")
    table_type, options = _options(s)
    check_storage_id(engine, table_type, options)
    columns: list[Column] = []
    seen: set[str] = set()
    for i, spec in enumerate(s.columns, start=1):
        cname = check_column(spec.name)
        if cname.lower() in seen:
            raise SchemaError(f"Duplicate column '{cname}' in table {ns}.{name}")
        seen.add(cname.lower())
        ctype = canonical_type(spec.type_name)
        default = compile_default(spec.default, ctype, cname) if spec.default is not None else None
        columns.append(
            Column(
                i,
                cname,
                ctype,
                spec.nullable and not spec.primary_key,
                spec.primary_key,
                default,
                key_position=spec.key_position,
                unique=spec.unique and not spec.primary_key,
            )
        )
    if not columns:
        raise SchemaError("A table needs at least one column")
    try:
        add_table(engine, ns, name, table_type, columns, options)
    except TableExistsError:
        if s.if_not_exists:
            return status(f"Table {ns}.{name} already exists", 0)
        raise
    return status(f"Table {ns}.{name} created", 0)


def add_table(
    engine: Database,
    ns: str,
    name: str,
    table_type: str,
    columns: list[Column],
    options: dict[str, Any],
) -> TableDef:
    """Validate the key rules and add a table to the catalog (one batch)."""
    pks = [c for c in columns if c.primary_key]
    if len(pks) > 1 and any(c.key_position == 0 for c in pks):
        raise SchemaError(
            "A table has one PRIMARY KEY: for a key of several columns write "
            f"PRIMARY KEY ({', '.join(c.name for c in pks)})"
        )
    if not pks and table_type != "STREAM":
        raise SchemaError(f"{table_type} tables need a PRIMARY KEY column")
    for pk in pks:
        if pk.type in ("FLOAT", "DOUBLE", "BYTES", "BOOLEAN"):
            raise SchemaError(f"Primary key column '{pk.name}' cannot be of type {pk.type}")
    with engine.lock:
        engine.catalog.get_namespace(ns)
        if engine.catalog.find_table(ns, name) is not None:
            raise TableExistsError(f"Table '{ns}.{name}' already exists", namespace=ns, table=name)
        now = engine.now_us()
        txn = engine.begin()
        table = TableDef(
            table_id=engine.catalog.allocate_table_id(txn),
            namespace=ns,
            name=name,
            table_type=table_type,
            columns=tuple(columns),
            options=options,
            created_at=now,
            updated_at=now,
            schema_version=1,
            next_column_id=len(columns) + 1,
        )
        engine.catalog.put_table(txn, table)
        txn.commit()
    return table


def _stage_drop_table(engine: Database, txn: Any, table: TableDef) -> Callable[[], None]:
    """Stage the catalog side of a DROP; returns what removes the directory
    once the batch has committed (finished on open after a crash)."""
    engine.provider(table).drop(txn)
    engine.catalog.delete_table(txn, table)
    txn.after_commit(lambda: engine.forget_provider(table.table_id))
    return engine.stage_storage_move(txn, table, None)


def _remove_dir(engine: Database, *parts: str) -> None:
    from engine.names import safe_path

    path = safe_path(engine.data_dir, "storage", *parts)
    if path.exists():
        shutil.rmtree(path)


def drop_table(engine: Database, s: st.DropTable, params: dict, user: str) -> Result:
    ns = s.table.namespace or engine.namespace
    found = engine.catalog.find_table(ns, s.table.name)
    if found is None:
        if s.if_exists:
            return status(f"Table {ns}.{s.table.name} does not exist", 0)
        engine.resolve(s.table)
    assert found is not None
    # The commit lock waits for a running flush of this table to finish.
    with engine.changing(found) as (table,):
        txn = engine.begin()
        remove = _stage_drop_table(engine, txn, table)
        txn.commit()
        remove()
    return status(f"Table {table.qualified_name} dropped", 0)


def show_tables(engine: Database, s: st.ShowTables, params: dict, user: str) -> Result:
    if s.namespace is not None:
        engine.catalog.get_namespace(s.namespace)
    schema = pa.schema(
        [("namespace", pa.string()), ("table_name", pa.string()), ("table_type", pa.string())]
    )
    rows = [
        {"namespace": t.namespace, "table_name": t.name, "table_type": t.table_type}
        for t in engine.catalog.tables(s.namespace)
    ]
    return table_result(rows, schema)


_DESCRIBE = pa.schema(
    [
        ("column_name", pa.string()),
        ("data_type", pa.string()),
        ("nullable", pa.bool_()),
        ("default", pa.string()),
        ("primary_key", pa.bool_()),
        ("column_id", pa.int64()),
    ]
)


def describe_table(engine: Database, s: st.DescribeTable, params: dict, user: str) -> Result:
    table = engine.resolve(s.table)
    if s.history:
        return _history(table)
    rows = [
        {
            "column_name": c.name,
            "data_type": c.type,
            "nullable": c.nullable,
            "default": c.default.text if c.default else None,
            "primary_key": c.primary_key,
            "column_id": c.id,
        }
        for c in table.columns
    ]
    return table_result(rows, _DESCRIBE)


_HISTORY = pa.schema(
    [
        ("schema_version", pa.int64()),
        ("change", pa.string()),
        ("changed_at", pa.timestamp("us")),
        ("columns", pa.string()),
        ("current", pa.bool_()),
    ]
)


def _history(table: TableDef) -> Result:
    def describe(cols: list[dict[str, Any]]) -> str:
        return ", ".join(f"{c['name']} {c['type']} (#{c['id']})" for c in cols)

    rows = [
        {
            "schema_version": h["version"],
            "change": h["change"],
            "changed_at": h["changed_at"],
            "columns": describe(h["columns"]),
            "current": False,
        }
        for h in table.history
    ]
    rows.append(
        {
            "schema_version": table.schema_version,
            "change": table.change,
            "changed_at": table.updated_at,
            "columns": describe([c.to_dict() for c in table.columns]),
            "current": True,
        }
    )
    return table_result(rows, _HISTORY)


def create_index(engine: Database, s: st.CreateIndex, params: dict, user: str) -> Result:
    """Refused, never a silent no-op: the engine keeps no secondary index, so
    accepting the statement would promise lookups it cannot give. (A UNIQUE
    index is a constraint and is kept: ``engine/sql/unique.py``.)"""
    table = engine.resolve(s.table)  # a missing table is still named first
    raise UnsupportedStatementError(
        f"CREATE INDEX is not supported: {table.qualified_name} has no secondary indexes "
        "(queries prune Parquet segments by per-column min/max statistics and find "
        "primary keys directly); nothing was created. For a uniqueness constraint use "
        "CREATE UNIQUE INDEX or a UNIQUE column"
    )


def _storage_root(table: TableDef) -> str:
    sid = table.options.get("storage_id")
    if sid and sid != "local":
        return f"{{storage {sid}}}/{table.namespace}/{table.name}"
    return f"storage/{table.namespace}/{table.name}"


def options_json(table: TableDef) -> str:
    """The table's configuration as JSON (system.tables.options)."""
    policy = table.options.get("flush_policy") or {}
    doc = {
        "table_type": table.table_type,
        "flush_policy": {
            "row_limit": policy.get("rows"),
            "interval_seconds": policy.get("interval"),
            # shown only when set, so the common shapes stay as they were
            **({"byte_limit": policy["bytes"]} if "bytes" in policy else {}),
            **({"none": True} if policy.get("none") else {}),
        }
        if table.table_type != "STREAM"
        else None,
        "ttl_seconds": table.options.get("ttl_seconds"),
        "storage_path": _storage_root(table) + ("/{user_id}" if table.table_type == "USER" else ""),
        "compression": table.options.get("compression", "zstd"),
        **{k: v for k, v in table.options.items() if k not in ("flush_policy",)},
    }
    return orjson.dumps(doc, option=orjson.OPT_SORT_KEYS).decode()
