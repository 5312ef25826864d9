"""``x IN ()`` and ``x NOT IN ()`` with an empty list (SQLite's syntax, which
DataFusion's parser refuses): nothing is in an empty set, so IN is false and
NOT IN true for every left side, NULL included -- checked against SQLite
itself, in queries and in UPDATE / DELETE predicates."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest

from engine import Engine

ROWS = [(1, 10), (2, None), (3, 30)]

QUERIES = [
    "SELECT id FROM t WHERE v IN () ORDER BY id",
    "SELECT id FROM t WHERE v NOT IN () ORDER BY id",
    "SELECT id FROM t WHERE NULL NOT IN () ORDER BY id",
    "SELECT id FROM t WHERE NULL IN () ORDER BY id",
    "SELECT id, v IN (), v NOT IN (), NOT v IN () FROM t ORDER BY id",
    "SELECT id FROM t WHERE v IN () OR id = 2 ORDER BY id",
    "SELECT id FROM t WHERE NOT (v IN () AND id > 1) ORDER BY id",
    "SELECT count(*) FROM t WHERE id IN (SELECT id FROM t WHERE v NOT IN ())",
    "SELECT id FROM t WHERE v IN ( ) ORDER BY id",
]


@pytest.fixture
def both(engine: Engine) -> tuple[Engine, sqlite3.Connection]:
    engine.execute("CREATE TABLE t (id INT PRIMARY KEY, v INT)")
    lite = sqlite3.connect(":memory:")
    lite.execute("CREATE TABLE t (id INT PRIMARY KEY, v INT)")
    for row in ROWS:
        engine.execute("INSERT INTO t VALUES ($1, $2)", list(row))
        lite.execute("INSERT INTO t VALUES (?, ?)", row)
    return engine, lite


def _norm(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    # SQLite answers booleans as 0 / 1.
    return [tuple(int(v) if isinstance(v, bool) else v for v in row) for row in rows]


@pytest.mark.parametrize("sql", QUERIES)
def test_empty_in_lists_answer_like_sqlite(
    both: tuple[Engine, sqlite3.Connection], sql: str
) -> None:
    engine, lite = both
    assert _norm(engine.execute(sql).rows()) == lite.execute(sql).fetchall()


def test_empty_in_lists_in_update_and_delete_predicates(
    both: tuple[Engine, sqlite3.Connection],
) -> None:
    engine, lite = both
    for sql in (
        "UPDATE t SET v = 0 WHERE id IN ()",
        "DELETE FROM t WHERE v IN ()",
        "UPDATE t SET v = id * 100 WHERE v NOT IN ()",
        "DELETE FROM t WHERE NOT (id NOT IN ()) OR id = 3",
    ):
        engine.execute(sql)
        lite.execute(sql)
    query = "SELECT id, v FROM t ORDER BY id"
    assert engine.execute(query).rows() == lite.execute(query).fetchall() == [(1, 100), (2, 200)]


def test_a_non_empty_list_and_a_string_holding_in_parentheses_are_untouched(
    both: tuple[Engine, sqlite3.Connection],
) -> None:
    engine, _ = both
    assert engine.execute("SELECT 'x IN ()' AS s").rows() == [("x IN ()",)]
    assert engine.execute("SELECT id FROM t WHERE v IN (10, 30) ORDER BY id").rows() == [
        (1,),
        (3,),
    ]
