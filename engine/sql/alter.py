"""ALTER TABLE: schema evolution that never rewrites a segment.

Rows and segments refer to columns by stable id, so RENAME is a catalog
change, DROP hides an id (never reused) and ADD takes a fresh id whose
``fill`` value is what older rows read. Type changes are checked against
every stored value (hot and cold, every scope) when they narrow; hot values
are converted in place, segments are cast when read. Every change bumps the
schema version and keeps the previous version in the table's history.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pyarrow as pa
from sqlglot import exp

from engine.catalog.model import Column, TableDef
from engine.errors import (
    InvalidOptionError,
    NotNullViolationError,
    SchemaError,
    SqlParseError,
    TableExistsError,
    UnsupportedStatementError,
)
from engine.exec.cast import (
    cast_checked,
    check_type_change,
    convert_values,
    not_fitting,
    plain_strings,
    stored_values,
)
from engine.names import check_column, check_name, safe_path
from engine.result import Result
from engine.sql import statements as st
from engine.sql.ddl import parse_delta_option, parse_flush_policy
from engine.sql.mapping import _column, ident
from engine.sql.values import compile_default, default_value
from engine.storage import codec, keys
from engine.types import canonical_type

if TYPE_CHECKING:
    from engine.core import Database

# Changes that can never lose information.
_WIDENINGS = {
    ("SMALLINT", "INT"),
    ("SMALLINT", "BIGINT"),
    ("INT", "BIGINT"),
    ("FLOAT", "DOUBLE"),
    ("SMALLINT", "DOUBLE"),
    ("INT", "DOUBLE"),
    ("DATE", "TIMESTAMP"),
}


def alter_table(engine: Database, s: st.AlterTable, params: dict[str, Any], user: str) -> Result:
    actions = s.tree.args.get("actions") or []
    if len(actions) != 1:
        raise UnsupportedStatementError("ALTER TABLE takes exactly one change per statement")
    action = actions[0]
    handler = _ACTIONS.get(type(action))
    if handler is None:
        raise UnsupportedStatementError(f"Unsupported ALTER TABLE action: {action.sql('postgres')}")
    # The table's commit lock (waits for a running flush; no flush, ALTER or
    # DROP of this table can start) for the whole statement.
    with engine.changing(engine.resolve(s.table), engine_lock=False) as (table,):
        # A narrowing type change reads every stored value first, without the
        # engine lock, so writers are not blocked for the length of a scan. The
        # cold values cannot change meanwhile (no flush runs); hot rows written
        # meanwhile are checked again as they are converted, under the lock.
        _check_narrowing(engine, table, action)
        with engine.lock:
            return handler(engine, table, action, user)


def _check_narrowing(engine: Database, table: TableDef, action: Any) -> None:
    if not isinstance(action, exp.AlterColumn) or action.args.get("dtype") is None:
        return
    col = table.get_column(ident(action.this))
    new_type = canonical_type(action.args["dtype"].sql("postgres"))
    if new_type != col.type and not col.primary_key and not _is_widening(col.type, new_type):
        _check_all_fit(engine, table, col, new_type)


def _is_widening(old: str, new: str) -> bool:
    # BYTES -> TEXT is checked: bytes that are not UTF-8 do not fit.
    return (old, new) in _WIDENINGS or (new == "TEXT" and old != "BYTES")


def _commit(engine: Database, old: TableDef, new: TableDef, extra: Any = None) -> None:
    txn = engine.begin()
    if extra is not None:
        extra(txn)
    engine.catalog.put_table(txn, new, previous=old)
    txn.commit()


def _add(engine: Database, table: TableDef, action: exp.ColumnDef, user: str) -> Result:
    spec = _column(action)
    name = check_column(spec.name)
    if table.find_column(name) is not None or name.lower() in {
        c.name.lower() for c in table.columns
    }:
        if action.args.get("exists"):
            return Result(
                message=f"Column {name} already exists in {table.qualified_name}", rows_affected=0
            )
        raise SchemaError(f"Column '{name}' already exists in table {table.qualified_name}")
    if spec.primary_key:
        raise SchemaError("ADD COLUMN cannot add a PRIMARY KEY column")
    if spec.unique:
        raise SchemaError("ADD COLUMN cannot add a UNIQUE column: create the table with it")
    ctype = canonical_type(spec.type_name)
    default = compile_default(spec.default, ctype, name) if spec.default is not None else None
    fill = None
    if default is not None:
        fill = default_value(default, user=user, seq=0, now_us=engine.now_us(), type_name=ctype)
    if not spec.nullable and fill is None and _has_rows(engine, table):
        raise NotNullViolationError(
            f"Cannot add NOT NULL column '{name}' without a DEFAULT: {table.qualified_name} has rows"
        )
    column = Column(table.next_column_id, name, ctype, spec.nullable, False, default, fill)
    new = table.next_version(
        f"ADD COLUMN {name} {ctype}",
        engine.now_us(),
        columns=(*table.columns, column),
        next_column_id=table.next_column_id + 1,
    )
    _commit(engine, table, new)
    return Result(message=f"Column {name} added to {table.qualified_name}", rows_affected=0)


def _drop(engine: Database, table: TableDef, action: exp.Drop, user: str) -> Result:
    targets = action.args.get("tables") or [action.this]
    if len(targets) != 1:
        raise UnsupportedStatementError("DROP COLUMN takes one column")
    name = ident(targets[0])
    if name in ("_seq", "_deleted"):
        raise SchemaError(f"System column '{name}' cannot be dropped")
    col = table.find_column(name)
    if col is None:
        if action.args.get("exists"):
            return Result(
                message=f"Column {name} does not exist in {table.qualified_name}", rows_affected=0
            )
        table.get_column(name)
    assert col is not None
    if col.primary_key:
        raise SchemaError(f"Primary key column '{name}' cannot be dropped")
    if len(table.columns) == 1:
        raise SchemaError("Cannot drop the only column of a table")
    new = table.next_version(
        f"DROP COLUMN {name}",
        engine.now_us(),
        columns=tuple(c for c in table.columns if c.id != col.id),
    )
    _commit(engine, table, new)
    return Result(message=f"Column {name} dropped from {table.qualified_name}", rows_affected=0)


def _rename_column(
    engine: Database, table: TableDef, action: exp.RenameColumn, user: str
) -> Result:
    old_name, new_name = ident(action.this), check_column(ident(action.args["to"]))
    col = table.get_column(old_name)
    if table.find_column(new_name) is not None and new_name != old_name:
        raise SchemaError(f"Column '{new_name}' already exists in table {table.qualified_name}")
    columns = tuple(
        c.__class__(**{**c.__dict__, "name": new_name}) if c.id == col.id else c
        for c in table.columns
    )
    new = table.next_version(
        f"RENAME COLUMN {old_name} TO {new_name}", engine.now_us(), columns=columns
    )
    _commit(engine, table, new)
    return Result(
        message=f"Column {old_name} renamed to {new_name} in {table.qualified_name}",
        rows_affected=0,
    )


def _alter_column(engine: Database, table: TableDef, action: exp.AlterColumn, user: str) -> Result:
    name = ident(action.this)
    col = table.get_column(name)
    if action.args.get("dtype") is not None:
        return _change_type(
            engine, table, col, canonical_type(action.args["dtype"].sql("postgres"))
        )
    if action.args.get("default") is not None:
        default = compile_default(action.args["default"], col.type, col.name)
        return _replace_column(
            engine, table, col, f"ALTER COLUMN {name} SET DEFAULT", default=default
        )
    allow_null = action.args.get("allow_null")
    if allow_null is False:
        if col.nullable is False:
            return Result(message=f"Column {name} is already NOT NULL", rows_affected=0)
        if _has_null(engine, table, col):
            raise NotNullViolationError(
                f"Cannot SET NOT NULL on '{name}': {table.qualified_name} has rows where it is NULL"
            )
        return _replace_column(
            engine, table, col, f"ALTER COLUMN {name} SET NOT NULL", nullable=False
        )
    if allow_null is True:
        if col.primary_key:
            raise SchemaError(f"Primary key column '{name}' must stay NOT NULL")
        return _replace_column(
            engine, table, col, f"ALTER COLUMN {name} DROP NOT NULL", nullable=True
        )
    if action.args.get("drop"):
        return _replace_column(
            engine, table, col, f"ALTER COLUMN {name} DROP DEFAULT", default=None
        )
    raise UnsupportedStatementError(f"Unsupported ALTER COLUMN form: {action.sql('postgres')}")


def _replace_column(
    engine: Database, table: TableDef, col: Column, change: str, **fields: Any
) -> Result:
    columns = tuple(
        Column(**{**c.__dict__, **fields}) if c.id == col.id else c for c in table.columns
    )
    _commit(engine, table, table.next_version(change, engine.now_us(), columns=columns))
    return Result(message=f"Table {table.qualified_name} altered: {change}", rows_affected=0)


def _change_type(engine: Database, table: TableDef, col: Column, new_type: str) -> Result:
    if new_type == col.type:
        return Result(message=f"Column {col.name} is already {new_type}", rows_affected=0)
    if col.primary_key:
        raise SchemaError(f"The type of primary key column '{col.name}' cannot be changed")
    check_type_change(col.type, new_type, col.name)
    target = pa.field(col.name, _arrow(new_type)).type
    # Stored values were checked to fit before the engine lock was taken
    # (alter_table); hot rows written since are checked as they are converted.
    prov = engine.provider(table)
    converted = _convert_hot(prov, col, new_type)

    def stage(txn: Any) -> None:
        if table.table_type != "STREAM" and converted:
            # A rewritten version is a new version (commit rule 3): a flush tells
            # what it already holds by _seq. STREAM rows keep theirs: it is their
            # age for TTL, and they are never flushed.
            for scope in sorted({scope for scope, _ in converted}):
                mine = [key for key in converted if key[0] == scope]
                first = engine.seq.take(txn, len(mine), scope)
                for i, key in enumerate(mine):
                    _, deleted, values = converted[key]
                    converted[key] = (first + i, deleted, values)
        for (scope, k), version in converted.items():
            txn.batch.put(keys.row_key(table.table_id, scope, k), codec.encode_row(*version))

        def apply() -> None:
            for (scope, k), version in converted.items():
                part = prov.partitions[scope]
                part.rows[k] = version
                part.version += 1

        txn.after_commit(apply)

    fill = _convert(col.fill, col, new_type, target) if col.fill is not None else None
    default = col.default
    if default is not None and default.kind == "literal":
        default = default.__class__(
            default.kind, _convert(default.value, col, new_type, target), default.text
        )
    columns = tuple(
        Column(**{**c.__dict__, "type": new_type, "fill": fill, "default": default})
        if c.id == col.id
        else c
        for c in table.columns
    )
    new = table.next_version(
        f"ALTER COLUMN {col.name} TYPE {new_type}", engine.now_us(), columns=columns
    )
    _commit(engine, table, new, stage)
    return Result(
        message=f"Column {col.name} of {table.qualified_name} is now {new_type}", rows_affected=0
    )


def _arrow(type_name: str) -> pa.DataType:
    from engine.types import arrow_type

    return arrow_type(type_name)


def _convert(value: Any, col: Column, new_type: str, target: pa.DataType) -> Any:
    """One stored value in the new type's stored form: DataFusion's CAST, the
    one segments are read through (``engine.exec.cast``)."""
    if value is None:
        return None
    return convert_values([value], col, new_type)[0]


def _convert_hot(
    prov: Any, col: Column, new_type: str
) -> dict[tuple[str, Any], tuple[int, bool, dict[int, Any]]]:
    """Every hot version holding a value of ``col``, with it converted (one cast
    for all of them). A live value that does not fit is refused; a tombstone's
    old value need not fit and becomes NULL."""
    found = [
        (scope, k, version)
        for scope, part in prov.partitions.items()
        for k, version in part.rows.items()
        if version[2].get(col.id) is not None
    ]
    if not found:
        return {}
    arr = pa.array([version[2][col.id] for _, _, version in found], type=col.arrow_type)
    out, lost = cast_checked(arr, col.type, new_type)
    converted = {}
    for (scope, k, (seq, deleted, values)), value, bad in zip(
        found, stored_values(out, new_type), lost, strict=True
    ):
        if bad:
            if not deleted:
                raise not_fitting(values[col.id], col.type, new_type, col.name)
            value = None
        converted[(scope, k)] = (seq, deleted, {**values, col.id: value})
    return converted


def _all_values(engine: Database, table: TableDef, col: Column) -> Any:
    """The live values of ``col`` in every scope (all users), one array per scope."""
    from datafusion import SessionContext
    from datafusion import col as df_col

    from engine.providers.base import ScanOptions

    prov = engine.provider(table)
    scopes = sorted(set(prov.partitions) | set(prov.cold.scopes()))
    options = ScanOptions(now_ms=engine.clock_ms())
    for scope in scopes:
        data, _ = prov.merged(SessionContext(), scope, options, None)
        if isinstance(data, pa.Table):
            yield data.column(col.name).combine_chunks()
        else:
            yield (
                plain_strings(data.select(df_col(col.name)).to_arrow_table())
                .column(0)
                .combine_chunks()
            )


def _check_all_fit(engine: Database, table: TableDef, col: Column, new_type: str) -> None:
    """Every live value must convert exactly; the first that does not is named."""
    check_type_change(col.type, new_type, col.name)  # before reading any value
    for arr in _all_values(engine, table, col):
        _, lost = cast_checked(arr, col.type, new_type)
        for value, bad in zip(arr.to_pylist(), lost, strict=True):
            if bad:
                raise not_fitting(value, col.type, new_type, col.name)


def _has_null(engine: Database, table: TableDef, col: Column) -> bool:
    return any(arr.null_count for arr in _all_values(engine, table, col))


def _has_rows(engine: Database, table: TableDef) -> bool:
    prov = engine.provider(table)
    if any(part.rows for part in prov.partitions.values()):
        return True
    return any(
        (m := prov.cold.manifest(scope)) is not None and m.row_count for scope in prov.cold.scopes()
    )


def _set_options(engine: Database, table: TableDef, action: exp.AlterSet, user: str) -> Result:
    options = dict(table.options)
    changed = []
    if not action.expressions or any(e is None for e in action.expressions):
        raise SqlParseError("Syntax error: expected ALTER TABLE t SET (OPTION = value, ...)")
    for eq in action.expressions:
        key = (eq.this.name if isinstance(eq, exp.EQ) else eq.name).upper()
        raw = eq.expression if isinstance(eq, exp.EQ) else eq.args.get("value")
        value = (
            raw.this if isinstance(raw, exp.Literal) else (raw.name if raw is not None else None)
        )
        if isinstance(raw, exp.Literal) and not raw.is_string:
            value = int(raw.this) if raw.this.isdigit() else raw.this
        if key == "FLUSH_POLICY":
            if table.table_type == "STREAM":
                raise InvalidOptionError(
                    "STREAM tables are never flushed: FLUSH_POLICY does not apply"
                )
            options["flush_policy"] = parse_flush_policy(str(value))
        elif key == "TTL_SECONDS":
            if table.table_type != "STREAM":
                raise InvalidOptionError("TTL_SECONDS applies to STREAM tables only")
            if not isinstance(value, int) or value <= 0:
                raise InvalidOptionError(f"TTL_SECONDS must be a positive integer, not {value!r}")
            options["ttl_seconds"] = value
        elif key == "COMPRESSION":
            if str(value).lower() not in ("zstd", "snappy", "none"):
                raise InvalidOptionError("COMPRESSION must be zstd, snappy or none")
            options["compression"] = str(value).lower()
        elif key == "DELTA":
            if table.table_type == "STREAM":
                raise InvalidOptionError("STREAM tables have no segments: DELTA does not apply")
            options["delta"] = parse_delta_option(raw.sql() if raw is not None else value)
        elif key == "ROW_GROUP_SIZE":
            if not isinstance(value, int) or value < 1:
                raise InvalidOptionError("ROW_GROUP_SIZE must be a positive integer")
            options["row_group_size"] = value
        else:
            raise InvalidOptionError(
                f"Unknown or unchangeable table option '{key}' "
                "(ALTER TABLE ... SET accepts FLUSH_POLICY, TTL_SECONDS, COMPRESSION, ROW_GROUP_SIZE, "
                "DELTA)"
            )
        changed.append(key)
    new = table.next_version(f"SET ({', '.join(changed)})", engine.now_us(), options=options)
    _commit(engine, table, new)
    return Result(
        message=f"Table {table.qualified_name} options changed: {', '.join(changed)}",
        rows_affected=0,
    )


def _rename_table(engine: Database, table: TableDef, action: exp.AlterRename, user: str) -> Result:
    target = action.this
    if target.args.get("db") and ident(target.args["db"]) != table.namespace:
        raise UnsupportedStatementError("RENAME TO keeps a table in its namespace")
    new_name = check_name(ident(target.this), "table")
    if engine.catalog.find_table(table.namespace, new_name) is not None:
        raise TableExistsError(f"Table '{table.namespace}.{new_name}' already exists")
    new_dir = safe_path(engine.data_dir, "storage", table.namespace, new_name)
    if new_dir.exists() and any(new_dir.iterdir()):
        raise TableExistsError(
            f"Storage for '{table.namespace}.{new_name}' already exists: {new_dir}"
        )
    # The catalog change and a note of the pending directory move commit together;
    # the move follows, and an interrupted move is finished when the engine opens.
    new = table.next_version(f"RENAME TO {new_name}", engine.now_us(), name=new_name)
    txn = engine.begin()
    move = engine.stage_storage_move(txn, table, new_name)
    engine.catalog.put_table(txn, new, previous=table)
    txn.commit()
    move()
    return Result(
        message=f"Table {table.qualified_name} renamed to {table.namespace}.{new_name}",
        rows_affected=0,
    )


_ACTIONS: dict[type, Callable[..., Result]] = {
    exp.ColumnDef: _add,
    exp.Drop: _drop,
    exp.RenameColumn: _rename_column,
    exp.AlterColumn: _alter_column,
    exp.AlterSet: _set_options,
    exp.AlterRename: _rename_table,
}
