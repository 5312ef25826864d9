"""Seeded random SELECTs (``random_sql.py``) on the engine beside DuckDB.

Each layout loads the same rows into the engine and DuckDB: all hot, all
flushed to segments, and flushed then partly updated and deleted (hot
versions over cold rows). Every generated query DuckDB runs must give the
same rows on the engine (as a multiset; floats to 6 decimals), and the
engine must not refuse it. Queries DuckDB itself refuses (an ambiguous
column the generator made) are skipped. This sweep found DataFusion's
merge of IN lists that drops their NULL (``test_in_lists_with_null.py``), and
a subquery projecting an outer column that the rewrite broke. ``KALAM_RANDOM_QUERIES`` sets how many queries
per layout (default 250; thousands for a long local run) and
``KALAM_RANDOM_SEED`` shifts the seeds.
"""

from __future__ import annotations

import decimal
import math
import os
from typing import Any

import duckdb
import pytest
from helpers_differential import engine_beside_duckdb
from random_sql import CHURN, SETUP, Queries, duckdb_sql, rows

COUNT = int(os.environ.get("KALAM_RANDOM_QUERIES", "250"))
BASE = int(os.environ.get("KALAM_RANDOM_SEED", "0"))  # another stream for long local runs
SEEDS = {"hot": 11 + BASE, "cold": 12 + BASE, "mixed": 13 + BASE}


def _normal(result: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    def value(v: Any) -> Any:
        if isinstance(v, float | decimal.Decimal):
            f = float(v)
            return "nan" if math.isnan(f) else round(f, 6) + 0.0
        return v

    return sorted((tuple(value(v) for v in row) for row in result), key=repr)


def _load(tmp: str, layout: str, seed: int) -> tuple[Any, Any]:
    inserts = [
        (f"INSERT INTO {name} VALUES ({', '.join('?' * len(row))})", list(row))
        for name, data in rows(seed).items()
        for row in data
    ]
    engine, duck = engine_beside_duckdb(
        tmp, [*SETUP, *inserts], layout=layout, flush=("t1", "t2"), churn=tuple(CHURN)
    )
    # PostgreSQL's (and the engine's) NULL order: last ascending, first descending.
    duck.execute("SET default_null_order = 'nulls_last_on_asc_first_on_desc'")
    return engine, duck


@pytest.mark.parametrize("layout", list(SEEDS))
def test_random_queries_match_duckdb(tmp_path: Any, layout: str) -> None:
    seed = SEEDS[layout]
    engine, duck = _load(str(tmp_path / layout), layout, seed)
    queries = Queries(seed)
    wrong: list[str] = []
    refused: list[str] = []
    compared = 0
    try:
        for _ in range(COUNT):
            sql = queries.next()
            try:
                want = duck.execute(duckdb_sql(sql)).fetchall()
            except duckdb.Error:
                continue
            try:
                got = engine.execute(sql).rows()
            except Exception as exc:  # any refusal of a query DuckDB runs is a failure
                refused.append(f"{sql}\n    -> {type(exc).__name__}: {exc}")
                continue
            compared += 1
            same = (
                [_normal([r]) for r in got] == [_normal([r]) for r in want]
                if queries.ordered
                else _normal(got) == _normal(want)
            )
            if not same:
                wrong.append(
                    f"{sql}\n    engine {_normal(got)[:6]}\n    duckdb {_normal(want)[:6]}"
                )
    finally:
        duck.close()
        engine.close()
    assert not wrong, f"{len(wrong)} wrong answers:\n" + "\n".join(wrong[:10])
    assert not refused, f"{len(refused)} refused:\n" + "\n".join(refused[:10])
    assert compared >= COUNT * 0.8  # the generator mostly makes valid SQL


@pytest.mark.parametrize("layout", ["hot", "mixed"])
def test_random_updates_and_deletes_match_duckdb(tmp_path: Any, layout: str) -> None:
    """Random UPDATE / DELETE predicates (the same generator's), with flushes
    between some of them: after every statement both tables read the same,
    and a DELETE counts the rows DuckDB's does."""
    seed = SEEDS[layout] + 1000
    engine, duck = _load(str(tmp_path / layout), layout, seed)
    queries = Queries(seed)
    problems: list[str] = []
    try:
        for step in range(max(COUNT // 5, 40)):
            where = queries.predicate()
            if queries.rnd.random() < 0.5:
                sql = f"UPDATE t1 SET b = {queries.number()}, s = {queries.text()} WHERE {where}"
            else:
                sql = f"DELETE FROM t1 WHERE {where}"
            try:
                want = duck.execute(duckdb_sql(sql)).fetchall()[0][0]
            except duckdb.Error:
                continue
            try:
                got = engine.execute(sql).rows_affected
            except Exception as exc:
                problems.append(f"{sql}\n    -> {type(exc).__name__}: {exc}")
                break
            # UPDATE and DELETE both count the rows their WHERE matched.
            if got != want:
                problems.append(f"{sql}\n    {sql.split()[0]} counted {got} rows, DuckDB {want}")
            state = "SELECT id, a, b, c, s FROM t1"
            if _normal(engine.execute(state).rows()) != _normal(duck.execute(state).fetchall()):
                problems.append(f"{sql}\n    left t1 different from DuckDB's")
                break
            if step % 7 == 6:
                engine.execute("FLUSH TABLE t1 WAIT")
    finally:
        duck.close()
        engine.close()
    assert not problems, "\n".join(problems[:10])
