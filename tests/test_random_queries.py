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
from random_sql import CHURN, SETUP, Queries, duckdb_sql, rows

from engine import Engine

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
    engine = Engine.open(tmp, background_jobs=False, durability="async")
    duck = duckdb.connect()
    # PostgreSQL's (and the engine's) NULL order: last ascending, first descending.
    duck.execute("SET default_null_order = 'nulls_last_on_asc_first_on_desc'")
    for sql in SETUP:
        engine.execute(sql)
        duck.execute(sql.replace(" PRIMARY KEY", ""))
    for name, data in rows(seed).items():
        marks = ", ".join(f"${i + 1}" for i in range(len(data[0])))
        for row in data:
            engine.execute(f"INSERT INTO {name} VALUES ({marks})", list(row))
            duck.execute(f"INSERT INTO {name} VALUES ({', '.join('?' * len(row))})", list(row))
    if layout != "hot":
        engine.execute("FLUSH TABLE t1 WAIT")
        engine.execute("FLUSH TABLE t2 WAIT")
    if layout == "mixed":
        for sql in CHURN:
            engine.execute(sql)
            duck.execute(sql)
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
