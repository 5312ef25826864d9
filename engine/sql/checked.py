"""Checked integer arithmetic for the values a statement writes.

DataFusion's integer ``+ - *`` wrap around on overflow (``9223372036854775807
+ 1`` gives ``-9223372036854775808``), so a stored value could silently be
wrong. For the expressions an INSERT or UPDATE writes, the integer part of
the arithmetic (columns, integer literals and parameters combined with
``+ - *`` and unary minus) is evaluated again here exactly, with Python's
unbounded integers: a step outside 64 bits means DataFusion wrapped, and
the statement fails with ``NumericOverflowError`` before anything is
written. Expressions with anything else (functions, casts, floats, division)
are left to DataFusion, whose functions check their own overflow.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sqlglot import exp

from engine.errors import NumericOverflowError

_INT64 = range(-(2**63), 2**63)
INTEGER_TYPES = ("SMALLINT", "INT", "BIGINT")
# DataFusion computes ``+ - *`` and unary minus in the wider operand's type
# (an integer literal or parameter is Int64), and wraps within it: SMALLINT +
# SMALLINT wraps at 16 bits, INT - INT at 32 (measured on datafusion 55).
BITS = {"SMALLINT": 16, "INT": 32, "BIGINT": 64}
_TYPE_NAMES = {16: "SMALLINT", 32: "INT", 64: "BIGINT"}
_OPS: dict[type, Callable[[int, int], int]] = {
    exp.Add: lambda a, b: a + b,
    exp.Sub: lambda a, b: a - b,
    exp.Mul: lambda a, b: a * b,
}


class _NotInteger(Exception):
    """The expression is not plain integer arithmetic: DataFusion's answer stands."""


class _Overflow(Exception):
    """A step of the arithmetic left its type (as in PostgreSQL, every step is
    checked, not only the final value)."""

    def __init__(self, value: int, bits: int = 64) -> None:
        self.value = value
        self.bits = bits


def _fits(value: int, bits: int = 64) -> int:
    if not -(2 ** (bits - 1)) <= value < 2 ** (bits - 1):
        raise _Overflow(value, bits)
    return value


def has_arithmetic(node: exp.Expression) -> bool:
    """Whether ``node`` has any ``+ - *`` or unary minus to check (decided once
    per statement, so writes without arithmetic cost nothing per row)."""
    return any(isinstance(n, (*_OPS, exp.Neg)) for n in node.walk())


def exact_integer(
    node: exp.Expression,
    row: Mapping[str, Any],
    params: Mapping[str, Any],
    widths: Mapping[str, int] | None = None,
) -> int | None:
    """The exact value of ``node`` when it is integer arithmetic over ``row``'s
    columns (by name), integer literals and parameters; ``None`` otherwise
    (or when an operand is NULL). Raises ``_Overflow`` when a step leaves its
    type: 64 bits, or the width of the narrower columns it combines
    (``widths``: bits per column name, 64 when absent)."""
    try:
        return _eval(node, row, params, widths or {})[0]
    except _NotInteger:
        return None


def _eval(
    node: exp.Expression,
    row: Mapping[str, Any],
    params: Mapping[str, Any],
    widths: Mapping[str, int],
) -> tuple[Any, int]:
    """(value, bits of DataFusion's type for it)."""
    if isinstance(node, exp.Paren):
        return _eval(node.this, row, params, widths)
    if isinstance(node, exp.Neg):
        value, bits = _eval(node.this, row, params, widths)
        return (None if value is None else _fits(-value, bits)), bits
    op = _OPS.get(type(node))
    if op is not None:
        (left, lb), (right, rb) = (
            _eval(node.this, row, params, widths),
            _eval(node.expression, row, params, widths),
        )
        bits = max(lb, rb)
        return (None if left is None or right is None else _fits(op(left, right), bits)), bits
    if isinstance(node, exp.Literal) and not node.is_string:
        try:
            return int(node.this), 64
        except ValueError:
            raise _NotInteger from None
    bits = 64
    if isinstance(node, exp.Column) and not isinstance(node.this, exp.Star):
        bits = widths.get(node.name, 64)
        # ``row`` may hold qualified names (``excluded.n``) beside plain ones.
        value = row.get(f"{node.table}.{node.name}".lower(), _MISSING) if node.table else _MISSING
        if value is _MISSING:
            value = row.get(node.name, _MISSING)
    elif isinstance(node, exp.Placeholder) and node.name in params:
        value = params[node.name]
    elif isinstance(node, exp.Parameter) and str(node.name) in params:
        value = params[str(node.name)]
    else:
        raise _NotInteger
    if value is None:
        return None, bits
    if isinstance(value, bool) or not isinstance(value, int):
        raise _NotInteger
    return value, bits


_MISSING = object()


def check_no_overflow(
    node: exp.Expression,
    row: Mapping[str, Any],
    params: Mapping[str, Any],
    *,
    column: str,
    widths: Mapping[str, int] | None = None,
) -> None:
    """Raise ``NumericOverflowError`` when the integer arithmetic of ``node``
    (written to ``column``) leaves its type for this row."""
    try:
        exact_integer(node, row, params, widths)
    except _Overflow as over:
        raise overflow_error(over.value, over.bits, column) from None


def overflow_error(value: int, bits: int, column: str) -> NumericOverflowError:
    return NumericOverflowError(
        f"Integer overflow: computing the value of '{column}' reaches {value}, "
        f"which does not fit in {bits} bits ({_TYPE_NAMES.get(bits, 'an integer')}); "
        "nothing was changed",
        column_name=column,
    )


# Where an operand may be evaluated only for some rows (a CASE branch, the
# rest of a COALESCE, a side of AND / OR) or names another table's columns
# (a subquery), checking every row could refuse a statement that is right:
# arithmetic there is left to DataFusion. The parts such a construct always
# evaluates (COALESCE's first argument, CASE's operand and first condition,
# IF's condition) are searched.
LAZY = (exp.Subquery, exp.Select, exp.Case, exp.If, exp.Coalesce, exp.And, exp.Or)


def always_evaluated(n: exp.Expression) -> list[exp.Expression]:
    if isinstance(n, exp.Coalesce):
        return [n.this]
    if isinstance(n, exp.Case):
        ifs = n.args.get("ifs") or []
        return [e for e in (n.this, ifs[0].this if ifs else None) if e is not None]
    if isinstance(n, exp.If):
        return [n.this]
    return []


def integer_parts(
    node: exp.Expression, integer_columns: list[str], params: Mapping[str, Any]
) -> list[exp.Expression]:
    """The largest parts of ``node`` that are plain integer arithmetic over
    the row's integer columns, literals and parameters: each is checked on
    every row. ``abs(a + a)`` or ``CAST(a * b AS TEXT)`` wrap inside the
    function just as a bare ``a + a`` does, so the search goes through
    functions, casts and comparisons (decided once per statement: with every
    integer column 0, anything else evaluates to None)."""
    zeros = dict.fromkeys(integer_columns, 0)
    out: list[exp.Expression] = []

    def visit(n: exp.Expression) -> None:
        if isinstance(n, LAZY):
            for part in always_evaluated(n):
                visit(part)
            return
        if isinstance(n, (*_OPS, exp.Neg)):
            try:
                plain = exact_integer(n, zeros, params) is not None
            except Exception:  # an overflow already (huge literals): check every row
                plain = True
            if plain:
                out.append(n)
                return
        for child in n.iter_expressions():
            visit(child)

    visit(node)
    return out
