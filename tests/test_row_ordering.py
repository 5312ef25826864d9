"""``<``, ``<=``, ``>``, ``>=`` between rows, as PostgreSQL compares them.

Members are compared left to right, stopping at the first pair that is
unequal or holds a NULL; a NULL there makes the comparison NULL
(``engine/sql/row_values.py``). DataFusion 55 compared the rows as structs,
where a NULL member sorts first: ``(1, NULL) < (1, 2)`` was TRUE and
``WHERE (a, b) < (1, 2)`` returned rows PostgreSQL does not. Checked
against a reference written from PostgreSQL's documented rule, over rows
with NULLs, hot and cold, in WHERE, under NOT, as a value, and in DELETE.
"""

from __future__ import annotations

import itertools
import operator
import random
from collections.abc import Callable
from typing import Any

import pytest

from engine import Engine

OPS: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
VALUES = [None, 0, 1, 2]
ROWS = [(i, *r) for i, r in enumerate(itertools.product(VALUES, repeat=3), start=1)]


def reference(left: tuple, right: tuple, op: str) -> bool | None:
    """PostgreSQL's row comparison: the first unequal or NULL pair decides."""
    for a, b in zip(left[:-1], right[:-1], strict=True):
        if a is None or b is None:
            return None
        if a != b:
            return OPS[op](a, b)
    a, b = left[-1], right[-1]
    return None if a is None or b is None else OPS[op](a, b)


def _sql(v: Any) -> str:
    return "NULL" if v is None else str(v)


@pytest.fixture(params=["hot", "cold"])
def eng(engine: Engine, request: pytest.FixtureRequest) -> Engine:
    engine.execute("CREATE TABLE r (id INT PRIMARY KEY, a INT, b INT, c INT)")
    engine.execute(
        "INSERT INTO r VALUES " + ", ".join(f"({', '.join(map(_sql, row))})" for row in ROWS)
    )
    if request.param == "cold":
        engine.flush("r")
    return engine


CASES = [
    (op, right)
    for op in OPS
    for right in [(1, 2), (1, None), (None, 1), (0, 0), (2, 2, 1), (1, 1, None), (1, 0, 2)]
]


@pytest.mark.parametrize(("op", "right"), CASES)
def test_where_not_and_value_follow_postgresql(eng: Engine, op: str, right: tuple) -> None:
    cols = ["a", "b", "c"][: len(right)]
    row = f"({', '.join(cols)})"
    lit = f"({', '.join(map(_sql, right))})"
    want = {r[0]: reference(r[1 : 1 + len(right)], right, op) for r in ROWS}
    got = eng.execute(f"SELECT id FROM r WHERE {row} {op} {lit} ORDER BY id").rows()
    assert got == [(i,) for i, v in sorted(want.items()) if v is True]
    got = eng.execute(f"SELECT id FROM r WHERE NOT ({row} {op} {lit}) ORDER BY id").rows()
    assert got == [(i,) for i, v in sorted(want.items()) if v is False]
    got = eng.execute(f"SELECT id, {row} {op} {lit} AS v FROM r ORDER BY id").rows()
    assert got == sorted(want.items())


def test_rows_of_columns_on_both_sides_and_row_constructors(eng: Engine) -> None:
    got = eng.execute("SELECT id FROM r WHERE ROW(a, b) >= ROW(c, a) ORDER BY id").rows()
    want = [r[0] for r in ROWS if reference((r[1], r[2]), (r[3], r[1]), ">=") is True]
    assert got == [(i,) for i in want]


def test_delete_removes_exactly_the_rows_select_finds(eng: Engine) -> None:
    where = "(a, b, c) > (1, 1, 1)"
    found = eng.execute(f"SELECT id FROM r WHERE {where} ORDER BY id").rows()
    assert found == [(r[0],) for r in ROWS if reference(r[1:], (1, 1, 1), ">") is True]
    assert eng.execute(f"DELETE FROM r WHERE {where}").rows_affected == len(found)
    left = {i for (i,) in eng.execute("SELECT id FROM r").rows()}
    assert left == {r[0] for r in ROWS} - {i for (i,) in found}


def test_rows_of_different_widths_are_refused(eng: Engine) -> None:
    with pytest.raises(Exception, match="rows of 2 and 3 values"):
        eng.execute("SELECT id FROM r WHERE (a, b) < (1, 2, 3)")


def test_a_random_mix_agrees_with_the_reference(eng: Engine) -> None:
    rng = random.Random(7)
    for _ in range(20):
        op = rng.choice(list(OPS))
        right = tuple(rng.choice(VALUES) for _ in range(3))
        want = [r[0] for r in ROWS if reference(r[1:], right, op) is True]
        lit = ", ".join(map(_sql, right))
        got = eng.execute(f"SELECT id FROM r WHERE (a, b, c) {op} ({lit}) ORDER BY id").rows()
        assert got == [(i,) for i in want], (op, right)
