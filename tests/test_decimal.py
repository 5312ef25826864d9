"""DECIMAL(p, s): an exact type in every tier.

Values are stored with exactly ``s`` fractional digits (rounded ties away
from zero, like PostgreSQL's NUMERIC and DataFusion's CAST), refused when
they need more than ``p - s`` integer digits, and read back digit for digit
whether the row is hot, cold, both, or updated after a flush; segments keep
exact statistics that prune; pandas gets ``decimal.Decimal`` objects.
"""

from __future__ import annotations

from decimal import Context, Decimal
from typing import Any

import pytest

from engine import Engine
from engine.errors import KalamError, NumericOverflowError, SchemaError, TypeMismatchError
from engine.types import canonical_type, coerce

PLACEMENTS = ("hot", "cold", "mixed", "updated")
KINDS = ("SHARED", "USER")
USER = "alice"
WIDE = Context(prec=60)
BIG = Decimal("12345678901234567890123456.789012345678")  # 38 digits


class Db:
    """A table ``t (id BIGINT PRIMARY KEY, p DECIMAL(12, 2), big DECIMAL(38, 12))``
    of one table type, with its rows placed as ``placement`` says."""

    def __init__(self, engine: Engine, kind: str) -> None:
        self.engine = engine
        self.kind = kind

    def sql(self, sql: str, params: Any = None) -> Any:
        return self.engine.execute(sql, params, user=USER if self.kind == "USER" else None)

    def load(self, rows: list[tuple[Any, ...]], placement: str) -> None:
        self.engine.execute(
            f"CREATE {self.kind} TABLE t (id BIGINT PRIMARY KEY, p DECIMAL(12, 2), "
            "big DECIMAL(38, 12))"
        )
        half = len(rows) // 2 if placement == "mixed" else len(rows)
        for row in rows[:half]:
            self.sql("INSERT INTO t VALUES ($1, $2, $3)", list(row))
        if placement != "hot":
            self.engine.flush("t")
        for row in rows[half:]:
            self.sql("INSERT INTO t VALUES ($1, $2, $3)", list(row))
        if placement == "updated":  # new hot versions of flushed rows
            self.sql("UPDATE t SET p = p + 0 WHERE id % 2 = 0")


ROWS = [
    (1, Decimal("10.50"), BIG),
    (2, Decimal("-0.01"), -BIG),
    (3, Decimal("9999999999.99"), Decimal("0.000000000001")),
    (4, Decimal("0"), None),
    (5, None, Decimal("1")),
    (6, Decimal("123.45"), Decimal("99999999999999999999999999.999999999999")),
]


@pytest.fixture(params=KINDS)
def db(request: pytest.FixtureRequest, engines: Any) -> Db:
    return Db(engines.open(background_jobs=False), request.param)


# ---------------------------------------------------------------- types and DDL


@pytest.mark.parametrize(
    ("spelling", "canonical"),
    [
        ("DECIMAL(10, 2)", "DECIMAL(10,2)"),
        ("NUMERIC(5,1)", "DECIMAL(5,1)"),
        ("decimal", "DECIMAL(38,10)"),
        ("NUMERIC(7)", "DECIMAL(7,0)"),
        ("DECIMAL(38, 38)", "DECIMAL(38,38)"),
    ],
)
def test_decimal_spellings_map_to_one_canonical_type(spelling: str, canonical: str) -> None:
    assert canonical_type(spelling) == canonical


@pytest.mark.parametrize("spelling", ["DECIMAL(0, 0)", "DECIMAL(39, 2)", "DECIMAL(5, 6)"])
def test_decimal_precision_and_scale_out_of_bounds_are_refused(
    engine: Engine, spelling: str
) -> None:
    with pytest.raises(SchemaError):
        engine.execute(f"CREATE TABLE t (id INT PRIMARY KEY, p {spelling})")
    assert engine.execute("SHOW TABLES").table.num_rows == 0


def test_system_columns_show_the_decimal_type(engine: Engine) -> None:
    engine.execute("CREATE TABLE t (id INT PRIMARY KEY, p NUMERIC(9, 3), q DECIMAL)")
    rows = engine.execute(
        "SELECT column_name, data_type FROM system.columns WHERE table_name = 't' "
        "ORDER BY column_name"
    ).rows()
    assert rows == [("id", "INT"), ("p", "DECIMAL(9,3)"), ("q", "DECIMAL(38,10)")]
    field = engine.execute("SELECT p, q FROM t").table.schema
    assert str(field.field("p").type) == "decimal128(9, 3)"
    assert str(field.field("q").type) == "decimal128(38, 10)"


# ---------------------------------------------------------------- coercion


@pytest.mark.parametrize(
    ("value", "stored"),
    [
        (Decimal("1.005"), Decimal("1.01")),
        (Decimal("-1.005"), Decimal("-1.01")),
        (Decimal("0.125"), Decimal("0.13")),
        (Decimal("2.5"), Decimal("2.50")),
        (7, Decimal("7.00")),
        ("3.14159", Decimal("3.14")),
        (0.1, Decimal("0.10")),  # a float is read by its shortest text
        (Decimal("-0.001"), Decimal("0.00")),  # no negative zero
    ],
)
def test_coercion_rounds_ties_away_from_zero(value: Any, stored: Decimal) -> None:
    got = coerce(value, "DECIMAL(6,2)", "p")
    assert got == stored and str(got) == str(stored)


@pytest.mark.parametrize("value", ["abc", "NaN", float("inf"), True, b"1", "1e400"])
def test_values_that_are_not_numbers_are_refused(value: Any) -> None:
    with pytest.raises((TypeMismatchError, NumericOverflowError)):
        coerce(value, "DECIMAL(6,2)", "p")


def test_stored_rounding_matches_a_cast_in_a_query(engine: Engine) -> None:
    engine.execute("CREATE TABLE t (id INT PRIMARY KEY, p DECIMAL(6, 2))")
    texts = ["1.005", "-1.005", "0.125", "-0.125", "2.675", "9.995"]
    for i, text in enumerate(texts):
        engine.execute(f"INSERT INTO t VALUES ({i}, {text})")
    stored = [r[0] for r in engine.execute("SELECT p FROM t ORDER BY id").rows()]
    cast = [engine.execute(f"SELECT CAST('{t}' AS DECIMAL(6, 2))").scalar() for t in texts]
    assert stored == cast
    assert [str(v) for v in stored] == ["1.01", "-1.01", "0.13", "-0.13", "2.68", "10.00"]


def test_literal_with_many_digits_is_stored_exactly(engine: Engine) -> None:
    engine.execute("CREATE TABLE t (id INT PRIMARY KEY, big DECIMAL(38, 12))")
    engine.execute(f"INSERT INTO t VALUES (1, {BIG})")
    engine.execute("INSERT INTO t VALUES (2, -12345678901234567.89)")
    rows = engine.execute("SELECT big FROM t ORDER BY id").rows()
    assert rows == [(BIG,), (Decimal("-12345678901234567.890000000000"),)]


def test_too_many_integer_digits_is_an_overflow_and_changes_nothing(engine: Engine) -> None:
    engine.execute("CREATE TABLE t (id INT PRIMARY KEY, p DECIMAL(5, 2))")
    engine.execute("INSERT INTO t VALUES (1, 999.99)")
    with pytest.raises(NumericOverflowError) as caught:
        engine.execute("INSERT INTO t VALUES (2, 1.00), (3, 1000)")
    assert caught.value.code == "NUMERIC_OVERFLOW"
    assert "'p'" in str(caught.value) and "DECIMAL(5,2)" in str(caught.value)
    with pytest.raises(NumericOverflowError):
        engine.execute("INSERT INTO t VALUES (4, 999.995)")  # rounds up to 1000.00
    with pytest.raises(NumericOverflowError):
        engine.execute("UPDATE t SET p = p + 1 WHERE id = 1")
    assert engine.execute("SELECT id, p FROM t").rows() == [(1, Decimal("999.99"))]


@pytest.mark.parametrize(
    "param", [Decimal("12.345"), 12, "12.345", 12.345], ids=["Decimal", "int", "str", "float"]
)
def test_parameters_of_every_numeric_kind_are_accepted(engine: Engine, param: Any) -> None:
    engine.execute("CREATE TABLE t (id INT PRIMARY KEY, p DECIMAL(8, 2))")
    engine.execute("INSERT INTO t VALUES (1, $1)", [param])
    expected = Decimal("12.00") if param == 12 else Decimal("12.35")
    assert engine.execute("SELECT p FROM t").scalar() == expected
    assert engine.execute("SELECT id FROM t WHERE p = $1", [expected]).rows() == [(1,)]


def test_text_that_is_not_a_number_is_refused_as_a_parameter(engine: Engine) -> None:
    engine.execute("CREATE TABLE t (id INT PRIMARY KEY, p DECIMAL(8, 2))")
    with pytest.raises(TypeMismatchError):
        engine.execute("INSERT INTO t VALUES (1, $1)", ["twelve"])
    assert engine.execute("SELECT count(*) FROM t").scalar() == 0


# ---------------------------------------------------------------- every tier


@pytest.mark.parametrize("placement", PLACEMENTS)
def test_values_read_back_digit_for_digit_in_every_placement(db: Db, placement: str) -> None:
    db.load(ROWS, placement)
    got = db.sql("SELECT id, p, big FROM t ORDER BY id").rows()
    assert got == ROWS
    assert [str(r[1]) for r in got if r[1] is not None] == [
        str(r[1].quantize(Decimal("0.01"))) for r in ROWS if r[1] is not None
    ]
    assert [str(r[2]) for r in got if r[2] is not None] == [
        str(r[2].quantize(Decimal("1e-12"), context=WIDE)) for r in ROWS if r[2] is not None
    ]


@pytest.mark.parametrize("placement", PLACEMENTS)
def test_filters_and_aggregates_agree_in_every_placement(db: Db, placement: str) -> None:
    db.load(ROWS, placement)
    assert [r[0] for r in db.sql("SELECT id FROM t WHERE p > 10.5 ORDER BY id").rows()] == [3, 6]
    assert [r[0] for r in db.sql("SELECT id FROM t WHERE p = 10.50 ORDER BY id").rows()] == [1]
    assert [r[0] for r in db.sql("SELECT id FROM t WHERE p <= 0 ORDER BY id").rows()] == [2, 4]
    assert db.sql("SELECT sum(p) FROM t").scalar() == Decimal("10000000133.93")
    assert db.sql("SELECT id FROM t WHERE big = $1", [-BIG]).rows() == [(2,)]
    assert db.sql("SELECT p FROM t WHERE id = 6").scalar() == Decimal("123.45")


@pytest.mark.parametrize("placement", PLACEMENTS)
def test_updates_compute_exactly_in_every_placement(db: Db, placement: str) -> None:
    db.load(ROWS, placement)
    db.sql("UPDATE t SET p = p * 3 / 7 WHERE id = 1")  # 4.5 exactly
    db.sql("UPDATE t SET p = p - 0.01 WHERE id = 6")
    db.sql("UPDATE t SET big = big + 1 WHERE id = 3")
    got = dict(db.sql("SELECT id, p FROM t").rows())
    assert got[1] == Decimal("4.50") and got[6] == Decimal("123.44")
    assert db.sql("SELECT big FROM t WHERE id = 3").scalar() == Decimal("1.000000000001")
    db.engine.flush("t")
    assert dict(db.sql("SELECT id, p FROM t").rows()) == got


@pytest.mark.parametrize("placement", PLACEMENTS)
def test_upsert_adds_decimals_exactly(db: Db, placement: str) -> None:
    db.load(ROWS, placement)
    db.sql(
        "INSERT INTO t (id, p) VALUES (1, 0.25), (7, 1.999) "
        "ON CONFLICT (id) DO UPDATE SET p = t.p + EXCLUDED.p"
    )
    assert db.sql("SELECT id, p FROM t WHERE id IN (1, 7) ORDER BY id").rows() == [
        (1, Decimal("10.75")),
        (7, Decimal("2.00")),
    ]


def test_decimal_statistics_prune_segments(engine: Engine) -> None:
    engine.execute("CREATE TABLE t (id INT PRIMARY KEY, p DECIMAL(10, 2))")
    engine.execute("INSERT INTO t VALUES (1, 1.10), (2, 2.20)")
    engine.flush("t")
    engine.execute("INSERT INTO t VALUES (3, 100.10), (4, 200.20)")
    engine.flush("t")
    stats = (
        engine.execute(
            "SELECT column_stats FROM system.segments WHERE table_name = 't' ORDER BY segment_id"
        )
        .table.column(0)
        .to_pylist()
    )
    assert '"min":"1.10","max":"2.20"' in stats[0]  # exact digits, as text
    assert '"min":"100.10","max":"200.20"' in stats[1]
    r = engine.execute("SELECT id FROM t WHERE p > 50 ORDER BY id")
    assert r.rows() == [(3,), (4,)]
    assert r.stats["default.t"]["segments_pruned"] == 1
    r = engine.execute("SELECT id FROM t WHERE p = 2.2")
    assert r.rows() == [(2,)] and r.stats["default.t"]["segments_pruned"] == 1
    # A comparison with a float makes DataFusion cast the column: still pruned safely.
    r = engine.execute("SELECT id FROM t WHERE CAST(p AS DOUBLE) >= 2.2 ORDER BY id")
    assert r.rows() == [(2,), (3,), (4,)]


def test_decimal_primary_key_point_reads_hot_and_cold(engine: Engine) -> None:
    engine.execute("CREATE TABLE t (k DECIMAL(10, 3) PRIMARY KEY, v TEXT)")
    engine.execute("INSERT INTO t VALUES (1.5, 'a'), (2.25, 'b')")
    engine.flush("t")
    engine.execute("INSERT INTO t VALUES (3, 'c')")
    with pytest.raises(KalamError):
        engine.execute("INSERT INTO t VALUES (1.500, 'dup')")
    assert engine.execute("SELECT v FROM t WHERE k = 2.250").scalar() == "b"
    engine.execute("UPDATE t SET v = 'A' WHERE k = $1", [Decimal("1.5")])
    engine.execute("DELETE FROM t WHERE k = 3")
    assert engine.execute("SELECT k, v FROM t ORDER BY k").rows() == [
        (Decimal("1.500"), "A"),
        (Decimal("2.250"), "b"),
    ]


# ---------------------------------------------------------------- arithmetic


def test_arithmetic_follows_datafusion_decimal_types(engine: Engine) -> None:
    engine.execute("CREATE TABLE t (id INT PRIMARY KEY, p DECIMAL(10, 2))")
    engine.execute("INSERT INTO t VALUES (1, 1.50)")
    r = engine.execute("SELECT p * p AS sq, p + 1 AS inc, p / 3 AS third FROM t")
    assert r.rows() == [(Decimal("2.2500"), Decimal("2.50"), Decimal("0.500000"))]
    assert str(r.table.schema.field("sq").type) == "decimal128(21, 4)"


def test_arithmetic_overflow_in_a_query_is_an_error_not_a_wrong_value(engine: Engine) -> None:
    engine.execute("CREATE TABLE t (id INT PRIMARY KEY, p DECIMAL(38, 0))")
    engine.execute("INSERT INTO t VALUES (1, $1)", [Decimal("9" * 38)])
    with pytest.raises(KalamError, match="(?i)overflow"):
        engine.execute("SELECT p * 10 FROM t")
    with pytest.raises(NumericOverflowError):
        engine.execute("UPDATE t SET p = p + 1")
    assert engine.execute("SELECT p FROM t").scalar() == Decimal("9" * 38)


# ---------------------------------------------------------------- ALTER, restart, export


def test_alter_to_and_from_decimal_where_safe(engine: Engine) -> None:
    engine.execute("CREATE TABLE t (id INT PRIMARY KEY, p DECIMAL(10, 2), d DOUBLE, n INT)")
    engine.execute("INSERT INTO t VALUES (1, 12.34, 0.5, 7)")
    engine.flush("t")
    engine.execute("INSERT INTO t VALUES (2, 99999999.99, 1.25, -3)")
    engine.execute("ALTER TABLE t MODIFY COLUMN p DECIMAL(14, 4)")
    engine.execute("ALTER TABLE t MODIFY COLUMN d DECIMAL(6, 2)")
    engine.execute("ALTER TABLE t MODIFY COLUMN n DECIMAL(5, 1)")
    assert engine.execute("SELECT p, d, n FROM t ORDER BY id").rows() == [
        (Decimal("12.3400"), Decimal("0.50"), Decimal("7.0")),
        (Decimal("99999999.9900"), Decimal("1.25"), Decimal("-3.0")),
    ]
    with pytest.raises(KalamError):
        engine.execute("ALTER TABLE t MODIFY COLUMN p DECIMAL(6, 2)")  # 99999999.99 does not fit
    with pytest.raises(KalamError):
        engine.execute("ALTER TABLE t MODIFY COLUMN d INT")  # 0.5 is not an integer
    engine.execute("ALTER TABLE t MODIFY COLUMN d DOUBLE")
    assert engine.execute("SELECT d FROM t ORDER BY id").rows() == [(0.5,), (1.25,)]
    engine.execute("ALTER TABLE t ADD COLUMN fee DECIMAL(5, 2) DEFAULT 1.005")
    assert engine.execute("SELECT fee FROM t ORDER BY id").rows() == [(Decimal("1.01"),)] * 2


def test_decimals_survive_a_restart_hot_and_cold(engines: Any) -> None:
    eng = engines.open(background_jobs=False)
    eng.execute("CREATE TABLE t (id INT PRIMARY KEY, big DECIMAL(38, 12) DEFAULT 0.5)")
    eng.execute("INSERT INTO t VALUES (1, $1)", [BIG])
    eng.flush("t")
    eng.execute("INSERT INTO t VALUES (2, $1)", [-BIG])
    eng.execute("INSERT INTO t (id) VALUES (3)")
    eng = engines.reopen(eng, background_jobs=False)
    assert eng.execute("SELECT id, big FROM t ORDER BY id").rows() == [
        (1, BIG),
        (2, -BIG),
        (3, Decimal("0.500000000000")),
    ]


def test_pandas_export_holds_exact_decimal_objects(engine: Engine) -> None:
    engine.execute("CREATE TABLE t (id INT PRIMARY KEY, big DECIMAL(38, 12))")
    engine.execute("INSERT INTO t VALUES (1, $1)", [BIG])
    engine.flush("t")
    frame = engine.execute("SELECT big FROM t").to_pandas()
    value = frame["big"][0]
    assert isinstance(value, Decimal) and value == BIG


def test_magic_rendering_shows_every_digit(engine: Engine) -> None:
    from kalam_magic.render import format_value

    engine.execute("CREATE TABLE t (id INT PRIMARY KEY, p DECIMAL(38, 12))")
    engine.execute("INSERT INTO t VALUES (1, $1)", [BIG])
    table = engine.execute("SELECT p FROM t").table
    assert format_value(table.column(0)[0].as_py(), table.schema.field(0).type) == str(BIG)


def test_create_table_as_keeps_a_decimal_type(engine: Engine) -> None:
    engine.execute("CREATE TABLE t (id INT PRIMARY KEY, p DECIMAL(10, 2))")
    engine.execute("INSERT INTO t VALUES (1, 3.10)")
    engine.insert_arrow("u", engine.execute("SELECT id, p FROM t").table, primary_key="id")
    assert (
        engine.execute(
            "SELECT data_type FROM system.columns WHERE table_name = 'u' AND column_name = 'p'"
        ).scalar()
        == "DECIMAL(10,2)"
    )
    assert engine.execute("SELECT p FROM u").scalar() == Decimal("3.10")


def test_decimal_results_beyond_their_precision_are_refused(engine: Engine) -> None:
    engine.execute("CREATE TABLE t (id INT PRIMARY KEY, p DECIMAL(38, 0))")
    engine.execute("INSERT INTO t VALUES (1, $1), (2, $1)", [Decimal("9" * 38)])
    # DataFusion 55 returns 10^38 for max + 1 and wraps the sum of two maxima.
    with pytest.raises(NumericOverflowError):
        engine.execute("SELECT p + 1 FROM t WHERE id = 1")
    with pytest.raises(NumericOverflowError):
        engine.execute("SELECT sum(p) FROM t")
    assert engine.execute("SELECT p - 1 FROM t WHERE id = 1").scalar() == Decimal("9" * 37 + "8")


def test_a_cast_to_double_that_rounds_up_never_prunes_the_segment(engine: Engine) -> None:
    engine.execute("CREATE TABLE t (id INT PRIMARY KEY, p DECIMAL(38, 20))")
    engine.execute("INSERT INTO t VALUES (1, 0.99999999999999999999)")
    engine.flush("t")
    # The segment's max is below 1, but CAST(p AS DOUBLE) rounds it to 1.0.
    assert engine.execute("SELECT CAST(p AS DOUBLE) FROM t").scalar() == 1.0
    assert engine.execute("SELECT id FROM t WHERE CAST(p AS DOUBLE) >= 1.0").rows() == [(1,)]
    assert engine.execute("SELECT id FROM t WHERE p >= 1").rows() == []


def test_update_by_scan_stores_a_long_literal_exactly(engine: Engine) -> None:
    engine.execute("CREATE TABLE t (id INT PRIMARY KEY, big DECIMAL(38, 2))")
    engine.execute("INSERT INTO t VALUES (1, 0), (2, 0)")
    engine.flush("t")
    engine.execute("UPDATE t SET big = 12345678901234567.89 WHERE id > 0")
    exact = Decimal("12345678901234567.89")
    assert engine.execute("SELECT big FROM t ORDER BY id").rows() == [(exact,), (exact,)]
    # In a query DataFusion reads such a literal as a double; a bound Decimal
    # or a CAST of text keeps every digit.
    assert engine.execute("SELECT count(*) FROM t WHERE big = $1", [exact]).scalar() == 2
    assert (
        engine.execute(
            "SELECT count(*) FROM t WHERE big = CAST('12345678901234567.89' AS DECIMAL(38, 2))"
        ).scalar()
        == 2
    )
    engine.execute("UPDATE t SET big = big + $1 WHERE id = 2", [Decimal("0.01")])
    assert engine.execute("SELECT big FROM t WHERE id = 2").scalar() == exact + Decimal("0.01")


def test_insert_arrow_stores_decimals_exactly_as_insert_values_does(engine: Engine) -> None:
    import pyarrow as pa

    engine.execute("CREATE TABLE t (id INT PRIMARY KEY, p DECIMAL(15, 2))")
    values = [Decimal("1.25"), Decimal("-0.05"), None, Decimal("9999999999999.99")]
    data = pa.table(
        {
            "id": pa.array([1, 2, 3, 4], pa.int32()),
            # a narrower scale and a wider precision than the column: both exact
            "p": pa.array(
                [Decimal("1.25"), Decimal("-0.05"), None, values[3]], pa.decimal128(20, 2)
            ),
        }
    )
    engine.insert_arrow("t", data)
    data = pa.table({"id": pa.array([5, 6, 7], pa.int32()), "p": pa.array([7, -3, None])})
    engine.insert_arrow("t", data)  # integers
    # A wider scale is rounded as INSERT rounds it (ties away from zero).
    data = pa.table(
        {
            "id": pa.array([8, 9]),
            "p": pa.array([Decimal("0.125"), Decimal("-0.135")], pa.decimal128(9, 3)),
        }
    )
    engine.insert_arrow("t", data)
    engine.execute("INSERT INTO t VALUES (18, 0.125), (19, -0.135)")
    got = dict(engine.execute("SELECT id, p FROM t").rows())
    assert [got[i] for i in (1, 2, 3, 4)] == values
    assert [got[i] for i in (5, 6, 7)] == [Decimal("7.00"), Decimal("-3.00"), None]
    assert (got[8], got[9]) == (got[18], got[19]) == (Decimal("0.13"), Decimal("-0.14"))


@pytest.mark.parametrize(
    ("value", "arrow_type"),
    [
        (Decimal("12345678901234.00"), "decimal128(20, 2)"),  # 14 integer digits > 13
        (Decimal("123456789012345678"), "int64"),
        # Arrow does not enforce a precision: a value beyond it in the column's own type
        (Decimal("12345678901234567.89"), "decimal128(15, 2) view"),
    ],
)
def test_insert_arrow_refuses_a_decimal_beyond_the_precision_and_stores_nothing(
    engine: Engine, value: Decimal, arrow_type: str
) -> None:
    import pyarrow as pa

    engine.execute("CREATE TABLE t (id INT PRIMARY KEY, p DECIMAL(15, 2))")
    if arrow_type == "int64":
        p = pa.array([1, int(value)], pa.int64())
    elif arrow_type == "decimal128(20, 2)":
        p = pa.array([Decimal("1.00"), value], pa.decimal128(20, 2))
    else:
        p = pa.array([Decimal("1.00"), value], pa.decimal128(20, 2)).view(pa.decimal128(15, 2))
    with pytest.raises(NumericOverflowError, match="at most 13 digit"):
        engine.insert_arrow("t", pa.table({"id": pa.array([1, 2], pa.int32()), "p": p}))
    assert engine.execute("SELECT count(*) FROM t").scalar() == 0
