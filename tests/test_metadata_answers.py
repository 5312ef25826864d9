"""``count(*)``, ``min`` and ``max`` of a whole table answered from the
manifests' statistics plus the hot rows (``TableProvider.aggregates_from_metadata``).

Every answer is checked against the same query forced through a scan
(``WHERE true`` takes the shortcut away), and each test says whether the
shortcut must have been taken: it may only be taken when no hot version,
superseded version, TTL or type change can make the statistics wrong."""

from __future__ import annotations

import datetime as dt

import pytest

AGG = "SELECT count(*), min(id), max(id), min(n), max(n), max(d) FROM t"


def _answer(engine, sql: str = AGG, *, user: str | None = None) -> tuple[list, bool]:
    """(rows, answered from metadata) of ``sql``; asserts the scan agrees."""
    kwargs = {"user": user} if user else {}
    result = engine.execute(sql, **kwargs)
    scanned = engine.execute(sql + " WHERE true", **kwargs)
    assert result.rows() == scanned.rows()
    assert result.to_arrow().schema == scanned.to_arrow().schema
    figures = next(iter(result.stats.values()))
    from_metadata = figures["segments_total"] > 0 and figures["segments_scanned"] == 0
    return result.rows(), from_metadata


@pytest.fixture
def t(engine):
    engine.execute("CREATE SHARED TABLE t (id INT PRIMARY KEY, n BIGINT, d DATE, f DOUBLE)")
    engine.execute(
        "INSERT INTO t VALUES (1, 10, '2021-01-01', 0.5), (2, NULL, '2021-06-01', 'NaN'::double), "
        "(3, 30, NULL, 1.5)"
    )
    return engine


def test_hot_only_counts_are_exact(t):
    rows, _ = _answer(t)
    assert rows == [(3, 1, 3, 10, 30, dt.date(2021, 6, 1))]


def test_cold_rows_are_answered_from_statistics(t):
    t.execute("FLUSH TABLE t WAIT")
    rows, from_metadata = _answer(t)
    assert from_metadata
    assert rows == [(3, 1, 3, 10, 30, dt.date(2021, 6, 1))]


def test_new_hot_rows_beside_cold_ones_are_added_to_the_statistics(t):
    t.execute("FLUSH TABLE t WAIT")
    t.execute("INSERT INTO t VALUES (10, -5, '2022-01-01', 1.0), (11, NULL, NULL, NULL)")
    rows, from_metadata = _answer(t)
    assert from_metadata
    assert rows == [(5, 1, 11, -5, 30, dt.date(2022, 1, 1))]


# After a second flush a Delta-publishing table has rewritten the segment
# that held the dead version (statistics are exact again: the shortcut is
# allowed); with DELTA = false a delete marker stays and forbids it.
FLUSHED_AGAIN = [(False, True, False), (True, True, True), (True, False, False)]
FLUSHED_IDS = ["hot", "flushed again, delta", "flushed again, markers"]


@pytest.mark.parametrize("flush_after, delta, shortcut", FLUSHED_AGAIN, ids=FLUSHED_IDS)
def test_a_deleted_cold_row_is_not_counted(t, flush_after, delta, shortcut):
    t.execute(f"ALTER TABLE t SET (DELTA = {str(delta).lower()})")
    t.execute("FLUSH TABLE t WAIT")
    t.execute("DELETE FROM t WHERE id = 3")
    if flush_after:
        t.execute("FLUSH TABLE t WAIT")
    rows, from_metadata = _answer(t)
    assert from_metadata == shortcut
    assert rows == [(2, 1, 2, 10, 10, dt.date(2021, 6, 1))]


@pytest.mark.parametrize("flush_after, delta, shortcut", FLUSHED_AGAIN, ids=FLUSHED_IDS)
def test_an_updated_cold_row_counts_once_with_its_new_value(t, flush_after, delta, shortcut):
    t.execute(f"ALTER TABLE t SET (DELTA = {str(delta).lower()})")
    t.execute("FLUSH TABLE t WAIT")
    t.execute("UPDATE t SET n = 99 WHERE id = 1")
    if flush_after:
        t.execute("FLUSH TABLE t WAIT")
    rows, from_metadata = _answer(t)
    assert from_metadata == shortcut
    assert rows == [(3, 1, 3, 30, 99, dt.date(2021, 6, 1))]


def test_deleting_every_row_gives_zero_and_nulls(t):
    t.execute("FLUSH TABLE t WAIT")
    t.execute("DELETE FROM t WHERE true")
    t.execute("FLUSH TABLE t WAIT")
    rows, _ = _answer(t)
    assert rows == [(0, None, None, None, None, None)]


def test_float_and_text_extremes_are_never_taken_from_statistics(t):
    t.execute("FLUSH TABLE t WAIT")
    result = t.execute("SELECT max(f), min(f) FROM t")
    assert next(iter(result.stats.values()))["segments_scanned"] == 1
    ((top, bottom),) = result.rows()
    assert top != top  # NaN is DataFusion's maximum (the statistics omit it)
    assert bottom == 0.5


def test_aliases_and_repeated_aggregates_keep_datafusions_names(t):
    t.execute("FLUSH TABLE t WAIT")
    result = t.execute("SELECT count(*) AS n, max(id) AS top, count(*) FROM t")
    assert result.to_arrow().schema.names == ["n", "top", "count(*)"]
    assert result.rows() == [(3, 3, 3)]


def test_other_shapes_never_take_the_shortcut(t):
    t.execute("FLUSH TABLE t WAIT")
    for sql in (
        "SELECT count(*) FROM t WHERE id > 1",
        "SELECT count(*) FROM t GROUP BY n ORDER BY 1",
        "SELECT count(n) FROM t",
        "SELECT DISTINCT max(id) FROM t",
        "SELECT count(*) + 1 FROM t",
    ):
        figures = next(iter(t.execute(sql).stats.values()))
        assert figures["segments_scanned"] == 1, sql
    assert t.execute("SELECT count(*) FROM t LIMIT 0").rows() == []
    assert t.execute("SELECT count(n) FROM t").rows() == [(2,)]


def test_explain_shows_the_real_plan(t):
    t.execute("FLUSH TABLE t WAIT")
    plan = t.execute("EXPLAIN SELECT count(*) FROM t").rows()
    assert any("kalam_scan" in str(r[0]) for r in plan)


def test_each_user_counts_only_their_own_rows(engine):
    engine.execute("CREATE USER TABLE t (id INT PRIMARY KEY, n BIGINT, d DATE)")
    for user, ids in (("alice", [1, 2]), ("bob", [1, 2, 3, 4, 5])):
        for i in ids:
            engine.execute("INSERT INTO t VALUES ($1, $2, NULL)", [i, i * 10], user=user)
    engine.execute("FLUSH TABLE t WAIT")
    engine.execute("INSERT INTO t VALUES (9, 90, NULL)", user="alice")
    sql = "SELECT count(*), max(id), max(n) FROM t"
    assert _answer(engine, sql, user="alice") == ([(3, 9, 90)], True)
    assert _answer(engine, sql, user="bob") == ([(5, 5, 50)], True)
    assert _answer(engine, sql, user="carol")[0] == [(0, None, None)]


def test_expired_stream_rows_are_not_counted(engine, clock):
    engine.execute("CREATE STREAM TABLE s (id INT PRIMARY KEY) WITH (TTL_SECONDS = 10)")
    engine.execute("INSERT INTO s VALUES (1), (2)")
    clock.advance(20)
    engine.execute("INSERT INTO s VALUES (3)")
    assert engine.execute("SELECT count(*), max(id) FROM s").rows() == [(1, 3)]


# ---- schema changes: statistics of another shape must not answer


def test_min_max_of_a_column_added_after_the_flush_reads_its_default(t):
    t.execute("FLUSH TABLE t WAIT")
    t.execute("ALTER TABLE t ADD COLUMN k INT DEFAULT 7")
    t.execute("INSERT INTO t (id, n, k) VALUES (4, 40, 100)")
    rows, from_metadata = _answer(t, "SELECT min(k), max(k), count(*) FROM t")
    assert not from_metadata
    assert rows == [(7, 100, 4)]


def test_min_max_after_a_type_change_are_the_cast_values(t):
    t.execute("FLUSH TABLE t WAIT")
    t.execute("ALTER TABLE t MODIFY COLUMN n TEXT")
    rows, _ = _answer(t, "SELECT min(n), max(n) FROM t")
    assert rows == [("10", "30")]
    t.execute("ALTER TABLE t MODIFY COLUMN d TIMESTAMP")
    rows, from_metadata = _answer(t, "SELECT min(d), max(d), count(*) FROM t")
    assert not from_metadata
    assert rows == [(dt.datetime(2021, 1, 1), dt.datetime(2021, 6, 1), 3)]


def test_a_renamed_column_and_table_keep_their_statistics(t):
    t.execute("FLUSH TABLE t WAIT")
    t.execute("ALTER TABLE t RENAME COLUMN n TO m")
    t.execute("ALTER TABLE t RENAME TO u")
    rows, from_metadata = _answer(t, "SELECT count(*), max(m) FROM u")
    assert from_metadata
    assert rows == [(3, 30)]


def test_a_dropped_and_recreated_table_starts_from_nothing(t):
    t.execute("FLUSH TABLE t WAIT")
    assert _answer(t, "SELECT count(*) FROM t")[0] == [(3,)]
    t.execute("DROP TABLE t")
    t.execute("CREATE SHARED TABLE t (id INT PRIMARY KEY, n BIGINT, d DATE)")
    t.execute("INSERT INTO t VALUES (5, 1, NULL)")
    t.execute("FLUSH TABLE t WAIT")
    assert _answer(t, "SELECT count(*), min(id) FROM t") == ([(1, 5)], True)


def test_counts_survive_a_reopen(t, reopen):
    t.execute("FLUSH TABLE t WAIT")
    t.execute("INSERT INTO t VALUES (7, 70, NULL, NULL)")
    engine = reopen(t)
    assert _answer(engine, "SELECT count(*), max(n) FROM t") == ([(4, 70)], True)


def test_a_damaged_segment_is_loud_even_when_counting_from_statistics(t):
    from engine.errors import StorageCorruptionError

    t.execute("FLUSH TABLE t WAIT")
    assert _answer(t, "SELECT count(*) FROM t")[1]
    (segment,) = (t.data_dir / "storage" / "default" / "t").glob("batch-*.parquet")
    data = bytearray(segment.read_bytes())
    data[len(data) // 2] ^= 0x04
    segment.write_bytes(bytes(data))
    with pytest.raises(StorageCorruptionError, match="batch-1.parquet"):
        t.execute("SELECT count(*) FROM t")
    segment.unlink()
    with pytest.raises(StorageCorruptionError, match="batch-1.parquet"):
        t.execute("SELECT max(id) FROM t")
