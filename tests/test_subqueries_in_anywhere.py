"""``x [NOT] IN (subquery)`` wherever SQL allows it, compared with DuckDB.

DataFusion 55 answers an IN subquery right only as a positive WHERE
conjunct (and an uncorrelated NOT IN as a WHERE conjunct). Under OR, under
IS NULL or in a projection it lost SQL's NULL: ``p.b NOT IN (SELECT b FROM
q) OR p.a = 1`` returned rows for which NOT IN is NULL (q holds a NULL),
and an aggregate subquery there (``IN (SELECT max(b) FROM q)``) was refused.
The engine now rewrites every such IN (``engine/sql/subqueries.py``); an
uncorrelated subquery is first wrapped as a derived table, so aggregates,
GROUP BY, LIMIT and UNION inside it are kept as they are.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from helpers_differential import Statement, engine_beside_duckdb

from engine import Engine
from engine.errors import KalamError

SETUP: list[Statement] = [
    "CREATE TABLE p (a BIGINT PRIMARY KEY, b INT)",
    "INSERT INTO p VALUES (1, 10), (2, 20), (3, 30), (4, NULL)",
    "CREATE TABLE q (a BIGINT PRIMARY KEY, b INT)",
    "INSERT INTO q VALUES (1, 5), (2, 20), (5, NULL)",
]

SUBQUERIES = [
    "SELECT b FROM q",  # holds a NULL
    "SELECT b FROM q WHERE b IS NOT NULL",
    "SELECT b FROM q WHERE b > 100",  # empty
    "SELECT max(b) FROM q",
    "SELECT b FROM q GROUP BY b",
    "SELECT b FROM q WHERE q.a < p.a",  # correlated
    "SELECT b FROM q ORDER BY b LIMIT 1",
    "SELECT b + 0 FROM q",
    "SELECT count(*) FROM q WHERE q.b IS NULL",
    "SELECT b FROM q WHERE b < 10 UNION ALL SELECT 30",
]

SHAPES = [
    "SELECT p.a FROM p WHERE p.b {op} ({s})",
    "SELECT p.a FROM p WHERE p.b {op} ({s}) OR p.a = 1",
    "SELECT p.a FROM p WHERE NOT (p.b {op} ({s}))",
    "SELECT p.a FROM p WHERE NOT (p.b {op} ({s}) OR p.a = 1)",
    "SELECT p.a, p.b {op} ({s}) AS x FROM p",
    "SELECT p.a, CASE WHEN p.b {op} ({s}) THEN 1 ELSE 0 END AS x FROM p",
    "SELECT p.a FROM p WHERE (p.b {op} ({s})) IS NULL",
    "SELECT p.a FROM p WHERE p.a > 1 AND p.b {op} ({s})",
    "SELECT count(*) AS n FROM p WHERE p.b {op} ({s}) OR p.a > 2",
]

CASES = [
    sh.format(op=op, s=s)
    for sh, s, op in itertools.product(SHAPES, SUBQUERIES, ("IN", "NOT IN"))
    # DuckDB refuses an ORDER BY ... LIMIT branch inside a bare UNION; not ours to test
]


def _sorted(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    return sorted(rows, key=repr)


@pytest.fixture(scope="module", params=["hot", "cold"])
def pair(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    path = str(tmp_path_factory.mktemp(f"in-{request.param}"))
    engine, duck = engine_beside_duckdb(path, SETUP, layout=request.param, flush=("p", "q"))
    yield engine, duck
    duck.close()
    engine.close()


@pytest.mark.parametrize("sql", CASES)
def test_in_subquery_matches_duckdb(pair: tuple[Engine, Any], sql: str) -> None:
    engine, duck = pair
    assert _sorted(engine.execute(sql).rows()) == _sorted(duck.execute(sql).fetchall())


def test_not_in_with_a_null_among_the_values_is_never_true_under_or(
    pair: tuple[Engine, Any],
) -> None:
    engine, _ = pair
    # q.b holds a NULL: `b NOT IN (...)` is FALSE or NULL for every row, so
    # only the other disjunct selects (it returned rows 1, 3 and 4 before).
    rows = engine.execute("SELECT a FROM p WHERE b NOT IN (SELECT b FROM q) OR a = 1").rows()
    assert rows == [(1,)]
    # Without the NULL, row 4 (b IS NULL) is still NULL, never TRUE.
    rows = engine.execute(
        "SELECT a FROM p WHERE b NOT IN (SELECT b FROM q WHERE b IS NOT NULL) OR a = 1 ORDER BY a"
    ).rows()
    assert rows == [(1,), (3,)]


def test_an_aggregate_in_subquery_under_or_reads_a_cte(pair: tuple[Engine, Any]) -> None:
    engine, duck = pair
    for sql in (
        "SELECT a FROM p WHERE b IN (SELECT max(b) FROM p) OR a = 1",
        "WITH m AS (SELECT max(b) AS mb FROM p) SELECT a FROM p WHERE b IN (SELECT mb FROM m) OR a = 1",
        "WITH m AS (SELECT b FROM q) SELECT a, b NOT IN (SELECT max(b) FROM m) AS x FROM p",
        "SELECT a FROM p WHERE EXISTS (SELECT b FROM q GROUP BY b HAVING count(*) > 0) OR a = 2",
    ):
        assert _sorted(engine.execute(sql).rows()) == _sorted(duck.execute(sql).fetchall()), sql


@pytest.mark.parametrize(
    "dml",
    [
        "DELETE FROM p WHERE b NOT IN (SELECT b FROM q) OR a = 1",
        "DELETE FROM p WHERE b IN (SELECT max(b) FROM q) OR a = 3",
        "UPDATE p SET b = -1 WHERE b NOT IN (SELECT b FROM q WHERE b IS NOT NULL) OR a = 1",
    ],
)
def test_dml_with_in_under_or_matches_duckdb(tmp_path: Any, dml: str) -> None:
    engine, duck = engine_beside_duckdb(str(tmp_path / "d"), SETUP)
    try:
        engine.execute(dml)
        duck.execute(dml)
        query = "SELECT a, b FROM p"
        assert _sorted(engine.execute(query).rows()) == _sorted(duck.execute(query).fetchall())
    finally:
        duck.close()
        engine.close()


@pytest.mark.parametrize(
    "sql",
    [
        # correlated, one aggregate row per outer row: `x IN (v)` is `x = v`
        "SELECT a FROM p WHERE b IN (SELECT max(b) FROM q WHERE q.a <= p.a) OR a = 4",
        "SELECT a, b NOT IN (SELECT min(b) FROM q WHERE q.a < p.a) AS x FROM p",
        # correlated and grouped without aggregates: the same set of values
        "SELECT a FROM p WHERE b NOT IN (SELECT b FROM q WHERE q.a < p.a GROUP BY b) OR a < 2",
        # two rewrites of one statement (the NOT IN before DataFusion runs it,
        # the inequality-correlated scalar after it refused): once both were
        # named __kalam_sq1 and the query failed
        "SELECT a, CASE WHEN b > (SELECT count(*) FROM q WHERE q.a < p.a) THEN 1 END AS c, "
        "CASE WHEN b NOT IN (SELECT b FROM q WHERE q.a = p.a) THEN 2 END AS d FROM p",
    ],
)
def test_correlated_in_forms_that_used_to_be_refused_match_duckdb(
    pair: tuple[Engine, Any], sql: str
) -> None:
    engine, duck = pair
    assert _sorted(engine.execute(sql).rows()) == _sorted(duck.execute(sql).fetchall())


def test_a_grouped_in_subquery_projecting_an_ungrouped_column_is_still_an_error(
    pair: tuple[Engine, Any],
) -> None:
    engine, _ = pair
    with pytest.raises(KalamError):
        engine.execute(
            "SELECT a FROM p WHERE b IN (SELECT a FROM q WHERE q.b < p.b GROUP BY b) OR a = 1"
        )


@pytest.mark.parametrize(
    "sql",
    [
        # the subquery projects an outer column: it once kept naming p inside
        # the rewrite ("Unknown column p.a")
        "SELECT a FROM p WHERE p.a NOT IN (SELECT p.a FROM q WHERE q.a < p.b) OR a = 2",
        "SELECT a, p.b IN (SELECT p.b + q.b FROM q WHERE q.a < p.a) AS x FROM p",
        "SELECT a, (SELECT max(p.a + q.b) FROM q WHERE q.a < p.b) AS x FROM p",
    ],
)
def test_subqueries_projecting_outer_columns_match_duckdb(
    pair: tuple[Engine, Any], sql: str
) -> None:
    engine, duck = pair
    assert _sorted(engine.execute(sql).rows()) == _sorted(duck.execute(sql).fetchall())
