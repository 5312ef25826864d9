"""Outer joins with a WHERE on the NULL-padded side, beside DuckDB.

DataFusion 55 answers RIGHT joins wrongly under a WHERE over the NULL-padded
side: its physical filter pushdown matches the WHERE's columns to the join
inputs by name, so over ``t1 RIGHT JOIN t2`` (both with ``id`` and ``a``)
``WHERE t1.id IS NULL`` returned no row once the inputs were unions (hot
rows and segments), and ``WHERE COALESCE(t1.a, 3) = 2`` kept t2's unmatched
rows once DataFusion swapped the sides. A FULL join it turns into a RIGHT
one under a WHERE that rejects NULLs on one side had the same fault. The
engine writes RIGHT joins as LEFT joins first, and a FULL join's WHERE
conjuncts as ``(c) IS TRUE`` (``engine/sql/right_joins.py``, ``full_joins.py``). The matrix covers every
join kind, ON conditions that filter either side, and WHERE predicates over
either side, at sizes that make DataFusion swap and not, rows hot, flushed,
and flushed with hot versions over them.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from helpers_differential import Statement, engine_beside_duckdb

from engine import Engine

KINDS = ["LEFT JOIN", "RIGHT JOIN", "FULL JOIN", "JOIN"]
ONS = ["t1.a = t2.a", "t1.a = t2.a AND t2.x > 0", "t1.a = t2.a AND t1.id > 1"]
WHERES = [
    "t1.id IS NULL",
    "COALESCE(t1.id, 0) = 0",
    "COALESCE(t1.a, 3) = 2",
    "COALESCE(t2.a, 3) = 2",
    "t1.a IS NULL",
    "t2.a IS NULL",
    "COALESCE(t2.x, 0) = 0",
    "t2.x < 0",
    # null-rejecting for one side only: DataFusion turns a FULL join into a
    # LEFT or RIGHT one under these
    "t2.id = 7 OR (t2.a IS NOT NULL AND t1.a = t2.x)",
    "t1.id > 2 OR (t1.a IS NOT NULL AND t2.a = t1.id)",
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
    params=[("hot", 3, 12), ("cold", 3, 12), ("mixed", 30, 30), ("hot", 400, 6), ("cold", 12, 400)],
    ids=lambda p: f"{p[0]}-{p[1]}x{p[2]}",
)
def pair(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    layout, n1, n2 = request.param
    statements: list[Statement] = [
        "CREATE TABLE t1 (id BIGINT PRIMARY KEY, a INT)",
        "CREATE TABLE t2 (id BIGINT PRIMARY KEY, a INT, x INT)",
        *_tables(n1, n2),
    ]
    engine, duck = engine_beside_duckdb(
        str(tmp_path_factory.mktemp("oj")),
        statements,
        layout=layout,
        flush=("t1", "t2"),
        # hot versions over cold rows: each table a union
        churn=("UPDATE t1 SET a = 7 WHERE id % 5 = 0", "DELETE FROM t2 WHERE id % 7 = 0"),
    )
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


def test_select_star_over_a_right_join_keeps_its_column_order(pair: tuple[Engine, Any]) -> None:
    engine, duck = pair
    sql = "SELECT * FROM t1 RIGHT JOIN t2 ON t1.a = t2.a WHERE t1.id IS NULL"
    result = engine.execute(sql)
    assert result.columns == ["id", "a", "id", "a", "x"]
    assert sorted(result.rows(), key=repr) == sorted(duck.execute(sql).fetchall(), key=repr)


def test_a_right_join_after_an_inner_join_matches_duckdb(pair: tuple[Engine, Any]) -> None:
    engine, duck = pair
    sql = (
        "SELECT t1.id AS i1, t2.id AS i2, u.id AS i3 FROM t1 JOIN t2 ON t1.a = t2.a "
        "RIGHT JOIN t1 AS u ON u.id = t1.id WHERE t2.id IS NULL"
    )
    assert sorted(engine.execute(sql).rows(), key=repr) == sorted(
        duck.execute(sql).fetchall(), key=repr
    )


def test_a_full_join_datafusion_would_turn_into_a_right_join_keeps_sql_s_answer(
    tmp_path: Any,
) -> None:
    engine = Engine.open(str(tmp_path / "f"), background_jobs=False, durability="async")
    try:
        engine.execute("CREATE TABLE t1 (id BIGINT PRIMARY KEY, a BIGINT)")
        engine.execute("CREATE TABLE t2 (id BIGINT PRIMARY KEY, a BIGINT, x BIGINT)")
        engine.execute("INSERT INTO t1 VALUES (1, 2), (2, 5)")
        engine.execute("INSERT INTO t2 VALUES (4, -7, -7), (5, 2, 1)")
        # t2's row 4 matches nothing (its x is not > 0), so t1.a is NULL there
        # and `t1.a = t2.x` is NULL: the row is not selected (it was).
        rows = engine.execute(
            "SELECT t1.id, t2.id FROM t1 FULL JOIN t2 ON t1.a = t2.a AND t2.x > 0 "
            "WHERE t2.id = 7 OR (t2.a IS NOT NULL AND t1.a = t2.x)"
        ).rows()
        assert rows == []
        rows = engine.execute(
            "SELECT t1.id, t2.id FROM t1 FULL JOIN t2 ON t1.a = t2.a AND t2.x > 0 "
            "WHERE t2.id = 5 OR (t2.a IS NOT NULL AND t1.a = t2.x)"
        ).rows()
        assert rows == [(1, 5)]
    finally:
        engine.close()
