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
_OPS: dict[type, Callable[[int, int], int]] = {
    exp.Add: lambda a, b: a + b,
    exp.Sub: lambda a, b: a - b,
    exp.Mul: lambda a, b: a * b,
}


class _NotInteger(Exception):
    """The expression is not plain integer arithmetic: DataFusion's answer stands."""


class _Overflow(Exception):
    """A step of the arithmetic left 64 bits (as in PostgreSQL, every step is
    checked, not only the final value)."""

    def __init__(self, value: int) -> None:
        self.value = value


def _fits(value: int) -> int:
    if value not in _INT64:
        raise _Overflow(value)
    return value


def has_arithmetic(node: exp.Expression) -> bool:
    """Whether ``node`` has any ``+ - *`` or unary minus to check (decided once
    per statement, so writes without arithmetic cost nothing per row)."""
    return any(isinstance(n, (*_OPS, exp.Neg)) for n in node.walk())


def exact_integer(
    node: exp.Expression, row: Mapping[str, Any], params: Mapping[str, Any]
) -> int | None:
    """The exact value of ``node`` when it is integer arithmetic over ``row``'s
    columns (by name), integer literals and parameters; ``None`` otherwise
    (or when an operand is NULL). Raises ``_Overflow`` when a step leaves 64 bits."""
    try:
        return _eval(node, row, params)
    except _NotInteger:
        return None


def _eval(node: exp.Expression, row: Mapping[str, Any], params: Mapping[str, Any]) -> Any:
    if isinstance(node, exp.Paren):
        return _eval(node.this, row, params)
    if isinstance(node, exp.Neg):
        value = _eval(node.this, row, params)
        return None if value is None else _fits(-value)
    op = _OPS.get(type(node))
    if op is not None:
        left, right = _eval(node.this, row, params), _eval(node.expression, row, params)
        return None if left is None or right is None else _fits(op(left, right))
    if isinstance(node, exp.Literal) and not node.is_string:
        try:
            return int(node.this)
        except ValueError:
            raise _NotInteger from None
    if isinstance(node, exp.Column) and not isinstance(node.this, exp.Star):
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
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _NotInteger
    return value


_MISSING = object()


def check_no_overflow(
    node: exp.Expression,
    row: Mapping[str, Any],
    params: Mapping[str, Any],
    *,
    column: str,
) -> None:
    """Raise ``NumericOverflowError`` when the integer arithmetic of ``node``
    (written to ``column``) leaves 64 bits for this row."""
    try:
        exact_integer(node, row, params)
    except _Overflow as over:
        raise NumericOverflowError(
            f"Integer overflow: computing the value of '{column}' reaches {over.value}, "
            "which does not fit in 64 bits (BIGINT); nothing was changed",
            column_name=column,
        ) from None
