"""A DATE plus or minus an INTERVAL with a time of day is a TIMESTAMP
(``engine/sql/date_intervals.py``); DataFusion 55 kept it a DATE and dropped
the time (``DATE '2024-01-01' + INTERVAL '1 hour'`` was 2024-01-01).

Values are checked against DuckDB, which answers a TIMESTAMP for every DATE
plus an INTERVAL; where the interval is whole days the engine keeps the
DATE (the same instant, midnight), so a DATE is compared as that midnight."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import duckdb
import pyarrow as pa
import pytest
from helpers_differential import Statement, engine_beside_duckdb

from engine import Engine
from engine.errors import KalamError

ROWS = (
    "(1, DATE '2024-01-01', TIMESTAMP '2024-01-01 10:00:00'), "
    "(2, DATE '2024-02-29', TIMESTAMP '2024-02-29 23:30:00'), "
    "(3, NULL, NULL), "
    "(4, DATE '9999-11-30', TIMESTAMP '2000-01-01 00:00:00'), "
    "(5, DATE '1900-03-01', TIMESTAMP '1900-03-01 00:00:01')"
)


@pytest.fixture(scope="module", params=["hot", "cold"])
def pair(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Engine, duckdb.DuckDBPyConnection]]:
    path = str(tmp_path_factory.mktemp(f"dates-{request.param}"))
    setup: list[Statement] = [
        "CREATE TABLE t (id INT PRIMARY KEY, d DATE, ts TIMESTAMP)",
        f"INSERT INTO t VALUES {ROWS}",
    ]
    engine, duck = engine_beside_duckdb(path, setup, layout=request.param, flush=("t",))
    yield engine, duck
    duck.close()
    engine.close()


def _instant(value: Any) -> Any:
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return dt.datetime(value.year, value.month, value.day)
    return value


def _same(engine: Engine, duck: duckdb.DuckDBPyConnection, sql: str) -> list[tuple[Any, ...]]:
    got = [tuple(_instant(v) for v in r) for r in engine.execute(sql).rows()]
    want = [tuple(_instant(v) for v in r) for r in duck.execute(sql).fetchall()]
    assert got == want, sql
    return got


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT id, d + INTERVAL '1 hour', d - INTERVAL '1 hour' FROM t ORDER BY id",
        "SELECT id, d + INTERVAL '90 minutes', INTERVAL '30 seconds' + d FROM t ORDER BY id",
        "SELECT id, d + INTERVAL '1 day 2 hours', d - INTERVAL '1 day 2 hours' FROM t ORDER BY id",
        "SELECT id, d + INTERVAL '36' HOUR, d + INTERVAL '1.5 days' FROM t ORDER BY id",
        "SELECT id, d + INTERVAL '1 month 1 minute', d - INTERVAL '1 year' FROM t ORDER BY id",
        "SELECT id, (d + INTERVAL '1 day') + INTERVAL '2 hours' FROM t ORDER BY id",
        "SELECT id, d - INTERVAL '1 day' - INTERVAL '1 second' FROM t ORDER BY id",
        "SELECT id, COALESCE(d, DATE '2000-01-01') + INTERVAL '12 hours' FROM t ORDER BY id",
        "SELECT id, CASE WHEN id > 2 THEN d ELSE DATE '2001-01-01' END + INTERVAL '1 minute' "
        "FROM t ORDER BY id",
        "SELECT id, x + INTERVAL '6 hours' FROM (SELECT id, d AS x FROM t) AS s ORDER BY id",
        "WITH c AS (SELECT id, d FROM t) SELECT id, d - INTERVAL '6 hours' FROM c ORDER BY id",
        "SELECT id, ts + INTERVAL '1 hour', ts - INTERVAL '1 day' FROM t ORDER BY id",
        "SELECT max(d) + INTERVAL '1 second', min(d) - INTERVAL '1 second' FROM t",
        "SELECT id FROM t WHERE d + INTERVAL '23 hours' > TIMESTAMP '2024-01-01 12:00:00' "
        "AND d < DATE '9000-01-01' ORDER BY id",
        "SELECT id FROM t WHERE d - INTERVAL '1 hour' < DATE '2024-02-29' ORDER BY id",
        "SELECT id FROM t ORDER BY d + INTERVAL '25 hours' DESC NULLS LAST, id",
        "SELECT CAST('2024-01-01' AS DATE) + INTERVAL '1 hour', DATE '2024-01-01' - INTERVAL '1 ms'",
    ],
)
def test_answers_match_duckdb(pair: tuple[Engine, duckdb.DuckDBPyConnection], sql: str) -> None:
    engine, duck = pair
    _same(engine, duck, sql)


def test_the_time_of_day_is_kept(engine: Engine) -> None:
    got = engine.execute(
        "SELECT DATE '2024-01-01' + INTERVAL '1 hour' AS a, "
        "DATE '2024-01-01' - INTERVAL '1 hour' AS b, "
        "DATE '9999-12-31' + INTERVAL '23 hours 59 minutes 59 seconds' AS c"
    ).rows()
    assert got == [
        (
            dt.datetime(2024, 1, 1, 1, 0),
            dt.datetime(2023, 12, 31, 23, 0),
            dt.datetime(9999, 12, 31, 23, 59, 59),
        )
    ]


def test_whole_days_keep_the_date_and_times_give_a_timestamp(engine: Engine) -> None:
    engine.execute("CREATE TABLE t (id INT PRIMARY KEY, d DATE)")
    engine.execute("INSERT INTO t VALUES (1, DATE '2024-01-31')")
    table = engine.execute(
        "SELECT d - INTERVAL '90' DAY AS days, d + INTERVAL '1 month' AS months, "
        "d + INTERVAL '1 hour' AS hours FROM t"
    ).table
    assert table.schema.field("days").type == pa.date32()
    assert table.schema.field("months").type == pa.date32()
    assert table.schema.field("hours").type == pa.timestamp("us")
    assert table.to_pylist() == [
        {
            "days": dt.date(2023, 11, 2),
            "months": dt.date(2024, 2, 29),
            "hours": dt.datetime(2024, 1, 31, 1, 0),
        }
    ]


def test_an_unaliased_projection_keeps_its_name(engine: Engine) -> None:
    engine.execute("CREATE TABLE t (id INT PRIMARY KEY, d DATE, ts TIMESTAMP)")
    engine.execute("INSERT INTO t VALUES (1, DATE '2024-01-01', TIMESTAMP '2024-01-01 00:00:00')")
    timed = engine.execute("SELECT d + INTERVAL '1 hour' FROM t").table.column_names
    as_written = engine.execute("SELECT ts + INTERVAL '1 hour' FROM t").table.column_names
    # The same shape over a TIMESTAMP column, which is not rewritten.
    assert timed == [as_written[0].replace("t.ts", "t.d")]


def test_dml_predicates_and_values_agree_with_select(engine: Engine) -> None:
    engine.execute("CREATE TABLE t (id INT PRIMARY KEY, d DATE, ts TIMESTAMP)")
    engine.execute(
        "INSERT INTO t VALUES (1, DATE '2024-01-01', NULL), (2, DATE '2024-01-02', NULL), "
        "(3, DATE '2024-01-03', NULL)"
    )
    engine.flush("t")
    engine.execute("INSERT INTO t VALUES (4, DATE '2024-01-01', NULL)")
    where = "d - INTERVAL '1 hour' < DATE '2024-01-01'"  # only 2024-01-01's rows
    selected = engine.execute(f"SELECT id FROM t WHERE {where} ORDER BY id").rows()
    assert selected == [(1,), (4,)]
    engine.execute(f"UPDATE t SET ts = d + INTERVAL '90 minutes' WHERE {where}")
    assert engine.execute("SELECT id, ts FROM t ORDER BY id").rows() == [
        (1, dt.datetime(2024, 1, 1, 1, 30)),
        (2, None),
        (3, None),
        (4, dt.datetime(2024, 1, 1, 1, 30)),
    ]
    engine.execute(f"DELETE FROM t WHERE {where}")
    assert engine.execute("SELECT id FROM t ORDER BY id").rows() == [(2,), (3,)]
    # A DATE column takes the TIMESTAMP's date, as PostgreSQL assigns it.
    engine.execute("UPDATE t SET d = d + INTERVAL '25 hours' WHERE id = 2")
    assert engine.execute("SELECT d FROM t WHERE id = 2").rows() == [(dt.date(2024, 1, 3),)]


def test_an_interval_datafusion_cannot_read_is_its_error(engine: Engine) -> None:
    engine.execute("CREATE TABLE t (id INT PRIMARY KEY, d DATE)")
    with pytest.raises(KalamError):
        engine.execute("SELECT d + INTERVAL 'soon' FROM t")


# ------------------------------------------------- comparing intervals
#
# DataFusion compared intervals part by part (months, days, nanoseconds) and
# a timestamp difference as nanoseconds only: ``ts - ts > INTERVAL '30 days'``
# was FALSE for 60 days. Lengths are compared, as PostgreSQL and DuckDB do
# (a month is 30 days, a day 24 hours).


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT id, ts - TIMESTAMP '2024-01-01 00:00:00' > INTERVAL '30 days' AS x "
        "FROM t ORDER BY id",
        "SELECT id FROM t WHERE ts - TIMESTAMP '1999-12-31 00:00:00' >= INTERVAL '1 day' "
        "ORDER BY id",
        "SELECT id FROM t WHERE TIMESTAMP '2024-03-01 00:00:00' - ts < INTERVAL '1 month' "
        "ORDER BY id",
        "SELECT id FROM t WHERE ts - TIMESTAMP '2024-01-01 00:00:00' "
        "BETWEEN INTERVAL '1 day' AND INTERVAL '2 months' ORDER BY id",
        "SELECT id FROM t WHERE ts - TIMESTAMP '2024-01-01 00:00:00' "
        "NOT BETWEEN INTERVAL '-1 day' AND (INTERVAL '59 days 23 hours') ORDER BY id",
        "SELECT id FROM t WHERE ts - TIMESTAMP '2024-02-29 00:00:00' "
        "IN (INTERVAL '23 hours 30 minutes', INTERVAL '1 day') ORDER BY id",
        "SELECT id FROM t WHERE ts - TIMESTAMP '2024-01-01 10:00:00' = INTERVAL '0 days' "
        "ORDER BY id",
        "SELECT id FROM t WHERE ts - TIMESTAMP '2024-03-01 00:00:00' > - INTERVAL '1 day' "
        "ORDER BY id",
        "SELECT id FROM t WHERE INTERVAL '1 year' < TIMESTAMP '2100-01-01 00:00:00' - ts "
        "ORDER BY id",
        "SELECT INTERVAL '1 day' = INTERVAL '24 hours', INTERVAL '25 hours' > INTERVAL '1 day', "
        "INTERVAL '1 month' = INTERVAL '30 days', INTERVAL '1 month' < INTERVAL '31 days', "
        "INTERVAL '-1 day' < INTERVAL '-23 hours'",
    ],
)
def test_interval_comparisons_match_duckdb(
    pair: tuple[Engine, duckdb.DuckDBPyConnection], sql: str
) -> None:
    engine, duck = pair
    assert engine.execute(sql).rows() == duck.execute(sql).fetchall(), sql


def test_old_rows_are_found_by_their_age(engine: Engine) -> None:
    engine.execute("CREATE TABLE ev (id INT PRIMARY KEY, at TIMESTAMP)")
    engine.execute(
        "INSERT INTO ev VALUES (1, TIMESTAMP '2024-01-01 00:00:00'), "
        "(2, TIMESTAMP '2024-02-25 00:00:00'), (3, TIMESTAMP '2024-03-01 12:00:00')"
    )
    old = "TIMESTAMP '2024-03-02 00:00:00' - at > INTERVAL '7 days'"
    assert engine.execute(f"SELECT id FROM ev WHERE {old} ORDER BY id").rows() == [(1,)]
    engine.flush("ev")
    assert engine.execute(f"SELECT count(*) FROM ev WHERE {old}").rows() == [(1,)]
    engine.execute(f"DELETE FROM ev WHERE {old}")
    assert engine.execute("SELECT id FROM ev ORDER BY id").rows() == [(2,), (3,)]
