"""A scalar subquery that finds no row is NULL, whatever it selects
(``engine/sql/scalar_nulls.py``). DataFusion 55 took an uncorrelated one's
nullability from its projection: over a literal or a NOT NULL column,
``(...) IS NULL`` was folded to FALSE (every row filtered out), ``coalesce``
lost its fallback, and the subquery as a column failed."""

from __future__ import annotations

import duckdb
import pytest

from engine.errors import KalamError

DDL = [
    "CREATE TABLE t (id INT PRIMARY KEY, v TEXT)",
    "CREATE TABLE q (id INT PRIMARY KEY, s TEXT NOT NULL, m INT)",
]
ROWS = [
    "INSERT INTO t VALUES (1, 'a'), (2, 'b'), (3, NULL)",
    "INSERT INTO q VALUES (1, 'a', NULL), (2, 'b', 3)",
]

QUERIES = [
    "SELECT id FROM t WHERE (SELECT 1 FROM q WHERE q.id = 5) IS NULL ORDER BY id",
    "SELECT id FROM t WHERE (SELECT id FROM q WHERE q.id = 5) IS NULL ORDER BY id",
    "SELECT id FROM t WHERE (SELECT s FROM q WHERE s = 'zz') IS NULL ORDER BY id",
    "SELECT id FROM t WHERE (SELECT id FROM q WHERE q.id = 1) IS NULL ORDER BY id",
    "SELECT id FROM t WHERE (SELECT id FROM q WHERE q.id = 1) IS NOT NULL ORDER BY id",
    "SELECT id FROM t WHERE (SELECT 'x' FROM q WHERE q.id = 5) IS NOT NULL ORDER BY id",
    "SELECT id FROM t WHERE coalesce((SELECT q.id FROM q WHERE q.id = 5), 0) = 0 ORDER BY id",
    "SELECT id, coalesce((SELECT s FROM q WHERE q.id = 7), 'none') AS c FROM t ORDER BY id",
    "SELECT id, (SELECT s FROM q WHERE q.id = 5) AS x FROM t ORDER BY id",
    "SELECT id, (SELECT s FROM q WHERE q.id = 2) AS x FROM t ORDER BY id",
    "SELECT id, (SELECT 1 FROM q WHERE q.id = 5) AS x FROM t ORDER BY id",
    "SELECT id, (SELECT id + 1 FROM q WHERE q.id = 5) IS NULL AS x FROM t ORDER BY id",
    "SELECT id, (SELECT m FROM q WHERE q.id = 1) IS NULL AS x FROM t ORDER BY id",
    "SELECT (SELECT count(*) FROM q GROUP BY s HAVING count(*) > 5) IS NULL AS x",
    "SELECT (SELECT count(*) FROM q WHERE id > 5) AS x",
    "SELECT id FROM t WHERE v = (SELECT s FROM q WHERE q.id = 5) ORDER BY id",
    "SELECT id FROM t WHERE NOT ((SELECT id FROM q WHERE q.id = 5) IS NULL) ORDER BY id",
    "SELECT id FROM t WHERE (SELECT s FROM q WHERE q.id = t.id) IS NULL ORDER BY id",
    "SELECT id, (SELECT s FROM q WHERE q.id = t.id) AS x FROM t ORDER BY id",
    "SELECT id FROM t WHERE id IN (SELECT id FROM q) ORDER BY id",
    "SELECT id FROM (SELECT id FROM q WHERE id = 5) AS d",
]


@pytest.fixture(params=["hot", "cold"])
def tables(request, engine):
    duck = duckdb.connect()
    for sql in DDL + ROWS:
        engine.execute(sql)
        duck.execute(sql)
    if request.param == "cold":
        engine.flush("t")
        engine.flush("q")
    yield engine, duck
    duck.close()


@pytest.mark.parametrize("sql", QUERIES)
def test_a_scalar_subquery_with_no_row_is_null_as_in_duckdb(tables, sql):
    engine, duck = tables
    assert engine.execute(sql).rows() == duck.execute(sql).fetchall()


def test_the_no_such_row_idiom_keeps_every_row(tables):
    engine, _ = tables
    got = engine.execute(
        "SELECT id FROM t WHERE (SELECT id FROM q WHERE s = $1) IS NULL ORDER BY id", ["nobody"]
    ).rows()
    assert got == [(1,), (2,), (3,)]


def test_the_subquery_as_a_column_keeps_its_projections_name(tables):
    engine, _ = tables
    table = engine.execute(
        "SELECT id, (SELECT s FROM q WHERE q.id = 5), (SELECT m AS mm FROM q WHERE id = 2) FROM t"
    ).to_arrow()
    assert table.column_names == ["id", "s", "mm"]


def test_more_than_one_row_is_still_an_error(tables):
    engine, _ = tables
    with pytest.raises(KalamError, match="more than one row"):
        engine.execute("SELECT id FROM t WHERE (SELECT id FROM q) IS NULL")


def test_delete_and_update_by_a_subquery_that_finds_nothing(tables):
    engine, duck = tables
    for sql in (
        "UPDATE t SET v = 'u' WHERE (SELECT id FROM q WHERE s = 'zz') IS NULL AND id < 3",
        "DELETE FROM t WHERE coalesce((SELECT 1 FROM q WHERE id = 9), 0) = 0 AND id = 1",
    ):
        engine.execute(sql)
        duck.execute(sql)
    want = duck.execute("SELECT * FROM t ORDER BY id").fetchall()
    assert engine.execute("SELECT * FROM t ORDER BY id").rows() == want == [(2, "u"), (3, None)]
