"""Column types: SQL spelling -> canonical type -> Arrow type, and the
coercion of Python values into the form the hot store keeps.

Stored forms (what msgpack holds): bool, int, float, str, bytes; FLOAT (the
4-byte float) as a float already rounded to 4 bytes, so a hot value equals
what it reads back as; TIMESTAMP as int microseconds since the epoch (UTC,
naive); DATE as int days since the epoch; DECIMAL(p, s) as a
``decimal.Decimal`` with exactly ``s`` fractional digits (never a float; the
hot store packs it as a msgpack extension holding its text, see
``engine.storage.codec``). ``None`` is NULL.

DECIMAL(p, s) (alias NUMERIC): 1 <= p <= 38 (Arrow's decimal128, which the
segments and DataFusion use), 0 <= s <= p. ``DECIMAL`` alone is
DECIMAL(38, 10), as in DataFusion; ``DECIMAL(p)`` is DECIMAL(p, 0), as in SQL.
Storing a value with more fractional digits than ``s`` rounds it to ``s``
digits, ties away from zero: what PostgreSQL does for NUMERIC (its
half-to-even rule is for floating point only) and what DataFusion's
``CAST(x AS DECIMAL(p, s))`` does, so a stored value equals the same CAST in
a query. A value with more than ``p - s`` integer digits is refused
(``NumericOverflowError``), never rounded or wrapped.
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
import re
import struct
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from engine.errors import NumericOverflowError, SchemaError, TypeMismatchError

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


DECIMAL_MAX_PRECISION = 38
DEFAULT_DECIMAL = (38, 10)
_DECIMAL_NAME = re.compile(r"DECIMAL\((\d+),(\d+)\)")
_DECIMAL_ARGS = re.compile(r"\s*(\d+)\s*(?:,\s*(\d+)\s*)?\)\s*")
# Exact arithmetic for up to 38 digits (the default context keeps only 28).
_EXACT = decimal.Context(prec=100, rounding=decimal.ROUND_HALF_UP)
_QUANTUM = [decimal.Decimal(1).scaleb(-s) for s in range(DECIMAL_MAX_PRECISION + 1)]


def decimal_type(precision: int, scale: int) -> str:
    """The canonical name of DECIMAL(precision, scale), checked."""
    if not 1 <= precision <= DECIMAL_MAX_PRECISION:
        raise SchemaError(
            f"DECIMAL precision must be between 1 and {DECIMAL_MAX_PRECISION}, got {precision}"
        )
    if not 0 <= scale <= precision:
        raise SchemaError(
            f"DECIMAL scale must be between 0 and the precision ({precision}), got {scale}"
        )
    return f"DECIMAL({precision},{scale})"


def decimal_spec(canonical: str) -> tuple[int, int] | None:
    """(precision, scale) of a canonical DECIMAL type name; None for other types."""
    m = _DECIMAL_NAME.fullmatch(canonical)
    return (int(m.group(1)), int(m.group(2))) if m else None


def is_type_name(canonical: str) -> bool:
    """Whether ``canonical`` is a canonical column type name (catalog checks)."""
    return canonical in ARROW_TYPES or decimal_spec(canonical) is not None


def is_numeric(canonical: str) -> bool:
    return canonical in ("SMALLINT", "INT", "BIGINT", "FLOAT", "DOUBLE") or bool(
        decimal_spec(canonical)
    )


def canonical_type(sql_type: str) -> str:
    """Map a SQL type spelling (``VARCHAR(20)``, ``integer``) to a canonical name.

    ``FLOAT``, ``FLOAT4`` and ``REAL`` are the 4-byte float (as in DataFusion,
    which runs the queries); ``DOUBLE``, ``FLOAT8`` and ``DOUBLE PRECISION`` the
    8-byte one; ``FLOAT(p)`` is 4-byte up to 24 bits of precision, as in SQL.
    Catalogs store the canonical name, so a column created when FLOAT meant
    DOUBLE stays DOUBLE."""
    base, _, rest = sql_type.upper().partition("(")
    base = base.strip()
    if base in ("DECIMAL", "NUMERIC", "DEC"):
        if not rest:
            return decimal_type(*DEFAULT_DECIMAL)
        m = _DECIMAL_ARGS.fullmatch(rest)
        if m is None:
            raise SchemaError(f"Invalid DECIMAL type '{sql_type}': write DECIMAL(p, s)")
        return decimal_type(int(m.group(1)), int(m.group(2) or 0))
    if base == "FLOAT" and rest.rstrip(") ").isdigit():
        return "FLOAT" if int(rest.rstrip(") ")) <= 24 else "DOUBLE"
    try:
        return _ALIASES[base]
    except KeyError:
        supported = ", ".join(sorted({*_ALIASES.values(), "DECIMAL(p, s)"}))
        raise SchemaError(f"Unsupported column type '{sql_type}'. Supported: {supported}") from None


def arrow_type(canonical: str) -> pa.DataType:
    found = ARROW_TYPES.get(canonical)
    if found is not None:
        return found
    spec = decimal_spec(canonical)
    if spec is None:
        raise SchemaError(f"Unknown column type {canonical}")
    return pa.decimal128(*spec)


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
    if pa.types.is_decimal(t) and t.precision <= DECIMAL_MAX_PRECISION:
        return decimal_type(t.precision, t.scale)
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
    if isinstance(value, bytes):
        shown = f"<{len(value)} bytes>"
    else:
        shown = str(value) if isinstance(value, decimal.Decimal) else repr(value)
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
        elif isinstance(value, decimal.Decimal):
            if not value.is_finite() or value != value.to_integral_value():
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
        plain = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not plain and (not hasattr(value, "__float__") or isinstance(value, (str, bytes, bool))):
            raise _fail(value, canonical, column)
        f = float(value)  # a Decimal or numpy number too: FLOAT still rounds below
        if canonical == "FLOAT":
            if math.isfinite(f) and abs(f) > _FLOAT32_MAX:
                raise TypeMismatchError(
                    f"Value {value} is out of range for column '{column}' of type FLOAT",
                    column_name=column,
                )
            # Stored as it reads back (4-byte), so hot and cold values agree.
            f = _F32.unpack(_F32.pack(f))[0]
        return f + 0.0  # -0.0 is stored as 0.0 (see without_negative_zero)
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
    spec = decimal_spec(canonical)
    if spec is not None:
        return to_decimal(value, spec[0], spec[1], column)
    if canonical == "TIMESTAMP":
        return _to_micros(value, column)
    if canonical == "DATE":
        return _to_days(value, column)
    raise SchemaError(f"Unknown type {canonical}")


# What PostgreSQL's int4in accepts: blanks around an optional sign and digits
# (a fraction or an exponent in text is an error there, unlike DuckDB).
_INT_TEXT = re.compile(r"\s*[+-]?[0-9]+\s*", re.ASCII)
# Text PostgreSQL reads as a float8 / real (its special values included).
_FLOAT_TEXT = re.compile(
    r"\s*[+-]?(?:(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:e[+-]?[0-9]+)?|nan|inf|infinity)\s*",
    re.ASCII | re.IGNORECASE,
)
# Text PostgreSQL reads as a boolean (whole words; it also takes prefixes).
_BOOL_TEXT = {
    **dict.fromkeys(("true", "t", "yes", "y", "on", "1"), True),
    **dict.fromkeys(("false", "f", "no", "n", "off", "0"), False),
}


def assign(value: Any, canonical: str, column: str) -> Any:
    """``value`` converted for storing in a column (INSERT, UPDATE, ON
    CONFLICT, DEFAULT): ``coerce`` after PostgreSQL's assignment cast to an
    integer column, which rounds a fraction instead of refusing it.

    - a float (a DOUBLE result, a bound Python float) rounds halves to even,
      as PostgreSQL's float8 -> int and DuckDB do: 2.5 -> 2, 3.5 -> 4;
    - a ``Decimal`` (a numeric literal such as ``2.5``, a DECIMAL result)
      rounds halves away from zero, as PostgreSQL's numeric -> int and
      DuckDB's DECIMAL -> INT do: 2.5 -> 3, -2.5 -> -3;
    - text holding an integer (``'3'``, ``' -7 '``) is that integer; other
      text (``'2.7'``, ``'abc'``) stays an error, as in PostgreSQL;
    - for a DOUBLE or REAL column, text holding a number (``'1.5'``,
      ``' 1e3 '``, ``'NaN'``, ``'-Infinity'``) is that number, and for a
      BOOLEAN column ``'true'``, ``'f'``, ``'yes'``, ``'off'``, ``'1'``...
      are those truth values, as PostgreSQL reads a quoted literal there.

    The rounded value must still fit the type (``coerce`` refuses it
    otherwise, with the same "out of range" error as ``CAST``), and NaN and
    infinities are refused. Lookups (``WHERE id = 2.5``) keep ``coerce``:
    there 2.5 matches no integer."""
    if isinstance(value, str):
        if canonical in ("FLOAT", "DOUBLE") and _FLOAT_TEXT.fullmatch(value):
            return coerce(float(value), canonical, column)
        if canonical == "BOOLEAN" and (word := value.strip().lower()) in _BOOL_TEXT:
            return _BOOL_TEXT[word]
    if type(value) is not int and canonical in _INT_RANGES and value is not None:
        if isinstance(value, bool):
            pass  # refused by coerce
        elif isinstance(value, float):
            if math.isfinite(value):
                value = round(value)  # Python rounds a float's halves to even, exactly
        elif isinstance(value, decimal.Decimal):
            if value.is_finite():
                value = value.to_integral_value(rounding=decimal.ROUND_HALF_UP)
        elif isinstance(value, str):
            if _INT_TEXT.fullmatch(value):
                value = int(value)
        elif not hasattr(value, "__index__") and hasattr(value, "__float__"):
            return assign(float(value), canonical, column)  # numpy floats
    return coerce(value, canonical, column)


def without_negative_zero(arr: pa.Array) -> pa.Array:
    """A float array with every -0.0 as 0.0 (``x + 0.0``; no other value
    changes). DOUBLE and REAL columns never store -0.0: DataFusion's IN
    lists and sorts tell it from 0.0, which SQL says it equals
    (``engine/sql/numeric_semantics.py``)."""
    if not pa.types.is_floating(arr.type) or len(arr) == 0:
        return arr
    out = pc.add(arr, pa.scalar(0.0, arr.type))
    return out.combine_chunks() if isinstance(out, pa.ChunkedArray) else out


def to_decimal(value: Any, precision: int, scale: int, column: str) -> decimal.Decimal:
    """``value`` as the stored form of DECIMAL(precision, scale): rounded to
    ``scale`` digits (ties away from zero), refused beyond ``precision``.

    Accepted: ``Decimal``, int, float (read by its shortest text, as
    PostgreSQL reads a float8), numeric text and numpy numbers."""
    canonical = f"DECIMAL({precision},{scale})"
    if isinstance(value, decimal.Decimal):
        d = value
    elif isinstance(value, bool):
        raise _fail(value, canonical, column)
    elif isinstance(value, int):
        d = decimal.Decimal(value)
    elif isinstance(value, float):
        d = decimal.Decimal(repr(value)) if math.isfinite(value) else decimal.Decimal(value)
    elif isinstance(value, str):
        try:
            d = decimal.Decimal(value.strip())
        except decimal.InvalidOperation:
            raise _fail(value, canonical, column) from None
    elif hasattr(value, "__index__"):  # numpy integers
        d = decimal.Decimal(int(value))
    elif hasattr(value, "__float__") and not isinstance(value, bytes):
        return to_decimal(float(value), precision, scale, column)
    else:
        raise _fail(value, canonical, column)
    if not d.is_finite():
        raise _fail(value, canonical, column)
    # A huge value is refused before quantizing (which would need its every digit).
    q = d if d.adjusted() >= precision else d.quantize(_QUANTUM[scale], context=_EXACT)
    if q and q.adjusted() >= precision - scale:
        raise NumericOverflowError(
            f"Numeric overflow: value {value} does not fit column '{column}' of type "
            f"{canonical} (at most {precision - scale} digit(s) before the decimal point); "
            "nothing was changed",
            column_name=column,
        )
    return q if q or not q.is_signed() else abs(q)  # no negative zero


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


def check_decimal_results(table: pa.Table) -> None:
    """Raise ``NumericOverflowError`` when a DECIMAL column of a query result
    holds a value with more digits than its type allows.

    DataFusion 55 lets decimal ``+`` / ``-`` step past the declared precision
    (``DECIMAL(38, 0)`` max + 1 gives 10^38) and ``SUM`` wrap around 128 bits
    (two such maxima sum to a negative 39-digit number) without an error.
    Such a value never fits its declared type, so it is refused here instead
    of being shown. A wrap that lands back inside the precision cannot be
    told from a real value; it needs a sum beyond 10^38, which only inputs of
    precision above 28 can reach (SUM widens by 10 digits)."""
    for name, column in zip(table.column_names, table.columns, strict=True):
        t = column.type
        if not pa.types.is_decimal128(t) or column.null_count == len(column):
            continue
        bounds = pc.min_max(column)
        limit = t.precision - t.scale
        for value in (bounds["min"].as_py(), bounds["max"].as_py()):
            if value is not None and value and value.adjusted() >= limit:
                raise NumericOverflowError(
                    f"Numeric overflow: column '{name}' of the result is {value}, which does "
                    f"not fit its type DECIMAL({t.precision},{t.scale})",
                    column_name=name,
                )
