"""Column types: SQL spelling -> canonical type -> Arrow type, and the
coercion of Python values into the form the hot store keeps.

Stored forms (what msgpack holds): bool, int, float, str, bytes; FLOAT (the
4-byte float) as a float already rounded to 4 bytes, so a hot value equals
what it reads back as; TIMESTAMP as int microseconds since the epoch (UTC,
naive); DATE as int days since the epoch. ``None`` is NULL.
"""

from __future__ import annotations

import datetime as dt
import math
import struct
from typing import Any

import pyarrow as pa

from engine.errors import SchemaError, TypeMismatchError

# canonical name -> arrow type
ARROW_TYPES: dict[str, pa.DataType] = {
    "BOOLEAN": pa.bool_(),
    "SMALLINT": pa.int16(),
    "INT": pa.int32(),
    "BIGINT": pa.int64(),
    "FLOAT": pa.float32(),
    "DOUBLE": pa.float64(),
    "TEXT": pa.string(),
    "TIMESTAMP": pa.timestamp("us"),
    "DATE": pa.date32(),
    "BYTES": pa.binary(),
}

_ALIASES = {
    "BOOL": "BOOLEAN",
    "BOOLEAN": "BOOLEAN",
    "TINYINT": "SMALLINT",
    "SMALLINT": "SMALLINT",
    "INT": "INT",
    "INTEGER": "INT",
    "INT4": "INT",
    "BIGINT": "BIGINT",
    "INT8": "BIGINT",
    "FLOAT": "FLOAT",
    "REAL": "FLOAT",
    "FLOAT4": "FLOAT",
    "DOUBLE": "DOUBLE",
    "DOUBLE PRECISION": "DOUBLE",
    "FLOAT8": "DOUBLE",
    "DECIMAL": "DOUBLE",
    "NUMERIC": "DOUBLE",
    "TEXT": "TEXT",
    "VARCHAR": "TEXT",
    "CHAR": "TEXT",
    "STRING": "TEXT",
    "NVARCHAR": "TEXT",
    "TIMESTAMP": "TIMESTAMP",
    "DATETIME": "TIMESTAMP",
    "DATE": "DATE",
    "BYTES": "BYTES",
    "BLOB": "BYTES",
    "BINARY": "BYTES",
    "VARBINARY": "BYTES",
    "BYTEA": "BYTES",
}

_INT_RANGES = {
    "SMALLINT": (-(2**15), 2**15 - 1),
    "INT": (-(2**31), 2**31 - 1),
    "BIGINT": (-(2**63), 2**63 - 1),
}
_FLOAT32_MAX = 3.4028234663852886e38
_F32 = struct.Struct("<f")
_EPOCH = dt.datetime(1970, 1, 1)
_EPOCH_DATE = dt.date(1970, 1, 1)


def canonical_type(sql_type: str) -> str:
    """Map a SQL type spelling (``VARCHAR(20)``, ``integer``) to a canonical name.

    ``FLOAT``, ``FLOAT4`` and ``REAL`` are the 4-byte float (as in DataFusion,
    which runs the queries); ``DOUBLE``, ``FLOAT8`` and ``DOUBLE PRECISION`` the
    8-byte one; ``FLOAT(p)`` is 4-byte up to 24 bits of precision, as in SQL.
    Catalogs store the canonical name, so a column created when FLOAT meant
    DOUBLE stays DOUBLE."""
    base, _, rest = sql_type.upper().partition("(")
    base = base.strip()
    if base == "FLOAT" and rest.rstrip(") ").isdigit():
        return "FLOAT" if int(rest.rstrip(") ")) <= 24 else "DOUBLE"
    try:
        return _ALIASES[base]
    except KeyError:
        supported = ", ".join(sorted(set(_ALIASES.values())))
        raise SchemaError(f"Unsupported column type '{sql_type}'. Supported: {supported}") from None


def arrow_type(canonical: str) -> pa.DataType:
    return ARROW_TYPES[canonical]


def canonical_from_arrow(t: pa.DataType) -> str:
    """The column type to use for an Arrow type (CREATE TABLE ... AS, --persist)."""
    if pa.types.is_boolean(t):
        return "BOOLEAN"
    if pa.types.is_int8(t) or pa.types.is_int16(t) or pa.types.is_uint8(t):
        return "SMALLINT"
    if pa.types.is_int32(t) or pa.types.is_uint16(t):
        return "INT"
    if pa.types.is_integer(t):
        return "BIGINT"
    if pa.types.is_float16(t) or pa.types.is_float32(t):
        return "FLOAT"
    if pa.types.is_floating(t) or pa.types.is_decimal(t):
        return "DOUBLE"
    if pa.types.is_timestamp(t):
        return "TIMESTAMP"
    if pa.types.is_date(t):
        return "DATE"
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_binary_view(t):
        return "BYTES"
    if (
        pa.types.is_string(t)
        or pa.types.is_large_string(t)
        or pa.types.is_string_view(t)
        or pa.types.is_dictionary(t)
    ):
        return "TEXT"
    raise SchemaError(f"No column type for Arrow type {t}")


def _fail(value: Any, canonical: str, column: str) -> TypeMismatchError:
    shown = repr(value) if not isinstance(value, bytes) else f"<{len(value)} bytes>"
    return TypeMismatchError(
        f"Type mismatch: cannot store {shown} in column '{column}' of type {canonical}",
        column_name=column,
    )


def coerce(value: Any, canonical: str, column: str) -> Any:
    """Convert a Python value to the stored form of ``canonical``, or raise."""
    if value is None:
        return None
    if canonical in _INT_RANGES:
        if isinstance(value, bool):
            raise _fail(value, canonical, column)
        if isinstance(value, float):
            if not value.is_integer():
                raise _fail(value, canonical, column)
            value = int(value)
        if not isinstance(value, int):
            if hasattr(value, "__index__"):  # numpy integers
                value = int(value)
            else:
                raise _fail(value, canonical, column)
        lo, hi = _INT_RANGES[canonical]
        if not lo <= value <= hi:
            raise TypeMismatchError(
                f"Value {value} is out of range for column '{column}' of type {canonical}",
                column_name=column,
            )
        return value
    if canonical in ("FLOAT", "DOUBLE"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            if hasattr(value, "__float__") and not isinstance(value, (str, bytes)):
                return float(value)
            raise _fail(value, canonical, column)
        f = float(value)
        if canonical == "FLOAT":
            if math.isfinite(f) and abs(f) > _FLOAT32_MAX:
                raise TypeMismatchError(
                    f"Value {value} is out of range for column '{column}' of type FLOAT",
                    column_name=column,
                )
            # Stored as it reads back (4-byte), so hot and cold values agree.
            f = _F32.unpack(_F32.pack(f))[0]
        return f
    if canonical == "TEXT":
        if not isinstance(value, str):
            raise _fail(value, canonical, column)
        return value
    if canonical == "BOOLEAN":
        if isinstance(value, bool):
            return value
        raise _fail(value, canonical, column)
    if canonical == "BYTES":
        if isinstance(value, (bytes, bytearray, memoryview)):
            return bytes(value)
        raise _fail(value, canonical, column)
    if canonical == "TIMESTAMP":
        return _to_micros(value, column)
    if canonical == "DATE":
        return _to_days(value, column)
    raise SchemaError(f"Unknown type {canonical}")


def _to_micros(value: Any, column: str) -> int:
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        delta = value - _EPOCH
        return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    if isinstance(value, dt.date):
        return (value - _EPOCH_DATE).days * 86_400_000_000
    if isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise _fail(value, "TIMESTAMP", column) from None
        return _to_micros(parsed, column)
    if hasattr(value, "to_pydatetime"):  # pandas.Timestamp
        return _to_micros(value.to_pydatetime(), column)
    raise _fail(value, "TIMESTAMP", column)


def _to_days(value: Any, column: str) -> int:
    if isinstance(value, dt.datetime):
        value = value.date()
    if isinstance(value, dt.date):
        return (value - _EPOCH_DATE).days
    if isinstance(value, str):
        try:
            return (dt.date.fromisoformat(value.strip()) - _EPOCH_DATE).days
        except ValueError:
            raise _fail(value, "DATE", column) from None
    raise _fail(value, "DATE", column)


def render_stored(value: Any, canonical: str) -> str:
    """A stored value as a person reads it (error messages, DESCRIBE)."""
    if canonical == "TIMESTAMP" and isinstance(value, int):
        return str(_EPOCH + dt.timedelta(microseconds=value))
    if canonical == "DATE" and isinstance(value, int):
        return str(_EPOCH_DATE + dt.timedelta(days=value))
    return str(value)
