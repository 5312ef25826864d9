"""Subqueries of every form, with NULLs, compared with DuckDB.

Each query runs on the engine (rows hot, or flushed to segments) and on
DuckDB over the same rows; the sorted results must be equal. The forms are
the ones DataFusion 55 plans itself and the ones the engine decorrelates
(``engine/sql/subqueries.py``), in SELECT, WHERE, HAVING, at several depths,
and in UPDATE / DELETE predicates.
"""

from __future__ import annotations

import math
from typing import Any

import duckdb
import pytest

from engine import Engine
from engine.errors import UnsupportedStatementError

T1 = [(1, 1, 10, 100), (2, 2, 20, None), (3, None, 30, 300), (4, 4, None, 400), (5, 2, 10, 5)]
T2 = [(1, 1, 5), (2, 2, None), (3, None, 7), (4, 9, 9), (5, 2, 20)]
EMPTY: list[tuple[Any, ...]] = []

SETUP = [
    "CREATE TABLE t1 (id BIGINT PRIMARY KEY, a INT, b INT, c INT)",
    "CREATE TABLE t2 (id BIGINT PRIMARY KEY, x INT, y INT)",
    "CREATE TABLE t3 (id BIGINT PRIMARY KEY, x INT)",  # stays empty
]

QUERIES = [
    # scalar, correlated by inequality (DataFusion refuses these as written)
    "SELECT id, (SELECT count(*) FROM t1 AS x WHERE x.b < t1.b) FROM t1",
    "SELECT id, (SELECT count(*) FROM t3 WHERE t3.x < t1.a) FROM t1",
    "SELECT id, (SELECT max(y) FROM t2 WHERE t2.x < t1.a) FROM t1",
    "SELECT id, (SELECT sum(y) FROM t2 WHERE t2.x <= t1.a) FROM t1",
    "SELECT id, (SELECT count(y) FROM t2 WHERE t2.x <= t1.a) FROM t1",
    "SELECT id, (SELECT count(DISTINCT x) FROM t2 WHERE t2.y > t1.a) FROM t1",
    "SELECT id, (SELECT count(*) + 1 FROM t2 WHERE t2.x < t1.a) FROM t1",
    "SELECT id, (SELECT count(1) FROM t2 WHERE t2.x < t1.a) FROM t1",
    "SELECT id, (SELECT avg(y) FROM t2 WHERE t2.x <= t1.a AND t2.y IS NOT NULL) FROM t1",
    "SELECT id FROM t1 WHERE b > (SELECT avg(y) FROM t2 WHERE t2.x <= t1.a)",
    "SELECT id FROM t1 WHERE (SELECT count(*) FROM t2 WHERE t2.x < t1.a) = 0",
    "SELECT id, CASE WHEN a > 1 THEN (SELECT count(*) FROM t2 WHERE t2.x < t1.a) END FROM t1",
    # scalar, correlated by equality (DataFusion's own decorrelation)
    "SELECT id, (SELECT max(x) FROM t2 WHERE t2.id = t1.id) FROM t1",
    "SELECT id, (SELECT count(*) FROM t2 WHERE t2.x = t1.a) FROM t1",
    # correlated at depth two
    "SELECT id, (SELECT count(*) FROM t2 WHERE t2.x < t1.a AND EXISTS "
    "(SELECT 1 FROM t1 AS z WHERE z.b > t2.y + t1.a)) FROM t1",
    "SELECT id FROM t1 WHERE EXISTS (SELECT 1 FROM t2 WHERE t2.x = t1.a AND t2.y > "
    "(SELECT count(*) FROM t1 AS z WHERE z.b < t1.b))",
    # EXISTS / NOT EXISTS
    "SELECT id FROM t1 WHERE EXISTS (SELECT 1 FROM t2 WHERE t2.x = t1.a)",
    "SELECT id FROM t1 WHERE NOT EXISTS (SELECT 1 FROM t2 WHERE t2.x = t1.a)",
    "SELECT id FROM t1 WHERE EXISTS (SELECT 1 FROM t2 WHERE t2.x < t1.a) OR a IS NULL",
    "SELECT id FROM t1 WHERE NOT EXISTS (SELECT 1 FROM t2 WHERE t2.x < t1.a) OR b > 15",
    "SELECT id, EXISTS (SELECT 1 FROM t2 WHERE t2.x < t1.a) FROM t1",
    "SELECT id, NOT EXISTS (SELECT 1 FROM t3 WHERE t3.x < t1.a) FROM t1",
    "SELECT id, EXISTS (SELECT 1 FROM t2 WHERE t2.y IS NULL) FROM t1",
    # IN / NOT IN, with NULLs on either side
    "SELECT id FROM t1 WHERE a IN (SELECT x FROM t2 WHERE t2.y > t1.a)",
    "SELECT id FROM t1 WHERE a NOT IN (SELECT x FROM t2 WHERE t2.y > t1.a)",
    "SELECT id FROM t1 WHERE a NOT IN (SELECT y FROM t2)",
    "SELECT id FROM t1 WHERE a NOT IN (SELECT y FROM t2 WHERE y IS NOT NULL)",
    "SELECT id FROM t1 WHERE a NOT IN (SELECT x FROM t3)",
    "SELECT id, a IN (SELECT y FROM t2 WHERE t2.x < t1.a) FROM t1",
    "SELECT id, a NOT IN (SELECT y FROM t2 WHERE t2.x <= t1.a) FROM t1",
    "SELECT id, a IN (SELECT x FROM t2) FROM t1",
    "SELECT id, a NOT IN (SELECT y FROM t2) FROM t1",
    "SELECT id, b IN (SELECT x FROM t3) FROM t1",
    "SELECT id FROM t1 WHERE a IN (SELECT x FROM t2 WHERE t2.y < t1.b) OR c IS NULL",
    "SELECT id FROM t1 WHERE NOT (a IN (SELECT x FROM t2 WHERE t2.y < t1.b)) OR c IS NULL",
    # HAVING
    "SELECT a, count(*) FROM t1 GROUP BY a HAVING count(*) > "
    "(SELECT count(*) FROM t2 WHERE t2.x = t1.a)",
    "SELECT a, count(*) FROM t1 GROUP BY a HAVING count(*) >= "
    "(SELECT count(*) FROM t2 WHERE t2.x < t1.a)",
    "SELECT a, (SELECT count(*) FROM t2 WHERE t2.x < t1.a) FROM t1 GROUP BY a",
    # duplicate output names
    "SELECT a, a FROM t1",
    "SELECT (SELECT count(*) FROM t2 WHERE t2.x < t1.a), "
    "(SELECT count(*) FROM t2 WHERE t2.x < t1.a) FROM t1",
    # joins and derived tables around a correlated subquery
    "SELECT t1.id, t2.id FROM t1 JOIN t2 ON t1.a = t2.x "
    "WHERE t2.y > (SELECT count(*) FROM t1 AS z WHERE z.b < t1.b)",
    "SELECT d.id FROM (SELECT id, a FROM t1 WHERE a IS NOT NULL) AS d "
    "WHERE (SELECT count(*) FROM t2 WHERE t2.x < d.a) > 1",
    "SELECT t1.id, (SELECT count(*) FROM t2 WHERE t2.x < t1.a) FROM t1 LEFT JOIN t3 ON t3.x = t1.a",
]


def _normal(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    def value(v: Any) -> Any:
        if isinstance(v, float):
            return round(v, 9) if not math.isnan(v) else "nan"
        return v

    return sorted((tuple(value(v) for v in row) for row in rows), key=repr)


@pytest.fixture(params=["hot", "cold"])
def pair(request: pytest.FixtureRequest, engine: Engine) -> tuple[Engine, Any]:
    duck = duckdb.connect()
    for sql in SETUP:
        engine.execute(sql)
        duck.execute(sql.replace("BIGINT PRIMARY KEY", "BIGINT"))
    for name, rows in (("t1", T1), ("t2", T2)):
        marks = ", ".join("?" * len(rows[0]))
        for row in rows:
            engine.execute(f"INSERT INTO {name} VALUES ({marks})", list(row))
            duck.execute(f"INSERT INTO {name} VALUES ({marks})", list(row))
    if request.param == "cold":
        engine.execute("FLUSH TABLE t1 WAIT")
        engine.execute("FLUSH TABLE t2 WAIT")
    yield engine, duck
    duck.close()


@pytest.mark.parametrize("sql", QUERIES)
def test_subquery_results_match_duckdb(pair: tuple[Engine, Any], sql: str) -> None:
    engine, duck = pair
    got = engine.execute(sql).rows()
    expected = duck.execute(sql).fetchall()
    assert _normal(got) == _normal(expected)


def test_not_in_with_a_null_among_the_values_yields_no_rows(pair: tuple[Engine, Any]) -> None:
    engine, _ = pair
    assert engine.execute("SELECT id FROM t1 WHERE a NOT IN (SELECT y FROM t2)").rows() == []
    # Correlated: rows whose value list holds a NULL drop out; an empty list
    # (a = NULL finds no t2 row) makes NOT IN true.
    rows = engine.execute(
        "SELECT id FROM t1 WHERE a NOT IN (SELECT y FROM t2 WHERE t2.x <= t1.a)"
    ).rows()
    assert sorted(rows) == [(1,), (3,)]


def test_count_over_zero_rows_is_zero_and_other_aggregates_are_null(
    pair: tuple[Engine, Any],
) -> None:
    engine, _ = pair
    rows = dict(
        (r[0], r[1:])
        for r in engine.execute(
            "SELECT id, (SELECT count(*) FROM t3 WHERE t3.x < t1.a), "
            "(SELECT max(x) FROM t3 WHERE t3.x < t1.a) FROM t1"
        ).rows()
    )
    assert all(v == (0, None) for v in rows.values())


def test_output_names_survive_the_rewrite(pair: tuple[Engine, Any]) -> None:
    engine, _ = pair
    result = engine.execute(
        "SELECT id, (SELECT count(*) FROM t2 WHERE t2.x < t1.a) AS n FROM t1 ORDER BY id"
    )
    assert result.columns == ["id", "n"]
    assert [r[1] for r in result.rows()] == [0, 1, 0, 3, 1]


def test_duplicate_output_names_are_kept_and_pandas_dedupes_them(engine: Engine) -> None:
    engine.execute("CREATE TABLE t (id BIGINT PRIMARY KEY, a INT)")
    engine.execute("INSERT INTO t VALUES (1, 7)")
    result = engine.execute("SELECT a, a, id, a FROM t")
    assert result.columns == ["a", "a", "id", "a"]
    assert result.rows() == [(7, 7, 1, 7)]
    assert list(result.to_pandas().columns) == ["a", "a.1", "id", "a.2"]
    assert result.to_polars().columns == ["a", "a.1", "id", "a.2"]
    assert result.columns == ["a", "a", "id", "a"]  # the result itself keeps SQL's names
    joined = engine.execute("SELECT x.a, y.a FROM t AS x, t AS y")
    assert joined.columns == ["a", "a"]


@pytest.mark.parametrize(
    ("sql", "phrase"),
    [
        (
            "SELECT id, (SELECT count(*) FROM t2 WHERE t2.x < t1.a HAVING count(*) > 1) FROM t1",
            "HAVING",
        ),
        ("SELECT id, (SELECT x FROM t2 WHERE t2.x < t1.a ORDER BY x LIMIT 1) FROM t1", "LIMIT"),
        (
            "SELECT id, (SELECT count(*) FROM t2 WHERE t2.x < t1.a GROUP BY y) FROM t1",
            "GROUP BY",
        ),
    ],
)
def test_forms_that_cannot_be_rewritten_exactly_are_refused_by_name(
    pair: tuple[Engine, Any], sql: str, phrase: str
) -> None:
    engine, _ = pair
    with pytest.raises(UnsupportedStatementError) as info:
        engine.execute(sql)
    assert phrase in str(info.value)


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE t1 SET c = 0 WHERE (SELECT count(*) FROM t2 WHERE t2.x < t1.a) >= 2",
        "UPDATE t1 SET c = (SELECT count(*) FROM t2 WHERE t2.x < t1.a) WHERE a IS NOT NULL",
        "DELETE FROM t1 WHERE EXISTS (SELECT 1 FROM t2 WHERE t2.x < t1.a) OR b IS NULL",
        "DELETE FROM t1 WHERE a NOT IN (SELECT y FROM t2 WHERE t2.x <= t1.a)",
        "DELETE FROM t1 WHERE a IN (SELECT x FROM t2 WHERE t2.y > t1.a) OR c = 5",
    ],
)
def test_update_and_delete_with_correlated_predicates_match_duckdb(
    pair: tuple[Engine, Any], sql: str
) -> None:
    engine, duck = pair
    engine.execute(sql)
    duck.execute(sql)
    query = "SELECT id, a, b, c FROM t1"
    assert _normal(engine.execute(query).rows()) == _normal(duck.execute(query).fetchall())


def test_an_uncorrelated_not_in_with_limit_still_runs_as_written(pair: tuple[Engine, Any]) -> None:
    engine, duck = pair
    sql = (
        "SELECT id FROM t1 WHERE a NOT IN (SELECT x FROM t2 WHERE x IS NOT NULL ORDER BY x LIMIT 2)"
    )
    assert _normal(engine.execute(sql).rows()) == _normal(duck.execute(sql).fetchall())
