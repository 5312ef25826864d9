"""Bulk load of Arrow data (``Engine.insert_arrow``; the notebook's ``--persist``).

Columns are converted with Arrow casts (vectorised) instead of value by
value; type rules match INSERT: numbers widen, a fraction stored in an
integer column is rounded as INSERT rounds it, but text never turns into
numbers. All rows of one call are one batch: all or nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from engine.catalog.model import Column, TableDef
from engine.errors import NotNullViolationError, SchemaError, TypeMismatchError
from engine.gcpause import gc_paused
from engine.names import check_column, check_name
from engine.providers.hot_rows import physical, stored_list
from engine.result import Result
from engine.sql.ddl import add_table
from engine.sql.set_columns import stored_array
from engine.sql.statements import TableRef
from engine.types import (
    arrow_type,
    canonical_from_arrow,
    decimal_spec,
    is_numeric,
    without_negative_zero,
)

if TYPE_CHECKING:
    from engine.core import Database


def insert_arrow(
    engine: Database,
    target: str,
    data: pa.Table,
    *,
    user: str,
    primary_key: str | None = None,
    table_type: str = "SHARED",
) -> Result:
    ns, _, name = target.rpartition(".")
    ref = TableRef(ns or None, name)
    created = False
    table = engine.catalog.find_table(ref.namespace or engine.namespace, ref.name)
    if table is None:
        table = _create_for(
            engine, ref, data, primary_key=primary_key, table_type=table_type, user=user
        )
        created = True
    else:
        from engine.security import authorize_write

        authorize_write(table, engine.users.ensure(user, engine.now_us()).role)
    columns = _map_columns(table, data)
    prov = engine.provider(table)
    with engine.lock, gc_paused():
        txn = engine.begin()
        first = engine.seq.take(txn, data.num_rows, prov.write_scope(user))
        batch = arrow_batch(
            table,
            [col for col, _ in columns.values()],
            [arr for _, arr in columns.values()],
            user=user,
            first_seq=first,
            now_us=engine.now_us(),
        )
        prov.insert_batch(txn, prov.write_scope(user), batch, first)
        txn.commit()
    n = data.num_rows
    msg = f"Inserted {n:,} row(s)" + (f" into new table {table.qualified_name}" if created else "")
    return Result(message=msg, rows_affected=n)


def arrow_rows(
    table: TableDef,
    targets: list[Column],
    arrays: list[Any],
    *,
    user: str,
    first_seq: int,
    now_us: int,
) -> list[dict[int, Any]]:
    """Rows ({column id: stored value}) from Arrow columns bound to ``targets``;
    other columns get their defaults; NOT NULL is checked."""
    from engine.sql.values import default_value

    n = len(arrays[0]) if arrays else 0
    converted: dict[int, list[Any]] = {
        col.id: _convert(arr, col) for col, arr in zip(targets, arrays, strict=True)
    }
    for col in table.columns:
        if col.id not in converted:
            d = col.default
            if d is None:
                converted[col.id] = [None] * n
            elif d.kind == "literal" or d.value in ("NOW", "CURRENT_USER"):
                value = default_value(
                    d, user=user, seq=first_seq, now_us=now_us, type_name=col.type
                )
                converted[col.id] = [value] * n
            else:  # per-row values: SNOWFLAKE_ID, UUID_V7, ULID
                converted[col.id] = [
                    default_value(
                        d, user=user, seq=first_seq + i, now_us=now_us, type_name=col.type
                    )
                    for i in range(n)
                ]
        if not col.nullable and None in converted[col.id]:
            raise NotNullViolationError(
                f"Column '{col.name}' of table {table.qualified_name} cannot be NULL",
                column_name=col.name,
            )
    ids = list(converted)
    lists = [converted[i] for i in ids]
    return [dict(zip(ids, values, strict=True)) for values in zip(*lists, strict=True)] if n else []


def _create_for(
    engine: Database,
    ref: TableRef,
    data: pa.Table,
    *,
    primary_key: str | None,
    table_type: str,
    user: str,
) -> TableDef:
    from engine.security import require

    ns = check_name(ref.namespace or engine.namespace, "namespace")
    name = check_name(ref.name, "table")
    require(
        engine.users.ensure(user, engine.now_us()).role,
        "service" if table_type == "SHARED" else "user",
        f"CREATE {table_type} TABLE",
    )
    pk = primary_key or _guess_pk(data)
    if pk is None and table_type != "STREAM":
        raise SchemaError(
            f"Cannot create {ns}.{name} from this data: no primary key. Pass primary_key=... "
            "(or add an 'id' column, or create the table first)"
        )
    cols = []
    for i, field in enumerate(data.schema, start=1):
        cname = check_column(field.name)
        is_pk = field.name == pk
        cols.append(Column(i, cname, canonical_from_arrow(field.type), not is_pk, is_pk))
    if pk is not None and pk not in data.column_names:
        raise SchemaError(f"primary_key '{pk}' is not a column of the data")
    return add_table(engine, ns, name, table_type, cols, {})


def _guess_pk(data: pa.Table) -> str | None:
    if "id" in data.column_names:
        return "id"
    if data.num_columns:
        first = data.column(0)
        t = first.type
        keyish = (pa.types.is_integer(t) or pa.types.is_string(t)) and first.null_count == 0
        if keyish and len(pc.unique(first)) == data.num_rows:
            return data.column_names[0]
    return None


def _map_columns(table: TableDef, data: pa.Table) -> dict[int, tuple[Column, pa.ChunkedArray]]:
    out = {}
    for name in data.column_names:
        col = table.find_column(name)
        if col is None:
            raise SchemaError(
                f"Column '{name}' of the data does not exist in {table.qualified_name} "
                f"(columns: {', '.join(c.name for c in table.columns)})"
            )
        out[col.id] = (col, data.column(name))
    return out


def _convert(arr: pa.ChunkedArray, col: Column) -> list[Any]:
    """Arrow column -> stored values of ``col``'s type (see engine.types)."""
    return stored_list(_convert_array(arr, col))


def _convert_array(arr: pa.ChunkedArray, col: Column) -> pa.Array:
    """Arrow column -> an array of ``col``'s Arrow type, checked like INSERT."""
    src = canonical_from_arrow(arr.type) if arr.type != pa.null() else col.type
    if is_numeric(col.type) and not is_numeric(src):
        raise TypeMismatchError(
            f"Type mismatch: column '{col.name}' is {col.type}, the data has {arr.type}"
        )
    fraction = pa.types.is_floating(arr.type) or pa.types.is_decimal(arr.type)
    if col.type in ("SMALLINT", "INT", "BIGINT") and fraction:
        # Rounded as INSERT rounds (``engine.types.assign``: a double's halves
        # to even, a DECIMAL's away from zero; DuckDB's INSERT from Arrow
        # rounds a double the same way), never truncated.
        return stored_array(arr, col)
    if decimal_spec(col.type) is not None:
        # Columnar where a cast is exact (DECIMAL of no wider scale, integers);
        # otherwise value by value: the same rounding and precision check as
        # INSERT ... VALUES either way.
        return stored_array(arr, col)
    if col.type == "BOOLEAN" and src != "BOOLEAN" or col.type == "BYTES" and src != "BYTES":
        raise TypeMismatchError(
            f"Type mismatch: column '{col.name}' is {col.type}, the data has {arr.type}"
        )
    if col.type == "TEXT" and src != "TEXT":
        raise TypeMismatchError(
            f"Type mismatch: column '{col.name}' is {col.type}, the data has {arr.type}"
        )
    if col.type in ("TIMESTAMP", "DATE") and src not in ("TIMESTAMP", "DATE"):
        raise TypeMismatchError(
            f"Type mismatch: column '{col.name}' is {col.type}, the data has {arr.type}"
        )
    if pa.types.is_dictionary(arr.type):
        arr = arr.cast(arr.type.value_type)
    target = arrow_type(col.type)
    if pa.types.is_timestamp(arr.type) and arr.type.tz is not None:
        arr = arr.cast(pa.timestamp(arr.type.unit, tz="UTC")).cast(pa.timestamp(arr.type.unit))
    try:
        cast = pc.cast(arr, target, safe=True)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise TypeMismatchError(
            f"Cannot store the data's {arr.type} in column '{col.name}' ({col.type}): {exc}"
        ) from None
    if pa.types.is_float32(target) and pa.types.is_floating(arr.type):
        # A safe cast still turns a finite double beyond float32's range into inf.
        overflow = pc.and_(pc.is_inf(cast), pc.invert(pc.is_inf(arr)))
        if pc.any(overflow).as_py():
            bad = pc.filter(arr, overflow)[0].as_py()
            raise TypeMismatchError(
                f"Value {bad!r} is out of range for column '{col.name}' of type {col.type}",
                column_name=col.name,
            )
    if isinstance(cast, pa.ChunkedArray):
        cast = cast.combine_chunks()
    return without_negative_zero(cast)


def arrow_batch(
    table: TableDef,
    targets: list[Column],
    arrays: list[Any],
    *,
    user: str,
    first_seq: int,
    now_us: int,
) -> pa.RecordBatch:
    """The columnar twin of ``arrow_rows``: one record batch of physical
    columns (``c<id>``, every column of the table) with defaults filled and
    NOT NULL checked, without a Python object per value."""
    from engine.sql.values import default_value

    n = len(arrays[0]) if arrays else 0
    converted = {col.id: _convert_array(arr, col) for col, arr in zip(targets, arrays, strict=True)}
    out = []
    for col in table.columns:
        found = converted.get(col.id)
        if found is None:
            d = col.default
            if d is None:
                found = pa.nulls(n, col.arrow_type)
            elif d.kind == "literal" or d.value in ("NOW", "CURRENT_USER"):
                value = default_value(
                    d, user=user, seq=first_seq, now_us=now_us, type_name=col.type
                )
                found = pa.array([value] * n, type=col.arrow_type)
            else:  # per-row values: SNOWFLAKE_ID, UUID_V7, ULID
                found = pa.array(
                    [
                        default_value(
                            d, user=user, seq=first_seq + i, now_us=now_us, type_name=col.type
                        )
                        for i in range(n)
                    ],
                    type=col.arrow_type,
                )
        if not col.nullable and found.null_count:
            raise NotNullViolationError(
                f"Column '{col.name}' of table {table.qualified_name} cannot be NULL",
                column_name=col.name,
            )
        out.append(found)
    return pa.RecordBatch.from_arrays(out, names=[physical(c.id) for c in table.columns])
