"""Integer overflow in the rows an INSERT ... SELECT writes.

DataFusion's integer ``+ - *`` and unary minus wrap within their type
(``id + 9223372036854775800`` came back negative, ``a - b`` over INT columns
wrapped at 32 bits) and the wrapped value was stored. An UPDATE re-checks its
SET expressions over the old rows (``engine/sql/checked.py``); the operands
of an INSERT's SELECT are not at hand, so they are fetched: a second query,
the same SELECT with the operands of each such step of its projections as
extra columns, rendered from the statement's tree. Every step is recomputed
with Arrow's checked kernels in the type DataFusion computes it in (the
wider operand's) and any that leaves it fails the statement before anything
is written.

Steps DataFusion may evaluate for some rows only (a CASE branch, COALESCE's
later arguments, a side of AND / OR), inside aggregates or windows (not
evaluable row by row in the projection) and inside subqueries are not
checked, nor a SELECT that is a set operation: DataFusion's value stands
there, as before. The user's SELECT itself always runs as written.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from sqlglot import exp

from engine.errors import KalamError
from engine.sql.checked import LAZY, always_evaluated, overflow_error
from engine.sql.tokens import dialect_for

_STEPS = (exp.Add, exp.Sub, exp.Mul, exp.Neg)
_KERNELS: dict[type, Any] = {
    exp.Add: pc.add_checked,
    exp.Sub: pc.subtract_checked,
    exp.Mul: pc.multiply_checked,
}
_OPERAND = "__kalam_ovf{}_{}"
_PLAIN = {"expressions", "from_", "where", "joins", "with_"}


def _steps(node: exp.Expression, out: list[exp.Expression]) -> None:
    if isinstance(node, LAZY):
        for part in always_evaluated(node):
            _steps(part, out)
        return
    if isinstance(node, (exp.AggFunc, exp.Window)):
        return
    if isinstance(node, _STEPS):
        out.append(node)
    for child in node.iter_expressions():
        _steps(child, out)


def _operands(step: exp.Expression) -> list[exp.Expression]:
    return [step.this] if isinstance(step, exp.Neg) else [step.this, step.expression]


def check_insert_select(
    query: exp.Expression,
    query_sql: str,
    columns: list[str],
    run: Callable[[exp.Expression, str], pa.Table],
) -> None:
    """Raise ``NumericOverflowError`` when a step of integer arithmetic in
    the projections of ``query`` (feeding ``columns``) leaves its type for a
    row. ``run(tree, sql)`` runs a query as the INSERT's SELECT runs."""
    if not isinstance(query, exp.Select):
        return
    guard = query.copy()
    projections = list(guard.expressions)
    found: list[tuple[str, exp.Expression]] = []
    for j, projection in enumerate(projections):
        steps: list[exp.Expression] = []
        _steps(projection, steps)
        name = columns[j] if j < len(columns) and len(projections) == len(columns) else "?"
        found.extend((name, step) for step in steps)
    if not found:
        return
    extra = [
        exp.alias_(operand.copy(), _OPERAND.format(i, k), quoted=True)
        for i, (_, step) in enumerate(found)
        for k, operand in enumerate(_operands(step))
    ]
    # The projections themselves are kept only where a clause may refer to
    # them (ORDER BY an alias, GROUP BY 1, DISTINCT); else only the operands run.
    plain = {k for k, v in guard.args.items() if v} <= _PLAIN
    guard.set("expressions", extra if plain else projections + extra)
    try:
        data = run(guard, guard.sql(dialect=dialect_for(query_sql)))
    except KalamError:
        return  # the guard could not run: DataFusion's values stand, as before
    for i, (name, step) in enumerate(found):
        arrays = [
            data.column(_OPERAND.format(i, k)).combine_chunks() for k in range(len(_operands(step)))
        ]
        _check_step(step, arrays, name)


def _check_step(step: exp.Expression, arrays: list[pa.Array], column: str) -> None:
    if not all(pa.types.is_signed_integer(a.type) for a in arrays):
        return  # not integer arithmetic: floats and decimals are DataFusion's
    bits = max(a.type.bit_width for a in arrays)
    wide = [a.cast(pa.int64()) for a in arrays]
    try:
        if isinstance(step, exp.Neg):
            result = pc.negate_checked(wide[0])
        else:
            result = _KERNELS[type(step)](wide[0], wide[1])
        bounds = pc.min_max(result)
        lo, hi = bounds["min"].as_py(), bounds["max"].as_py()
        if lo is None or (-(2 ** (bits - 1)) <= lo and hi < 2 ** (bits - 1)):
            return
    except pa.ArrowInvalid:
        pass
    # Find the first row that left the type, with its exact value.
    for values in zip(*(a.to_pylist() for a in arrays), strict=True):
        if any(v is None for v in values):
            continue
        exact = -values[0] if isinstance(step, exp.Neg) else _exact(step, values)
        if not -(2 ** (bits - 1)) <= exact < 2 ** (bits - 1):
            raise overflow_error(exact, bits, column)


def _exact(step: exp.Expression, values: tuple[int, ...]) -> int:
    a, b = values
    if isinstance(step, exp.Add):
        return a + b
    if isinstance(step, exp.Sub):
        return a - b
    return a * b
