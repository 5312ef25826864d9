"""DOUBLE and DECIMAL values meeting in one result: the result is a DOUBLE.

DataFusion 55 gives ``COALESCE``, ``CASE``, ``GREATEST``, ``LEAST``,
``NULLIF`` and ``IF`` whose values mix a DOUBLE and a DECIMAL the type
DECIMAL(30, 15): ``COALESCE(d, m)`` answered 0 for a DOUBLE 1e-20,
12345678.123456788430848 for 12345678.123456789 (digits the double never
had), and refused a DOUBLE of 1e300 (``Cannot cast to Decimal128(30, 15)``).
PostgreSQL and DuckDB give such an expression the DOUBLE type (the
preferred numeric type). Where one value is certainly a DOUBLE (a FLOAT or
DOUBLE column, a literal with a point or an exponent, a cast to a floating
type, arithmetic with one of those) the values that are certainly DECIMAL
are cast to DOUBLE, which is the coercion PostgreSQL makes. A cast is
transparent in DataFusion's output names, so names stay as they were.
Values of a type not known here are left to DataFusion.
"""

from __future__ import annotations

from collections.abc import Callable

import pyarrow as pa
from sqlglot import exp

_FLOAT_TYPES = {exp.DataType.Type.DOUBLE, exp.DataType.Type.FLOAT}
_DECIMAL_TYPES = {exp.DataType.Type.DECIMAL}
_ARITHMETIC = (exp.Add, exp.Sub, exp.Mul, exp.Div)
NODES = (exp.Coalesce, exp.Greatest, exp.Least, exp.Nullif, exp.Case, exp.If)


def kind(node: exp.Expr, column_type: Callable[[exp.Column], pa.DataType | None]) -> str | None:
    """The type ``node`` certainly has, "float" or "decimal"; else None."""
    while isinstance(node, exp.Paren):
        node = node.this
    if isinstance(node, exp.Column):
        arrow = column_type(node)
        if arrow is None:
            return None
        if pa.types.is_floating(arrow):
            return "float"
        return "decimal" if pa.types.is_decimal(arrow) else None
    if isinstance(node, exp.Literal):
        text = node.this.lower()
        return "float" if not node.is_string and ("." in text or "e" in text) else None
    if isinstance(node, exp.Cast) and not isinstance(node, exp.TryCast):
        if node.to.this in _FLOAT_TYPES:
            return "float"
        return "decimal" if node.to.this in _DECIMAL_TYPES else None
    if isinstance(node, exp.Neg):
        return kind(node.this, column_type)
    if isinstance(node, _ARITHMETIC):
        # DataFusion computes a DOUBLE with any numeric operand in DOUBLE.
        kinds = {kind(node.this, column_type), kind(node.expression, column_type)}
        return "float" if "float" in kinds else None
    return None


def _values(node: exp.Expr) -> list[exp.Expr]:
    """The expressions whose common type is the result's type."""
    if isinstance(node, exp.Case):
        return [i.args["true"] for i in node.args.get("ifs") or []] + (
            [node.args["default"]] if node.args.get("default") is not None else []
        )
    if isinstance(node, exp.If):
        return [v for v in (node.args.get("true"), node.args.get("false")) if v is not None]
    if isinstance(node, exp.Nullif):
        return [node.this, node.expression]
    return [node.this, *node.expressions]


def doubles_where_mixed(
    tree: exp.Expr, column_type: Callable[[exp.Column], pa.DataType | None], *, dry: bool = False
) -> bool:
    """Cast the DECIMAL values of every mixed expression in ``tree`` to
    DOUBLE (in place); whether any was. ``dry``: whether any would be,
    changing nothing."""
    changed = False
    for node in list(tree.find_all(*NODES)):
        values = _values(node)
        kinds = [kind(v, column_type) for v in values]
        if "float" not in kinds or "decimal" not in kinds:
            continue
        if dry:
            return True
        for value, found in zip(values, kinds, strict=True):
            if found == "decimal":
                # Wrapped in place: nodes inside the value stay the same objects.
                cast = exp.Cast(this=exp.Null(), to=exp.DataType.build("DOUBLE"))
                value.replace(cast)
                cast.set("this", value)
                changed = True
    return changed
