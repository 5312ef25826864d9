"""PostgreSQL's ``sign``, ``mod``, ``ceiling``, ``every`` and ``variance`` work
(``engine/sql/pg_functions.py``); DataFusion 55 refused them as unknown
functions. Answers checked against DuckDB (``bool_and`` for ``every``),
over hot and cold rows, in projections, WHERE, ORDER BY and GROUP BY."""

from __future__ import annotations

import duckdb
import pytest

from engine import Engine

ROWS = "(1, 7, 2.5, true, 1.25), (2, -7, -2.5, false, -3.5), (3, NULL, NULL, NULL, NULL), " + (
    "(4, 0, 0.0, true, 0), (5, 10, 9.01, true, 7.5)"
)


@pytest.fixture(params=["hot", "cold"])
def pair(
    engine: Engine, request: pytest.FixtureRequest
) -> tuple[Engine, duckdb.DuckDBPyConnection]:
    duck = duckdb.connect()
    for c in (engine, duck):
        c.execute(
            "CREATE TABLE t (id INT PRIMARY KEY, i INT, f DOUBLE, b BOOLEAN, m DECIMAL(6, 2))"
        )
        c.execute(f"INSERT INTO t VALUES {ROWS}")
    if request.param == "cold":
        engine.flush("t")
    return engine, duck


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT id, sign(i), sign(f), sign(m) FROM t ORDER BY id",
        "SELECT id, mod(i, 3), mod(i, -3), MOD(i + 1, 4) FROM t ORDER BY id",
        "SELECT id, ceiling(f), CEILING(m) FROM t ORDER BY id",
        "SELECT id FROM t WHERE mod(i, 2) = 1 OR sign(f) < 0 ORDER BY id",
        "SELECT sign(i) AS s, count(*) FROM t GROUP BY sign(i) ORDER BY s NULLS LAST",
        "SELECT id FROM t ORDER BY ceiling(f) DESC NULLS LAST, id",
        "SELECT id, 'sign(x) and mod(a, b)' AS note FROM t ORDER BY id",
        "SELECT variance(f), VARIANCE(i), variance(m) FROM t",
    ],
)
def test_answers_match_duckdb(pair: tuple[Engine, duckdb.DuckDBPyConnection], sql: str) -> None:
    engine, duck = pair
    assert [tuple(r) for r in engine.execute(sql).rows()] == duck.execute(sql).fetchall()


def test_every_is_bool_and(pair: tuple[Engine, duckdb.DuckDBPyConnection]) -> None:
    engine, duck = pair
    sql = "SELECT {f}(b), {f}(i > -10), {f}(b) FILTER (WHERE id <> 2) FROM t"
    got = engine.execute(sql.format(f="every")).rows()
    assert [tuple(r) for r in got] == duck.execute(sql.format(f="bool_and")).fetchall()
