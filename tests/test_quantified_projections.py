"""``x = ANY (subquery)`` / ``x > ALL (subquery)`` as an unaliased projection.
DataFusion 55 failed it with an internal error ("Check optimizer-specific
invariants after optimizer rule: optimize_projections"), and, sorted by a
column it does not show, with ``No field named "t.i = ANY"``: its own
rewrite renames the projection. Both now take the engine's rewrite of ANY /
ALL (``subquery_forms.quantified_as_exists``). Answers checked against
DuckDB, hot and cold."""

from __future__ import annotations

from collections.abc import Iterator

import duckdb
import pytest
from helpers_differential import Statement, engine_beside_duckdb

from engine import Engine

SETUP: list[Statement] = [
    "CREATE TABLE t (id INT PRIMARY KEY, i INT)",
    "CREATE TABLE u (id INT PRIMARY KEY, i INT)",
    "INSERT INTO t VALUES (1, 7), (2, -7), (3, 0), (4, NULL)",
    "INSERT INTO u VALUES (1, 7), (2, -7), (3, 0), (4, NULL)",
]


@pytest.fixture(scope="module", params=["hot", "cold"])
def pair(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Engine, duckdb.DuckDBPyConnection]]:
    path = str(tmp_path_factory.mktemp(f"quantified-{request.param}"))
    engine, duck = engine_beside_duckdb(path, SETUP, layout=request.param, flush=("t", "u"))
    yield engine, duck
    duck.close()
    engine.close()


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT id, i = ANY (SELECT i FROM u WHERE id > 2) FROM t ORDER BY id",
        "SELECT id, i > ALL (SELECT i FROM t WHERE id > 2) FROM t ORDER BY id",
        "SELECT id, i <> ALL (SELECT i FROM u WHERE i IS NOT NULL) FROM t ORDER BY id",
        "SELECT id, i = SOME (SELECT i FROM u) FROM t ORDER BY id",
        "SELECT i = ANY (SELECT i FROM u WHERE id > 2) FROM t ORDER BY id",
        "SELECT i <> ALL (SELECT i FROM u WHERE id > 2 AND i IS NOT NULL) FROM t ORDER BY id",
        "SELECT i < ANY (SELECT i FROM u WHERE id < 3), id FROM t ORDER BY id DESC",
        "SELECT id, i = ANY (SELECT i FROM u WHERE id > 2) AS x FROM t ORDER BY id",
    ],
)
def test_answers_match_duckdb(pair: tuple[Engine, duckdb.DuckDBPyConnection], sql: str) -> None:
    engine, duck = pair
    assert engine.execute(sql).rows() == duck.execute(sql).fetchall(), sql
