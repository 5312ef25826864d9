"""``x NOT IN (S)`` where ``x`` or ``S``'s column is a NOT NULL column: the
tests of a NULL member are left out of the rewrite (``row_values._maybe_terms``),
so with both NOT NULL it is one keyed anti join. A column is NOT NULL only
where no row is made up: an outer join's padding row, ROLLUP's total rows
and an aggregate's row over nothing hold NULLs though the column is
declared NOT NULL. Answers checked against DuckDB, hot and cold."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
from helpers_differential import engine_beside_duckdb

from engine import Engine
from engine.sql import row_values

TABLES = [
    "CREATE TABLE t (id INT PRIMARY KEY, a INT NOT NULL, n INT)",
    "CREATE TABLE u (id INT PRIMARY KEY, b INT NOT NULL, m INT)",
    "CREATE TABLE w (id INT PRIMARY KEY, k INT NOT NULL)",
]
ROWS = [
    "INSERT INTO t VALUES (1, 1, 1), (2, 2, NULL), (3, 3, 3), (4, 4, 4), (5, 1, 5)",
    "INSERT INTO u VALUES (1, 1, 1), (2, 3, NULL), (3, 3, 3)",
    "INSERT INTO w VALUES (1, 1), (2, 2), (3, 9)",
]


def _pair(path: str, layout: str) -> tuple[Engine, duckdb.DuckDBPyConnection]:
    return engine_beside_duckdb(path, [*TABLES, *ROWS], layout=layout, flush=("t", "u", "w"))


@pytest.fixture(scope="module", params=["hot", "cold"])
def pair(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Engine, duckdb.DuckDBPyConnection]]:
    engine, duck = _pair(str(tmp_path_factory.mktemp(f"notnull-{request.param}")), request.param)
    yield engine, duck
    duck.close()
    engine.close()


@pytest.mark.parametrize(
    "sql",
    [
        # both sides NOT NULL
        "SELECT id FROM t WHERE a NOT IN (SELECT b FROM u) ORDER BY id",
        "SELECT id FROM t WHERE a NOT IN (SELECT b FROM u WHERE b > 100) ORDER BY id",
        "SELECT id FROM t WHERE a NOT IN (SELECT id FROM u) AND id > 1 ORDER BY id",
        # a nullable side
        "SELECT id FROM t WHERE a NOT IN (SELECT m FROM u) ORDER BY id",
        "SELECT id FROM t WHERE a NOT IN (SELECT m FROM u WHERE m IS NOT NULL) ORDER BY id",
        "SELECT id FROM t WHERE n NOT IN (SELECT b FROM u) ORDER BY id",
        "SELECT id FROM t WHERE n NOT IN (SELECT b FROM u WHERE b > 100) ORDER BY id",
        # a NOT NULL column padded by an outer join, in the subquery or around it
        "SELECT id FROM t WHERE a NOT IN (SELECT u.b FROM w LEFT JOIN u ON u.id = w.k) ORDER BY id",
        "SELECT t.id FROM t LEFT JOIN u ON u.id = t.id WHERE u.b NOT IN (SELECT k FROM w) "
        "ORDER BY t.id",
        "SELECT t.id FROM t LEFT JOIN u ON u.id = t.id "
        "WHERE u.b NOT IN (SELECT k FROM w WHERE k > 100) ORDER BY t.id",
        "SELECT t.id FROM u RIGHT JOIN t ON u.id = t.id WHERE u.b NOT IN (SELECT k FROM w) "
        "ORDER BY t.id",
        "SELECT t.id FROM t FULL JOIN u ON u.id = t.id WHERE u.b NOT IN (SELECT k FROM w) "
        "ORDER BY t.id",
        # ROLLUP's total row and an aggregate over no row are NULL
        "SELECT id FROM t WHERE a NOT IN (SELECT b FROM u GROUP BY ROLLUP (b)) ORDER BY id",
        "SELECT id FROM t WHERE a NOT IN (SELECT max(b) FROM u WHERE b > 100) ORDER BY id",
        # rows of two
        "SELECT id FROM t WHERE (a, id) NOT IN (SELECT b, id FROM u) ORDER BY id",
        "SELECT id FROM t WHERE (a, n) NOT IN (SELECT b, m FROM u) ORDER BY id",
        "SELECT id FROM t WHERE (n, a) NOT IN (SELECT b, id FROM u WHERE id < 3) ORDER BY id",
        # IN as a value (the CASE form)
        "SELECT id, a IN (SELECT b FROM u), a NOT IN (SELECT m FROM u) FROM t ORDER BY id",
        "SELECT id, (a, n) IN (SELECT b, m FROM u) FROM t ORDER BY id",
    ],
)
def test_answers_match_duckdb(pair: tuple[Engine, duckdb.DuckDBPyConnection], sql: str) -> None:
    engine, duck = pair
    assert engine.execute(sql).rows() == duck.execute(sql).fetchall(), sql


def test_a_view_over_an_outer_join_is_nullable(
    pair: tuple[Engine, duckdb.DuckDBPyConnection],
) -> None:
    engine, duck = pair
    for c in (engine, duck):
        c.execute("CREATE VIEW vw AS SELECT u.b FROM w LEFT JOIN u ON u.id = w.k")
    sql = "SELECT id FROM t WHERE a NOT IN (SELECT b FROM vw) ORDER BY id"
    assert engine.execute(sql).rows() == duck.execute(sql).fetchall() == []


@pytest.mark.parametrize("layout", ["hot", "cold"])
def test_delete_agrees_with_select(tmp_path: Path, layout: str) -> None:
    engine, duck = _pair(str(tmp_path / "d"), layout)
    try:
        for c in (engine, duck):
            c.execute("DELETE FROM t WHERE a NOT IN (SELECT b FROM u)")
        got = engine.execute("SELECT id FROM t ORDER BY id").rows()
        assert got == duck.execute("SELECT id FROM t ORDER BY id").fetchall() == [(1,), (3,), (5,)]
    finally:
        duck.close()
        engine.close()


def _columns(_: str | None, name: str) -> list[str] | None:
    return {"t": ["id", "a", "n"], "u": ["id", "b", "m"], "w": ["id", "k"]}.get(name)


def _schema(_: str | None, name: str) -> pa.Schema | None:
    nullable = {"t": [False, False, True], "u": [False, False, True], "w": [False, False]}
    names = _columns(None, name)
    if names is None:
        return None
    return pa.schema(
        [pa.field(c, pa.int32(), nullable=n) for c, n in zip(names, nullable[name], strict=True)]
    )


def test_both_sides_not_null_is_one_keyed_anti_join() -> None:
    sql = "SELECT id FROM t WHERE a NOT IN (SELECT b FROM u)"
    done = row_values.row_comparisons(sql, _columns, _schema)
    assert done is not None
    text = done[1]
    assert text.count("EXISTS") == 1 and "IS NULL" not in text, text
    # Without the schema, the NULL tests stay.
    plain = row_values.row_comparisons(sql, _columns)
    assert plain is not None and "IS NULL" in plain[1]
    # A padded column keeps them.
    padded = "SELECT t.id FROM t LEFT JOIN u ON u.id = t.id WHERE u.b NOT IN (SELECT k FROM w)"
    done = row_values.row_comparisons(padded, _columns, _schema)
    assert done is not None and "IS NULL" in done[1]
