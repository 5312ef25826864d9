"""Which values written to an integer column DataFusion must round itself.

A fraction stored in an integer column is rounded (PostgreSQL's assignment
cast, ``engine.types.assign``): a DECIMAL's halves away from zero, a
double's to even. The write paths round the values they get by their Arrow
type, which is right for columns and computed values of either type, but
DataFusion computes a numeric literal (``2.5``) as a Float64, where
PostgreSQL and DuckDB read a DECIMAL: ``UPDATE t SET i = 2.5 + 0``,
``INSERT INTO t SELECT 2.5`` and ``SET i = id + 0.5`` would store 2 for
their 3. So a value whose kind is certainly "decimal" (``numeric_semantics``)
is written as ``CAST(<value> AS <type>)``, which the SELECT path rounds as
the DECIMAL it is (``numeric_semantics.exact_numbers``). Values of any other
kind are left as written (never a cast that would accept text or booleans).
In an INSERT's SELECT, a VALUES list's numeric literals with a point or an
exponent become the DECIMALs they are (``_decimal_values``): through
``SELECT *`` or a derived table's columns their kind is not followed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import pyarrow as pa
from sqlglot import exp

from engine.catalog.model import TableDef
from engine.sql.checked_ints import render
from engine.sql.column_types import SchemaOf
from engine.sql.numeric_semantics import kinds_of, leaf_selects
from engine.sql.rewrite import decimal_literal
from engine.sql.tokens import parsed

INTEGER_COLUMNS = ("SMALLINT", "INT", "BIGINT")
# A number written with a point or an exponent (in text: maybe one).
_FRACTION = re.compile(r"[0-9][.eE]|\.[0-9]")


def cast_to(
    values: list[exp.Expr | None],
    types: list[str],
    sources: list[exp.Expr],
    schema_of: SchemaOf | None,
    params: Mapping[str, Any],
) -> list[str | None]:
    """For each value (an expression over the tables ``sources``; None: not
    evaluated), the integer type to CAST it to, or None to leave it as
    written."""
    wanted = [
        i
        for i, (v, t) in enumerate(zip(values, types, strict=True))
        if v is not None and t in INTEGER_COLUMNS and _has_fraction_literal(v)
    ]
    out: list[str | None] = [None] * len(values)
    if not wanted:
        return out
    probe = exp.Select(expressions=[values[i].copy() for i in wanted])  # type: ignore[union-attr]
    if sources:
        probe = probe.from_(sources[0].copy())
        for other in sources[1:]:
            probe = probe.join(other.copy())
    kinds = kinds_of(probe, list(probe.expressions), schema_of, params)
    for i, kind in zip(wanted, kinds, strict=True):
        if kind == "decimal":
            out[i] = types[i]
    return out


def table_schema(table: TableDef, *extra: tuple[str, pa.Schema]) -> SchemaOf:
    """A ``SchemaOf`` knowing ``table`` (and ``extra`` names) only."""
    known = dict(extra)

    def schema_of(ns: str | None, name: str) -> pa.Schema | None:
        if ns is not None and ns != table.namespace:
            return None
        return table.arrow_schema() if name == table.name else known.get(name)

    return schema_of


def source(name: str, alias: str | None = None) -> exp.Table:
    """A table of ``sources``: ``name`` [AS ``alias``]."""
    table = exp.Table(this=exp.to_identifier(name))
    if alias:
        table.set("alias", exp.TableAlias(this=exp.to_identifier(alias)))
    return table


def cast_select(
    sql: str, types: list[str], schema_of: SchemaOf | None, params: Mapping[str, Any]
) -> tuple[exp.Expr, str] | None:
    """(tree, text) of an INSERT's SELECT ``sql`` with each decimal value for
    an integer column (``types``: the target columns' types, in order) cast
    to that column's type; None when it needs none. In a set operation, a
    column is cast in every branch where it is a decimal, when no branch
    holds a double or a value of unknown kind there (those unify to a
    double, which rounds as one)."""
    if not any(t in INTEGER_COLUMNS for t in types) or not _FRACTION.search(sql):
        return None
    read = parsed(sql)
    if read is None:
        return None
    tree, dialect = read
    in_values = _decimal_values(tree)
    selects = leaf_selects(tree)
    if not selects or any(
        len(s.expressions) != len(types) or any(isinstance(p, exp.Star) for p in s.expressions)
        for s in selects
    ):
        return _rendered(tree, dialect) if in_values else None
    values = [[p.this if isinstance(p, exp.Alias) else p for p in s.expressions] for s in selects]
    wanted = [i for i, t in enumerate(types) if t in INTEGER_COLUMNS]
    flat = kinds_of(tree, [row[i] for i in wanted for row in values], schema_of, params)
    chosen: list[tuple[exp.Expr, str]] = []
    for k, i in enumerate(wanted):
        kinds = flat[k * len(values) : (k + 1) * len(values)]
        if "decimal" in kinds and all(kind in ("decimal", "int") for kind in kinds):
            decimals = [
                row[i] for row, kind in zip(values, kinds, strict=True) if kind == "decimal"
            ]
            chosen += [(value, types[i]) for value in decimals]
    if not chosen:
        return _rendered(tree, dialect) if in_values else None
    for value, column in chosen:
        value.replace(exp.cast(value.copy(), column))
    return _rendered(tree, dialect)


def _rendered(tree: exp.Expr, dialect: Any) -> tuple[exp.Expr, str] | None:
    text = render(tree, dialect)
    return None if text is None else (tree, text)


def _decimal_values(tree: exp.Expr) -> bool:
    """Rewrite each numeric literal with a point or an exponent in a VALUES
    list of ``tree`` as the DECIMAL PostgreSQL and DuckDB read it (from its
    text, exactly): DataFusion types such a column as a Float64, so
    ``INSERT INTO t SELECT * FROM (VALUES (1, 2.5))`` stored 2, not 3, in an
    integer column. Whether any was."""
    changed = False
    for values in tree.find_all(exp.Values):
        for literal in list(values.find_all(exp.Literal)):
            if literal.is_string or _FRACTION.search(literal.this) is None:
                continue
            decimal = decimal_literal(literal.this)
            if decimal is not None:
                literal.replace(decimal)
                changed = True
    return changed


def _has_fraction_literal(node: exp.Expr) -> bool:
    """Whether ``node`` holds a numeric literal with a point or an exponent:
    only those are computed as a double but are DECIMALs (a DECIMAL column,
    cast or parameter reaches the write path as a DECIMAL already), so only
    they need the cast (typing a value costs ~0.1 ms)."""
    return any(
        not n.is_string and _FRACTION.search(n.this) is not None for n in node.find_all(exp.Literal)
    )
