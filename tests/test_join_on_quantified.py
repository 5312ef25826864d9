"""``x op ANY / ALL (SELECT ...)`` in an inner JOIN's ON.

Two rewrites look for subqueries in a join's ON: ``outer_join_on`` (before
the first run) counted ANY / ALL, ``subquery_forms.out_of_join_conditions``
(after a refusal) did not, so a quantified conjunct reaching the latter
stayed in the ON. They now share ``subquery_forms.holds_subquery``. Moving
an inner join's conjunct to the WHERE is exact (no RIGHT or FULL join
follows), so the moved text must answer as DuckDB answers the original.
"""

from __future__ import annotations

from typing import Any

import pytest
from helpers_differential import Statement, engine_beside_duckdb
from sqlglot import exp

from engine import Engine
from engine.sql.subquery_forms import holds_subquery, out_of_join_conditions
from engine.sql.tokens import parsed

SETUP: list[Statement] = [
    "CREATE TABLE p (id BIGINT PRIMARY KEY, a INT, b INT)",
    "INSERT INTO p VALUES (1, 1, 2), (2, 1, NULL), (3, NULL, 2), (4, 3, 4), (5, 5, 6)",
    "CREATE TABLE q (id BIGINT PRIMARY KEY, x INT, y INT)",
    "INSERT INTO q VALUES (1, 1, 2), (2, 3, NULL), (3, 1, 2), (4, NULL, 9), (5, 5, 5)",
    "CREATE TABLE r (id BIGINT PRIMARY KEY, v INT)",
    "INSERT INTO r VALUES (1, 1), (2, 3), (3, NULL)",
]
QUERIES = [
    "SELECT p.id, q.id FROM p JOIN q ON p.id = q.id AND p.a = ANY (SELECT v FROM r)",
    "SELECT p.id, q.id FROM p JOIN q ON p.id = q.id AND p.a > ALL (SELECT v FROM r)",
    "SELECT p.id, q.id FROM p JOIN q ON p.id = q.id "
    "AND p.a > ALL (SELECT v FROM r WHERE v IS NOT NULL)",
    "SELECT p.id, q.id FROM p JOIN q ON p.a = q.x AND p.b <> ALL (SELECT v FROM r WHERE v > 1)",
    "SELECT p.id, q.id FROM p JOIN q ON p.id = q.id AND NOT (p.a = ANY (SELECT v FROM r))",
    "SELECT p.id, q.id FROM p JOIN q ON p.id = q.id AND (p.a = ANY (SELECT v FROM r) OR q.y = 9)",
    "SELECT p.id, q.id FROM p JOIN q ON p.id = q.id AND p.a = ANY (SELECT v FROM r WHERE v < 0)",
    "SELECT p.id, q.id FROM p JOIN q ON p.id = q.id AND p.a > ALL (SELECT v FROM r WHERE v < 0)",
    "SELECT p.id, q.id, r.v FROM p JOIN q ON p.id = q.id AND p.a = ANY (SELECT v FROM r) "
    "LEFT JOIN r ON r.id = p.id",
]


def _sorted(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    return sorted(rows, key=repr)


@pytest.fixture(scope="module", params=["hot", "cold"])
def pair(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    path = str(tmp_path_factory.mktemp(f"quantified-{request.param}"))
    engine, duck = engine_beside_duckdb(path, SETUP, layout=request.param, flush=("p", "q", "r"))
    yield engine, duck
    duck.close()
    engine.close()


@pytest.mark.parametrize("sql", QUERIES)
def test_quantified_comparison_in_inner_join_on_answers_as_duckdb(
    pair: tuple[Engine, Any], sql: str
) -> None:
    engine, duck = pair
    assert _sorted(engine.execute(sql).rows()) == _sorted(duck.execute(sql).fetchall())


@pytest.mark.parametrize("sql", QUERIES)
def test_quantified_conjunct_moves_from_inner_join_on_to_where_and_answers_the_same(
    pair: tuple[Engine, Any], sql: str
) -> None:
    engine, duck = pair
    moved = out_of_join_conditions(sql)
    assert moved is not None  # before the shared holds_subquery: left in the ON
    tree, text = moved
    for join in tree.find_all(exp.Join):
        on = join.args.get("on")
        assert on is None or not holds_subquery(on)
    assert _sorted(engine.execute(text).rows()) == _sorted(duck.execute(sql).fetchall())


def test_holds_subquery_counts_any_and_all_but_not_a_plain_list() -> None:
    def where(sql: str) -> Any:
        read = parsed(sql)
        assert read is not None
        return read[0].args["where"].this

    assert holds_subquery(where("SELECT 1 FROM p WHERE a = ANY (SELECT v FROM r)"))
    assert holds_subquery(where("SELECT 1 FROM p WHERE a > ALL (SELECT v FROM r)"))
    assert holds_subquery(where("SELECT 1 FROM p WHERE EXISTS (SELECT 1 FROM r)"))
    assert not holds_subquery(where("SELECT 1 FROM p WHERE a IN (1, 2)"))
    assert not holds_subquery(where("SELECT 1 FROM p WHERE a = ANY (ARRAY[1, 2])"))
