"""Columnar checks for the values a set-based UPDATE writes.

A set-based UPDATE gets its new values from DataFusion's target SELECT as
Arrow columns. Converting them value by value (``engine.types.coerce``) and
re-checking integer arithmetic row by row held UPDATE to ~90k rows/s (issue
15). Here both are done a column at a time:

- ``stored_array`` casts a column to the table column's Arrow type with the
  same rules as ``engine.types.assign`` (integers keep their range and
  round a fraction as PostgreSQL's assignment cast does, text never turns
  into numbers but an integer column's integer text, DECIMAL precision is
  enforced). Only conversions whose vectorised result is known to equal
  ``assign``'s are done by Arrow; anything else -- and any conversion Arrow
  refuses -- is redone value by value by ``assign``, which either produces
  the same stored values or raises the same error it always raised.
- ``check_overflow_columns`` evaluates the integer part of a SET expression
  with Arrow's *checked* kernels (every step of ``+ - *`` and unary minus
  must fit its type -- 64 bits, or 32 / 16 where it combines only INT /
  SMALLINT columns, which DataFusion computes and wraps in that width --
  as ``engine.sql.checked`` does row by row). On an
  overflow the row-by-row check runs to raise its exact error.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from sqlglot import exp

from engine.catalog.model import Column
from engine.errors import NotNullViolationError
from engine.sql.checked import check_no_overflow
from engine.types import assign, decimal_spec, without_negative_zero

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_FLOAT32_MAX = 3.4028234663852886e38
_INT_COLUMNS = ("SMALLINT", "INT", "BIGINT")


class _Slow(Exception):
    """This conversion is left to ``coerce`` value by value."""


def _plain(arr: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(arr, pa.ChunkedArray):
        return arr.combine_chunks() if arr.num_chunks != 1 else arr.chunk(0)
    return arr


def stored_array(arr: pa.Array | pa.ChunkedArray, col: Column) -> pa.Array:
    """``arr`` as an array of ``col``'s Arrow type, converted as ``assign``
    converts each value (raising what it raises)."""
    arr = _plain(arr)
    if pa.types.is_null(arr.type):
        return pa.nulls(len(arr), col.arrow_type)
    if pa.types.is_dictionary(arr.type):
        arr = arr.cast(arr.type.value_type)
    try:
        if arr.type != col.arrow_type:
            arr = _fast(arr, col)
        elif pa.types.is_decimal(arr.type):
            # DataFusion's DECIMAL arithmetic can hold a value wider than
            # the type's precision (99..9 + 1 in DECIMAL(38, 0)).
            arr.validate(full=True)
        return without_negative_zero(arr)
    except (_Slow, pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        values = [None if v is None else assign(v, col.type, col.name) for v in arr.to_pylist()]
        return pa.array(values, type=col.arrow_type)


def _fast(arr: pa.Array, col: Column) -> pa.Array:
    t, target = arr.type, col.arrow_type
    if col.type in _INT_COLUMNS:
        # The assignment cast rounds (``engine.types.assign``): a float's
        # halves to even, a DECIMAL's away from zero. The safe cast then
        # refuses NaN and out-of-range values (redone by ``assign`` to raise).
        if pa.types.is_floating(t):
            arr = pc.round(arr, round_mode="half_to_even")
        elif pa.types.is_decimal(t):
            arr = pc.round(arr, round_mode="half_towards_infinity")
        elif not pa.types.is_integer(t):
            raise _Slow
        return arr.cast(target, safe=True)
    if col.type in ("FLOAT", "DOUBLE"):
        if not (pa.types.is_integer(t) or pa.types.is_floating(t)):
            raise _Slow  # decimals: coerce's float(Decimal) rounding
        wide = arr.cast(pa.float64(), safe=True)  # an int beyond 2**53 goes slow
        if col.type == "FLOAT":
            finite = pc.filter(wide, pc.is_finite(wide))
            if len(finite) and pc.max(pc.abs(finite)).as_py() > _FLOAT32_MAX:
                raise _Slow  # coerce raises the out-of-range error
            return wide.cast(target, safe=False)  # rounds to nearest, as coerce does
        return wide
    if col.type == "TEXT":
        if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
            return arr.cast(target)
        raise _Slow
    if col.type == "BYTES":
        if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_binary_view(t):
            return arr.cast(target)
        raise _Slow
    if col.type == "TIMESTAMP":
        if pa.types.is_timestamp(t):
            if t.tz is not None:
                arr = arr.cast(pa.timestamp(t.unit, tz="UTC")).cast(pa.timestamp(t.unit))
            return arr.cast(target, safe=True)  # nanoseconds that would be dropped go slow
        if pa.types.is_date32(t):
            return arr.cast(target)
        raise _Slow
    spec = decimal_spec(col.type)
    if spec is not None:
        if pa.types.is_decimal(t) and t.scale <= spec[1]:
            # A wider scale would need coerce's rounding (ties away from zero).
            return arr.cast(pa.decimal128(38, t.scale), safe=True).cast(target, safe=True)
        if pa.types.is_integer(t):
            return arr.cast(pa.decimal128(38, spec[1]), safe=True).cast(target, safe=True)
        raise _Slow
    raise _Slow  # BOOLEAN from anything but bool, DATE from timestamps, ...


def values_differ(old: pa.Array, new: pa.Array) -> pa.Array:
    """Per row, whether ``new`` differs from ``old`` (NULL equals only NULL)."""
    eq = pc.fill_null(pc.equal(old, new), False)
    both_null = pc.and_(pc.is_null(old), pc.is_null(new))
    return pc.invert(pc.or_(eq, both_null))


class _NotInteger(Exception):
    """Not plain integer arithmetic: DataFusion's value stands (see checked.py)."""


def check_overflow_columns(
    expr: exp.Expression,
    integers: Mapping[str, pa.Array],
    params: Mapping[str, Any],
    *,
    column: str,
    widths: Mapping[str, int] | None = None,
) -> None:
    """Raise ``NumericOverflowError`` when the integer arithmetic of ``expr``
    leaves its type for any row (``integers``: the rows' integer columns by
    name, as int64; ``widths``: their bits, 64 when absent). The same answer
    as ``checked.check_no_overflow`` on every row."""
    widths = widths or {}
    try:
        _eval(expr, integers, params, widths)
    except _NotInteger:
        return
    except (_Slow, pa.ArrowInvalid):
        # An overflow (or a literal beyond 64 bits): find the row and its
        # exact value the row-by-row way, which raises.
        names = list(integers)
        columns = [integers[n].to_pylist() for n in names]
        for values in zip(*columns, strict=True):
            row = dict(zip(names, values, strict=True))
            check_no_overflow(expr, row, params, column=column, widths=widths)
        if not names:
            check_no_overflow(expr, {}, params, column=column)


def _int_operand(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _NotInteger
    if not _INT64_MIN <= value <= _INT64_MAX:
        raise _Slow
    return pa.scalar(value, pa.int64())


def _narrow(value: Any, bits: int) -> Any:
    """``value`` (int64, computed exactly: a step of narrower operands never
    leaves 64 bits) when it fits ``bits``; else ``_Slow``, where DataFusion
    wrapped within the narrower type."""
    if bits < 64 and value is not None:
        bounds = pc.min_max(value) if isinstance(value, (pa.Array, pa.ChunkedArray)) else None
        lo, hi = (bounds["min"].as_py(), bounds["max"].as_py()) if bounds else (value.as_py(),) * 2
        limit = 2 ** (bits - 1)
        if lo is not None and (lo < -limit or hi >= limit):
            raise _Slow
    return value


def _eval(
    node: exp.Expression,
    cols: Mapping[str, pa.Array],
    params: Mapping[str, Any],
    widths: Mapping[str, int],
) -> tuple[Any, int]:
    """(an int64 array or scalar, or None for NULL; the bits of DataFusion's
    type for it); raises ``ArrowInvalid`` or ``_Slow`` on overflow."""
    if isinstance(node, exp.Paren):
        return _eval(node.this, cols, params, widths)
    if isinstance(node, exp.Neg):
        value, bits = _eval(node.this, cols, params, widths)
        return (None if value is None else _narrow(pc.negate_checked(value), bits)), bits
    kernel = _KERNELS.get(type(node))
    if kernel is not None:
        (left, lb), (right, rb) = (
            _eval(node.this, cols, params, widths),
            _eval(node.expression, cols, params, widths),
        )
        bits = max(lb, rb)
        if left is None or right is None:
            return None, bits
        return _narrow(kernel(left, right), bits), bits
    if isinstance(node, exp.Literal) and not node.is_string:
        try:
            return _int_operand(int(node.this)), 64
        except ValueError:
            raise _NotInteger from None
    if isinstance(node, exp.Column) and not isinstance(node.this, exp.Star):
        found = cols.get(node.name)
        if found is None:
            raise _NotInteger
        return found, widths.get(node.name, 64)
    if isinstance(node, exp.Placeholder) and node.name in params:
        return _int_operand(params[node.name]), 64
    if isinstance(node, exp.Parameter) and str(node.name) in params:
        return _int_operand(params[str(node.name)]), 64
    raise _NotInteger


_KERNELS: dict[type, Any] = {
    exp.Add: pc.add_checked,
    exp.Sub: pc.subtract_checked,
    exp.Mul: pc.multiply_checked,
}


def check_not_null(arr: pa.Array, col: Column, table_name: str) -> None:
    if not col.nullable and arr.null_count:
        raise NotNullViolationError(
            f"Column '{col.name}' of table {table_name} cannot be NULL", column_name=col.name
        )
