"""Numeric answers DataFusion gets wrong as written (engine/sql/numeric_semantics.py):
a fraction cast to an integer rounds (PostgreSQL and DuckDB), -0.0 equals 0.0
everywhere, and sum() of INT / SMALLINT is exact at the extremes."""

from __future__ import annotations

import math
from decimal import Decimal

import pyarrow as pa
import pytest

from engine import Engine, KalamError
from engine.errors import NumericOverflowError


@pytest.fixture(params=["hot", "cold"])
def eng(tmp_path, request):
    with Engine.open(tmp_path, background_jobs=False) as e:
        e.execute(
            "CREATE TABLE t (id BIGINT PRIMARY KEY, d DOUBLE, r REAL, m DECIMAL(10,2), i INT)"
        )
        e.execute(
            "INSERT INTO t VALUES (1, 2.5, 2.5, 2.5, 0), (2, 3.5, 0.5, -2.5, 0), "
            "(3, -2.5, -2.5, 2.7, 0), (4, -2.7, 1.5, -2.49, 0), (5, 2.7, -0.5, 0.5, 0)"
        )
        if request.param == "cold":
            e.flush("t")
        yield e


# (expression, what DataFusion answered as written, the right answer)
LITERAL_CASTS = [
    ("CAST(2.7 AS INT)", 2, 3),
    ("CAST(-2.7 AS INT)", -2, -3),
    ("CAST(2.5 AS INT)", 2, 3),  # a numeric literal: halves away from zero
    ("CAST(-2.5 AS BIGINT)", -2, -3),
    ("2.7::INT", 2, 3),
    ("2.5::SMALLINT", 2, 3),
    ("TRY_CAST(2.7 AS INT)", 2, 3),
    ("CAST(CAST(2.5 AS DOUBLE) AS INT)", 2, 2),  # a double: halves to even
    ("CAST(CAST(3.5 AS DOUBLE) AS INT)", 3, 4),
    ("CAST(CAST(-3.5 AS DOUBLE) AS INT)", -3, -4),
    ("CAST(CAST(0.5 AS REAL) AS INT)", 0, 0),
    ("CAST(CAST(1.5 AS REAL) AS INT)", 1, 2),
    ("CAST(CAST(2.5 AS DECIMAL(5, 1)) AS INT)", 2, 3),
    ("CAST(CAST(-0.5 AS DECIMAL(5, 1)) AS INT)", 0, -1),
    ("CAST(2147483647.4 AS INT)", 2147483647, 2147483647),
]


@pytest.mark.parametrize(("expr", "truncated", "right"), LITERAL_CASTS)
def test_a_fraction_cast_to_an_integer_rounds_instead_of_truncating(eng, expr, truncated, right):
    assert eng.execute(f"SELECT {expr}").scalar() == right


def test_a_column_cast_to_int_rounds_doubles_half_even_and_decimals_half_away(eng):
    rows = eng.execute(
        "SELECT id, CAST(d AS INT), CAST(r AS INT), CAST(m AS INT), d::BIGINT FROM t ORDER BY id"
    ).rows()
    # Truncated, DataFusion answered (1, 2, 2, 2, 2), (2, 3, 0, -2, 3), (3, -2, -2, 2, -2), ...
    assert rows == [
        (1, 2, 2, 3, 2),
        (2, 4, 0, -3, 4),
        (3, -2, -2, 3, -2),
        (4, -3, 2, -2, -3),
        (5, 3, 0, 1, 3),
    ]


def test_a_rounded_cast_keeps_the_output_name_it_had(eng):
    result = eng.execute("SELECT CAST(d AS INT), CAST(m AS INT) + 1 FROM t WHERE id = 1")
    assert result.columns == ["t.d", "t.m + Int64(1)"]
    assert result.rows() == [(2, 4)]


def test_a_bound_double_cast_to_int_rounds(eng):
    assert eng.execute("SELECT CAST(? AS INT)", [2.7]).scalar() == 3
    assert eng.execute("SELECT CAST(? AS INT)", [Decimal("-2.5")]).scalar() == -3


def test_rounded_casts_agree_in_where_group_by_and_aggregates(eng):
    assert eng.execute("SELECT id FROM t WHERE CAST(d AS INT) = 3 ORDER BY id").rows() == [(5,)]
    grouped = eng.execute(
        "SELECT CAST(d AS INT) AS k, count(*) FROM t GROUP BY CAST(d AS INT) ORDER BY k"
    ).rows()
    # Truncated: [(-2, 2), (2, 2), (3, 1)]
    assert grouped == [(-3, 1), (-2, 1), (2, 1), (3, 1), (4, 1)]
    assert eng.execute("SELECT CAST(avg(m) AS INT) FROM t WHERE id IN (1, 3)").scalar() == 3


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT DISTINCT CAST(d AS INT) FROM t ORDER BY CAST(d AS INT)",
        "SELECT DISTINCT d::INT AS k FROM t ORDER BY k",
        "SELECT x FROM (SELECT CAST(d AS INT) AS x FROM t) s ORDER BY x",
        "WITH c AS (SELECT CAST(d AS INT) AS x FROM t) SELECT x FROM c ORDER BY x",
        "SELECT CAST(d AS INT) FROM t WHERE id > 2 UNION SELECT CAST(d AS INT) FROM t ORDER BY 1",
        "SELECT k FROM v ORDER BY k",
    ],
)
def test_rounded_casts_in_distinct_subqueries_set_operations_and_views(eng, sql):
    eng.execute("CREATE VIEW v AS SELECT id, CAST(d AS INT) AS k FROM t")
    # Truncated: [-2, 2, 3] (2.5 and 2.7 both 2, -2.5 and -2.7 both -2)
    assert [r[0] for r in eng.execute(sql).rows()] == [-3, -2, 2, 3, 4]


@pytest.mark.parametrize(
    ("sql", "name"),
    [
        ("SELECT CAST(x AS INT) FROM (SELECT d AS x, id FROM t) s ORDER BY s.id", "s.x"),
        ("WITH c AS (SELECT d AS y, id FROM t) SELECT CAST(y AS INT) FROM c ORDER BY id", "c.y"),
        (
            "SELECT CAST(x AS INT) FROM (SELECT d AS x, id FROM t WHERE id < 3 "
            "UNION ALL SELECT d, id FROM t WHERE id >= 3) s ORDER BY s.id",
            "s.x",
        ),
        ("SELECT CAST(COALESCE(d, 0.0) AS INT) AS k FROM t ORDER BY id", "k"),
        ("SELECT CAST(CASE WHEN id > 0 THEN d END AS INT) AS k FROM t ORDER BY id", "k"),
    ],
)
def test_a_cast_of_a_derived_column_or_a_conditional_double_rounds(eng, sql, name):
    result = eng.execute(sql)
    assert result.columns == [name]
    # Truncated: [2, 3, -2, -2, 2]
    assert [r[0] for r in result.rows()] == [2, 4, -2, -3, 3]


def test_a_cast_of_sqrt_of_a_literal_rounds_like_a_decimal(eng):
    assert eng.execute("SELECT CAST(sqrt(6.25) AS INT)").scalar() == 3  # PostgreSQL: 3


def test_update_set_and_delete_where_use_the_rounded_value(eng):
    eng.execute("UPDATE t SET i = CAST(d AS INT) + CAST(m AS INT)")
    assert [r[0] for r in eng.execute("SELECT i FROM t ORDER BY id").rows()] == [5, 1, 1, -5, 4]
    eng.execute("DELETE FROM t WHERE CAST(m AS INT) = 3")  # 2.5 and 2.7: not 2
    assert [r[0] for r in eng.execute("SELECT id FROM t ORDER BY id").rows()] == [2, 4, 5]


def test_upsert_do_update_set_uses_the_rounded_value(eng):
    sql = (
        "INSERT INTO t (id, i) VALUES (1, 0), (2, 0) ON CONFLICT (id) "
        "DO UPDATE SET i = CAST(t.d AS INT) + CAST(-2.5 AS INT)"
    )
    eng.execute(sql)
    # Truncated: 2 + -2 = 0 and 3 + -2 = 1
    assert eng.execute("SELECT i FROM t WHERE id < 3 ORDER BY id").rows() == [(-1,), (1,)]


def test_insert_select_stores_the_rounded_value(eng):
    eng.execute("INSERT INTO t (id, i) SELECT id + 10, CAST(d AS INT) FROM t WHERE id IN (2, 4)")
    assert eng.execute("SELECT id, i FROM t WHERE id > 10 ORDER BY id").rows() == [
        (12, 4),
        (14, -3),
    ]


@pytest.mark.parametrize(
    "expr",
    [
        "CAST(2147483647.6 AS INT)",  # truncated to 2147483647 as written
        "CAST(CAST(2147483647.5 AS DOUBLE) AS INT)",
        "CAST(CAST(32767.5 AS DECIMAL(7, 1)) AS SMALLINT)",
        "CAST(CAST(-32768.6 AS DECIMAL(7, 1)) AS SMALLINT)",
    ],
)
def test_a_cast_that_rounds_out_of_range_is_an_error_not_a_saturated_value(eng, expr):
    with pytest.raises(KalamError, match="out of range"):
        eng.execute(f"SELECT {expr}")


def test_try_cast_that_rounds_out_of_range_is_null(eng):
    assert eng.execute("SELECT TRY_CAST(CAST(2147483647.5 AS DOUBLE) AS INT)").scalar() is None


def test_an_update_whose_rounded_value_is_out_of_range_changes_nothing(eng):
    eng.execute("UPDATE t SET d = 2147483647.5 WHERE id = 1")
    before = eng.execute("SELECT id, i FROM t ORDER BY id").rows()
    with pytest.raises(KalamError, match="out of range"):
        eng.execute("UPDATE t SET i = CAST(d AS INT)")
    assert eng.execute("SELECT id, i FROM t ORDER BY id").rows() == before


# Negative zero --------------------------------------------------------------


@pytest.fixture(params=["hot", "cold"])
def zeros(tmp_path, request):
    with Engine.open(tmp_path, background_jobs=False) as e:
        e.execute("CREATE TABLE z (id BIGINT PRIMARY KEY, v DOUBLE, f REAL)")
        e.execute(
            "INSERT INTO z VALUES (1, 0.0, 0.0), (2, CAST('-0.0' AS DOUBLE), CAST('-0.0' AS REAL))"
        )
        e.execute("INSERT INTO z VALUES (3, ?, ?)", [-0.0, -0.0])
        e.insert_arrow(
            "z",
            pa.table(
                {
                    "id": pa.array([4, 5], pa.int64()),
                    "v": pa.array([-0.0, 0.0]),
                    "f": pa.array([-0.0, 0.0], pa.float32()),
                }
            ),
        )
        e.execute("INSERT INTO z SELECT 6, v * -1, f * -1 FROM z WHERE id = 1")
        if request.param == "cold":
            e.flush("z")
        yield e


def _signs(e):
    return [
        (math.copysign(1, v), math.copysign(1, f))
        for v, f in e.execute("SELECT v, f FROM z ORDER BY id").rows()
    ]


def test_negative_zero_is_stored_as_zero_by_every_write_path(zeros):
    assert _signs(zeros) == [(1.0, 1.0)] * 6
    zeros.execute("UPDATE z SET v = v * -1, f = f * -1")
    assert _signs(zeros) == [(1.0, 1.0)] * 6
    zeros.execute("UPDATE z SET v = ? WHERE id = 1", [-0.0])
    assert _signs(zeros) == [(1.0, 1.0)] * 6


@pytest.mark.parametrize(
    "where",
    [
        "v IN (0.0, 5.0, 7.0, 8.0)",  # a hash set comparing bits: found 3 of 6
        "v IN (-0.0, 5.0, 7.0, 8.0)",
        "v IN (CAST('-0.0' AS DOUBLE), 5.0, 7.0, 8.0)",
        "v * -1 IN (0.0, 5.0, 7.0, 8.0)",  # a computed -0.0
        "v IN (0.0 * -1, 5.0, 7.0, 8.0)",
        "f IN (CAST(0 AS REAL), 5, 7, 8)",
        "v = -0.0",
    ],
)
def test_negative_zero_equals_zero_in_in_lists(zeros, where):
    assert zeros.execute(f"SELECT count(*) FROM z WHERE {where}").scalar() == 6
    assert zeros.execute(f"SELECT count(*) FROM z WHERE NOT ({where})").scalar() == 0


def test_negative_zero_sorts_as_zero(zeros):
    ids = [r[0] for r in zeros.execute("SELECT id FROM z ORDER BY v * -1, id").rows()]
    assert ids == [1, 2, 3, 4, 5, 6]  # the total order put every -0.0 first
    ids = [r[0] for r in zeros.execute("SELECT id FROM z ORDER BY v, id DESC").rows()]
    assert ids == [6, 5, 4, 3, 2, 1]


def test_negative_zero_groups_distincts_and_joins_as_zero(zeros):
    assert zeros.execute("SELECT count(*) FROM (SELECT DISTINCT v * -1 FROM z) s").scalar() == 1
    assert zeros.execute("SELECT count(*) FROM (SELECT v FROM z GROUP BY v) s").scalar() == 1
    union = "SELECT count(*) FROM (SELECT v FROM z UNION SELECT CAST('-0.0' AS DOUBLE)) s"
    assert zeros.execute(union).scalar() == 1
    join = "SELECT count(*) FROM z a JOIN z b ON a.v * -1 = b.v"
    assert zeros.execute(join).scalar() == 36


# sum() of INT / SMALLINT ----------------------------------------------------


def _int_extremes(e: Engine, where: str) -> None:
    """Table s: 1,000 rows of INT's maximum and SMALLINT's minimum."""
    e.execute("CREATE TABLE s (id BIGINT PRIMARY KEY, i INT, h SMALLINT)")
    e.insert_arrow(
        "s",
        pa.table(
            {
                "id": pa.array(range(1000), pa.int64()),
                "i": pa.array([2**31 - 1] * 1000, pa.int32()),
                "h": pa.array([-(2**15)] * 1000, pa.int16()),
            }
        ),
    )
    if where == "cold":
        e.flush("s")


@pytest.mark.parametrize("where", ["hot", "cold"])
def test_sum_of_int_and_smallint_is_an_exact_bigint_at_the_extremes(tmp_path, where):
    """DataFusion sums INT and SMALLINT in BIGINT (Int64): overflowing it
    takes more than 2^32 rows of INT extremes, so it cannot wrap in
    practice; the sum of the extremes is exact, not wrapped to 32 bits."""
    with Engine.open(tmp_path, background_jobs=False) as e:
        _int_extremes(e, where)
        result = e.execute("SELECT sum(i), sum(h), sum(i) + sum(i) FROM s")
        assert result.rows() == [(1000 * (2**31 - 1), -1000 * 2**15, 2000 * (2**31 - 1))]
        assert [f.type for f in result.to_arrow().schema] == [pa.int64()] * 3


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT sum(i) * 10000000 FROM s",  # answered 3028092396290448384
        "SELECT sum(i) * sum(i) FROM s",  # answered -4294967295000000
        "SELECT sum(h) * 1000000000000000 FROM s",  # answered -6582525091836329984
    ],
)
@pytest.mark.parametrize("where", ["hot", "cold"])
def test_arithmetic_over_a_sum_of_int_raises_instead_of_wrapping(tmp_path, where, sql):
    with Engine.open(tmp_path, background_jobs=False) as e:
        _int_extremes(e, where)
        with pytest.raises(NumericOverflowError):
            e.execute(sql)
        fits = e.execute("SELECT sum(i) * 2, -sum(h) FROM s")
        assert fits.rows() == [(2000 * (2**31 - 1), 1000 * 2**15)]
        assert fits.columns == ["sum(s.i) * Int64(2)", "(- sum(s.h))"]
        # Compared with a literal, DataFusion unwraps the checking cast and
        # compares the exact DECIMAL: right (the wrapped product was negative,
        # and no group came back), though not an overflow error.
        having = (
            "SELECT count(*) FROM (SELECT id FROM s GROUP BY id HAVING sum(i) * 5000000000 > 0) g"
        )
        assert e.execute(having).scalar() == 1000


def test_insert_of_a_fraction_into_an_int_column_rounds_not_truncates(tmp_path):
    """PostgreSQL and DuckDB store 3 here (an assignment cast rounds); the
    engine refused it before, and never stores a truncated 2
    (tests/test_assignment_casts.py covers every write path)."""
    with Engine.open(tmp_path, background_jobs=False) as e:
        e.execute("CREATE TABLE n (id BIGINT PRIMARY KEY, i INT)")
        e.execute("INSERT INTO n VALUES (1, 2.7)")
        assert e.execute("SELECT i FROM n").scalar() == 3


def test_text_to_double_column_change_reads_negative_zero_as_zero_hot_and_cold(tmp_path):
    with Engine.open(tmp_path, background_jobs=False) as e:
        e.execute("CREATE TABLE a (id BIGINT PRIMARY KEY, s TEXT)")
        e.execute("INSERT INTO a VALUES (1, '-0'), (2, '0'), (3, '-0.0')")
        e.flush("a")  # cold: cast when read
        e.execute("INSERT INTO a VALUES (4, '-0'), (5, '-2.5')")  # hot: converted by ALTER
        e.execute("ALTER TABLE a MODIFY COLUMN s DOUBLE")
        values = [r[0] for r in e.execute("SELECT s FROM a ORDER BY id").rows()]
        assert [math.copysign(1, v) for v in values] == [1, 1, 1, 1, -1]
        # As stored before: -0.0 three times, and the IN list found one row.
        assert e.execute("SELECT count(*) FROM a WHERE s IN (0.0, 7.0, 8.0, 9.0)").scalar() == 4


def test_a_live_query_rounds_its_casts_as_the_same_select_does(tmp_path):
    with Engine.open(tmp_path, background_jobs=False) as e:
        e.execute("CREATE TABLE t (id BIGINT PRIMARY KEY, d DOUBLE)")
        e.execute("INSERT INTO t VALUES (1, 2.7), (2, 2.2)")
        query = "SELECT id, CAST(d AS INT) AS k FROM default.t WHERE CAST(d AS INT) = 3"
        with e.subscribe(f"SUBSCRIBE TO {query}") as sub:
            # Truncated: no initial row, and both new rows (3 and 4) as inserts.
            assert sub.initial.to_pylist() == [{"id": 1, "k": 3}]
            e.execute("INSERT INTO t VALUES (3, 3.4), (4, 3.6)")
            change = sub.get(timeout=20)
            assert change is not None
            assert (change.change_type, change.rows.to_pylist()) == ("insert", [{"id": 3, "k": 3}])
            assert e.execute(query).rows() == [(1, 3), (3, 3)]
