"""Primary-key point lookups over many segments (issue 15): the segment key
ranges found by binary search and the row-group reads give exactly what a
full scan gives, through updates, deletes and re-inserts in hot and cold,
overlapping segment ranges, several row groups per segment, composite and
text keys, USER scopes, and every commit that replaces the cached ranges
(flush, compaction, DROP, RENAME, ALTER, REPAIR)."""

from __future__ import annotations

import pyarrow as pa
import pytest

POINT = "SELECT * FROM {t} WHERE id = $1"
# `id + 0 = k` is no primary-key equality: the query takes the scan path.
SCAN = "SELECT * FROM {t} WHERE id + 0 = $1"


def _segments(engine, table: str, batches: list[range], *, user: str = "root") -> None:
    for keys in batches:
        values = ", ".join(f"({k}, 'v{k}-{user}')" for k in keys)
        engine.execute(f"INSERT INTO {table} VALUES {values}", user=user)
        engine.flush(table)


def _assert_point_equals_scan(engine, table: str, keys, *, user: str = "root") -> None:
    for k in keys:
        point = engine.execute(POINT.format(t=table), [k], user=user).rows()
        scan = engine.execute(SCAN.format(t=table), [k], user=user).rows()
        assert point == scan, (table, user, k)


def _segment_count(engine, table: str) -> int:
    rows = engine.execute(
        f"SELECT segment_count FROM system.manifests WHERE table_name = '{table}'"
    ).rows()
    return sum(r[0] for r in rows)


@pytest.fixture
def many(engine):
    """30 disjoint segments of 20 keys, row groups of 4 rows, no compaction."""
    engine.execute(
        "CREATE TABLE t (id BIGINT PRIMARY KEY, v TEXT) "
        "WITH (ROW_GROUP_SIZE = 4, COMPACT_POLICY = 'none')"
    )
    _segments(engine, "t", [range(s * 20, s * 20 + 20) for s in range(30)])
    return engine


def test_point_lookup_finds_every_key_across_thirty_segments(many):
    assert _segment_count(many, "t") == 30
    for k in (0, 3, 4, 19, 20, 299, 300, 599):
        assert many.execute(POINT.format(t="t"), [k]).rows() == [(k, f"v{k}-root")]
    for k in (-1, 600, 10**12, -(10**12)):
        assert many.execute(POINT.format(t="t"), [k]).rows() == []


def test_point_lookup_reports_one_segment_scanned(many):
    stats = many.execute(POINT.format(t="t"), [257]).stats["default.t"]
    assert stats["segments_total"] == 30
    assert stats["segments_scanned"] == 1
    assert stats["cold_rows_scanned"] == 20


def test_point_lookup_after_update_delete_and_reinsert_in_hot_then_cold(many):
    keys = [5, 6, 7, 205, 206, 418, 599]
    many.execute("UPDATE t SET v = 'new' WHERE id IN (5, 205, 418)")
    many.execute("DELETE FROM t WHERE id IN (6, 206, 599)")
    _assert_point_equals_scan(many, "t", keys)  # hot versions over cold ones
    assert many.execute(POINT.format(t="t"), [5]).rows() == [(5, "new")]
    assert many.execute(POINT.format(t="t"), [6]).rows() == []
    many.flush("t")  # the old versions become superseded seqs in the manifest
    _assert_point_equals_scan(many, "t", keys)
    assert many.execute(POINT.format(t="t"), [205]).rows() == [(205, "new")]
    assert many.execute(POINT.format(t="t"), [206]).rows() == []
    many.execute("INSERT INTO t VALUES (6, 'back'), (599, 'back')")
    _assert_point_equals_scan(many, "t", keys)
    many.flush("t")
    _assert_point_equals_scan(many, "t", keys)
    assert many.execute(POINT.format(t="t"), [599]).rows() == [(599, "back")]
    many.execute("UPDATE t SET v = 'again' WHERE id = 6")
    many.flush("t")
    assert many.execute(POINT.format(t="t"), [6]).rows() == [(6, "again")]
    _assert_point_equals_scan(many, "t", range(0, 600, 7))


def test_point_lookup_with_overlapping_segment_ranges(engine):
    engine.execute("CREATE TABLE t (id BIGINT PRIMARY KEY, v TEXT) WITH (COMPACT_POLICY = 'none')")
    # Even keys then odd keys then a wide sparse batch: every range overlaps.
    _segments(engine, "t", [range(0, 100, 2), range(1, 100, 2), range(-500, 1000, 150)])
    engine.execute("UPDATE t SET v = 'u' WHERE id IN (4, 51, 100)")
    engine.flush("t")
    _assert_point_equals_scan(engine, "t", [*range(-10, 110), 250, 850, 999])
    assert engine.execute(POINT.format(t="t"), [51]).rows() == [(51, "u")]


def test_probing_a_segment_that_lacks_the_key_decodes_only_its_key_and_seq(engine):
    engine.execute(
        "CREATE TABLE t (id BIGINT PRIMARY KEY, v TEXT, w TEXT, x DOUBLE) "
        "WITH (COMPACT_POLICY = 'none')"
    )
    for keys in (range(0, 100, 2), range(1, 100, 2)):  # both segments span 0..99
        values = ", ".join(f"({k}, 'v{k}', 'w{k}', {k}.5)" for k in keys)
        engine.execute(f"INSERT INTO t VALUES {values}")
        engine.flush("t")
    cache = engine.db.row_groups
    for key in list(cache._items):
        cache._items.pop(key)
    # 50 is even: the newer (odd) segment's statistics admit it, but it is
    # found in the older one, whose row is then read whole.
    assert engine.execute(POINT.format(t="t"), [50]).rows() == [(50, "v50", "w50", 50.5)]
    held = {key: table.column_names for key, table in cache._items.items()}
    whole = [names for key, names in held.items() if len(key) == 5]
    keys_only = [names for key, names in held.items() if len(key) == 6]
    assert len(whole) == 1 and len(whole[0]) > 2
    assert keys_only and all(len(names) == 2 and "_seq" in names for names in keys_only)
    _assert_point_equals_scan(engine, "t", range(-2, 102))


def test_point_lookup_in_user_table_sees_only_the_session_users_rows(engine):
    engine.execute(
        "CREATE USER TABLE u (id BIGINT PRIMARY KEY, v TEXT) "
        "WITH (ROW_GROUP_SIZE = 8, COMPACT_POLICY = 'none')"
    )
    for user in ("alice", "bob"):
        _segments(engine, "u", [range(s * 10, s * 10 + 10) for s in range(6)], user=user)
    engine.execute("UPDATE u SET v = 'a-new' WHERE id = 15", user="alice")
    engine.execute("DELETE FROM u WHERE id = 25", user="bob")
    engine.execute("INSERT INTO u VALUES (100, 'only-alice')", user="alice")
    assert engine.execute(POINT.format(t="u"), [15], user="alice").rows() == [(15, "a-new")]
    assert engine.execute(POINT.format(t="u"), [15], user="bob").rows() == [(15, "v15-bob")]
    assert engine.execute(POINT.format(t="u"), [25], user="alice").rows() == [(25, "v25-alice")]
    assert engine.execute(POINT.format(t="u"), [25], user="bob").rows() == []
    assert engine.execute(POINT.format(t="u"), [100], user="bob").rows() == []
    assert engine.execute(POINT.format(t="u"), [15], user="carol").rows() == []
    engine.flush("u")
    for user in ("alice", "bob", "carol"):
        _assert_point_equals_scan(engine, "u", [*range(0, 62), 100], user=user)
    assert engine.execute(POINT.format(t="u"), [100], user="alice").rows() == [(100, "only-alice")]


def test_point_lookup_with_composite_and_text_keys(engine):
    engine.execute(
        "CREATE TABLE c (a BIGINT, b TEXT, v INT, PRIMARY KEY (a, b)) "
        "WITH (ROW_GROUP_SIZE = 3, COMPACT_POLICY = 'none')"
    )
    for s in range(5):
        rows = ", ".join(f"({a}, '{b}', {a * 10})" for a in range(s * 4, s * 4 + 4) for b in "xy")
        engine.execute(f"INSERT INTO c VALUES {rows}")
        engine.flush("c")
    engine.execute("UPDATE c SET v = -1 WHERE a = 5 AND b = 'y'")
    engine.flush("c")
    q = "SELECT a, b, v FROM c WHERE a = $1 AND b = $2"
    assert engine.execute(q, [5, "y"]).rows() == [(5, "y", -1)]
    assert engine.execute(q, [5, "x"]).rows() == [(5, "x", 50)]
    assert engine.execute(q, [5, "z"]).rows() == []
    assert engine.execute(q, [25, "x"]).rows() == []
    engine.execute("CREATE TABLE s (id TEXT PRIMARY KEY, v INT) WITH (COMPACT_POLICY = 'none')")
    for s in range(4):
        engine.execute("INSERT INTO s VALUES " + ", ".join(f"('k{s}-{i}', {i})" for i in range(5)))
        engine.flush("s")
    engine.execute("DELETE FROM s WHERE id = 'k2-3'")
    engine.flush("s")
    qs = "SELECT * FROM s WHERE id = $1"
    assert engine.execute(qs, ["k1-4"]).rows() == [("k1-4", 4)]
    assert engine.execute(qs, ["k2-3"]).rows() == []
    assert engine.execute(qs, ["k9-0"]).rows() == []


def test_point_lookup_ranges_follow_compaction_drop_rename_and_alter(many):
    assert many.execute(POINT.format(t="t"), [42]).rows() == [(42, "v42-root")]
    many.execute("UPDATE t SET v = 'c' WHERE id = 42")
    many.flush("t")
    many.execute("COMPACT TABLE t WAIT")
    assert _segment_count(many, "t") < 30
    assert many.execute(POINT.format(t="t"), [42]).rows() == [(42, "c")]
    _assert_point_equals_scan(many, "t", range(0, 600, 13))

    many.execute("ALTER TABLE t RENAME TO r")
    assert many.execute(POINT.format(t="r"), [42]).rows() == [(42, "c")]
    many.execute("ALTER TABLE r ADD COLUMN w INT")
    assert many.execute(POINT.format(t="r"), [43]).rows() == [(43, "v43-root", None)]
    many.execute("ALTER TABLE r MODIFY COLUMN id BIGINT")  # same type: a no-op commit
    assert many.execute(POINT.format(t="r"), [44]).rows() == [(44, "v44-root", None)]

    many.execute("DROP TABLE r")
    many.execute("CREATE TABLE r (id BIGINT PRIMARY KEY, v TEXT) WITH (COMPACT_POLICY = 'none')")
    _segments(many, "r", [range(40, 50), range(0, 10)])
    assert many.execute(POINT.format(t="r"), [42]).rows() == [(42, "v42-root")]
    assert many.execute(POINT.format(t="r"), [100]).rows() == []


def test_point_lookup_reads_old_segments_through_a_column_type_change(engine):
    engine.execute("CREATE TABLE w (id BIGINT PRIMARY KEY, n INT) WITH (COMPACT_POLICY = 'none')")
    for s in range(3):
        engine.execute(
            "INSERT INTO w VALUES " + ", ".join(f"({k}, {k * 2})" for k in range(s * 5, s * 5 + 5))
        )
        engine.flush("w")
    assert engine.execute(POINT.format(t="w"), [7]).rows() == [(7, 14)]
    engine.execute("ALTER TABLE w MODIFY COLUMN n TEXT")
    assert engine.execute(POINT.format(t="w"), [7]).rows() == [(7, "14")]
    engine.execute("INSERT INTO w VALUES (100, 'x')")
    engine.flush("w")
    assert engine.execute(POINT.format(t="w"), [100]).rows() == [(100, "x")]
    _assert_point_equals_scan(engine, "w", [0, 7, 14, 15, 100])


def test_point_lookup_after_repair_rewrites_segments(many, data_dir):
    assert many.execute(POINT.format(t="t"), [77]).rows() == [(77, "v77-root")]
    many.execute("REPAIR TABLE t")
    assert many.execute(POINT.format(t="t"), [77]).rows() == [(77, "v77-root")]
    _assert_point_equals_scan(many, "t", range(0, 600, 11))


def test_point_update_and_delete_find_cold_keys_across_segments(many):
    many.execute("UPDATE t SET v = 'p' WHERE id = 333")
    many.execute("DELETE FROM t WHERE id = 334")
    many.flush("t")
    assert many.execute("SELECT v FROM t WHERE id = 333").rows() == [("p",)]
    assert many.execute("SELECT count(*) FROM t WHERE id BETWEEN 330 AND 339").rows() == [(9,)]
    table = many.execute("SELECT * FROM t WHERE id = 333").to_arrow()
    assert table.schema == pa.schema([("id", pa.int64(), False), ("v", pa.string())])


@pytest.mark.parametrize("placement", ["hot", "cold"])
def test_select_star_by_key_gives_the_same_table_as_the_planned_query(engine, placement):
    engine.execute(
        "CREATE TABLE k (id BIGINT PRIMARY KEY, t TIMESTAMP, d DATE, f DOUBLE, b BOOLEAN, "
        "s TEXT, raw BYTES, n INT NOT NULL)"
    )
    engine.execute(
        "INSERT INTO k VALUES (1, '2024-01-02 03:04:05', '2024-02-03', 1.5, true, 'x', "
        "X'00ff', 4), (2, NULL, NULL, NULL, NULL, NULL, NULL, 5)"
    )
    if placement == "cold":
        engine.flush("k")
    for key in (1, 2, 3):
        direct = engine.execute("SELECT * FROM k WHERE id = $1", [key])
        # `AND true` is a term that is no key equality: DataFusion plans the query.
        planned = engine.execute("SELECT * FROM k WHERE id = $1 AND true", [key])
        assert direct.to_arrow().equals(planned.to_arrow(), check_metadata=True), key
        assert direct.stats == planned.stats


def test_select_star_by_key_with_another_equality_still_filters(engine):
    engine.execute("CREATE TABLE e (id BIGINT PRIMARY KEY, v TEXT)")
    engine.execute("INSERT INTO e VALUES (1, 'a')")
    engine.flush("e")
    assert engine.execute("SELECT * FROM e WHERE id = 1 AND v = 'b'").rows() == []
    assert engine.execute("SELECT * FROM e WHERE v = 'a' AND id = 1").rows() == [(1, "a")]
    assert engine.execute("SELECT * FROM e WHERE id = 1 AND id = 2").rows() == []
    assert engine.execute("SELECT * FROM e WHERE id = 1 LIMIT 0").rows() == []
    assert engine.execute("SELECT *, 1 AS one FROM e WHERE id = 1").rows() == [(1, "a", 1)]


def test_select_star_by_key_in_a_stream_table_honours_the_ttl(engine, clock):
    engine.execute("CREATE STREAM TABLE st (id BIGINT PRIMARY KEY, v TEXT) WITH (TTL_SECONDS = 10)")
    engine.execute("INSERT INTO st VALUES (1, 'a')")
    assert engine.execute("SELECT * FROM st WHERE id = 1").rows() == [(1, "a")]
    clock.advance(11)
    assert engine.execute("SELECT * FROM st WHERE id = 1").rows() == []
