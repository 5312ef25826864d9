"""Integer arithmetic in queries that fails on overflow instead of wrapping.

DataFusion 55 evaluates ``+ - *``, unary minus and ``sum`` over integers
with wrapping arithmetic: ``SELECT b + 1`` over a BIGINT holding
9223372036854775807 answered -9223372036854775808, ``max(i) - min(i)`` over
an INT holding both extremes answered -1, and ``sum(b)`` of two large
BIGINTs came back negative (``enable_ansi_mode`` changes none of it).
PostgreSQL and DuckDB raise an overflow error there; so does the engine.

Where both operands are certainly integers (columns of integer type found
through the query's scopes, ``engine/sql/column_types.py``; integer
literals; casts to an integer type; ``min``/``max``/``sum`` of those; the
rewritten steps themselves), the step is checked:

- exactly, in DECIMAL(38, 0) (which holds any sum, difference or product of
  two 64-bit integers) cast back to the type DataFusion gives the step (the
  wider operand's); DataFusion's cast fails when the value does not fit.
  A cast is transparent in DataFusion's output names, so names stay.
- for a step over plain columns and literals, more cheaply: the native step,
  unless a DOUBLE estimate of the result comes within a factor of four of
  the type's bound (far beyond the estimate's error), where the exact form
  decides (``CASE``; ~2x the native step's CPU instead of ~5-10x). Its
  projection gets DataFusion's own name for it as an alias; where that name
  cannot be rendered here, and in sort keys (a CASE there trips
  DataFusion's plan check), the exact form is used.

``sum`` of a BIGINT is summed in DECIMAL(38, 0) and cast back to BIGINT
(~3x the CPU of the native sum). Every step is checked, as in PostgreSQL.
Anything whose type is not certain (function results, derived-table
columns, parameters) is left as written: this module never changes an
answer that fits, it only turns a wrapped one into an error. ``sum`` of INT
or SMALLINT is not checked itself (DataFusion sums those in BIGINT:
overflow needs more than 2^32 rows of extremes), but arithmetic over it is
(``sum(i) * 10000000`` wrapped to 3028092396290448384). Not checked: queries the rewritten text could not
say faithfully (``^``, time-format functions; see ``render``).
"""

from __future__ import annotations

import functools
import re
import sys
from typing import Any, ClassVar

import pyarrow as pa
from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import SqlglotError
from sqlglot.tokens import TokenType

from engine.errors import StatementTooComplexError
from engine.sql.column_types import SchemaOf, column_types, name_of
from engine.sql.mixed_numbers import NODES, doubles_where_mixed
from engine.sql.tokens import depth, parsed, peeked, tokenize

_ARROW_INTS = {pa.int16(): "SMALLINT", pa.int32(): "INT", pa.int64(): "BIGINT"}
_RANK = {"SMALLINT": 1, "INT": 2, "BIGINT": 3}
_CAST_INTS = {
    exp.DataType.Type.SMALLINT: "SMALLINT",
    exp.DataType.Type.INT: "INT",
    exp.DataType.Type.BIGINT: "BIGINT",
}
_INT64 = range(-(2**63), 2**63)
_OPS = (exp.Add, exp.Sub, exp.Mul)
# Text that may hold arithmetic or a sum: anything else is not parsed at all.
# (`*` followed by FROM, `,` or `)` is a star, not a product.)
_STRINGS = re.compile(r"'(?:[^']|'')*'")  # (a date's dashes are not arithmetic)
_MAYBE = re.compile(
    r"[+\-]|\*\s*(?!FROM\b)[\w(\"]|\b(?:sum|coalesce|greatest|least|nullif|if)\s*\(|\bCASE\b",
    re.IGNORECASE,
)

# Overflow shows as DataFusion's cast error naming the Arrow type.
_OUT_OF_RANGE = re.compile(r"value of (-?\d+) is out of range (Int16|Int32|Int64)")
_TYPE_NAMES = {"Int16": "SMALLINT", "Int32": "INT", "Int64": "BIGINT"}


def overflow_message(error_text: str) -> str | None:
    """The user-facing message for an overflow that a checked step raised
    (DataFusion's cast error text), or None if ``error_text`` is not one."""
    found = _OUT_OF_RANGE.search(error_text)
    if found is None:
        return None
    value, arrow = found.groups()
    return (
        f"Numeric overflow: an integer result ({value}) is outside the range of "
        f"{_TYPE_NAMES[arrow]}. Hint: CAST an operand to DECIMAL(38, 0) or DOUBLE "
        "to compute in a wider type"
    )


def checked_arithmetic(
    sql: str, schema_of: SchemaOf, *, projections: bool = True
) -> tuple[exp.Expr, str] | None:
    """(tree, text) of ``sql`` with its integer steps checked, or None when it
    has none (then ``sql`` runs as written). ``projections=False`` leaves the
    outermost SELECT's own projections as they are (an UPDATE's new values,
    which its write path checks exactly, naming the column)."""
    if _MAYBE.search(_STRINGS.sub("''", sql)) is None:
        return None
    # Typing and rewriting recurse once per step: a chain of the 1,000
    # operators engine/sql/limits.py admits in one expression goes deeper
    # than Python's default limit of 1,000 frames.
    if sys.getrecursionlimit() < _DEEP_ENOUGH:
        sys.setrecursionlimit(_DEEP_ENOUGH)
    try:
        return _checked(sql, schema_of, projections=projections)
    except RecursionError:
        raise StatementTooComplexError(
            "Expression too deeply nested to check its integer arithmetic for overflow"
        ) from None


# Frames for the deepest tree checked (MAX_CHECKED_STEPS chained), with room.
_DEEP_ENOUGH = 10_000
# Arithmetic operators in one query past which it is not rewritten.
MAX_CHECKED_STEPS = 200


def _checked(sql: str, schema_of: SchemaOf, *, projections: bool) -> tuple[exp.Expr, str] | None:
    if "^" in sql and any(t.token_type == TokenType.CARET for t in tokenize(sql)):
        # sqlglot reads `^` as POWER (PostgreSQL's meaning) where DataFusion
        # reads a bitwise XOR: the text could not be written back faithfully.
        return None
    # Looked at on the shared tree first: most queries need nothing, and
    # their own copy of the tree would cost more than the look.
    shared = peeked(sql)
    if not isinstance(shared, exp.Query) or shared.find(*_OPS, exp.Neg, exp.Sum, *NODES) is None:
        return None
    if sum(1 for _ in shared.find_all(*_OPS)) > MAX_CHECKED_STEPS:
        # Typing a chain re-walks it per step (quadratic) and recurses per
        # level: 1,000 chained `+` (engine/sql/limits.py admits them) took
        # minutes. Left unchecked, as written (a known gap).
        return None
    try:
        known = _Known(shared, schema_of)
    except SqlglotError:
        return None
    if not _steps(shared, known, projections) and not doubles_where_mixed(
        shared, lambda column: known.columns.get(id(column)), dry=True
    ):
        return None
    if (read := parsed(sql)) is None:
        return None
    tree, dialect = read
    known = _Known(tree, schema_of)
    nodes = _steps(tree, known, projections)
    slow, names = known.names_kept(nodes)
    # (Texts as written.) A CASE to sort on trips DataFusion's check of the
    # plan's orderings (SanityCheckPlan), so a sort key takes the cast form.
    # The same text takes the same form everywhere (GROUP BY matches it).
    slow |= {n.sql() for n in nodes if n.find_ancestor(exp.Ordered)}
    slow_ids = {id(n) for n in nodes if n.sql() in slow}
    # Before the steps are rewritten: their operands' types are read as written.
    changed = doubles_where_mixed(tree, lambda column: known.columns.get(id(column)))
    nodes.sort(key=depth, reverse=True)  # innermost first: a checked step types its parent
    for node in nodes:
        known.check(node, slow=id(node) in slow_ids)
    for select, index, name in names:
        projection = select.expressions[index]
        projection.replace(exp.alias_(projection.copy(), name, quoted=True))
    if not nodes and not changed:
        return None
    text = render(tree, dialect)
    return None if text is None else (tree, text)


def _steps(tree: exp.Query, known: _Known, projections: bool) -> list[exp.Expr]:
    """The integer steps of ``tree`` to check (read only)."""
    nodes: list[exp.Expr] = [n for n in tree.find_all(*_OPS, exp.Neg, exp.Sum) if known.checks(n)]
    if not projections and isinstance(tree, exp.Select):
        values = {id(p) for p in tree.expressions}
        nodes = [n for n in nodes if not _under(n, values, tree)]
    return nodes


# Functions whose arguments sqlglot reads in PostgreSQL's terms and writes
# back differently (``to_char(ts, '%Y')`` would become ``TO_CHAR(ts, 'YYYY')``):
# a query holding one is left as written.
_LOSSY = (exp.TimeToStr, exp.StrToTime, exp.StrToDate, exp.UnixToStr)


def render(tree: exp.Expr, dialect: Any) -> str | None:
    """``tree`` as text DataFusion reads as it read the original (``TRY_CAST``
    stays ``TRY_CAST``, not a CAST that raises); None when the tree holds
    something that does not survive the round trip."""
    if tree.find(*_LOSSY) is not None:
        return None
    return tree.sql(dialect=_faithful(Dialect.get_or_raise(dialect).__class__))


@functools.cache
def _faithful(base: type[Dialect]) -> type[Dialect]:
    generator: Any = base.generator_class

    class Generator(generator):  # type: ignore[misc,valid-type]
        TRANSFORMS: ClassVar[dict[type[exp.Expr], Any]] = {
            **generator.TRANSFORMS,
            exp.TryCast: lambda self, e: f"TRY_CAST({self.sql(e, 'this')} AS {self.sql(e, 'to')})",
        }

    return type(f"Faithful{base.__name__}", (base,), {"Generator": Generator})


def _under(node: exp.Expr, tops: set[int], root: exp.Expr) -> bool:
    """Whether ``node`` is inside one of the ``tops`` children of ``root``."""
    while node.parent is not None and node is not root:
        if id(node) in tops:
            return True
        node = node.parent
    return False


def _decimal(node: exp.Expr) -> exp.Expr:
    return exp.Cast(this=node, to=exp.DataType.build("DECIMAL(38, 0)"))


def _double(node: exp.Expr) -> exp.Expr:
    return exp.Cast(this=node, to=exp.DataType.build("DOUBLE"))


def _simple(node: exp.Expr) -> bool:
    """An operand cheap enough to appear three times in a checked step."""
    while isinstance(node, (exp.Paren, exp.Cast)):
        node = node.this
    if isinstance(node, (exp.Max, exp.Min)):
        node = node.this
    return isinstance(node, (exp.Column, exp.Literal)) or (
        isinstance(node, exp.Neg) and isinstance(node.this, exp.Literal)
    )


def _fast(node: exp.Expr) -> bool:
    """Whether ``node`` may take the fast form (a CASE, named unlike the step)."""
    if isinstance(node, exp.Neg):
        return _simple(node.this)
    return isinstance(node, _OPS) and _simple(node.this) and _simple(node.expression)


class _Known:
    """The integer types of a query's nodes and DataFusion's names for them."""

    def __init__(self, tree: exp.Expr, schema_of: SchemaOf) -> None:
        self.columns, self.qualifiers = column_types(tree, schema_of)
        self.checked: dict[int, str] = {}  # id(replacement) -> its type

    def int_type(self, node: exp.Expr) -> str | None:
        """The integer type ``node`` certainly has (as DataFusion types it), or None."""
        while isinstance(node, exp.Paren) and id(node) not in self.checked:
            node = node.this
        if id(node) in self.checked:
            return self.checked[id(node)]
        if isinstance(node, exp.Literal):
            if node.is_string or not node.this.isdigit() or int(node.this) not in _INT64:
                return None
            return "BIGINT"
        if isinstance(node, exp.Cast) and not isinstance(node, exp.TryCast):
            return _CAST_INTS.get(node.to.this) if not node.to.expressions else None
        if isinstance(node, exp.Column):
            arrow = self.columns.get(id(node))
            return _ARROW_INTS.get(arrow) if arrow is not None else None
        if isinstance(node, exp.Neg):
            return self.int_type(node.this)
        if isinstance(node, _OPS):
            left, right = self.int_type(node.this), self.int_type(node.expression)
            if left is None or right is None:
                return None
            return left if _RANK[left] >= _RANK[right] else right
        if isinstance(node, (exp.Max, exp.Min)) and not node.expressions:
            return self.int_type(node.this)
        if isinstance(node, exp.Sum) and not node.expressions:
            # DataFusion sums INT / SMALLINT in BIGINT (it cannot wrap short
            # of 2^32 rows); arithmetic over that sum can. (A BIGINT sum is
            # replaced by its checked form, typed above.)
            summed = self.int_type(_summed(node))
            return "BIGINT" if summed in ("SMALLINT", "INT") else None
        return None

    def checks(self, node: exp.Expr) -> bool:
        """Whether ``node`` is a step to check."""
        if isinstance(node, exp.Sum):
            return self.int_type(_summed(node)) == "BIGINT"
        if isinstance(node, exp.Neg) and isinstance(node.this, exp.Literal):
            return False  # a negative literal; DataFusion reads it exactly
        return self.int_type(node) is not None

    def names_kept(
        self, nodes: list[exp.Expr]
    ) -> tuple[set[str], list[tuple[exp.Select, int, str]]]:
        """Unaliased projections holding a step keep DataFusion's name for the
        expression as written: an alias where the name can be rendered, else
        their steps (and steps written the same elsewhere, e.g. in GROUP BY)
        take the slower form whose casts DataFusion leaves out of names."""
        slow: set[str] = set()
        names: list[tuple[exp.Select, int, str]] = []
        ids = {id(n) for n in nodes}
        for select in {
            id(n.parent_select): n.parent_select for n in nodes if n.parent_select
        }.values():
            for index, projection in enumerate(select.expressions):
                if isinstance(projection, exp.Alias):
                    continue
                inside = [n for n in projection.walk() if id(n) in ids]
                if not any(_fast(n) for n in inside):
                    continue  # every form it takes is a cast, which names leave out
                name = self.df_name(projection)
                if name is not None:
                    names.append((select, index, name))
                else:
                    slow.update(n.sql() for n in inside)
        return slow, names

    def df_name(self, node: exp.Expr) -> str | None:
        """DataFusion's output name for ``node``, for the shapes this module
        checks; None for anything else."""
        while isinstance(node, exp.Paren):
            node = node.this
        if isinstance(node, exp.Literal):
            return f"Int64({node.this})" if self.int_type(node) else None
        if isinstance(node, exp.Neg):
            if isinstance(node.this, exp.Literal):
                return f"Int64(-{node.this.this})" if self.int_type(node.this) else None
            inner = self.df_name(node.this)
            return None if inner is None else f"(- {inner})"
        if isinstance(node, exp.Cast):
            return self.df_name(node.this)
        if isinstance(node, exp.Column):
            qualifier = self.qualifiers.get(id(node))
            return None if qualifier is None else f"{qualifier}.{name_of(node.this)}"
        if isinstance(node, _OPS):
            left, right = self.df_name(node.this), self.df_name(node.expression)
            if left is None or right is None:
                return None
            return f"{left} {_SYMBOLS[type(node)]} {right}"
        if isinstance(node, (exp.Sum, exp.Max, exp.Min)) and not node.expressions:
            inner = self.df_name(node.this)
            return None if inner is None else f"{type(node).__name__.lower()}({inner})"
        return None

    def check(self, node: exp.Expr, *, slow: bool) -> None:
        """Replace ``node`` by its checked form."""
        if isinstance(node, exp.Sum):
            target = _summed(node)
            target.replace(_decimal(target.copy()))
            top: exp.Expr = node
            while isinstance(top.parent, (exp.Filter, exp.Window)) and top.parent.this is top:
                top = top.parent
            holder = exp.Cast(this=exp.Null(), to=exp.DataType.build("BIGINT"))
            top.replace(holder)
            holder.set("this", top)
            self.checked[id(holder)] = "BIGINT"
            return
        result = self.int_type(node)
        assert result is not None
        if isinstance(node, exp.Neg):
            a = node.this
            exact: exp.Expr = exp.Neg(this=_decimal(a.copy()))
            fast: exp.Expr = exp.Neg(this=a.copy())
            near: exp.Expr = exp.LT(
                this=a.copy(), expression=exp.Neg(this=exp.Literal.number(_MAX[result]))
            )
        else:
            a, b = node.this, node.expression
            op = type(node)
            exact = op(this=_decimal(a.copy()), expression=_decimal(b.copy()))
            fast = op(this=a.copy(), expression=b.copy())
            approx = op(this=_double(a.copy()), expression=_double(b.copy()))
            near = exp.GTE(
                this=exp.Abs(this=approx), expression=exp.Literal.number(f"{_NEAR[result]}.0")
            )
        simple = _fast(node)
        checked = exp.Cast(this=exact, to=exp.DataType.build(result))
        if simple and not slow:  # (as ``_fast`` decides)
            # Exact only where the double estimate comes near the type's
            # bound (its error is far below the margin); the native step elsewhere.
            replacement: exp.Expr = exp.Paren(
                this=exp.Case(ifs=[exp.If(this=near, true=checked)], default=fast)
            )
        else:
            replacement = checked
        node.replace(replacement)
        self.checked[id(replacement)] = result


_SYMBOLS = {exp.Add: "+", exp.Sub: "-", exp.Mul: "*"}
_MAX = {"SMALLINT": str(2**15 - 1), "INT": str(2**31 - 1), "BIGINT": str(2**63 - 1)}
_NEAR = {"SMALLINT": 2**13, "INT": 2**29, "BIGINT": 2**61}


def _summed(node: exp.Sum) -> exp.Expr:
    arg = node.this
    if isinstance(arg, exp.Distinct) and len(arg.expressions) == 1:
        return arg.expressions[0]
    return arg
