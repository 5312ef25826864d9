"""Numeric answers DataFusion 55 gets wrong, rewritten before it plans them.

**A fraction cast to an integer type is rounded, not truncated.** DataFusion
truncates: ``CAST(2.7 AS INT)`` answered 2 and ``CAST(-2.7 AS INT)`` -2,
and ``CAST(2147483647.6 AS INT)`` answered 2147483647 instead of failing.
PostgreSQL (15, run beside it) and DuckDB (2.0) round, differently per
source type, and so does the engine:

- a DECIMAL (and a numeric literal such as ``2.5``, which PostgreSQL and
  DuckDB read as a DECIMAL) rounds halves away from zero: 2.5 -> 3,
  -2.5 -> -3. DataFusion's ``round`` of a DECIMAL does exactly that, in
  DECIMAL; of a literal (a Float64 there) too, and ``2.5`` is exact in both.
- a DOUBLE or REAL rounds halves to even (``rint``): 2.5 -> 2, 3.5 -> 4,
  -2.5 -> -2. DataFusion's ``round`` of a float rounds halves away from
  zero, so an exact half (``abs(x - trunc(x)) = 0.5``, exact in binary
  floating point) takes ``2 * round(x / 2)`` instead (also exact). ``avg``
  of integers is a DOUBLE in DataFusion (and DuckDB; PostgreSQL's is a
  DECIMAL), so it rounds as a DOUBLE.

The cast itself stays around the rounded value, so a value out of the
integer type's range still fails (NaN and infinities too) and ``TRY_CAST``
still gives NULL. Only operands whose type is certain are rewritten
(``_Types.kind``): columns of a base table, of a derived table or CTE
whose value is certain, literals, casts, bound parameters, arithmetic,
conditionals, aggregates and float-valued functions of those. Anything
else (a function whose type is not listed, a text) is left as written and
still truncates. (Either rule is exact for every numeric type; a wrong
guess of the type could only round an exact half the other way.)

Names: a cast is transparent in DataFusion's output names (``CAST(d AS
INT)`` is named ``t.d``); an unaliased projection holding a rewritten cast
gets the name it would have had as written, where it can be said here.

**Negative zero compares equal to zero.** DataFusion's GROUP BY, DISTINCT,
set operations and join keys already treat ``-0.0`` as ``0.0``; an IN list
of four or more literals (a hash set comparing bits: ``z IN (0.0, 5.0,
7.0, 8.0)`` missed rows holding ``-0.0``) and ORDER BY (a total order
that puts ``-0.0`` first) do not. DOUBLE and REAL columns never store
``-0.0`` (``engine/types.py`` and the columnar write paths store ``0.0``),
so here only values computed in the query are touched: a ``-0.0`` literal
in an IN list becomes ``0.0``, and a computed float on either side of an
IN list, or a computed float sort key, gets ``+ 0.0`` (which turns
``-0.0`` into ``0.0`` and changes no other value).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import pyarrow as pa
from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.optimizer.scope import Scope, traverse_scope

from engine.sql.checked_ints import render
from engine.sql.column_types import SchemaOf, column_types
from engine.sql.tokens import depth, parsed, peeked

_INT_TYPES = {
    exp.DataType.Type.SMALLINT,
    exp.DataType.Type.INT,
    exp.DataType.Type.BIGINT,
    exp.DataType.Type.TINYINT,
}
_FLOAT_TYPES = {exp.DataType.Type.DOUBLE, exp.DataType.Type.FLOAT}
_ARITHMETIC = (exp.Add, exp.Sub, exp.Mul, exp.Div, exp.Mod)
_SAME_TYPE = (exp.Abs, exp.Min, exp.Max, exp.Sum, exp.Round, exp.Floor, exp.Ceil, exp.Sign)
# Functions DataFusion answers in Float64 (a wrong guess could only move an
# exact half: the rounding below is exact for every numeric type).
_FLOAT_RESULTS = (
    exp.Sqrt,
    exp.Cbrt,
    exp.Ln,
    exp.Log,
    exp.Exp,
    exp.Rand,
    exp.Pi,
    exp.Stddev,
    exp.StddevPop,
    exp.StddevSamp,
    exp.Variance,
    exp.VariancePop,
)
_CHOICES = (exp.Coalesce, exp.Greatest, exp.Least, exp.Nullif, exp.Case, exp.If)
_SYMBOLS = {exp.Add: "+", exp.Sub: "-", exp.Mul: "*", exp.Div: "/", exp.Mod: "%"}

# Text that may hold a cast to an integer type, an IN list or a sort key.
_MAYBE_CAST = re.compile(r"CAST\s*\(|::", re.IGNORECASE)
_INT_WORD = re.compile(r"\b(?:SMALLINT|INT|INTEGER|BIGINT|INT2|INT4|INT8)\b", re.IGNORECASE)
_MAYBE_ZERO = re.compile(r"\bIN\s*\(|\bORDER\s+BY\b", re.IGNORECASE)
# ... and something that may compute a -0.0 (or be one): arithmetic, a sign,
# a function call. (A stored value never is -0.0.)
_COMPUTED = re.compile(r"[-*/%+]|\b(?!IN\b)\w+\s*\((?!\s*SELECT\b)", re.IGNORECASE)
_STRINGS = re.compile(r"'(?:[^']|'')*'")


def exact_numbers(
    sql: str, schema_of: SchemaOf | None, params: Mapping[str, Any] | None = None
) -> tuple[exp.Expr, str] | None:
    """(tree, text) of ``sql`` with the rewrites above, or None when it needs
    none (then ``sql`` runs as written)."""
    casts = _MAYBE_CAST.search(sql) is not None and _INT_WORD.search(sql) is not None
    zeros = (
        _MAYBE_ZERO.search(sql) is not None
        and _COMPUTED.search(_STRINGS.sub("''", sql)) is not None
    )
    if not (casts or zeros):
        return None
    # Looked at on the shared tree first: most queries need nothing, and
    # their own copy of the tree would cost more than the look.
    shared = peeked(sql)
    if shared is None or not isinstance(shared, exp.Query):
        return None
    try:
        known = _Types(shared, schema_of, params or {})
        if not (
            (casts and _rounded_casts(shared, known, dry=True))
            or (zeros and _zero_is_zero(shared, known, dry=True))
        ):
            return None
    except SqlglotError:
        return None
    read = parsed(sql)
    if read is None:
        return None
    tree, dialect = read
    known = _Types(tree, schema_of, params or {})
    changed = False
    try:
        if casts:
            changed |= _rounded_casts(tree, known)
        if zeros:
            changed |= _zero_is_zero(tree, known)
    except SqlglotError:
        return None
    if not changed:
        return None
    text = render(tree, dialect)
    return None if text is None else (tree, text)


class _Types:
    """The numeric kind ("int", "decimal", "float") a node certainly has."""

    def __init__(
        self, tree: exp.Expr, schema_of: SchemaOf | None, params: Mapping[str, Any]
    ) -> None:
        self._tree, self._schema_of = tree, schema_of
        self._typed: (
            tuple[dict[int, pa.DataType], dict[int, str], dict[int, list[exp.Expr]]] | None
        ) = None
        self.params = params

    def _columns(self) -> tuple[dict[int, pa.DataType], dict[int, str], dict[int, list[exp.Expr]]]:
        """Column types, qualifiers and derived values, resolved on first use
        (most queries with an ORDER BY never need them)."""
        if self._typed is None:
            columns: dict[int, pa.DataType] = {}
            qualifiers: dict[int, str] = {}
            if self._schema_of is not None:
                columns, qualifiers = column_types(self._tree, self._schema_of)
            self._typed = (columns, qualifiers, derived_columns(self._tree, qualifiers))
        return self._typed

    def kind(self, node: exp.Expr, *, literal: str = "decimal") -> str | None:
        """``literal``: the kind of a numeric literal with a point or an
        exponent: "decimal" for how a cast rounds it (PostgreSQL and DuckDB
        read a DECIMAL), "float" for the type DataFusion computes it in."""
        while isinstance(node, exp.Paren):
            node = node.this
        if isinstance(node, exp.Column):
            columns, _, derived = self._columns()
            arrow = columns.get(id(node))
            if arrow is None:
                inner = derived.get(id(node))
                if inner is None:
                    return None
                return _common([self.kind(v, literal=literal) for v in inner])
            if pa.types.is_integer(arrow):
                return "int"
            if pa.types.is_floating(arrow):
                return "float"
            return "decimal" if pa.types.is_decimal(arrow) else None
        if isinstance(node, exp.Literal):
            if node.is_string:
                return None
            text = node.this.lower()
            # DataFusion reads a Float64, and rounds it as the DECIMAL
            # PostgreSQL reads would be rounded: halves away from zero.
            return literal if ("." in text or "e" in text) else "int"
        if isinstance(node, (exp.Parameter, exp.Placeholder)):
            value = self.params.get(node.name) if node.name else None
            if isinstance(value, float):
                return "float"
            return "decimal" if isinstance(value, Decimal) else None
        if isinstance(node, exp.Cast):
            to = node.to
            if to.this in _INT_TYPES:
                return "int"
            if to.this in _FLOAT_TYPES:
                return "float"
            return "decimal" if to.this == exp.DataType.Type.DECIMAL else None
        if isinstance(node, exp.Neg):
            return self.kind(node.this, literal=literal)
        if isinstance(node, _ARITHMETIC):
            return _common([self.kind(v, literal=literal) for v in (node.this, node.expression)])
        if isinstance(node, _CHOICES):
            return _common([self.kind(v, literal=literal) for v in choices(node)])
        if isinstance(node, _FLOAT_RESULTS):
            # (Of a DECIMAL, PostgreSQL answers a DECIMAL, and rounds it so.)
            of = self.kind(node.this, literal=literal) if node.this is not None else None
            return "decimal" if of == "decimal" else "float"
        if isinstance(node, exp.Avg):
            of = self.kind(node.this, literal=literal)
            return "decimal" if of == "decimal" else ("float" if of else None)
        if isinstance(node, _SAME_TYPE) and not node.args.get("expressions"):
            if isinstance(node, exp.Round) and node.args.get("decimals") is not None:
                return None
            return self.kind(node.this, literal=literal)
        return None

    def df_name(self, node: exp.Expr) -> str | None:
        """DataFusion's output name for ``node`` (casts are transparent in
        it), for the shapes named here; None for anything else."""
        while isinstance(node, (exp.Paren, exp.Cast)):
            node = node.this
        if isinstance(node, exp.Column):
            qualifier = self._columns()[1].get(id(node))
            return None if qualifier is None else f"{qualifier}.{node.name}"
        if isinstance(node, exp.Literal) and not node.is_string:
            return _literal_name(node.this)
        if isinstance(node, exp.Neg) and isinstance(node.this, exp.Literal):
            inner = _literal_name(node.this.this)
            return None if inner is None else inner.replace("(", "(-", 1)
        if isinstance(node, _ARITHMETIC):
            left, right = self.df_name(node.this), self.df_name(node.expression)
            if left is None or right is None:
                return None
            return f"{left} {_SYMBOLS[type(node)]} {right}"
        return None


def _common(kinds: list[str | None]) -> str | None:
    """The kind DataFusion computes values of ``kinds`` together in."""
    if not kinds or None in kinds:
        return None
    if "float" in kinds:
        return "float"
    return "decimal" if "decimal" in kinds else "int"


def choices(node: exp.Expr) -> list[exp.Expr]:
    """The values a conditional expression chooses among."""
    if isinstance(node, exp.Case):
        found = [i.args.get("true") for i in node.args.get("ifs") or []]
        found.append(node.args.get("default"))
    elif isinstance(node, exp.If):
        found = [node.args.get("true"), node.args.get("false")]
    elif isinstance(node, exp.Nullif):
        found = [node.this]
    else:
        found = [node.this, *node.expressions]
    # A NULL takes the others' type.
    return [v for v in found if v is not None and not isinstance(v, exp.Null)]


def derived_columns(tree: exp.Expr, qualifiers: dict[int, str]) -> dict[int, list[exp.Expr]]:
    """id(column) -> the values it names in a derived table or CTE (one per
    branch of a set operation), where the reference is certain: qualified by
    that source, or unqualified in a scope with no other source. Their
    qualifiers (DataFusion's, for names) go into ``qualifiers``."""
    out: dict[int, list[exp.Expr]] = {}
    for scope in traverse_scope(tree):
        derived = {
            name: leaf_selects(source.expression)
            for name, source in scope.sources.items()
            if isinstance(source, Scope)
        }
        if not derived:
            continue
        only = next(iter(derived)) if len(scope.sources) == 1 else None
        for column in [n for n in scope.walk() if isinstance(n, exp.Column)]:
            name = column.table or only or ""
            selects = derived.get(name)
            if not selects:
                continue
            first = [p.alias_or_name for p in selects[0].expressions]
            if first.count(column.name) != 1:
                continue
            index = first.index(column.name)
            if any(len(s.expressions) != len(first) for s in selects):
                continue
            values = [s.expressions[index] for s in selects]
            out[id(column)] = [v.this if isinstance(v, exp.Alias) else v for v in values]
            qualifiers[id(column)] = name
    return out


def leaf_selects(query: exp.Expr) -> list[exp.Select]:
    """The SELECTs of a set operation's branches (of a SELECT: itself); empty
    for anything else."""
    if isinstance(query, exp.Select):
        return [query]
    if isinstance(query, exp.SetOperation):
        left, right = leaf_selects(query.this), leaf_selects(query.expression)
        return left + right if left and right else []
    return []


def _literal_name(text: str) -> str | None:
    if text.isdigit():
        return f"Int64({int(text)})"
    try:
        value = float(text)
    except ValueError:
        return None
    if not math.isfinite(value):
        return None
    if value.is_integer():
        shown = str(int(value))
    else:
        shown = repr(value)
        if "e" in shown:
            return None  # Rust's Display spells it out in full; not said here
    return f"Float64({shown})"


def _rounded(operand: exp.Expr, kind: str) -> exp.Expr:
    """``operand`` rounded to an integral value of its own type."""
    if kind == "decimal":
        return exp.Round(this=operand)
    # A float: halves to even. Every step is exact in binary floating point.
    half = exp.EQ(
        this=exp.Abs(this=exp.Sub(this=operand.copy(), expression=exp.Trunc(this=operand.copy()))),
        expression=exp.Literal.number("0.5"),
    )
    even = exp.Mul(
        this=exp.Literal.number(2),
        expression=exp.Round(
            this=exp.Div(this=exp.Paren(this=operand.copy()), expression=exp.Literal.number(2))
        ),
    )
    return exp.Case(ifs=[exp.If(this=half, true=even)], default=exp.Round(this=operand.copy()))


def _rounded_casts(tree: exp.Expr, known: _Types, *, dry: bool = False) -> bool:
    """``dry``: whether there is a cast to round, changing nothing."""
    casts = [
        c
        for c in tree.find_all(exp.Cast)
        if c.to.this in _INT_TYPES and known.kind(c.this) in ("decimal", "float")
    ]
    if not casts or dry:
        return bool(casts)
    # Names first, as written: a projection keeps the name DataFusion gives it.
    names: list[tuple[exp.Expr, str]] = []
    ids = {id(c) for c in casts}
    for select in {id(c.parent_select): c.parent_select for c in casts if c.parent_select}.values():
        for projection in select.expressions:
            if isinstance(projection, exp.Alias) or not any(
                id(n) in ids for n in projection.walk()
            ):
                continue
            name = known.df_name(projection)
            if name is not None:
                names.append((projection, name))
    _distinct_sort_keys_as_ordinals(casts)
    casts.sort(key=depth, reverse=True)  # innermost first: each one's kind read as written
    kinds = [(c, known.kind(c.this)) for c in casts]
    for cast, kind in kinds:
        assert kind is not None
        cast.set("this", _rounded(cast.this, kind))
    for projection, name in names:
        projection.replace(exp.alias_(projection.copy(), name, quoted=True))
    return True


def _distinct_sort_keys_as_ordinals(casts: list[exp.Cast]) -> None:
    """A DISTINCT's sort key written like one of its projections, holding a
    cast to be rewritten, becomes that projection's ordinal: DataFusion no
    longer matches the two once they hold a CASE ("ORDER BY expressions
    must appear in select list")."""
    for ordered in [o for c in casts if (o := c.find_ancestor(exp.Ordered)) is not None]:
        select = ordered.parent_select
        if not isinstance(select, exp.Select) or select.args.get("distinct") is None:
            continue
        if ordered.find_ancestor(exp.Window) is not None:
            continue
        key = ordered.this.sql()
        for index, projection in enumerate(select.expressions):
            written = projection.this if isinstance(projection, exp.Alias) else projection
            if written.sql() == key:
                gone = {id(node) for node in ordered.this.walk()}
                casts[:] = [c for c in casts if id(c) not in gone]  # (== is structural)
                ordered.set("this", exp.Literal.number(index + 1))
                break


def _is_negative_zero(node: exp.Expr) -> bool:
    while isinstance(node, exp.Paren):
        node = node.this
    if isinstance(node, exp.Neg):
        inner = node.this
        return (
            isinstance(inner, exp.Literal)
            and not inner.is_string
            and not inner.this.isdigit()  # -0 is the integer 0
            and _zero(inner.this)
        )
    if isinstance(node, exp.Cast) and node.to.this in _FLOAT_TYPES:
        inner = node.this
        return (
            isinstance(inner, exp.Literal)
            and inner.is_string
            and _zero(inner.this.strip())
            and inner.this.strip().startswith("-")
        )
    return False


def _zero(text: str) -> bool:
    try:
        return float(text) == 0.0
    except ValueError:
        return False


def _plus_zero(node: exp.Expr) -> None:
    """``node`` in place, as ``(node + 0.0)``: -0.0 becomes 0.0."""
    holder = exp.Paren(this=exp.Null())
    node.replace(holder)
    holder.set("this", exp.Add(this=node, expression=exp.Literal.number("0.0")))


def _computed_float(node: exp.Expr, known: _Types) -> bool:
    """A float the query computes (a column's stored value is never -0.0)."""
    while isinstance(node, exp.Paren):
        node = node.this
    if isinstance(node, (exp.Column, exp.Literal)):
        return False
    return known.kind(node, literal="float") == "float"


def _zero_is_zero(tree: exp.Expr, known: _Types, *, dry: bool = False) -> bool:
    """``dry``: whether a -0.0 would be made 0.0, changing nothing."""
    changed = False
    for in_list in list(tree.find_all(exp.In)):
        items = in_list.expressions
        if not items:
            continue
        for item in list(items):
            if _is_negative_zero(item):
                if dry:
                    return True
                item.replace(exp.Literal.number("0.0"))
                changed = True
            elif _computed_float(item, known):
                if dry:
                    return True
                _plus_zero(item)
                changed = True
        if _computed_float(in_list.this, known):
            if dry:
                return True
            _plus_zero(in_list.this)
            changed = True
    for ordered in list(tree.find_all(exp.Ordered)):
        select = ordered.parent_select
        if isinstance(select, exp.Select) and select.args.get("distinct") is not None:
            continue  # a DISTINCT's sort keys must be among its projections
        if ordered.find_ancestor(exp.Window) is not None:
            continue
        if _computed_float(ordered.this, known):
            if dry:
                return True
            _plus_zero(ordered.this)
            changed = True
    return changed


def kinds_of(
    tree: exp.Expr,
    nodes: list[exp.Expr],
    schema_of: SchemaOf | None,
    params: Mapping[str, Any] | None = None,
) -> list[str | None]:
    """The numeric kind ("int", "decimal", "float" or None: not certain) of
    each of ``nodes``, which are in ``tree``; a literal with a point is a
    "decimal", as PostgreSQL and DuckDB read it (engine/sql/assignment.py)."""
    known = _Types(tree, schema_of, params or {})
    return [known.kind(n) for n in nodes]
