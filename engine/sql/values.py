"""Evaluate the value expressions the engine handles itself: INSERT ... VALUES
items and column defaults. Literals and bound parameters are evaluated here
(the fast path); anything else is handed to DataFusion by the caller."""

from __future__ import annotations

import os
import time
import uuid
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlglot import exp

from engine.catalog.model import Default
from engine.errors import SchemaError, TypeMismatchError, UnsupportedStatementError
from engine.types import DECIMAL_MAX_PRECISION, assign, canonical_type, coerce, decimal_type

DEFAULT_FUNCTIONS = {
    "NOW": "NOW",
    "CURRENT_TIMESTAMP": "NOW",
    "CURRENT_USER": "CURRENT_USER",
    "SNOWFLAKE_ID": "SNOWFLAKE_ID",
    "UUID_V7": "UUID_V7",
    "ULID": "ULID",
}
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


class NotSimple(Exception):
    """The expression needs DataFusion."""


def simple_value(node: exp.Expression, params: dict[str, Any]) -> Any:
    """Value of a literal / parameter expression, or raise ``NotSimple``."""
    if isinstance(node, exp.Literal):
        if node.is_string:
            return node.this
        text = node.this
        try:
            return int(text)
        except ValueError:
            pass
        # Exact: a DECIMAL column stores every digit written (a float would
        # round 12345678901234567.89); other columns convert it as they would a float.
        try:
            return Decimal(text)
        except InvalidOperation:
            return float(text)
    if isinstance(node, exp.Null):
        return None
    if isinstance(node, exp.Boolean):
        return bool(node.this)
    if isinstance(node, exp.Neg):
        inner = simple_value(node.this, params)
        if isinstance(inner, (int, float, Decimal)) and not isinstance(inner, bool):
            return -inner
        raise NotSimple
    if isinstance(node, exp.Paren):
        return simple_value(node.this, params)
    if isinstance(node, exp.Parameter):
        return params[str(node.this.this if isinstance(node.this, exp.Expression) else node.this)]
    if isinstance(node, exp.Placeholder):
        return params[node.name]
    raise NotSimple


def function_name(node: exp.Expression) -> str | None:
    """The engine default function an expression calls, if any."""
    if isinstance(node, (exp.CurrentTimestamp, exp.CurrentDate)) and isinstance(
        node, exp.CurrentTimestamp
    ):
        return "NOW"
    if isinstance(node, exp.CurrentUser):
        return "CURRENT_USER"
    if isinstance(node, exp.Anonymous):
        return DEFAULT_FUNCTIONS.get(node.name.upper())
    if isinstance(node, exp.Func):
        return DEFAULT_FUNCTIONS.get(node.sql_name().upper())
    if isinstance(node, exp.Column) and not node.table:
        return DEFAULT_FUNCTIONS.get(node.name.upper())
    return None


def compile_default(node: exp.Expression, type_name: str, column: str) -> Default:
    """A DEFAULT clause -> a stored ``Default`` (literal or function)."""
    text = node.sql("postgres")
    fn = function_name(node)
    if fn is not None:
        if fn == "NOW" and type_name not in ("TIMESTAMP", "DATE", "BIGINT"):
            raise SchemaError(f"DEFAULT NOW() needs a TIMESTAMP column, '{column}' is {type_name}")
        if fn in ("CURRENT_USER", "UUID_V7", "ULID") and type_name != "TEXT":
            raise SchemaError(f"DEFAULT {fn}() needs a TEXT column, '{column}' is {type_name}")
        if fn == "SNOWFLAKE_ID" and type_name != "BIGINT":
            raise SchemaError(
                f"DEFAULT SNOWFLAKE_ID() needs a BIGINT column, '{column}' is {type_name}"
            )
        return Default("function", fn, text)
    try:
        if isinstance(node, exp.Cast):
            return Default("literal", _typed_literal(node, type_name, column, text), text)
        value = simple_value(node, {})
    except (NotSimple, KeyError):
        raise UnsupportedStatementError(
            f"DEFAULT for column '{column}' must be a literal (plain or typed, such as "
            "TIMESTAMP '2021-01-01 00:00:00') or one of "
            "NOW(), CURRENT_USER(), SNOWFLAKE_ID(), UUID_V7(), ULID()"
        ) from None
    return Default("literal", assign(value, type_name, column), text)


_LITERAL_TYPES = {str: "TEXT", bool: "BOOLEAN", int: "BIGINT", float: "DOUBLE"}


def _literal_type(value: Any) -> str:
    """The column type a plain literal has (a decimal literal: the DECIMAL that holds it)."""
    if isinstance(value, Decimal):
        scale = max(0, -int(value.as_tuple().exponent))
        precision = max(1, value.adjusted() + 1, 0) + scale
        if precision > DECIMAL_MAX_PRECISION:
            return "DOUBLE"
        return decimal_type(precision, scale)
    return _LITERAL_TYPES[type(value)]


def _typed_literal(node: exp.Cast, type_name: str, column: str, text: str) -> Any:
    """The stored value of a typed literal default (``TIMESTAMP '...'``,
    ``DATE '...'``, ``'...'::type``, ``CAST(<literal> AS type)``): the literal
    cast as DataFusion would, then to the column's type by the same rule."""
    from engine.catalog.model import Column
    from engine.exec.cast import convert_values

    value = simple_value(node.this, {})
    if value is None:
        return None
    try:
        literal_type = canonical_type(node.to.sql("postgres"))
    except SchemaError:
        raise NotSimple from None
    source = _literal_type(value)
    try:
        value = coerce(value, source, column)
        for old, new in ((source, literal_type), (literal_type, type_name)):
            if old != new:
                value = convert_values([value], Column(0, column, old), new)[0]
    except (SchemaError, TypeMismatchError):
        raise TypeMismatchError(
            f"DEFAULT {text} does not fit column '{column}' of type {type_name}",
            column_name=column,
        ) from None
    return value


def default_value(default: Default, *, user: str, seq: int, now_us: int, type_name: str) -> Any:
    if default.kind == "literal":
        return default.value
    fn = default.value
    if fn == "NOW":
        if type_name == "DATE":
            return now_us // 86_400_000_000
        return now_us
    if fn == "CURRENT_USER":
        return user
    if fn == "SNOWFLAKE_ID":
        return seq
    if fn == "UUID_V7":
        return uuid_v7(now_us // 1000)
    if fn == "ULID":
        return ulid(now_us // 1000)
    raise SchemaError(f"Unknown default function {fn}")


def uuid_v7(ms: int | None = None) -> str:
    """RFC 9562 UUID version 7: 48-bit Unix ms timestamp then random bits."""
    ms = int(time.time() * 1000) if ms is None else ms
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & ((1 << 48) - 1)) << 80 | rand
    value = (value & ~(0xF << 76)) | (0x7 << 76)  # version
    value = (value & ~(0x3 << 62)) | (0x2 << 62)  # variant
    return str(uuid.UUID(int=value))


def ulid(ms: int | None = None) -> str:
    """A ULID: 48-bit ms timestamp + 80 random bits in Crockford base32 (26 chars)."""
    ms = int(time.time() * 1000) if ms is None else ms
    value = (ms & ((1 << 48) - 1)) << 80 | int.from_bytes(os.urandom(10), "big")
    return "".join(_CROCKFORD[(value >> (5 * i)) & 31] for i in range(25, -1, -1))
