"""UNIQUE constraints (a UNIQUE column, CREATE UNIQUE INDEX) on tables with a
composite primary key: a statement that rewrites a row is checked against
the other rows only, never against the row's own old version, whether the
row is hot or cold; a real repeat is still refused and changes nothing."""

from __future__ import annotations

import pytest

from engine import Engine
from engine.errors import UniqueViolationError


@pytest.fixture(params=["hot", "cold"])
def pairs(engine: Engine, request: pytest.FixtureRequest) -> Engine:
    engine.execute("CREATE TABLE t (a INT, b INT, u TEXT UNIQUE, w INT, v INT, PRIMARY KEY (a, b))")
    engine.execute("CREATE UNIQUE INDEX t_w ON t (w)")
    engine.execute("INSERT INTO t VALUES (1, 1, 'x', 10, 0), (1, 2, 'y', 20, 0)")
    if request.param == "cold":
        engine.flush("t")
    return engine


def _rows(engine: Engine) -> list[tuple[object, ...]]:
    return engine.execute("SELECT a, b, u, w, v FROM t ORDER BY a, b").rows()


def test_rewriting_a_row_keeps_its_own_unique_values(pairs: Engine) -> None:
    pairs.execute("UPDATE t SET v = 5 WHERE a = 1 AND b = 1")
    pairs.execute("UPDATE t SET v = v + 1")
    pairs.execute("INSERT INTO t VALUES (1, 2, 'y', 20, 7) ON CONFLICT (a, b) DO UPDATE SET v = 7")
    assert _rows(pairs) == [(1, 1, "x", 10, 6), (1, 2, "y", 20, 7)]


def test_moving_a_value_to_another_row_after_freeing_it_is_allowed(pairs: Engine) -> None:
    pairs.execute("UPDATE t SET u = 'z', w = 30 WHERE b = 1")
    pairs.execute("UPDATE t SET u = 'x', w = 10 WHERE b = 2")
    assert _rows(pairs) == [(1, 1, "z", 30, 0), (1, 2, "x", 10, 0)]


@pytest.mark.parametrize(
    "sql",
    [
        "INSERT INTO t VALUES (2, 1, 'x', 99, 0)",
        "INSERT INTO t VALUES (2, 1, 'new', 10, 0)",
        "UPDATE t SET u = 'y' WHERE b = 1",
        "UPDATE t SET w = 20 WHERE a = 1 AND b = 1",
    ],
)
def test_a_real_repeat_is_refused_and_changes_nothing(pairs: Engine, sql: str) -> None:
    before = _rows(pairs)
    with pytest.raises(UniqueViolationError):
        pairs.execute(sql)
    assert _rows(pairs) == before
