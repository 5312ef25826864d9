"""Flight SQL metadata results: SqlInfo, catalogs, namespaces (Flight SQL's
"db schemas"), tables, table types and primary keys, each as an Arrow table
with the exact schema FlightSql.proto prescribes.

Kalam has one catalog (``kalam``, the name DataFusion uses for it too); its
namespaces are the db schemas. Every Kalam table (USER, SHARED, STREAM) is
reported with table type ``TABLE``; its Kalam type travels in the schema's
metadata (``kalam.table_type``) for clients that care.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import pyarrow as pa

import engine.flight.proto as proto
from engine.version import __version__

if TYPE_CHECKING:
    from engine.catalog.catalog import Catalog
    from engine.catalog.model import TableDef

CATALOG = "kalam"
TABLE_TYPES = ("TABLE",)

CATALOGS_SCHEMA = pa.schema([pa.field("catalog_name", pa.utf8(), nullable=False)])
DB_SCHEMAS_SCHEMA = pa.schema(
    [pa.field("catalog_name", pa.utf8()), pa.field("db_schema_name", pa.utf8(), nullable=False)]
)
TABLES_SCHEMA = pa.schema(
    [
        pa.field("catalog_name", pa.utf8()),
        pa.field("db_schema_name", pa.utf8()),
        pa.field("table_name", pa.utf8(), nullable=False),
        pa.field("table_type", pa.utf8(), nullable=False),
    ]
)
TABLES_WITH_SCHEMA_SCHEMA = TABLES_SCHEMA.append(
    pa.field("table_schema", pa.binary(), nullable=False)
)
TABLE_TYPES_SCHEMA = pa.schema([pa.field("table_type", pa.utf8(), nullable=False)])
PRIMARY_KEYS_SCHEMA = pa.schema(
    [
        pa.field("catalog_name", pa.utf8()),
        pa.field("db_schema_name", pa.utf8()),
        pa.field("table_name", pa.utf8(), nullable=False),
        pa.field("column_name", pa.utf8(), nullable=False),
        pa.field("key_name", pa.utf8()),
        pa.field("key_sequence", pa.int32(), nullable=False),
    ]
)

# The dense union of GetSqlInfo's value column, member order = type code.
_SQL_INFO_MEMBERS = [
    pa.field("string_value", pa.utf8()),
    pa.field("bool_value", pa.bool_()),
    pa.field("bigint_value", pa.int64()),
    pa.field("int32_bitmask", pa.int32()),
    pa.field("string_list", pa.list_(pa.field("item", pa.utf8()))),
    pa.field(
        "int32_to_int32_list_map",
        pa.map_(pa.int32(), pa.list_(pa.field("item", pa.int32()))),
    ),
]
SQL_INFO_SCHEMA = pa.schema(
    [
        pa.field("info_name", pa.uint32(), nullable=False),
        pa.field("value", pa.dense_union(_SQL_INFO_MEMBERS), nullable=False),
    ]
)

# SqlInfo ids (FlightSql.proto enum SqlInfo) and the values Kalam reports.
SQL_INFO: dict[int, Any] = {
    0: "Kalam",  # FLIGHT_SQL_SERVER_NAME
    1: __version__,  # FLIGHT_SQL_SERVER_VERSION
    2: pa.__version__,  # FLIGHT_SQL_SERVER_ARROW_VERSION
    3: False,  # FLIGHT_SQL_SERVER_READ_ONLY
    4: True,  # FLIGHT_SQL_SERVER_SQL
    5: False,  # FLIGHT_SQL_SERVER_SUBSTRAIT
    8: ("int32", 0),  # FLIGHT_SQL_SERVER_TRANSACTION: none (each statement commits)
    9: False,  # FLIGHT_SQL_SERVER_CANCEL
    500: False,  # SQL_DDL_CATALOG
    501: True,  # SQL_DDL_SCHEMA (CREATE / DROP NAMESPACE)
    502: True,  # SQL_DDL_TABLE
    503: ("int32", 3),  # SQL_IDENTIFIER_CASE: lowercase
    504: '"',  # SQL_IDENTIFIER_QUOTE_CHAR
    506: True,  # SQL_ALL_TABLES_ARE_SELECTABLE
    515: True,  # SQL_SUPPORTS_COLUMN_ALIASING
    516: True,  # SQL_NULL_PLUS_NULL_IS_NULL
    524: True,  # SQL_SUPPORTS_NON_NULLABLE_COLUMNS
    529: "namespace",  # SQL_SCHEMA_TERM
    531: "catalog",  # SQL_CATALOG_TERM
    532: True,  # SQL_CATALOG_AT_START
}


def sql_info(cmd: proto.CommandGetSqlInfo) -> pa.Table:
    """The requested SqlInfo rows (all known ones when none are named);
    ids Kalam does not know are left out, as the specification allows."""
    wanted = list(cmd.info) or sorted(SQL_INFO)
    names: list[int] = []
    codes: list[int] = []
    offsets: list[int] = []
    members: list[list[Any]] = [[] for _ in _SQL_INFO_MEMBERS]
    for info in wanted:
        if info not in SQL_INFO:
            continue
        code, value = _member(SQL_INFO[info])
        names.append(info)
        codes.append(code)
        offsets.append(len(members[code]))
        members[code].append(value)
    children = [
        pa.array(values, type=field.type)
        for values, field in zip(members, _SQL_INFO_MEMBERS, strict=True)
    ]
    union = pa.UnionArray.from_dense(
        pa.array(codes, type=pa.int8()),
        pa.array(offsets, type=pa.int32()),
        children,
        [f.name for f in _SQL_INFO_MEMBERS],
        list(range(len(_SQL_INFO_MEMBERS))),
    )
    return pa.Table.from_arrays([pa.array(names, type=pa.uint32()), union], schema=SQL_INFO_SCHEMA)


def _member(value: Any) -> tuple[int, Any]:
    if isinstance(value, tuple) and value[0] == "int32":
        return 3, value[1]
    if isinstance(value, bool):
        return 1, value
    if isinstance(value, int):
        return 2, value
    if isinstance(value, list):
        return 4, value
    return 0, str(value)


def like(pattern: str | None) -> re.Pattern[str] | None:
    """A Flight SQL filter pattern (``%`` any run, ``_`` one character, ``\\``
    escapes) as a regular expression; ``None`` matches everything."""
    if pattern is None:
        return None
    out, i = [], 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        out.append(".*" if ch == "%" else "." if ch == "_" else re.escape(ch))
        i += 1
    return re.compile("".join(out), re.DOTALL)


def _matches(rx: re.Pattern[str] | None, name: str) -> bool:
    return rx is None or rx.fullmatch(name) is not None


def _catalog_ok(catalog: str | None) -> bool:
    return catalog is None or catalog == CATALOG


def catalogs() -> pa.Table:
    return pa.Table.from_pylist([{"catalog_name": CATALOG}], schema=CATALOGS_SCHEMA)


def db_schemas(catalog: Catalog, cmd: proto.CommandGetDbSchemas) -> pa.Table:
    rx = like(cmd.db_schema_filter_pattern)
    names = sorted(catalog.namespaces) if _catalog_ok(cmd.catalog) else []
    rows = [{"catalog_name": CATALOG, "db_schema_name": n} for n in names if _matches(rx, n)]
    return pa.Table.from_pylist(rows, schema=DB_SCHEMAS_SCHEMA)


def _visible_tables(
    catalog: Catalog, catalog_name: str | None, ns_pattern: str | None, table_pattern: str | None
) -> Iterable[TableDef]:
    if not _catalog_ok(catalog_name):
        return []
    ns_rx, table_rx = like(ns_pattern), like(table_pattern)
    return [
        t for t in catalog.tables() if _matches(ns_rx, t.namespace) and _matches(table_rx, t.name)
    ]


def table_schema(table: TableDef) -> pa.Schema:
    """A table's columns with the Flight SQL column metadata clients show."""
    fields = []
    for col in table.columns:
        meta = {
            "ARROW:FLIGHT:SQL:CATALOG_NAME": CATALOG,
            "ARROW:FLIGHT:SQL:DB_SCHEMA_NAME": table.namespace,
            "ARROW:FLIGHT:SQL:TABLE_NAME": table.name,
            "ARROW:FLIGHT:SQL:TYPE_NAME": col.type,
            "ARROW:FLIGHT:SQL:IS_AUTO_INCREMENT": "0",
            "ARROW:FLIGHT:SQL:IS_CASE_SENSITIVE": "1" if col.type == "TEXT" else "0",
            "ARROW:FLIGHT:SQL:IS_READ_ONLY": "0",
            "ARROW:FLIGHT:SQL:IS_SEARCHABLE": "1",
        }
        fields.append(pa.field(col.name, col.arrow_type, nullable=col.nullable, metadata=meta))
    return pa.schema(fields, metadata={"kalam.table_type": table.table_type})


def tables(catalog: Catalog, cmd: proto.CommandGetTables) -> pa.Table:
    if cmd.table_types and not set(cmd.table_types) & set(TABLE_TYPES):
        found: Iterable[TableDef] = []
    else:
        found = _visible_tables(
            catalog, cmd.catalog, cmd.db_schema_filter_pattern, cmd.table_name_filter_pattern
        )
    rows = []
    for t in found:
        row: dict[str, Any] = {
            "catalog_name": CATALOG,
            "db_schema_name": t.namespace,
            "table_name": t.name,
            "table_type": "TABLE",
        }
        if cmd.include_schema:
            row["table_schema"] = table_schema(t).serialize().to_pybytes()
        rows.append(row)
    schema = TABLES_WITH_SCHEMA_SCHEMA if cmd.include_schema else TABLES_SCHEMA
    return pa.Table.from_pylist(rows, schema=schema)


def table_types() -> pa.Table:
    return pa.Table.from_pylist([{"table_type": t} for t in TABLE_TYPES], schema=TABLE_TYPES_SCHEMA)


def primary_keys(catalog: Catalog, cmd: proto.CommandGetPrimaryKeys) -> pa.Table:
    rows = []
    if _catalog_ok(cmd.catalog):
        for t in catalog.tables():
            if t.name != cmd.table or (cmd.db_schema is not None and t.namespace != cmd.db_schema):
                continue
            pk = t.pk
            if pk is not None:
                rows.append(
                    {
                        "catalog_name": CATALOG,
                        "db_schema_name": t.namespace,
                        "table_name": t.name,
                        "column_name": pk.name,
                        "key_name": f"{t.name}_pkey",
                        "key_sequence": 1,
                    }
                )
    return pa.Table.from_pylist(rows, schema=PRIMARY_KEYS_SCHEMA)


METADATA_SCHEMAS: dict[type, pa.Schema] = {
    proto.CommandGetCatalogs: CATALOGS_SCHEMA,
    proto.CommandGetDbSchemas: DB_SCHEMAS_SCHEMA,
    proto.CommandGetTableTypes: TABLE_TYPES_SCHEMA,
    proto.CommandGetPrimaryKeys: PRIMARY_KEYS_SCHEMA,
    proto.CommandGetSqlInfo: SQL_INFO_SCHEMA,
}
