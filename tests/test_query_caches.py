"""The query path's caches (issue 15): segment DataFrames, dataset scans,
segment paths and layouts, key ranges, and the nested-loop-join check per
query shape. A stale entry would be a wrong answer, so each test runs the
same query before and after a commit that changes what it must return:
flush, compaction, DROP (and re-CREATE under the same name), RENAME of a
table or a column, ADD / DROP / MODIFY COLUMN, REPAIR. Each runs through
both cold readers: DataFusion's Parquet reader (one DataFrame a segment)
and the dataset scan (forced from two segments on)."""

from __future__ import annotations

import pytest

READERS = ["parquet", "dataset"]


def _reader(engine, table: str, reader: str) -> None:
    db = engine.db
    prov = db.provider(db.catalog.get_table("default", table))
    prov.cold.dataset_scan_segments = 2 if reader == "dataset" else 10**6


def _make(engine, reader: str, name: str = "t") -> None:
    engine.execute(
        f"CREATE TABLE {name} (id BIGINT PRIMARY KEY, v TEXT, n INT) WITH (COMPACT_POLICY = 'none')"
    )
    _reader(engine, name, reader)
    for lo in (0, 10, 20):
        values = ", ".join(f"({k}, 'v{k}', {k})" for k in range(lo, lo + 10))
        engine.execute(f"INSERT INTO {name} VALUES {values}")
        engine.flush(name)


ALL = "SELECT * FROM {t} ORDER BY id"


@pytest.mark.parametrize("reader", READERS)
def test_a_flush_adds_its_segment_to_the_next_scan(engine, reader):
    _make(engine, reader)
    assert len(engine.execute(ALL.format(t="t")).rows()) == 30
    engine.execute("INSERT INTO t VALUES (100, 'new', 1)")
    engine.execute("UPDATE t SET v = 'changed' WHERE id = 5")
    engine.flush("t")
    rows = engine.execute(ALL.format(t="t")).rows()
    assert len(rows) == 31 and rows[-1] == (100, "new", 1)
    assert rows[5] == (5, "changed", 5)
    assert engine.execute("SELECT sum(n) FROM t WHERE id >= 0").rows() == [(436,)]


@pytest.mark.parametrize("reader", READERS)
def test_alter_column_forms_change_the_next_scan(engine, reader):
    _make(engine, reader)
    engine.execute(ALL.format(t="t"))
    engine.execute("ALTER TABLE t ADD COLUMN w INT DEFAULT 7")
    assert engine.execute("SELECT id, w FROM t WHERE id = 3 OR id = 23 ORDER BY id").rows() == [
        (3, 7),
        (23, 7),
    ]
    engine.execute("ALTER TABLE t RENAME COLUMN v TO label")
    assert engine.execute("SELECT label FROM t WHERE id > 27 ORDER BY id").rows() == [
        ("v28",),
        ("v29",),
    ]
    engine.execute("ALTER TABLE t MODIFY COLUMN n BIGINT")
    table = engine.execute("SELECT n FROM t WHERE id > 27 ORDER BY id").to_arrow()
    assert str(table.schema.field("n").type) == "int64"
    assert table.column("n").to_pylist() == [28, 29]
    engine.execute("ALTER TABLE t DROP COLUMN label")
    assert engine.execute("SELECT * FROM t WHERE id = 12").columns == ["id", "n", "w"]


@pytest.mark.parametrize("reader", READERS)
def test_drop_and_recreate_under_the_same_name_reads_only_the_new_rows(engine, reader):
    _make(engine, reader)
    assert len(engine.execute(ALL.format(t="t")).rows()) == 30
    engine.execute("DROP TABLE t")
    engine.execute("CREATE TABLE t (id BIGINT PRIMARY KEY, v TEXT, n INT)")
    _reader(engine, "t", reader)
    for lo in (0, 10):
        engine.execute(f"INSERT INTO t VALUES ({lo}, 'again', {lo}), ({lo + 1}, 'again', 0)")
        engine.flush("t")
    assert engine.execute(ALL.format(t="t")).rows() == [
        (0, "again", 0),
        (1, "again", 0),
        (10, "again", 10),
        (11, "again", 0),
    ]


@pytest.mark.parametrize("reader", READERS)
def test_rename_table_keeps_reading_the_moved_segments(engine, reader):
    _make(engine, reader)
    before = engine.execute(ALL.format(t="t")).rows()
    engine.execute("ALTER TABLE t RENAME TO r")
    _reader(engine, "r", reader)
    assert engine.execute(ALL.format(t="r")).rows() == before
    _make(engine, reader)  # a new table under the old name: its own segments
    engine.execute("UPDATE t SET v = 'only in t' WHERE id = 1")
    engine.flush("t")
    assert engine.execute("SELECT v FROM r WHERE id = 1").rows() == [("v1",)]
    assert engine.execute("SELECT v FROM t WHERE id = 1").rows() == [("only in t",)]


@pytest.mark.parametrize("reader", READERS)
def test_compaction_and_repair_are_seen_by_the_next_scan(engine, reader):
    _make(engine, reader)
    engine.execute("DELETE FROM t WHERE id IN (4, 14, 24)")
    engine.flush("t")
    expected = engine.execute(ALL.format(t="t")).rows()
    assert len(expected) == 27
    engine.execute("COMPACT TABLE t WAIT")
    assert engine.execute(ALL.format(t="t")).rows() == expected
    engine.execute("REPAIR TABLE t")
    assert engine.execute(ALL.format(t="t")).rows() == expected
    engine.execute("INSERT INTO t VALUES (4, 'back', 4)")
    engine.flush("t")
    assert engine.execute("SELECT v FROM t WHERE id = 4").rows() == [("back",)]


def test_a_remembered_query_shape_is_planned_again_for_new_table_schemas(engine):
    engine.execute("CREATE TABLE a (id BIGINT PRIMARY KEY, x INT)")
    engine.execute("CREATE TABLE b (id BIGINT PRIMARY KEY, y INT)")
    engine.execute("INSERT INTO a VALUES (1, 1), (2, 2)")
    engine.execute("INSERT INTO b VALUES (1, 5), (2, 1)")
    sql = "SELECT a.id FROM a JOIN b ON a.x < b.y ORDER BY a.id"  # a theta join
    assert engine.execute(sql).rows() == [(1,), (2,)]
    assert engine.execute(sql).rows() == [(1,), (2,)]  # the shape's answer remembered
    engine.execute("ALTER TABLE b ADD COLUMN z INT")
    engine.execute("INSERT INTO b VALUES (3, 0, 1)")
    assert engine.execute(sql).rows() == [(1,), (2,)]
    equi = "SELECT a.id FROM a JOIN b ON a.id = b.id WHERE b.y > 1"
    assert engine.execute(equi).rows() == [(1,)]
