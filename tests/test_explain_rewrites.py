"""EXPLAIN shows the plan that runs.

The engine rewrites some queries before DataFusion plans them (checked
integer arithmetic, NOT IN as keyed joins, nullable scalar subqueries...,
``engine/sql/retry.py``). EXPLAIN used to plan the text as written, so it
showed a plan the query never ran (a wrapping ``+``, a null-aware anti
join). Now the query after ``EXPLAIN [ANALYZE] [VERBOSE]`` gets the same
rewrites.
"""

from __future__ import annotations

import pytest

from engine import Engine


@pytest.fixture
def eng(engine: Engine) -> Engine:
    engine.execute("CREATE TABLE t (id BIGINT PRIMARY KEY, v INT)")
    engine.execute("INSERT INTO t VALUES (1, 2), (2, NULL), (3, 4)")
    return engine


def _plans(eng: Engine, sql: str) -> str:
    return "\n".join(str(r["plan"]) for r in eng.execute(sql).to_arrow().to_pylist())


@pytest.mark.parametrize("prefix", ["EXPLAIN", "explain analyze", "EXPLAIN VERBOSE"])
def test_explain_shows_the_overflow_checked_arithmetic_the_query_runs(eng, prefix):
    plans = _plans(eng, f"{prefix} SELECT id + 1 AS x FROM t WHERE id * 2 > 3")
    assert "Decimal128(38, 0)" in plans  # the exact form of the checked steps
    assert eng.execute("SELECT id + 1 AS x FROM t WHERE id * 2 > 3 ORDER BY x").rows() == [
        (3,),
        (4,),
    ]


def test_explain_of_a_query_with_nothing_to_rewrite_is_unchanged(eng):
    plans = _plans(eng, "EXPLAIN SELECT id FROM t WHERE v > 1")
    assert "Decimal128" not in plans and "CASE" not in plans
    assert "t.v > Int32(1)" in plans or "v@1 > 1" in plans


def test_explain_of_not_in_shows_the_keyed_joins_not_a_null_aware_anti_join(eng):
    sql = "SELECT id FROM t WHERE v NOT IN (SELECT v FROM t WHERE id > 5)"
    plans = _plans(eng, f"EXPLAIN {sql}")
    assert "null_aware" not in plans.lower()
    assert eng.execute(f"{sql} ORDER BY id").rows() == [(1,), (2,), (3,)]
