"""Numeric literals a double cannot hold exactly compare exactly.

DataFusion 55 reads ``12345678901234567.89`` (and an integer past the int64
range) as a Float64, so a DECIMAL column compared with it was compared as a
double and ``WHERE big = 12345678901234567.89`` found nothing. The engine
writes such literals as DECIMAL casts before planning
(``engine/sql/rewrite.py``); every answer here is checked against DuckDB,
which reads those literals as DECIMAL itself.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import duckdb
import pytest

from engine import Engine
from engine.sql.rewrite import exact_decimal_literals

ROWS = [
    (1, "12345678901234567.89", "1.5"),
    (2, "12345678901234567.80", "2.5"),
    (3, "12345678901234567.90", "-0.25"),
    (4, "-12345678901234567.89", "0.1"),
    (5, "0.01", None),
    (6, None, "3"),
    (7, "999999999999999999.99", "4"),
]
CREATE = "CREATE TABLE t (id INT PRIMARY KEY, big DECIMAL(20, 2), small DECIMAL(10, 2))"

QUERIES = [
    "SELECT id FROM t WHERE big = 12345678901234567.89 ORDER BY id",
    "SELECT id FROM t WHERE big = -12345678901234567.89 ORDER BY id",
    "SELECT id FROM t WHERE big > 12345678901234567.8 ORDER BY id",
    "SELECT id FROM t WHERE big >= 12345678901234567.80 ORDER BY id",
    "SELECT id FROM t WHERE big < 12345678901234567.9 ORDER BY id",
    "SELECT id FROM t WHERE big <> 12345678901234567.89 ORDER BY id",
    "SELECT id FROM t WHERE big BETWEEN 12345678901234567.81 AND 12345678901234567.89 ORDER BY id",
    "SELECT id FROM t WHERE big IN (12345678901234567.89, 12345678901234567.90) ORDER BY id",
    "SELECT id FROM t WHERE big NOT IN (12345678901234567.89, 0.01) ORDER BY id",
    "SELECT id FROM t WHERE 12345678901234567.89 = big ORDER BY id",
    "SELECT id FROM t WHERE big = 999999999999999999.99 ORDER BY id",
    "SELECT id, big - 12345678901234567.88 AS diff FROM t WHERE id < 4 ORDER BY id",
    "SELECT count(*) AS n FROM t WHERE big < 99999999999999999999",
    "SELECT id FROM t WHERE small = 0.1 OR small = 1.5 ORDER BY id",
    "SELECT 12345678901234567.89 AS lit",
    "SELECT 99999999999999999999 AS lit",
]


def _placed(engine: Engine, placement: str) -> None:
    engine.execute(CREATE)
    half = 4 if placement == "mixed" else len(ROWS)
    for row in ROWS[:half]:
        engine.execute("INSERT INTO t VALUES ($1, $2, $3)", [_dec(v) for v in row])
    if placement != "hot":
        engine.flush("t")
    for row in ROWS[half:]:
        engine.execute("INSERT INTO t VALUES ($1, $2, $3)", [_dec(v) for v in row])


def _dec(value: Any) -> Any:
    return Decimal(value) if isinstance(value, str) else value


@pytest.fixture(scope="module")
def duck() -> Any:
    con = duckdb.connect()
    con.execute("CREATE TABLE t (id INT PRIMARY KEY, big DECIMAL(20, 2), small DECIMAL(10, 2))")
    con.executemany("INSERT INTO t VALUES (?, ?, ?)", [[_dec(v) for v in r] for r in ROWS])
    yield con
    con.close()


def _same(ours: list[tuple[Any, ...]], theirs: list[tuple[Any, ...]]) -> bool:
    # Compared as exact numbers: DuckDB may give a wider DECIMAL or an int.
    def norm(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        return [
            tuple(Decimal(v) if isinstance(v, int | Decimal) else v for v in row) for row in rows
        ]

    return norm(ours) == norm(theirs)


@pytest.mark.parametrize("placement", ["hot", "cold", "mixed"])
def test_long_decimal_literals_compare_exactly_like_duckdb(
    engine: Engine, duck: Any, placement: str
) -> None:
    _placed(engine, placement)
    for sql in QUERIES:
        ours = [tuple(r.values()) for r in engine.execute(sql).table.to_pylist()]
        theirs = duck.execute(sql).fetchall()
        assert _same(ours, theirs), f"{sql}\n ours:   {ours}\n duckdb: {theirs}"


def test_the_reported_query_finds_its_row(engine: Engine) -> None:
    engine.execute("CREATE TABLE t (id INT PRIMARY KEY, big DECIMAL(20,2))")
    engine.execute("INSERT INTO t VALUES (1, 12345678901234567.89), (2, 12345678901234567.80)")
    found = engine.execute("SELECT id, big FROM t WHERE big = 12345678901234567.89")
    assert found.table.to_pylist() == [{"id": 1, "big": Decimal("12345678901234567.89")}]


def test_update_and_delete_predicates_with_long_literals_touch_only_their_row(
    engine: Engine,
) -> None:
    _placed(engine, "cold")
    engine.execute("UPDATE t SET small = 9 WHERE big = 12345678901234567.80")
    engine.execute("DELETE FROM t WHERE big = 12345678901234567.90")
    engine.execute("UPDATE t SET big = 12345678901234567.01 WHERE id = 5")
    rows = engine.execute("SELECT id, big, small FROM t ORDER BY id").table.to_pylist()
    assert [(r["id"], r["big"], r["small"]) for r in rows] == [
        (1, Decimal("12345678901234567.89"), Decimal("1.50")),
        (2, Decimal("12345678901234567.80"), Decimal("9.00")),
        (4, Decimal("-12345678901234567.89"), Decimal("0.10")),
        (5, Decimal("12345678901234567.01"), None),
        (6, None, Decimal("3.00")),
        (7, Decimal("999999999999999999.99"), Decimal("4.00")),
    ]


def test_a_decimal_primary_key_is_found_by_a_long_literal(engine: Engine) -> None:
    engine.execute("CREATE TABLE k (big DECIMAL(20, 2) PRIMARY KEY, v TEXT)")
    engine.execute("INSERT INTO k VALUES (12345678901234567.89, 'a'), (12345678901234567.80, 'b')")
    for flushed in (False, True):
        if flushed:
            engine.flush("k")
        got = engine.execute("SELECT v FROM k WHERE big = 12345678901234567.89").rows()
        assert got == [("a",)]


def test_a_view_with_a_long_literal_compares_exactly(engine: Engine) -> None:
    _placed(engine, "hot")
    engine.execute("CREATE VIEW v AS SELECT id FROM t WHERE big = 12345678901234567.89")
    assert engine.execute("SELECT id FROM v").rows() == [(1,)]


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT 1.5, 0.1, 2.25e3 FROM t", None),  # a double holds them: as written
        ("SELECT 9223372036854775807", None),  # an exact Int64 already
        ("SELECT 1e400", None),  # too long for a Decimal128: DataFusion's reading kept
        ("SELECT '12345678901234567.89'", None),  # a string, not a number
        (
            "SELECT a FROM t WHERE a = 12345678901234567.89",
            "SELECT a FROM t WHERE a = CAST('12345678901234567.89' AS DECIMAL(19, 2))",
        ),
        (
            "SELECT -99999999999999999999, 0.1234567890123456789",
            "SELECT -CAST('99999999999999999999' AS DECIMAL(20, 0)), "
            "CAST('0.1234567890123456789' AS DECIMAL(19, 19))",
        ),
        (  # the digits without the exponent: DataFusion cannot cast '...e5' text
            "SELECT 1.23456789012345678e5",
            "SELECT CAST('123456.789012345678' AS DECIMAL(18, 12))",
        ),
    ],
)
def test_only_literals_a_double_cannot_hold_are_rewritten(sql: str, expected: str | None) -> None:
    found = exact_decimal_literals(sql)
    assert (found[0] if found else None) == expected


def test_errors_before_a_rewritten_literal_keep_their_position(engine: Engine) -> None:
    engine.execute(CREATE)
    with pytest.raises(Exception, match=r"nope.*line 1, column 8"):
        engine.execute("SELECT nope, 12345678901234567.89 FROM t")


def test_a_long_literal_with_an_exponent_is_read_exactly(engine: Engine) -> None:
    # Was: "Cannot cast string '1.23456789012345678e5' to value of Decimal128".
    got = engine.execute("SELECT 1.23456789012345678e5 AS v").scalar()
    assert got == Decimal("123456.789012345678")
