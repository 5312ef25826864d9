"""Outer joins with a WHERE on the NULL-padded side, beside DuckDB.

DataFusion 55, when it swaps a RIGHT join's sides (a LEFT join building on
the smaller side), pushes a WHERE over the NULL-padded side into the
preserved side through the join keys and drops it above the join: ``t1
RIGHT JOIN t2 ON t1.a = t2.a AND t2.x > 0 WHERE COALESCE(t1.a, 3) = 2`` kept
t2's unmatched rows (t1.a NULL, so COALESCE gives 3). The engine plans a
query with a RIGHT join without side swaps (``QueryRunner._frame``). The
matrix covers every join kind, ON conditions that filter either side, and
WHERE predicates over either side, at sizes that make DataFusion swap and
not, rows hot and flushed.
"""

from __future__ import annotations

import itertools
from typing import Any

import duckdb
import pytest

from engine import Engine

KINDS = ["LEFT JOIN", "RIGHT JOIN", "FULL JOIN", "JOIN"]
ONS = ["t1.a = t2.a", "t1.a = t2.a AND t2.x > 0", "t1.a = t2.a AND t1.id > 1"]
WHERES = [
    "COALESCE(t1.a, 3) = 2",
    "COALESCE(t2.a, 3) = 2",
    "t1.a IS NULL",
    "t2.a IS NULL",
    "COALESCE(t2.x, 0) = 0",
    "t2.x < 0",
]
SELECTS = ["t1.id AS i1, t2.id AS i2, t1.a AS a1", "count(*) AS n, count(t1.id) AS m"]


def _tables(n1: int, n2: int) -> list[str]:
    return [
        f"INSERT INTO t1 SELECT i, CASE WHEN i % 2 = 0 THEN 2 ELSE 5 END "
        f"FROM generate_series(1, {n1}) AS g(i)",
        f"INSERT INTO t2 SELECT i + 1000000, CASE WHEN i % 2 = 0 THEN 2 ELSE 7 END, "
        f"CASE WHEN i % 3 = 0 THEN -1 ELSE 1 END FROM generate_series(1, {n2}) AS g(i)",
    ]


@pytest.fixture(
    scope="module",
    params=[("hot", 3, 12), ("cold", 3, 12), ("hot", 400, 6), ("cold", 12, 400)],
    ids=lambda p: f"{p[0]}-{p[1]}x{p[2]}",
)
def pair(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    layout, n1, n2 = request.param
    engine = Engine.open(
        str(tmp_path_factory.mktemp("oj")), background_jobs=False, durability="async"
    )
    duck = duckdb.connect()
    for sql in (
        "CREATE TABLE t1 (id BIGINT PRIMARY KEY, a INT)",
        "CREATE TABLE t2 (id BIGINT PRIMARY KEY, a INT, x INT)",
        *_tables(n1, n2),
    ):
        engine.execute(sql)
        duck.execute(sql.replace(" PRIMARY KEY", ""))
    if layout == "cold":
        engine.execute("FLUSH TABLE t1 WAIT")
        engine.execute("FLUSH TABLE t2 WAIT")
    yield engine, duck
    duck.close()
    engine.close()


@pytest.mark.parametrize(
    "sql",
    [
        f"SELECT {sel} FROM t1 {kind} t2 ON {on} WHERE {where}"
        for kind, on, where, sel in itertools.product(KINDS, ONS, WHERES, SELECTS)
    ],
)
def test_outer_join_with_where_matches_duckdb(pair: tuple[Engine, Any], sql: str) -> None:
    engine, duck = pair
    got = sorted(engine.execute(sql).rows(), key=repr)
    assert got == sorted(duck.execute(sql).fetchall(), key=repr)


def test_right_join_keeps_no_unmatched_row_the_where_rejects(pair: tuple[Engine, Any]) -> None:
    engine, _ = pair
    rows = engine.execute(
        "SELECT t1.id, t2.id FROM t1 RIGHT JOIN t2 ON t1.a = t2.a AND t2.x > 0 "
        "WHERE COALESCE(t1.a, 3) = 2"
    ).rows()
    assert rows and all(i1 is not None for i1, _ in rows)
