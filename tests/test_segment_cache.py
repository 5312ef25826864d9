"""The warm cache of decoded segments (``engine.exec.segment_cache``).

A segment scanned once is kept decoded in memory under the engine's budget;
later scans read it from there. These tests pin that a cached read is never a
stale read (every change to a table's state — FLUSH, UPDATE / DELETE of cold
rows, DROP, RENAME, each ALTER form, COMPACT, REPAIR — is followed by the
answer the files give), that the budget holds (LRU eviction, never over),
that a pruned segment is never decoded, and that USER isolation holds through
the cache. Each answer is compared with the same engine's answer with the
cache off, or with a model.
"""

from __future__ import annotations

import math
from typing import Any

import pyarrow as pa
import pytest

from engine import Engine
from engine.errors import InvalidOptionError, TableNotFoundError
from engine.exec.segment_cache import SegmentCache, budget_from_mb, default_budget_bytes
from engine.providers import cold_tier
from engine.providers.cold_tier import compact_batches
from kalam_magic.render import footer_text

ROWS = 200  # rows per segment


def figures(result: Any, table: str = "default.t") -> dict[str, int]:
    return result.stats[table]


def insert_segment(eng: Engine, first: int, *, table: str = "t", user: str = "root") -> None:
    """One flushed segment holding ids first .. first + ROWS - 1 (v = id * 10)."""
    values = ", ".join(f"({i}, {i * 10}, 'n{i}')" for i in range(first, first + ROWS))
    eng.execute(f"INSERT INTO {table} (id, v, name) VALUES {values}", user=user)
    eng.flush(table)


@pytest.fixture
def warm(engines: Any) -> Engine:
    """An engine (generous cache budget) with table t of three flushed segments."""
    eng = engines.open(background_jobs=False, segment_cache_mb=64)
    eng.execute(
        "CREATE SHARED TABLE t (id BIGINT PRIMARY KEY, v INT, name TEXT) "
        "WITH (COMPACT_POLICY = 'none')"
    )
    for first in (0, 1000, 2000):
        insert_segment(eng, first)
    return eng


def rows(eng: Engine, sql: str = "SELECT id, v, name FROM t ORDER BY id", **kw: Any) -> list:
    return eng.execute(sql, **kw).rows()


def settle(eng: Engine) -> None:
    """Wait for the background decoding the last scans queued."""
    assert eng.db.segment_cache.wait_idle(60)


def warmed(eng: Engine, sql: str = "SELECT id, v, name FROM t ORDER BY id") -> list:
    """Run ``sql`` twice; the second run must read every segment from memory."""
    first = eng.execute(sql)
    settle(eng)
    second = eng.execute(sql)
    assert first.rows() == second.rows()
    scanned = figures(second)["segments_scanned"]
    assert scanned > 0 and figures(second)["segments_cached"] == scanned
    return second.rows()


# ------------------------------------------------------------------ reading through it


def test_a_second_scan_reads_every_segment_from_memory(warm):
    first = warm.execute("SELECT sum(v), count(*), max(name) FROM t WHERE v >= 0")
    assert figures(first)["segments_cached"] == 0  # read from the files ...
    settle(warm)
    assert len(warm.db.segment_cache) == 3  # ... and decoded into the cache meanwhile
    second = warm.execute("SELECT sum(v), count(*), max(name) FROM t WHERE v >= 0")
    assert figures(second)["segments_cached"] == 3
    assert second.rows() == first.rows() == [(_sum_v(), 600, "n99")]


def _sum_v() -> int:
    return sum(i * 10 for first in (0, 1000, 2000) for i in range(first, first + ROWS))


def test_the_footer_reports_cache_hits(warm):
    first = warm.execute("SELECT * FROM t")
    assert "cache hits" not in footer_text(first, 5)
    settle(warm)
    second = warm.execute("SELECT * FROM t")
    assert footer_text(second, 5).endswith("segments scanned 3 of 3, pruned 0, cache hits 3 of 3")


def test_a_big_segment_is_decoded_in_the_background_and_read_from_memory_after(warm):
    warm.db.segment_cache.inline_bytes = 0  # every segment counts as big here
    first = warm.execute("SELECT count(*), sum(v) FROM t WHERE v >= 0")
    assert figures(first)["segments_cached"] == 0
    settle(warm)
    assert len(warm.db.segment_cache) == 3
    second = warm.execute("SELECT count(*), sum(v) FROM t WHERE v >= 0")
    assert figures(second)["segments_cached"] == 3
    assert second.rows() == first.rows() == [(600, _sum_v())]


def test_a_small_segment_is_read_from_memory_by_the_next_scan_without_waiting(warm):
    warm.execute("SELECT * FROM t")
    assert figures(warm.execute("SELECT * FROM t"))["segments_cached"] == 3


def test_a_pruned_segment_is_never_decoded(warm):
    warm.execute("SELECT * FROM t WHERE id = 1005 OR id = 1006")
    settle(warm)
    result = warm.execute("SELECT * FROM t WHERE id = 1005 OR id = 1006")
    assert result.rows() == [(1005, 10050, "n1005"), (1006, 10060, "n1006")]
    stats = figures(result)
    assert (stats["segments_scanned"], stats["segments_pruned"]) == (1, 2)
    assert stats["segments_cached"] == 1
    cached = {key[2] for key in warm.db.segment_cache}
    assert len(cached) == 1  # only the surviving segment was ever decoded


def test_answers_with_the_cache_equal_answers_without_it(engines, tmp_path):
    eng = engines.open(background_jobs=False, segment_cache_mb=64)
    eng.execute("CREATE SHARED TABLE t (id BIGINT PRIMARY KEY, x DOUBLE, s TEXT, d DATE)")
    data = pa.table(
        {
            "id": pa.array(range(6), pa.int64()),
            "x": [1.5, math.nan, None, 7.0, -2.0, math.inf],
            "s": ["a", None, "b", "", "c", "a"],
            "d": pa.array([0, 1, None, 3, 4, 5], pa.int32()).cast(pa.date32()),
        }
    )
    eng.insert_arrow("t", data)
    eng.flush("t")
    queries = [
        "SELECT id FROM t WHERE x > 5 ORDER BY id",  # NaN sorts above every number
        "SELECT id FROM t WHERE x IS NULL ORDER BY id",
        "SELECT s, count(*) FROM t GROUP BY s ORDER BY s NULLS FIRST",
        "SELECT id, d FROM t WHERE d >= DATE '1970-01-03' ORDER BY id",
        "SELECT a.id, b.id FROM t a JOIN t b ON a.s = b.s AND a.id < b.id ORDER BY 1",
    ]
    cold = [rows(eng, q) for q in queries]
    settle(eng)
    warm = [rows(eng, q) for q in queries]  # the first pass filled the cache
    assert eng.execute(queries[0]).stats["default.t"]["segments_cached"] == 1
    assert warm == cold
    assert cold[0] == [(1,), (3,), (5,)]


def test_cached_segments_are_held_in_batches_with_buffers_of_their_own():
    # A slice of a longer array keeps (and DataFusion counts) its whole
    # buffers: each cached batch must own exactly its rows' data.
    values = pa.array([None if i % 7 == 0 else i for i in range(1000)], pa.int64())
    floats = pa.array(
        [math.nan if i % 5 == 0 else None if i % 9 == 0 else i / 3 for i in range(1000)]
    )
    names = pa.array([None if i % 11 == 0 else f"name {i}" for i in range(1000)])
    kinds = pa.array([("a", "b", "c")[i % 3] for i in range(1000)]).dictionary_encode()
    data = pa.table({"v": values, "x": floats, "s": names, "k": kinds})
    # several chunks, the way row groups are decoded
    data = pa.Table.from_batches(data.to_batches(max_chunksize=300))
    out = compact_batches(data, 128)
    batches = out.to_batches()
    assert [b.num_rows for b in batches] == [128] * 7 + [104]
    assert _values(out) == _values(data)  # every value, NULL and NaN in place
    for batch in batches:
        alone = pa.RecordBatch.from_arrays(
            [pa.concat_arrays([pa.array(c.to_pylist(), c.type)]) for c in batch.columns],
            schema=batch.schema,
        )
        assert batch.get_total_buffer_size() <= alone.get_total_buffer_size()
    assert compact_batches(data.slice(0, 0), 128).num_rows == 0


def _values(table: pa.Table) -> list[list[Any]]:
    nan = "NaN"  # (NaN != NaN)
    return [
        [nan if isinstance(v, float) and math.isnan(v) else v for v in column.to_pylist()]
        for column in table.columns
    ]


def test_segments_cut_into_many_batches_answer_as_their_files(engines, monkeypatch):
    monkeypatch.setattr(cold_tier, "MEMORY_BATCH_ROWS", 16)
    eng = engines.open(background_jobs=False, segment_cache_mb=64)
    eng.execute("CREATE SHARED TABLE t (id BIGINT PRIMARY KEY, x DOUBLE, s TEXT, k BIGINT)")
    n = 100
    data = pa.table(
        {
            "id": pa.array(range(n), pa.int64()),
            "x": [math.nan if i % 10 == 3 else None if i % 10 == 4 else float(i) for i in range(n)],
            "s": [None if i % 6 == 0 else f"s{i % 4}" for i in range(n)],
            "k": pa.array([i % 8 for i in range(n)], pa.int64()),
        }
    )
    eng.insert_arrow("t", data)
    eng.flush("t")
    queries = [
        "SELECT count(*), count(x), count(s), sum(k) FROM t",
        "SELECT id FROM t WHERE x > 50 ORDER BY id",  # NaN is above every number
        "SELECT id FROM t WHERE x IS NULL OR s IS NULL ORDER BY id",
        "SELECT s, count(*), sum(k) FROM t GROUP BY s ORDER BY s NULLS FIRST",
        "SELECT a.k, count(*) FROM t a JOIN t b ON a.k = b.k AND a.id < b.id "
        "GROUP BY a.k ORDER BY a.k",
    ]
    from_files = [rows(eng, q) for q in queries]
    settle(eng)
    from_memory = [eng.execute(q) for q in queries]
    assert all(r.stats["default.t"]["segments_cached"] == 1 for r in from_memory)
    assert [r.rows() for r in from_memory] == from_files
    assert from_files[0] == [(n, 90, 83, sum(i % 8 for i in range(n)))]  # NaN counts
    assert from_files[1] == [(i,) for i in range(n) if i % 10 == 3 or (i > 50 and i % 10 != 4)]


# ------------------------------------------------------------------ never stale


def test_flush_of_new_rows_and_of_cold_updates_is_seen(warm):
    warmed(warm)
    warm.execute("UPDATE t SET v = -1 WHERE id = 5")
    warm.execute("INSERT INTO t (id, v, name) VALUES (9000, 1, 'new')")
    warm.flush("t")
    got = warmed(warm)
    assert (5, -1, "n5") in got and (9000, 1, "new") in got
    assert len(got) == 601 and sum(1 for r in got if r[0] == 5) == 1


def test_update_and_delete_reaching_cached_cold_rows_are_seen(warm):
    warmed(warm)
    warm.execute("UPDATE t SET v = v + 1 WHERE id >= 1000 AND id < 1010")
    warm.execute("DELETE FROM t WHERE id < 100")
    result = warm.execute("SELECT id, v, name FROM t ORDER BY id")
    assert figures(result)["segments_cached"] == 3  # still read from memory ...
    got = result.rows()
    assert len(got) == 500 and got[0][0] == 100  # ... with the newer versions winning
    assert dict((i, v) for i, v, _ in got)[1005] == 10051
    warm.flush("t")  # the same after the versions reach a segment
    assert warmed(warm) == got


def test_drop_and_recreate_under_the_same_name_never_reads_the_old_segments(warm):
    warmed(warm)
    warm.execute("DROP TABLE t")
    assert len(warm.db.segment_cache) == 0  # the dropped table's memory is freed
    with pytest.raises(TableNotFoundError):
        warm.execute("SELECT * FROM t")
    warm.execute(
        "CREATE SHARED TABLE t (id BIGINT PRIMARY KEY, v INT, name TEXT) "
        "WITH (COMPACT_POLICY = 'none')"
    )
    warm.execute("INSERT INTO t (id, v, name) VALUES (0, 7, 'again')")
    warm.flush("t")
    assert warmed(warm) == [(0, 7, "again")]


def test_rename_keeps_the_data_and_frees_the_old_name(warm):
    before = warmed(warm)
    warm.execute("ALTER TABLE t RENAME TO u")
    assert rows(warm, "SELECT id, v, name FROM u ORDER BY id") == before
    warm.execute("CREATE SHARED TABLE t (id BIGINT PRIMARY KEY, v INT, name TEXT)")
    warm.execute("INSERT INTO t (id, v, name) VALUES (1, 2, 'other')")
    warm.flush("t")
    assert warmed(warm) == [(1, 2, "other")]
    assert rows(warm, "SELECT count(*) FROM u WHERE v >= 0") == [(600,)]


def test_add_column_reads_its_default_for_cached_segments(warm):
    warmed(warm)
    warm.execute("ALTER TABLE t ADD COLUMN extra INT DEFAULT 5")
    got = warmed(warm, "SELECT id, extra FROM t ORDER BY id")
    assert {e for _, e in got} == {5} and len(got) == 600


def test_drop_column_and_readding_it_never_shows_the_old_values(warm):
    warmed(warm)
    warm.execute("ALTER TABLE t DROP COLUMN v")
    got = warmed(warm, "SELECT * FROM t ORDER BY id")
    assert [tuple(r) for r in got[:1]] == [(0, "n0")]
    warm.execute("ALTER TABLE t ADD COLUMN v INT")
    assert {r[0] for r in warmed(warm, "SELECT v FROM t")} == {None}


def test_rename_column_reads_cached_values_under_the_new_name(warm):
    before = warmed(warm)
    warm.execute("ALTER TABLE t RENAME COLUMN v TO w")
    assert warmed(warm, "SELECT id, w, name FROM t ORDER BY id") == before
    with pytest.raises(Exception, match="v"):
        warm.execute("SELECT v FROM t")


def test_type_change_casts_cached_values(warm):
    warmed(warm)
    warm.execute("ALTER TABLE t ALTER COLUMN v TYPE TEXT")
    got = warmed(warm, "SELECT id, v FROM t WHERE id < 3 ORDER BY id")
    assert got == [(0, "0"), (1, "10"), (2, "20")]
    result = warm.execute("SELECT v FROM t LIMIT 1")
    assert result.table.schema.field("v").type == pa.string()


def test_compaction_retires_the_cached_segments(warm):
    before = warmed(warm)
    old = set(warm.db.segment_cache)
    warm.execute("DELETE FROM t WHERE id = 7")
    warm.flush("t")
    warm.execute("COMPACT TABLE t WAIT")
    assert not old & set(warm.db.segment_cache)  # retired segments are freed
    got = warmed(warm)
    assert got == [r for r in before if r[0] != 7]
    assert figures(warm.execute("SELECT * FROM t"))["segments_total"] == 1


def test_repair_of_a_damaged_segment_is_seen_through_the_cache(engines):
    eng = engines.open(background_jobs=False, segment_cache_mb=64)
    eng.execute(
        "CREATE SHARED TABLE t (id BIGINT PRIMARY KEY, v INT, name TEXT) "
        "WITH (ROW_GROUP_SIZE = 100, COMPACT_POLICY = 'none', DELTA = false)"
    )
    eng.insert_arrow(
        "t",
        pa.table(
            {
                "id": pa.array(range(1000), pa.int64()),
                "v": pa.array(range(1000), pa.int32()),
                "name": [f"n{i}" for i in range(1000)],
            }
        ),
    )
    eng.flush("t")
    insert_segment(eng, 5000)
    assert len(warmed(eng)) == 1200
    segment = eng.db.data_dir / "storage" / "default" / "t" / "batch-1.parquet"
    data = bytearray(segment.read_bytes())
    data[len(data) // 2] ^= 0x04
    segment.write_bytes(bytes(data))
    message = eng.execute("REPAIR TABLE t").message
    assert "batch-1.parquet (" in message
    repaired = rows(eng)
    assert 1100 <= len(repaired) < 1200, message  # a damaged row group is gone ...
    assert warmed(eng) == repaired  # ... from memory too
    eng.close()
    fresh = engines.open(background_jobs=False, segment_cache_mb=0)
    assert rows(fresh) == repaired  # what the files say


# ------------------------------------------------------------------ isolation


def test_user_tables_stay_isolated_through_the_cache(engines):
    eng = engines.open(background_jobs=False, segment_cache_mb=64)
    eng.execute("CREATE USER TABLE t (id BIGINT PRIMARY KEY, v INT, name TEXT)")
    insert_segment(eng, 0, user="alice")
    insert_segment(eng, 0, user="bob")  # the same keys, other values below
    eng.execute("UPDATE t SET v = -v", user="bob")
    eng.flush("t")
    shapes = [
        "SELECT count(*), sum(v) FROM t WHERE v <> 12345",
        "SELECT sum(a.v) FROM t a JOIN t b ON a.id = b.id",
        "SELECT count(*) FROM (SELECT v FROM t UNION ALL SELECT v FROM default.t) x",
        "SELECT max(v) FROM t WHERE id IN (SELECT id FROM t WHERE v <> 0)",
    ]
    total = sum(i * 10 for i in range(ROWS))
    for _ in range(2):  # the second round reads both users' segments from memory
        settle(eng)
        for user, sign in (("alice", 1), ("bob", -1)):
            got = [eng.execute(q, user=user) for q in shapes]
            assert got[0].rows() == [(ROWS, sign * total)]
            assert got[1].rows() == [(sign * total,)]
            assert got[2].rows() == [(2 * ROWS,)]
            assert got[3].rows() == [((ROWS - 1) * 10 if sign > 0 else -10,)]
    assert figures(eng.execute(shapes[0], user="bob"))["segments_cached"] >= 1
    carol = eng.execute(shapes[0], user="carol")
    assert carol.rows() == [(0, None)]
    assert figures(carol)["segments_total"] == 0


# ------------------------------------------------------------------ the budget


def test_the_budget_is_never_exceeded_and_evicts_least_recently_used(engines):
    eng = engines.open(background_jobs=False, segment_cache_mb=1)
    eng.execute(
        "CREATE SHARED TABLE t (id BIGINT PRIMARY KEY, v INT, name TEXT) "
        "WITH (COMPACT_POLICY = 'none')"
    )
    for first in range(0, 60_000, 10_000):  # six segments of ~0.3 MB decoded
        eng.insert_arrow(
            "t",
            pa.table(
                {
                    "id": pa.array(range(first, first + 10_000), pa.int64()),
                    "v": pa.array(range(10_000), pa.int32()),
                    "name": [f"name-{i:020d}" for i in range(first, first + 10_000)],
                }
            ),
        )
        eng.flush("t")
    cache = eng.db.segment_cache
    want = sum(range(10_000)) * 6
    for _ in range(3):
        assert rows(eng, "SELECT sum(v) FROM t WHERE v >= 0") == [(want,)]
        settle(eng)
        assert 0 < cache.used <= cache.budget == 1 << 20
    assert cache.evictions > 0
    # A segment read again gets in, evicting the least recently used.
    for _ in range(2):
        assert rows(eng, "SELECT count(*) FROM t WHERE id >= 50000 AND v >= 0") == [(10_000,)]
        settle(eng)
    assert cache.used <= cache.budget
    table = eng.db.catalog.get_table("default", "t")
    last = max(e.id for e in eng.db.provider(table).cold.manifest("").segments)
    assert last in {key[2] for key in cache}


def test_a_zero_budget_turns_the_cache_off(engines):
    eng = engines.open(background_jobs=False, segment_cache_mb=0)
    eng.execute("CREATE SHARED TABLE t (id BIGINT PRIMARY KEY, v INT, name TEXT)")
    insert_segment(eng, 0)
    for _ in range(2):
        result = eng.execute("SELECT count(*) FROM t WHERE v >= 0")
        assert result.rows() == [(ROWS,)] and figures(result)["segments_cached"] == 0
        settle(eng)
    assert len(eng.db.segment_cache) == 0


@pytest.mark.parametrize("bad", [-1, 1.5, "64", True])
def test_a_bad_budget_is_refused(engines, bad):
    with pytest.raises(InvalidOptionError, match="segment_cache_mb"):
        engines.open(background_jobs=False, segment_cache_mb=bad)


def test_the_default_budget_is_a_quarter_of_memory():
    assert budget_from_mb(None) == default_budget_bytes() > 0
    assert budget_from_mb(10) == 10 << 20


def _table(first: int) -> pa.Table:
    """1,000 int64 values (8,000 bytes)."""
    return pa.table({"x": pa.array(range(first, first + 1000), pa.int64())})


def test_a_one_off_scan_does_not_evict_a_full_cache():
    size = _table(0).get_total_buffer_size()
    cache = SegmentCache(3 * size)
    for i in range(3):
        assert cache.admit((1, "", i, "c"), size)  # room: admitted on the first scan
        assert cache.put((1, "", i, "c"), _table(i))
    assert not cache.admit((2, "", 0, "c"), size)  # full: a first scan stays out ...
    assert sorted(k[2] for k in cache) == [0, 1, 2]
    assert cache.get((1, "", 0, "c")) is not None  # (0 is now the most recent)
    assert cache.admit((2, "", 0, "c"), size)  # ... a second scan gets in
    assert cache.put((2, "", 0, "c"), _table(9))
    assert list(cache) == [(1, "", 2, "c"), (1, "", 0, "c"), (2, "", 0, "c")]  # 1 evicted
    assert cache.used == 3 * size and cache.evictions == 1
    assert not cache.admit((3, "", 0, "c"), 4 * size)  # bigger than the budget: never
    assert not cache.put((3, "", 0, "c"), pa.table({"x": pa.array(range(4000), pa.int64())}))


def test_a_scan_of_many_segments_admits_only_what_fits():
    size = _table(0).get_total_buffer_size()
    cache = SegmentCache(2 * size)
    admitted = [cache.admit((1, "", i, "c"), size) for i in range(5)]
    assert admitted == [True, True, False, False, False]  # room is promised, not yet used
    assert not cache.admit((1, "", 0, "c"), size)  # (already being decoded)
    for i in range(2):
        cache.put((1, "", i, "c"), _table(i))
    assert cache.used == 2 * size and cache.evictions == 0


def test_a_memoised_frame_goes_with_its_segments():
    cache = SegmentCache(1 << 20)
    cache.put((1, "", 1, "c"), _table(1))
    built: list[int] = []

    def build() -> str:
        built.append(1)
        return f"frame {len(built)}"

    assert cache.frame(("f",), ((1, "", 1, "c"),), build) == "frame 1"
    assert cache.frame(("f",), ((1, "", 1, "c"),), build) == "frame 1"
    cache.forget(1)
    assert cache.used == 0
    cache.put((1, "", 1, "c"), _table(1))
    assert cache.frame(("f",), ((1, "", 1, "c"),), build) == "frame 2"


def test_explain_shows_the_segment_files_even_when_cached(warm):
    warmed(warm)
    plan = warm.execute("EXPLAIN SELECT * FROM t WHERE id = 1005").rows()
    physical = "\n".join(text for kind, text in plan if kind == "physical_plan")
    assert ".parquet" in physical


def test_system_stats_shows_the_cache(warm):
    warmed(warm)
    stats = dict(rows(warm, "SELECT metric, value FROM system.stats"))
    assert int(stats["segment_cache_segments"]) == 3
    assert 0 < int(stats["segment_cache_bytes"]) <= int(stats["segment_cache_budget"])
    assert int(stats["segment_cache_hits"]) >= 3
