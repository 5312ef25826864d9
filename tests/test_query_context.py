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

from engine.errors import KalamError

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
