"""TPC-H money is DECIMAL(15,2): exact through insert_arrow, segments and queries.

Q15 compares each supplier's revenue with the maximum of the same CTE, which
is evaluated twice over a table spread across several segments; with DOUBLE
sums the two evaluations could add in different orders and miss the tie.
With DECIMAL every answer equals DuckDB's digit for digit.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from engine.storage.cold import write_segment

MONEY = pa.decimal128(15, 2)
SEGMENTS = 4
ROWS = 500  # per segment

Q15 = """
WITH revenue0 AS (
  SELECT l_suppkey AS supplier_no, sum(l_extendedprice * (1 - l_discount)) AS total_revenue
  FROM lineitem GROUP BY l_suppkey)
SELECT supplier_no, total_revenue FROM revenue0
WHERE total_revenue = (SELECT max(total_revenue) FROM revenue0)
ORDER BY supplier_no"""

Q1_SHAPE = """
SELECT l_suppkey, sum(l_extendedprice) AS s, sum(l_extendedprice * (1 - l_discount)) AS d,
       count(*) AS n
FROM lineitem GROUP BY l_suppkey ORDER BY l_suppkey"""


def lineitem(segment: int) -> pa.Table:
    """One segment's rows. Suppliers 1 and 2 get the same (price, discount)
    pairs, 2 in reverse order: equal totals that float sums added in row
    order would not reproduce; supplier 3 earns less."""
    pairs = [
        (Decimal(10 + (segment * ROWS + i) * 7919 % 9000).scaleb(-2), Decimal(i % 11).scaleb(-2))
        for i in range(ROWS)
    ]
    rows = [(1, p, d) for p, d in pairs] + [(2, p, d) for p, d in reversed(pairs)]
    rows += [(3, p, d) for p, d in pairs[1:]]
    return pa.table(
        {
            "row_id": pa.array(
                range(segment * 3 * ROWS, segment * 3 * ROWS + len(rows)), pa.int64()
            ),
            "l_suppkey": pa.array([r[0] for r in rows], pa.int64()),
            "l_extendedprice": pa.array([r[1] for r in rows], MONEY),
            "l_discount": pa.array([r[2] for r in rows], MONEY),
        }
    )


def test_q15_shaped_tie_over_several_segments_matches_duckdb_exactly(engine):
    engine.execute(
        "CREATE TABLE lineitem (row_id BIGINT PRIMARY KEY, l_suppkey BIGINT, "
        "l_extendedprice DECIMAL(15,2), l_discount DECIMAL(15,2))"
    )
    parts = [lineitem(s) for s in range(SEGMENTS)]
    for part in parts:
        engine.insert_arrow("lineitem", part)
        engine.flush("lineitem")
    con = duckdb.connect()
    con.register("lineitem", pa.concat_tables(parts))

    for _ in range(3):  # the CTE is evaluated twice per run; every run must agree
        got = engine.execute(Q15).rows()
        want = [tuple(r) for r in con.execute(Q15).fetchall()]
        assert [tuple(r) for r in got] == want
        assert [r[0] for r in got] == [1, 2]  # the tie is found, not an empty answer
        assert all(isinstance(r[1], Decimal) for r in got)

    got = [tuple(r) for r in engine.execute(Q1_SHAPE).rows()]
    assert got == [tuple(r) for r in con.execute(Q1_SHAPE).fetchall()]
    assert all(isinstance(v, Decimal) for r in got for v in r[1:3])


def test_segments_store_decimal_up_to_18_digits_as_integers(tmp_path: Path):
    values = [Decimal("-12345678901.25"), Decimal("0.01"), None, Decimal("9999999999999.99")]
    table = pa.table(
        {
            "c1": pa.array(range(4), pa.int64()),
            "c2": pa.array(values, MONEY),
            "c3": pa.array([None if v is None else v * 3 for v in values], pa.decimal128(38, 2)),
            "c4": pa.array(
                [Decimal("-1.5"), Decimal("0.0001"), None, Decimal("99999.9999")],
                pa.decimal128(9, 4),
            ),
            "_seq": pa.array(range(1, 5), pa.int64()),
            "_deleted": pa.array([False] * 4),
        }
    )
    entry = write_segment(tmp_path, 1, table, sort_column="c1", schema_version=1)
    path = tmp_path / entry.path
    schema = pq.ParquetFile(path).schema
    physical = {schema.column(i).name: schema.column(i).physical_type for i in range(len(schema))}
    assert physical["c2"] == "INT64"
    assert physical["c4"] == "INT32"
    assert physical["c3"] == "FIXED_LEN_BYTE_ARRAY"  # beyond 18 digits: bytes
    back = pq.read_table(path)
    for name in ("c2", "c3", "c4"):
        assert back.schema.field(name).type == table.schema.field(name).type
        assert back.column(name).to_pylist() == table.column(name).to_pylist()
    # The statistics DataFusion and DuckDB prune on are the decimal values.
    stats = pq.ParquetFile(path).metadata.row_group(0).column(1).statistics
    assert (stats.min, stats.max) == (Decimal("-12345678901.25"), Decimal("9999999999999.99"))


def test_bench_answer_check_is_exact_for_decimals_and_tight_for_doubles():
    from bench.tpch import same_value

    assert same_value(Decimal("1.00"), Decimal("1.0"))
    assert not same_value(Decimal("1.01"), Decimal("1.00"))  # one cent is a wrong answer
    assert not same_value(Decimal("1"), None)
    # DataFusion's avg of DECIMAL(15,2) is DECIMAL(19,6); DuckDB's a DOUBLE.
    assert same_value(Decimal("25.522006"), 25.5220058)
    assert not same_value(Decimal("25.522006"), 25.522008)
    assert same_value(0.1 + 0.2, 0.3)
    assert not same_value(1.0, 1.0 + 1e-8)
