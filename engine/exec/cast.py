"""Changing a column's type: the one cast every tier applies.

``ALTER TABLE ... MODIFY COLUMN`` converts hot rows when it runs; segments keep
their old physical type and are cast when read, as DataFrames
(``ColdTier.frame``) and one row at a time (point reads). All three go
through DataFusion's cast here, so a value reads the same whichever tier
holds it, and the same as ``SELECT CAST(x AS <type>)`` would show it
(``1.0`` becomes ``'1.0'``, a timestamp ``'2021-03-04T05:06:07'``).

A segment written several type changes ago is cast through every type in
between, exactly as hot rows were converted at each change (DOUBLE -> FLOAT
-> DOUBLE rounds a cold 0.1 as it rounded a hot one).

Which changes are allowed (``check_type_change``): numeric types (DECIMAL
among them) among themselves, BOOLEAN with integer types, DATE with TIMESTAMP, BYTES with TEXT,
and anything to or from TEXT. A change must not lose information
(``cast_checked``): a value that does not convert (``'abc'`` to INT), or that
would not convert back to itself (1.5 to INT, 2^53 + 1 to DOUBLE, a
timestamp with a time of day to DATE, 2 to BOOLEAN), is refused; only
rounding between FLOAT and DOUBLE is accepted (short of overflowing).
"""

from __future__ import annotations

import math
from typing import Any

import pyarrow as pa
from datafusion import Expr, SessionConfig, SessionContext, col, lit

from engine.catalog.model import Column, TableDef
from engine.errors import SchemaError, TypeMismatchError
from engine.types import arrow_type, decimal_spec, render_stored

_INTEGERS = ("SMALLINT", "INT", "BIGINT")
_FLOATS = ("FLOAT", "DOUBLE")
_KINDS = {
    **dict.fromkeys(_INTEGERS, "integer"),
    **dict.fromkeys(_FLOATS, "float"),
    "BOOLEAN": "boolean",
    "DATE": "time",
    "TIMESTAMP": "time",
    "BYTES": "bytes",
    "TEXT": "text",
}
_ACROSS = [
    {"integer", "float"},
    {"integer", "boolean"},
    {"bytes", "text"},
    {"decimal", "integer"},
    {"decimal", "float"},
]


def _kind(type_name: str) -> str:
    return "decimal" if decimal_spec(type_name) else _KINDS.get(type_name, type_name)


def check_type_change(old: str, new: str, column: str) -> None:
    """Raise ``SchemaError`` for a type change the engine does not make."""
    a, b = _kind(old), _kind(new)
    if a == b or "text" in (a, b) or {a, b} in _ACROSS:
        return
    raise SchemaError(
        f"Cannot change column '{column}' from {old} to {new}: "
        "change it to TEXT first, or add a new column and UPDATE it"
    )


def type_chain(table: TableDef, column_id: int, since_version: int) -> tuple[str, ...]:
    """The types column ``column_id`` had from schema ``since_version`` to now,
    repeats collapsed (``("DOUBLE", "TEXT")``); empty if it did not exist then."""
    versions = [h for h in table.history if h["version"] >= since_version]
    types: list[str] = []
    existed = since_version >= table.schema_version
    for h in sorted(versions, key=lambda h: h["version"]):
        found = next((c["type"] for c in h["columns"] if c["id"] == column_id), None)
        if h["version"] == since_version:
            existed = found is not None
        if found is not None and (not types or types[-1] != found):
            types.append(found)
    if not existed:
        return ()
    current = next((c.type for c in table.columns if c.id == column_id), None)
    if current is not None and (not types or types[-1] != current):
        types.append(current)
    return tuple(types)


def type_stable_since(table: TableDef, column_id: int) -> int:
    """The earliest schema version since which the column has had its current
    type: segments written before it hold values (and statistics) of another."""
    current = next((c.type for c in table.columns if c.id == column_id), None)
    since = table.schema_version
    for h in sorted(table.history, key=lambda h: h["version"], reverse=True):
        then = next((c["type"] for c in h["columns"] if c["id"] == column_id), None)
        if then != current:
            break
        since = h["version"]
    return since


def cast_expr(expr: Expr, chain: tuple[str, ...]) -> Expr:
    """``expr`` (of type ``chain[0]``) cast through every later type. ``try_cast``:
    live values were checked at ALTER time; a superseded version that does not
    fit reads NULL and is filtered out by the merge."""
    for type_name in chain[1:]:
        expr = expr.try_cast(arrow_type(type_name))
    if len(chain) > 1 and chain[-1] in _FLOATS:
        # A changed column read as a float holds no -0.0 (TEXT '-0' reads
        # 0.0), cold segments and hot rows (``cast_array``) alike.
        expr = expr + lit(0.0).cast(arrow_type(chain[-1]))
    return expr


# Segments' TEXT columns are read from Parquet as Utf8View (DataFusion's own
# default) and stay views through the plan: filters, joins, GROUP BY and
# string functions work on them, and only a result's rows are turned back
# into Utf8, the type users see (``plain_strings``, at every place a frame's
# rows leave DataFusion). Hot rows and the warm cache hold Utf8; a UNION or a
# comparison of the two is coerced by DataFusion (the UNION takes its first
# input's type). Casting every segment value to Utf8 at the scan instead cost
# TPC-H SF 1 (32k-row groups, CPU medians of 7, engine / raw DataFusion on
# the same files): Q12 1.35x, Q01 1.26x, Q19 1.20x; without the cast 1.05x,
# 1.01x, 1.02x (Q06, no strings: 1.02x both ways).
TEXT_READ_AS_VIEW = True


def parquet_read_type(type_name: str) -> pa.DataType:
    """The Arrow type a segment column of ``type_name`` is read as."""
    if type_name == "TEXT" and TEXT_READ_AS_VIEW:
        return pa.string_view()
    return arrow_type(type_name)


def _plain_type(t: pa.DataType) -> pa.DataType | None:
    """``t`` with every Utf8View (nested ones too) as Utf8; None when it has none."""
    if pa.types.is_string_view(t):
        return pa.string()
    if pa.types.is_binary_view(t):
        return pa.binary()
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        inner = _plain_type(t.value_type)
        if inner is None:
            return None
        field = t.value_field.with_type(inner)
        return pa.list_(field) if pa.types.is_list(t) else pa.large_list(field)
    if pa.types.is_struct(t):
        fields = [t.field(i) for i in range(t.num_fields)]
        plain = [_plain_type(f.type) for f in fields]
        if all(p is None for p in plain):
            return None
        return pa.struct(
            [f if p is None else f.with_type(p) for f, p in zip(fields, plain, strict=True)]
        )
    return None


def plain_schema(schema: pa.Schema) -> pa.Schema:
    """``schema`` with Utf8View fields as Utf8 (see ``plain_strings``)."""
    fields = []
    changed = False
    for f in schema:
        p = _plain_type(f.type)
        changed = changed or p is not None
        fields.append(f if p is None else f.with_type(p))
    return pa.schema(fields, metadata=schema.metadata) if changed else schema


def plain_strings(data: Any) -> Any:
    """A ``pa.Table`` or ``pa.RecordBatch`` from DataFusion with its Utf8View
    columns as Utf8: the TEXT type users, writers of segments and hot rows,
    and every client see. Unchanged (no copy) when it has none."""
    schema = data.schema
    target = plain_schema(schema)
    if target is schema:
        return data
    return data.cast(target)


def cast_array(arr: pa.Array, chain: tuple[str, ...]) -> pa.Array:
    """``cast_expr`` applied to an Arrow array (NULL where a value does not fit)."""
    target = arrow_type(chain[-1])
    if len(chain) < 2:
        return arr
    if len(arr) == 0:
        return pa.array([], type=target)
    # One partition: a projection over it keeps row order, which callers rely on.
    ctx = SessionContext(SessionConfig().with_target_partitions(1))
    df = ctx.from_arrow(pa.table({"v": arr}))
    out = df.select(cast_expr(col("v"), chain).alias("v")).to_arrow_table().column(0)
    return out.combine_chunks().cast(target)


def stored_values(arr: pa.Array, type_name: str) -> list[Any]:
    """An Arrow array of ``type_name`` as the hot store's stored forms."""
    if type_name == "TIMESTAMP":
        arr = arr.cast(pa.int64())
    elif type_name == "DATE":
        arr = arr.cast(pa.int32())
    return arr.to_pylist()


def _loses(before: list[Any], after: list[Any], back: list[Any], old: str, new: str) -> list[bool]:
    """Per value: would the change lose information (see the module docstring)?"""
    out = []
    for x, y, z in zip(before, after, back, strict=True):
        if x is None:
            out.append(False)
        elif y is None:
            out.append(True)  # did not convert at all
        elif old == "TEXT" or new == "TEXT":
            out.append(False)  # parsing or printing: DataFusion's CAST is the rule
        elif old in _FLOATS and new in _FLOATS:
            out.append(math.isfinite(x) and not math.isfinite(y))  # rounding is fine
        elif isinstance(x, float) and math.isnan(x):
            out.append(not (isinstance(z, float) and math.isnan(z)))
        else:
            out.append(z != x)
    return out


def cast_checked(arr: pa.Array, old: str, new: str) -> tuple[pa.Array, list[bool]]:
    """Values of ``arr`` (type ``old``) in type ``new``, and per value whether
    it fails to convert without loss (those read NULL in the result)."""
    out = cast_array(arr, (old, new))
    before = stored_values(arr, old)
    after = stored_values(out, new)
    if old == "TEXT" or new == "TEXT" or (old in _FLOATS and new in _FLOATS):
        back = after  # not consulted
    else:
        back = stored_values(cast_array(out, (new, old)), old)
    return out, _loses(before, after, back, old, new)


def not_fitting(value: Any, old: str, new: str, column: str) -> TypeMismatchError:
    shown = render_stored(value, old) if old in ("DATE", "TIMESTAMP") else repr(value)
    return TypeMismatchError(
        f"Cannot change column '{column}' to {new}: value {shown} does not fit",
        column_name=column,
    )


def convert_values(values: list[Any], column: Column, new: str) -> list[Any]:
    """Stored values of ``column`` in ``new``'s stored form; raises
    ``TypeMismatchError`` naming the first value that does not fit."""
    check_type_change(column.type, new, column.name)
    arr = pa.array(values, type=column.arrow_type)
    out, bad = cast_checked(arr, column.type, new)
    for value, lost in zip(values, bad, strict=True):
        if lost:
            raise not_fitting(value, column.type, new, column.name)
    return stored_values(out, new)
