"""The cold query path's TPC-H measures (issue 15): each table's scan filters
are planned once per query shape (SQL text, namespace, table schemas) and
planned again when a DDL changes a schema; segments' TEXT columns are read
from Parquet as views and come back as plain strings, with the same answers
as hot rows give; the shared context gives up partial aggregation early
without changing any answer."""

from __future__ import annotations

import pyarrow as pa


def _segments(engine, name: str = "t") -> None:
    """Three segments of ten rows each: id 0..29, v = str(10 + id), n = id % 3."""
    engine.execute(
        f"CREATE TABLE {name} (id BIGINT PRIMARY KEY, v TEXT, n INT) WITH (COMPACT_POLICY = 'none')"
    )
    for lo in (0, 10, 20):
        values = ", ".join(f"({k}, '{10 + k}', {k % 3})" for k in range(lo, lo + 10))
        engine.execute(f"INSERT INTO {name} VALUES {values}")
        engine.flush(name)


def test_scan_filters_are_planned_once_per_query_shape(engine):
    _segments(engine)
    queries = engine.db.queries
    sql = "SELECT id FROM t WHERE id >= 25 ORDER BY id"
    before = queries.plans
    assert engine.execute(sql).rows() == [(k,) for k in range(25, 30)]
    first = queries.plans - before  # the filters' planning, then the query's
    before = queries.plans
    assert engine.execute(sql).rows() == [(k,) for k in range(25, 30)]
    assert (first, queries.plans - before) == (2, 1)
    stats = engine.execute(sql).stats["default.t"]
    assert stats["segments_pruned"] == 2  # the remembered filters still prune


def test_a_type_change_plans_the_same_text_again(engine):
    # As TEXT, v > '5' compares strings ('10'..'39' are all below '5'); as
    # BIGINT it compares numbers. Filters remembered from the TEXT schema
    # would prune every segment on its string min/max and lose every row.
    _segments(engine)
    sql = "SELECT count(*) FROM t WHERE v > '5'"
    assert engine.execute(sql).rows() == [(0,)]
    engine.execute("ALTER TABLE t MODIFY COLUMN v BIGINT")
    assert engine.execute(sql).rows() == [(30,)]
    engine.execute("DROP TABLE t")
    _segments(engine)  # the same name and schema again: new segments
    assert engine.execute(sql).rows() == [(0,)]


def test_cold_text_columns_come_back_as_plain_strings(engine):
    _segments(engine)
    engine.execute("INSERT INTO t VALUES (100, 'hot', 1)")
    engine.execute("UPDATE t SET v = 'changed' WHERE id = 3")
    result = engine.execute(
        "SELECT v, upper(v) AS u, v || '!' AS w, substr(v, 1, 1) AS s FROM t "
        "WHERE v IN ('12', 'changed', 'hot', '39') ORDER BY id"
    )
    assert result.rows() == [
        ("12", "12", "12!", "1"),
        ("changed", "CHANGED", "changed!", "c"),
        ("39", "39", "39!", "3"),
        ("hot", "HOT", "hot!", "h"),
    ]
    table = result.to_arrow()
    assert [f.type for f in table.schema] == [pa.string()] * 4
    star = engine.execute("SELECT * FROM t WHERE id = 5 OR id = 100 ORDER BY id").to_arrow()
    assert star.schema.field("v").type == pa.string()
    assert star.column("v").to_pylist() == ["15", "hot"]


def test_text_group_by_join_and_min_over_segments_match_hot_rows(engine):
    _segments(engine, "cold")
    engine.execute("CREATE TABLE hot (id BIGINT PRIMARY KEY, v TEXT, n INT)")
    values = ", ".join(f"({k}, '{10 + k}', {k % 3})" for k in range(30))
    engine.execute(f"INSERT INTO hot VALUES {values}")
    for sql in (
        "SELECT substr(v, 1, 1) AS d, count(*) AS c FROM {t} GROUP BY d ORDER BY d",
        "SELECT min(v), max(v) FROM {t} WHERE n = 2",
        "SELECT a.id FROM {t} a JOIN {t} b ON a.v = b.v AND b.n = 1 "
        "WHERE a.v LIKE '2%' ORDER BY a.id",
        "SELECT count(*) FROM {t} WHERE v NOT IN (SELECT v FROM {t} WHERE n = 0)",
    ):
        cold, hot = engine.execute(sql.format(t="cold")), engine.execute(sql.format(t="hot"))
        assert cold.rows() == hot.rows(), sql
        types = [f.type for f in cold.to_arrow().schema]
        assert types == [f.type for f in hot.to_arrow().schema], sql
    rows = engine.execute(
        "SELECT substr(v, 1, 1) AS d, count(*) AS c FROM cold GROUP BY d ORDER BY d"
    ).rows()
    assert rows == [("1", 10), ("2", 10), ("3", 10)]


def test_high_cardinality_group_by_over_segments_is_exact(engine):
    # Partial aggregation is skipped early (every id its own group): the
    # final aggregate must still see every row once.
    _segments(engine)
    rows = engine.execute(
        "SELECT id % 7 AS k, count(*) AS c, sum(n) AS s FROM t GROUP BY k ORDER BY k"
    ).rows()
    want = {}
    for i in range(30):
        c, s = want.get(i % 7, (0, 0))
        want[i % 7] = (c + 1, s + i % 3)
    assert rows == [(k, c, s) for k, (c, s) in sorted(want.items())]
    per_id = engine.execute("SELECT id, count(*) FROM t GROUP BY id ORDER BY id").rows()
    assert per_id == [(i, 1) for i in range(30)]


def test_dropping_not_null_plans_the_same_text_again(engine):
    # While v is NOT NULL the optimizer proves `v IS NULL` matches nothing and
    # the query reads no segment; remembered past DROP NOT NULL, that proof
    # would hide the segment holding the new NULL.
    engine.execute(
        "CREATE TABLE t (id BIGINT PRIMARY KEY, v BIGINT NOT NULL) WITH (COMPACT_POLICY = 'none')"
    )
    for lo in (0, 10):
        engine.execute(
            f"INSERT INTO t VALUES {', '.join(f'({k}, {k})' for k in range(lo, lo + 10))}"
        )
        engine.flush("t")
    sql = "SELECT count(*) FROM t WHERE v IS NULL OR id = 3"
    assert engine.execute(sql).rows() == [(1,)]
    engine.execute("ALTER TABLE t ALTER COLUMN v DROP NOT NULL")
    engine.execute("INSERT INTO t VALUES (100, NULL)")
    engine.flush("t")
    assert engine.execute(sql).rows() == [(2,)]
