"""IN lists holding a NULL keep SQL's three-valued answer.

DataFusion 55 merges IN lists over the same expression (``x NOT IN (1, 2)
OR x NOT IN (-1, 2, NULL)`` into ``x NOT IN (2)``, ``x IN (1, 2) AND x IN
(1, NULL)`` into ``x IN (1)``) and drops their NULL on the way: TRUE where
SQL says NULL. The first returned the rows with x = 1; the second, under
NOT, the row with x = 2. The engine writes an IN list with a NULL item as
``(x IN (rest) OR NULL)`` first (``engine/sql/coercions.py``), whether the
NULL is a literal, a cast of one or a parameter bound to None.
"""

from __future__ import annotations

from typing import Any

import pytest
from helpers_differential import Statement, engine_beside_duckdb

from engine import Engine

ROWS = [(1, 1), (2, 2), (3, 5), (4, None), (5, -1)]
SETUP: list[Statement] = [
    "CREATE TABLE t (id BIGINT PRIMARY KEY, x INT)",
    *[("INSERT INTO t VALUES (?, ?)", list(row)) for row in ROWS],
]

CASES = [
    "SELECT id FROM t WHERE x NOT IN (1, 2) OR x NOT IN (-1, 2, NULL)",
    "SELECT id FROM t WHERE NOT (x IN (1, 2) AND x IN (1, NULL))",
    "SELECT id FROM t WHERE x NOT IN (1, 2) OR x NOT IN (-1, 2, CAST(NULL AS INT))",
    "SELECT id, x IN (NULL) AS p, x NOT IN (NULL, NULL) AS q FROM t",
    "SELECT id, x IN (1, NULL) AS p, x NOT IN (1, NULL) AS q FROM t",
    "SELECT id, (x IN (1, 2) OR x IN (5, NULL)) AS p FROM t",
    "SELECT id, NOT (x IN (1, 2) AND x IN (2, 3, NULL)) AS p FROM t",
    "SELECT count(*) AS n FROM t WHERE x IN (1, NULL) OR x NOT IN (2, NULL)",
]


@pytest.fixture(scope="module", params=["hot", "cold"])
def pair(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    path = str(tmp_path_factory.mktemp(f"inl-{request.param}"))
    engine, duck = engine_beside_duckdb(path, SETUP, layout=request.param, flush=("t",))
    yield engine, duck
    duck.close()
    engine.close()


@pytest.mark.parametrize("sql", CASES)
def test_in_lists_with_a_null_match_duckdb(pair: tuple[Engine, Any], sql: str) -> None:
    engine, duck = pair
    assert sorted(engine.execute(sql).rows(), key=repr) == sorted(
        duck.execute(sql).fetchall(), key=repr
    )


def test_the_merged_not_in_no_longer_selects_the_rows_sql_leaves_unknown(
    pair: tuple[Engine, Any],
) -> None:
    engine, _ = pair
    # x = 1: FALSE OR NULL is NULL (row 1 came back before); x = 5 and -1: TRUE.
    got = engine.execute(
        "SELECT id FROM t WHERE x NOT IN (1, 2) OR x NOT IN (-1, 2, NULL) ORDER BY id"
    ).rows()
    assert got == [(3,), (5,)]
    got = engine.execute("SELECT id FROM t WHERE NOT (x IN (1, 2) AND x IN (1, NULL))").rows()
    assert sorted(got) == [(3,), (5,)]  # x = 2 is NULL there, never TRUE


def test_a_parameter_bound_to_none_counts_as_a_null_item(pair: tuple[Engine, Any]) -> None:
    engine, duck = pair
    sql = "SELECT id FROM t WHERE x NOT IN (1, 2) OR x NOT IN (-1, 2, $1)"
    got = engine.execute(sql, [None]).rows()
    assert sorted(got) == sorted(duck.execute(sql.replace("$1", "?"), [None]).fetchall())
    assert sorted(engine.execute(sql, [7]).rows()) == sorted(
        duck.execute(sql.replace("$1", "?"), [7]).fetchall()
    )


def test_delete_with_a_merged_in_list_removes_only_what_select_shows(tmp_path: Any) -> None:
    engine, duck = engine_beside_duckdb(str(tmp_path / "d"), SETUP)
    try:
        where = "x NOT IN (1, 2) OR x NOT IN (-1, 2, NULL)"
        shown = engine.execute(f"SELECT id FROM t WHERE {where}").rows()
        engine.execute(f"DELETE FROM t WHERE {where}")
        assert sorted(shown) == [(3,), (5,)]
        assert sorted(engine.execute("SELECT id FROM t").rows()) == [(1,), (2,), (4,)]
    finally:
        duck.close()
        engine.close()
