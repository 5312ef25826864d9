"""The engine's one long-lived DataFusion context (``engine.exec.query``).

Every query of every session is planned in the same context, so these tests
pin what a context per query gave for free: a query sees only the tables it
resolved, narrowed to its own user, even while other users' queries are
planned and run at the same time from other threads; nothing stays
registered between queries; and a change to a table (flush, DROP, RENAME,
ALTER, REPAIR) is visible to the very next query."""

from __future__ import annotations

import threading

import pytest

from engine.errors import InvalidOptionError, KalamError, StorageCorruptionError

ROWS = {"alice": [(1, "a-1"), (2, "a-2")], "bob": [(1, "b-1"), (3, "b-3"), (4, "b-4")]}
QUERIES = [
    "SELECT id, v FROM t ORDER BY id",
    "SELECT t.id, t.v FROM t JOIN s ON s.id = t.id ORDER BY t.id",
    "WITH x AS (SELECT * FROM t) SELECT id, v FROM x ORDER BY id",
    "SELECT id, v FROM t WHERE id IN (SELECT id FROM t) ORDER BY id",
    "SELECT id, v FROM t UNION ALL SELECT id, v FROM t WHERE false ORDER BY id",
]


def _setup(engine, *, flush: bool) -> None:
    engine.execute("CREATE USER TABLE t (id INT PRIMARY KEY, v TEXT)")
    engine.execute("CREATE SHARED TABLE s (id INT PRIMARY KEY)")
    engine.execute("INSERT INTO s VALUES (1), (2), (3), (4)")
    for user, rows in ROWS.items():
        for id_, v in rows:
            engine.execute("INSERT INTO t VALUES ($1, $2)", [id_, v], user=user)
    if flush:
        engine.execute("FLUSH TABLE t WAIT")
        # a hot version over a cold one, per user
        engine.execute("UPDATE t SET v = v || '!' WHERE id = 1", user="alice")
        engine.execute("UPDATE t SET v = v || '!' WHERE id = 1", user="bob")


def _expected(user: str, flush: bool) -> list[tuple[int, str]]:
    rows = ROWS[user]
    if flush:
        rows = [(i, v + "!" if i == 1 else v) for i, v in rows]
    return sorted(rows)


@pytest.mark.parametrize("flush", [False, True], ids=["hot", "cold+hot"])
def test_two_users_querying_from_two_threads_see_only_their_own_rows(engine, flush):
    _setup(engine, flush=flush)
    failures: list[str] = []
    start = threading.Barrier(2)

    def hammer(user: str) -> None:
        expected = _expected(user, flush)
        start.wait(timeout=30)
        for round_ in range(40):
            sql = QUERIES[round_ % len(QUERIES)]
            got = engine.execute(sql, user=user).rows()
            want = expected if "JOIN" not in sql else [r for r in expected if r[0] <= 4]
            if got != want:
                failures.append(f"{user}: {sql} -> {got}, expected {want}")
                return

    threads = [threading.Thread(target=hammer, args=(u,)) for u in ROWS]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=120)
    assert not any(th.is_alive() for th in threads)
    assert failures == []


def test_connections_of_two_users_interleave_on_one_engine(engine):
    _setup(engine, flush=True)
    alice, bob = engine.connect(user="alice"), engine.connect(user="bob")
    for _ in range(5):
        assert alice.execute("SELECT id, v FROM t ORDER BY id").rows() == _expected("alice", True)
        assert bob.execute("SELECT id, v FROM t ORDER BY id").rows() == _expected("bob", True)


def test_nothing_stays_registered_between_queries(engine):
    _setup(engine, flush=False)
    engine.execute("SELECT * FROM t", user="alice")
    queries = engine.db.queries
    catalog = queries.ctx.catalog("kalam")
    assert queries.planning_tables() == {}
    assert catalog.schema_names() == set()
    assert catalog.schema("default").table_names() == set()
    assert not catalog.schema("default").table_exist("t")


def test_a_failing_query_leaves_the_context_usable(engine):
    _setup(engine, flush=False)
    with pytest.raises(KalamError):
        engine.execute("SELECT no_such_column FROM t", user="alice")
    assert engine.db.queries.planning_tables() == {}
    assert engine.execute("SELECT id FROM t ORDER BY id", user="bob").rows() == [(1,), (3,), (4,)]


def test_the_current_namespace_is_per_session_in_the_shared_context(engine):
    engine.execute("CREATE NAMESPACE other")
    engine.execute("CREATE SHARED TABLE default.n (id INT PRIMARY KEY)")
    engine.execute("CREATE SHARED TABLE other.n (id INT PRIMARY KEY)")
    engine.execute("INSERT INTO default.n VALUES (1)")
    engine.execute("INSERT INTO other.n VALUES (2)")
    a, b = engine.connect(), engine.connect()
    b.execute("USE other")
    for _ in range(3):
        assert a.execute("SELECT id FROM n").rows() == [(1,)]
        assert b.execute("SELECT id FROM n").rows() == [(2,)]


def test_the_catalog_refuses_registration(engine):
    catalog = engine.db.queries.ctx.catalog("kalam")
    with pytest.raises(Exception, match="cannot be registered"):
        engine.db.queries.ctx.sql("CREATE TABLE kalam.default.x AS SELECT 1")
    assert catalog.schema_names() == set()


# ---- a stale read after a change is a wrong answer


def test_flush_drop_rename_alter_are_seen_by_the_next_query(engine):
    engine.execute("CREATE SHARED TABLE c (id INT PRIMARY KEY, v INT)")
    engine.execute("INSERT INTO c VALUES (1, 10), (2, 20)")
    assert engine.execute("SELECT sum(v) FROM c").rows() == [(30,)]
    engine.execute("FLUSH TABLE c WAIT")
    engine.execute("INSERT INTO c VALUES (3, 30)")
    assert engine.execute("SELECT sum(v) FROM c").rows() == [(60,)]
    engine.execute("ALTER TABLE c RENAME COLUMN v TO w")
    assert engine.execute("SELECT sum(w) FROM c").rows() == [(60,)]
    engine.execute("ALTER TABLE c MODIFY COLUMN w BIGINT")
    assert engine.execute("SELECT sum(w), count(*) FROM c").rows() == [(60, 3)]
    engine.execute("ALTER TABLE c ADD COLUMN x INT")
    assert engine.execute("SELECT count(x) FROM c").rows() == [(0,)]
    engine.execute("ALTER TABLE c RENAME TO d")
    assert engine.execute("SELECT sum(w) FROM d").rows() == [(60,)]
    engine.execute("DROP TABLE d")
    engine.execute("CREATE SHARED TABLE d (id INT PRIMARY KEY, w INT)")
    assert engine.execute("SELECT count(*), sum(w) FROM d").rows() == [(0, None)]


# ---- cold segments: one dataset scan for many segments, the hot side hashed


def _plan(engine, sql: str) -> str:
    return "\n".join(str(r[1]) for r in engine.execute("EXPLAIN " + sql).rows())


def test_hot_over_cold_anti_join_hashes_the_hot_keys(engine):
    engine.execute("CREATE SHARED TABLE h (id INT PRIMARY KEY, v INT)")
    engine.execute("INSERT INTO h SELECT value, value FROM range(0, 2000)")
    engine.execute("FLUSH TABLE h WAIT")
    engine.execute("UPDATE h SET v = -1 WHERE id IN (5, 6)")
    plan = _plan(engine, "SELECT * FROM h")
    assert "LeftAnti" not in plan
    join = next(line for line in plan.splitlines() if "HashJoinExec" in line)
    assert "join_type=Right" in join and "__k" in join.split("on=")[1].split(",")[0]
    assert engine.execute("SELECT count(*), sum(v) FROM h").rows() == [
        (2000, sum(range(2000)) - 5 - 6 - 2)
    ]


def _many_segments(engine, segments: int = 6) -> None:
    engine.execute("CREATE SHARED TABLE m (id INT PRIMARY KEY, f DOUBLE, s TEXT, n INT NOT NULL)")
    text = "s"
    for i in range(segments):
        lo, hi = i * 10, i * 10 + 10
        engine.execute(
            f"INSERT INTO m (id, f, {text}, n) SELECT value, CASE WHEN value % 7 = 0 THEN 'NaN'::double "
            "ELSE value * 0.5 END, CASE WHEN value % 3 = 0 THEN NULL ELSE 's' || value END, "
            f"value FROM range({lo}, {hi})"
        )
        engine.execute("FLUSH TABLE m WAIT")
        if i == 2:
            engine.execute("ALTER TABLE m ADD COLUMN extra INT DEFAULT 7")
        if i == 3:
            engine.execute("ALTER TABLE m MODIFY COLUMN n BIGINT")
        if i == 4:
            engine.execute("ALTER TABLE m RENAME COLUMN s TO t")
            text = "t"
    engine.execute("DELETE FROM m WHERE id IN (1, 11, 21)")
    engine.execute("UPDATE m SET f = 'NaN'::double WHERE id = 2")
    engine.execute("FLUSH TABLE m WAIT")
    engine.execute("UPDATE m SET n = -n WHERE id % 10 = 4")  # hot over cold


SHAPES = [
    "SELECT * FROM m ORDER BY id",
    "SELECT id FROM m WHERE f > 10 ORDER BY id",
    "SELECT id FROM m WHERE f = 'NaN'::double ORDER BY id",
    "SELECT id FROM m WHERE NOT (f < 5) ORDER BY id",
    "SELECT id FROM m WHERE t < 's3' ORDER BY id",
    "SELECT id FROM m WHERE t IS NULL ORDER BY id",
    "SELECT id FROM m WHERE id BETWEEN 12 AND 33 AND n < 0 ORDER BY id",
    "SELECT count(*), sum(n), min(extra), max(extra), count(extra) FROM m",
    "SELECT extra, count(*) FROM m GROUP BY extra ORDER BY extra",
]


def _answers(engine) -> list[list[tuple]]:
    """Each shape's rows, NaN spelled out (NaN != NaN would fail any comparison)."""
    return [
        [tuple("NaN" if v != v else v for v in row) for row in engine.execute(q).rows()]
        for q in SHAPES
    ]


def test_one_dataset_scan_answers_exactly_like_a_scan_per_segment(engine):
    _many_segments(engine)
    cold = engine.db.provider(engine.db.catalog.get_table("default", "m")).cold
    cold.dataset_scan_segments = 10_000  # a Parquet scan per segment
    per_segment = _answers(engine)
    assert "DatasetExec" not in _plan(engine, "SELECT * FROM m")
    cold.dataset_scan_segments = 1  # one dataset scan per layout
    assert "DatasetExec" in _plan(engine, "SELECT * FROM m")
    assert _answers(engine) == per_segment
    schema = engine.execute("SELECT * FROM m").to_arrow().schema
    assert [f.nullable for f in schema] == [False, True, True, False, True]


def test_float_filters_never_reach_the_dataset_scan(engine):
    _many_segments(engine)
    cold = engine.db.provider(engine.db.catalog.get_table("default", "m")).cold
    cold.dataset_scan_segments = 1
    plan = _plan(engine, "SELECT id FROM m WHERE f > 10 AND id > 3")
    scans = [line for line in plan.splitlines() if "DatasetExec" in line]
    # Segments carry logical column names (the Delta layout): f is the float.
    assert scans and all("f >" not in line.split("projection")[0] for line in scans)
    assert any("id > 3" in line for line in scans)  # the key range still prunes row groups


def test_a_segment_damaged_after_it_was_cached_is_loud_and_repair_is_seen(engine):
    engine.execute(
        "CREATE SHARED TABLE r (id BIGINT PRIMARY KEY, v INT) WITH (ROW_GROUP_SIZE = 100)"
    )
    for lo in (0, 1000):
        engine.execute(
            f"INSERT INTO r SELECT value, CAST(value AS INT) FROM range({lo}, {lo + 1000})"
        )
        engine.execute("FLUSH TABLE r WAIT")
    cold = engine.db.provider(engine.db.catalog.get_table("default", "r")).cold
    cold.dataset_scan_segments = 1
    assert engine.execute("SELECT sum(v) FROM r").rows() == [(sum(range(2000)),)]
    segment = cold.scope_dir("") / "batch-1.parquet"
    data = bytearray(segment.read_bytes())
    data[len(data) // 2] ^= 0x10
    segment.write_bytes(bytes(data))
    with pytest.raises(StorageCorruptionError, match="batch-1.parquet"):
        engine.execute("SELECT sum(v) FROM r")
    engine.execute("REPAIR TABLE r")
    cold = engine.db.provider(engine.db.catalog.get_table("default", "r")).cold
    cold.dataset_scan_segments = 1
    rows = engine.execute("SELECT id, v FROM r").rows()
    assert 1000 < len(rows) < 2000 and all(i == v for i, v in rows)
    assert engine.execute("SELECT count(*) FROM r").rows() == [(len(rows),)]


@pytest.mark.parametrize("dataset_scan", [False, True], ids=["parquet scan", "dataset scan"])
def test_a_recreated_table_with_same_size_segments_reads_its_own_values(engine, dataset_scan):
    def make(letter: str) -> None:
        engine.execute("CREATE SHARED TABLE t (id BIGINT PRIMARY KEY, v TEXT)")
        for lo in (0, 100):
            engine.execute(f"INSERT INTO t SELECT value, '{letter}' FROM range({lo}, {lo + 100})")
            engine.execute("FLUSH TABLE t WAIT")
        cold = engine.db.provider(engine.db.catalog.get_table("default", "t")).cold
        cold.dataset_scan_segments = 1 if dataset_scan else 10_000

    make("a")
    assert engine.execute("SELECT min(v), max(v), count(*) FROM t WHERE id >= 0").rows() == [
        ("a", "a", 200)
    ]
    engine.execute("DROP TABLE t")
    make("b")  # the same file names, the same sizes
    assert engine.execute("SELECT min(v), max(v), count(*) FROM t WHERE id >= 0").rows() == [
        ("b", "b", 200)
    ]


def test_the_metadata_cache_size_is_a_checked_setting(open_engine):
    with pytest.raises(InvalidOptionError, match="metadata_cache_mb"):
        open_engine(metadata_cache_mb=-1)
    engine = open_engine(metadata_cache_mb=0)  # no cache at all still answers
    engine.execute("CREATE SHARED TABLE z (id INT PRIMARY KEY)")
    engine.execute("INSERT INTO z VALUES (1), (2)")
    engine.execute("FLUSH TABLE z WAIT")
    assert engine.execute("SELECT sum(id) FROM z").rows() == [(3,)]


@pytest.mark.parametrize("pk_type", ["BIGINT", "TEXT"])
def test_hot_keys_inside_segment_ranges_match_a_brute_force_check(pk_type):
    """The vectorised range test behind the anti-join and the metadata answers."""
    import random
    from types import SimpleNamespace

    from engine.providers.base import _in_segment_ranges

    rng = random.Random(11)
    conv = (lambda x: x) if pk_type == "BIGINT" else (lambda x: f"k{x:05d}")
    pk = SimpleNamespace(id=1, type=pk_type)
    for _ in range(50):
        ranges = []
        for _ in range(rng.randint(1, 6)):
            lo = rng.randint(0, 900)
            ranges.append((lo, lo + rng.randint(0, 150)))  # may overlap or nest
        segments = [
            SimpleNamespace(column_stats={"1": {"min": conv(lo), "max": conv(hi)}})
            for lo, hi in ranges
        ]
        keys = [conv(k) for k in rng.sample(range(1100), 200)]
        expected = [k for k in keys if any(conv(lo) <= k <= conv(hi) for lo, hi in ranges)]
        assert list(_in_segment_ranges(keys, segments, (pk,))) == expected
