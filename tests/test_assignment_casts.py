"""A fraction stored in an integer column is rounded, as PostgreSQL's
assignment cast and DuckDB round it (engine/types.py ``assign``), on every
write path: INSERT ... VALUES (literals, bound parameters, evaluated items),
UPDATE, ON CONFLICT DO UPDATE, INSERT ... SELECT and ``insert_arrow``.
Before, each of them refused ``INSERT INTO t(i) VALUES (2.7)`` ("cannot
store 2.7 in column 'i' of type INT"), where both peers store 3.

A numeric literal or a DECIMAL rounds halves away from zero (2.5 -> 3);
a double (a DOUBLE column, a Python float parameter) halves to even
(2.5 -> 2). A quoted integer ('3') is accepted in an integer column as in
PostgreSQL; '2.7' stays an error (PostgreSQL refuses it; DuckDB stores 3).
A rounded value out of the column's range is the "out of range" error a
CAST gives, and a refused statement changes nothing."""

from __future__ import annotations

from decimal import Decimal

import pyarrow as pa
import pytest

import kalam
from engine import Engine
from engine.errors import TypeMismatchError


@pytest.fixture(params=["hot", "cold"])
def eng(tmp_path, request):
    with Engine.open(tmp_path, background_jobs=False) as e:
        e.execute(
            "CREATE TABLE t (id INT PRIMARY KEY, i INT, b BIGINT, s SMALLINT, "
            "d DOUBLE, m DECIMAL(6, 2))"
        )
        e.execute(
            "INSERT INTO t (id, i, d, m) VALUES (1, 0, 2.5, 2.5), (2, 0, 3.5, -2.5), "
            "(3, 0, -2.5, 2.49), (4, 0, 2.7, -0.5)"
        )
        if request.param == "cold":
            e.flush("t")
        yield e


def _state(e: Engine) -> list[tuple]:
    return e.execute("SELECT * FROM t ORDER BY id").rows()


# (VALUES item, column, what PostgreSQL 15 and DuckDB store; was refused)
STORED = [
    ("2.7", "i", 3),
    ("-2.7", "i", -3),
    ("2.5", "i", 3),  # a numeric literal: halves away from zero
    ("-2.5", "b", -3),
    ("32766.5", "s", 32767),
    ("CAST(2.5 AS DECIMAL(5, 1))", "i", 3),
    ("CAST(2.5 AS DOUBLE)", "i", 2),  # a double: halves to even
    ("CAST(3.5 AS DOUBLE)", "i", 4),
    ("'3'", "i", 3),  # a quoted integer, as PostgreSQL reads it
    ("' -7 '", "b", -7),
    ("2147483647.4", "i", 2147483647),
]


@pytest.mark.parametrize(("item", "column", "stored"), STORED)
def test_values_with_a_fraction_store_the_rounded_integer(eng, item, column, stored):
    eng.execute(f"INSERT INTO t (id, {column}) VALUES (10, {item})")
    assert eng.execute(f"SELECT {column} FROM t WHERE id = 10").scalar() == stored


@pytest.mark.parametrize(
    ("value", "stored"), [(2.7, 3), (2.5, 2), (3.5, 4), (-2.5, -2), (Decimal("2.5"), 3), ("3", 3)]
)
def test_bound_parameters_round_floats_half_even_and_decimals_half_away(tmp_path, value, stored):
    with Engine.open(tmp_path, background_jobs=False) as e:
        e.execute("CREATE TABLE p (id INT PRIMARY KEY, i INT)")
        e.execute("INSERT INTO p VALUES (?, ?)", [1, value])
        e.execute("INSERT INTO p VALUES ($1, $2)", [2, value])
        with kalam.connect(e) as con:
            con.cursor().execute("INSERT INTO p VALUES (?, ?)", [3, value])
        assert e.execute("SELECT i FROM p ORDER BY id").rows() == [(stored,)] * 3


def test_multi_row_values_mixing_integers_and_fractions(eng):
    eng.execute("INSERT INTO t (id, i) VALUES (10, 1), (11, 2.5), (12, ?)", [3.7])
    rows = eng.execute("SELECT id, i FROM t WHERE id >= 10 ORDER BY id").rows()
    assert rows == [(10, 1), (11, 3), (12, 4)]  # was: refused


@pytest.mark.parametrize(
    ("item", "phrase"),
    [
        ("'2.7'", "'2.7'"),  # PostgreSQL: invalid input syntax for type integer
        ("'abc'", "'abc'"),
        ("3e10", "out of range"),
        ("2147483647.5", "out of range"),  # rounds to 2^31
        ("-2147483648.5", "out of range"),
        ("CAST('NaN' AS DOUBLE)", "nan"),
        ("true", "INT"),
    ],
)
def test_a_bad_value_in_one_row_refuses_the_whole_insert(eng, item, phrase):
    before = _state(eng)
    with pytest.raises(TypeMismatchError, match=phrase):
        eng.execute(f"INSERT INTO t (id, i) VALUES (10, 1), (11, {item}), (12, 2.5)")
    assert _state(eng) == before


def test_update_set_a_fraction_stores_the_rounded_integer(eng):
    assert eng.execute("UPDATE t SET i = 2.7 WHERE id = 1").rows_affected == 1
    eng.execute("UPDATE t SET b = 2.5 WHERE id > 1")  # set-based: still the literal's rounding
    eng.execute("UPDATE t SET s = ? WHERE id = 4", [2.5])
    rows = eng.execute("SELECT id, i, b, s FROM t ORDER BY id").rows()
    assert rows == [(1, 3, None, None), (2, 0, 3, None), (3, 0, 3, None), (4, 0, 3, 2)]


def test_update_from_a_double_or_decimal_column_rounds_by_its_type(eng):
    eng.execute("UPDATE t SET i = d, b = m")
    rows = eng.execute("SELECT id, i, b FROM t ORDER BY id").rows()
    # DOUBLE 2.5, 3.5, -2.5, 2.7 halves to even; DECIMAL 2.5, -2.5, 2.49, -0.5 away from zero.
    assert rows == [(1, 2, 3), (2, 4, -3), (3, -2, 2), (4, 3, -1)]  # was: refused


def test_an_update_rounding_out_of_range_changes_nothing(eng):
    before = _state(eng)
    with pytest.raises(TypeMismatchError, match="out of range"):
        eng.execute("UPDATE t SET s = d * 13107")  # 3.5 * 13107 = 45874.5
    with pytest.raises(TypeMismatchError, match="out of range"):
        eng.execute("UPDATE t SET i = 2147483647.5 WHERE id = 1")
    with pytest.raises(TypeMismatchError, match="'2.7'"):
        eng.execute("UPDATE t SET i = '2.7' WHERE id = 1")
    assert _state(eng) == before


def test_on_conflict_do_update_rounds_the_assigned_fraction(eng):
    eng.execute("INSERT INTO t (id, i) VALUES (1, 5) ON CONFLICT (id) DO UPDATE SET i = 2.7")
    eng.execute("INSERT INTO t (id, i) VALUES (2, 5) ON CONFLICT (id) DO UPDATE SET i = t.d")
    eng.execute(
        "INSERT INTO t (id, i) VALUES (3, 5) ON CONFLICT (id) DO UPDATE SET i = ? WHERE t.id = 3",
        [-2.5],
    )
    rows = eng.execute("SELECT id, i FROM t WHERE id <= 3 ORDER BY id").rows()
    assert rows == [(1, 3), (2, 4), (3, -2)]  # was: refused
    before = _state(eng)
    with pytest.raises(TypeMismatchError, match="out of range"):
        eng.execute("INSERT INTO t (id, s) VALUES (4, 1) ON CONFLICT (id) DO UPDATE SET s = 1e5")
    assert _state(eng) == before


def test_insert_select_rounds_double_and_decimal_columns(eng):
    eng.execute("INSERT INTO t (id, i, b) SELECT id + 10, d, m FROM t")
    rows = eng.execute("SELECT id, i, b FROM t WHERE id > 10 ORDER BY id").rows()
    assert rows == [(11, 2, 3), (12, 4, -3), (13, -2, 2), (14, 3, -1)]  # was: refused


def test_insert_arrow_rounds_doubles_half_even_as_duckdb_does(tmp_path):
    with Engine.open(tmp_path, background_jobs=False) as e:
        e.execute("CREATE TABLE a (id INT PRIMARY KEY, i INT, m BIGINT)")
        e.insert_arrow(
            "a",
            pa.table(
                {
                    "id": pa.array([1, 2, 3], pa.int32()),
                    "i": pa.array([2.5, 3.5, -2.7]),
                    "m": pa.array([Decimal("2.5"), Decimal("-2.5"), None], pa.decimal128(5, 1)),
                }
            ),
        )
        # Was: "Float value 2.500000 was truncated converting to int32".
        assert e.execute("SELECT * FROM a ORDER BY id").rows() == [
            (1, 2, 3),
            (2, 4, -3),
            (3, -3, None),
        ]
        for bad in ([1.5, float("nan")], [1.5, 3e10]):
            with pytest.raises(TypeMismatchError):
                e.insert_arrow("a", pa.table({"id": pa.array([7, 8], pa.int32()), "i": bad}))
        assert e.execute("SELECT count(*) FROM a").scalar() == 3


def test_a_lookup_by_a_fraction_still_matches_no_integer(eng):
    eng.execute("UPDATE t SET i = 7 WHERE id = 2.5")
    eng.execute("DELETE FROM t WHERE id = 2.5")
    assert eng.execute("SELECT count(*) FROM t WHERE i = 7").scalar() == 0
    assert eng.execute("SELECT count(*) FROM t").scalar() == 4


# DataFusion computes a numeric literal as a double; PostgreSQL and DuckDB read a
# DECIMAL, whose halves round away from zero. (value, the old answer, theirs)
LITERAL_ARITHMETIC = [
    ("2.5 + 0", 2, 3),
    ("-2.5 * 1", -2, -3),
    ("t.id + 0.5", 2, 3),  # id = 2
    ("CAST(2.5 AS DOUBLE) + 0", 2, 2),  # a double stays a double
    ("t.d + 0.0", 4, 4),  # d = 3.5 (DOUBLE): halves to even
]


@pytest.mark.parametrize(("value", "old", "right"), LITERAL_ARITHMETIC)
def test_literal_arithmetic_rounds_as_the_decimal_it_is_on_every_write_path(eng, value, old, right):
    eng.execute(f"UPDATE t SET i = {value} WHERE id = 2")
    eng.execute(f"UPDATE t SET b = {value}")  # set-based
    eng.execute(f"INSERT INTO t (id, i) SELECT 10, {value} FROM t WHERE id = 2")
    eng.execute(
        f"INSERT INTO t (id, i) SELECT id + 20, {value} FROM t WHERE id = 2 UNION ALL SELECT 99, 0"
    )
    eng.execute(f"INSERT INTO t (id, i) VALUES (2, 0) ON CONFLICT (id) DO UPDATE SET s = {value}")
    got = eng.execute("SELECT i, b, s FROM t WHERE id = 2").rows()
    assert got == [(right, right, right)], f"was {old}"
    assert eng.execute("SELECT i FROM t WHERE id = 10").scalar() == right
    assert eng.execute("SELECT i FROM t WHERE id = 22").scalar() == right  # a UNION branch
    if "t." not in value:
        eng.execute(f"INSERT INTO t (id, i) VALUES (11, {value})")
        assert eng.execute("SELECT i FROM t WHERE id = 11").scalar() == right


# INSERT ... SELECT over a VALUES list: DataFusion types a column of numeric
# literals as a Float64, which rounded as a double (2.5 -> 2); PostgreSQL and
# DuckDB read a DECIMAL (2.5 -> 3). (SQL DuckDB reads as written.)
VALUES_SOURCES = [
    "SELECT * FROM (VALUES (10, 2.5, 2.5, 2.5), (11, -2.5, -2.5, -2.5))",
    "SELECT * FROM (VALUES (10, 1e1, 1.5e-3, -0.005), (11, 2.51, 2.5, 0.0005))",
    "SELECT * FROM (VALUES (10, 0.5, 0.1, 1)) UNION ALL SELECT 11, 4.5, 2, 3.25",
    "WITH c AS (SELECT * FROM (VALUES (10, 6.5, 6.5, 6.5))) SELECT * FROM c",
    "SELECT * FROM (VALUES (10, 1, 2, 3), (11, 32766.5, 0, 0))",
]


@pytest.mark.parametrize("source", VALUES_SOURCES)
def test_insert_select_over_values_rounds_literals_as_the_decimals_they_are(eng, source):
    import duckdb

    duck = duckdb.connect()
    duck.execute("CREATE TABLE t (id INT PRIMARY KEY, i INT, d DOUBLE, m DECIMAL(6, 2))")
    duck.execute(f"INSERT INTO t (id, i, d, m) {source}")
    eng.execute(f"INSERT INTO t (id, i, d, m) {source}")
    got = eng.execute("SELECT id, i, d, m FROM t WHERE id >= 10 ORDER BY id").rows()
    assert got == duck.execute("SELECT * FROM t ORDER BY id").fetchall()


def test_insert_select_over_values_out_of_range_changes_nothing(eng):
    before = _state(eng)
    with pytest.raises(TypeMismatchError, match="out of range"):
        eng.execute("INSERT INTO t (id, i) SELECT * FROM (VALUES (10, 1.5), (11, 2147483647.5))")
    assert _state(eng) == before


@pytest.fixture(params=["hot", "cold"])
def quoted(tmp_path, request):
    with Engine.open(tmp_path, background_jobs=False) as e:
        e.execute("CREATE TABLE q (id INT PRIMARY KEY, d DOUBLE, r REAL, b BOOLEAN)")
        e.execute("INSERT INTO q VALUES (1, 0, 0, false), (2, 0, 0, true)")
        if request.param == "cold":
            e.flush("q")
        yield e


def test_quoted_numbers_and_truth_values_are_stored_as_postgresql_reads_them(quoted):
    # Was: "cannot store '1.5' in column 'd' of type DOUBLE" (PostgreSQL and
    # DuckDB store 1.5).
    quoted.execute(
        "INSERT INTO q VALUES (3, '1.5', ' 1e3 ', 'true'), (4, '-Infinity', '.5', ' OFF '), "
        "(5, 'NaN', '-2', 'y')"
    )
    quoted.execute("UPDATE q SET d = '2.5', b = 'no' WHERE id = 2")
    quoted.execute("INSERT INTO q (id, d, b) VALUES (?, ?, ?)", [6, "7.25", "t"])
    rows = quoted.execute("SELECT id, d, r, b FROM q ORDER BY id").rows()
    assert rows[:4] == [
        (1, 0.0, 0.0, False),
        (2, 2.5, 0.0, False),
        (3, 1.5, 1000.0, True),
        (4, float("-inf"), 0.5, False),
    ]
    assert rows[4][0] == 5 and rows[4][1] != rows[4][1] and rows[4][2:] == (-2.0, True)
    assert rows[5] == (6, 7.25, None, True)


@pytest.mark.parametrize(
    ("column", "item"), [("d", "'abc'"), ("d", "'1_000'"), ("d", "''"), ("b", "'maybe'")]
)
def test_other_text_in_a_number_or_boolean_column_refuses_the_insert(quoted, column, item):
    before = quoted.execute("SELECT * FROM q ORDER BY id").rows()
    with pytest.raises(TypeMismatchError, match="cannot store"):
        quoted.execute(f"INSERT INTO q (id, {column}) VALUES (9, {item})")
    assert quoted.execute("SELECT * FROM q ORDER BY id").rows() == before
