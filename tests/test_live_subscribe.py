"""Live queries (``SUBSCRIBE TO``), engine side.

A subscription's initial rows are what the same SELECT returns; every
committed write then arrives, in commit order, as the change *this*
subscriber must see: a row entering the WHERE is an insert, one leaving it a
delete, one staying an update carrying the values seen before. Reading all
changes onto the initial rows must always give what the SELECT returns now:
``replay`` checks exactly that. Waits are ``get(timeout)``, never sleeps; "no
change arrived" is shown by a marker write whose change comes next.
"""

from __future__ import annotations

import threading
from typing import Any

import pyarrow as pa
import pytest

from engine import Change, Engine, Subscription
from engine.errors import (
    LiveQueryClosedError,
    PermissionDeniedError,
    QueryNotFoundError,
    SqlParseError,
    TableNotFoundError,
    UnsupportedStatementError,
)

WAIT = 20.0


def changes(sub: Subscription, n: int) -> list[Change]:
    """The next ``n`` changes (each awaited with a deadline)."""
    out = []
    for _ in range(n):
        change = sub.get(timeout=WAIT)
        assert change is not None, f"timed out waiting for change {len(out) + 1} of {n}"
        out.append(change)
    return out


def summary(change: Change) -> tuple[str, list[dict[str, Any]], list[dict[str, Any]] | None]:
    old = change.old_values.to_pylist() if change.old_values is not None else None
    return change.change_type, change.rows.to_pylist(), old


def drain(eng: Engine, sub: Subscription) -> list[Change]:
    """Every change published so far for ``sub`` (after the hub handed them out)."""
    assert eng.db.subscriptions.sync(WAIT)
    out = []
    while (change := sub.get(timeout=0)) is not None:
        out.append(change)
    return out


def nothing_more(eng: Engine, sub: Subscription) -> None:
    """Every published change has been handed out, and none is left for ``sub``."""
    assert eng.db.subscriptions.sync(WAIT)
    assert sub.get(timeout=0) is None


def replay(sub: Subscription, found: list[Change], key: str = "id") -> list[dict[str, Any]]:
    """The initial rows with ``found`` applied, sorted by ``key``."""
    rows = {r[key]: r for r in sub.initial.to_pylist()}
    for c in found:
        if c.change_type == "delete":
            for r in c.rows.to_pylist():
                assert r[key] in rows, ("delete of a row never seen", r)
                del rows[r[key]]
        elif c.change_type == "insert":
            for r in c.rows.to_pylist():
                assert r[key] not in rows, ("insert of a row already seen", r)
                rows[r[key]] = r
        else:
            assert c.old_values is not None
            for new, old in zip(c.rows.to_pylist(), c.old_values.to_pylist(), strict=True):
                assert rows[old[key]] == old, ("old values differ from what was seen", old)
                rows[new[key]] = new
    return sorted(rows.values(), key=lambda r: r[key])


@pytest.fixture
def t(engine: Engine) -> Engine:
    engine.execute("CREATE TABLE t (id INT PRIMARY KEY, name TEXT, v INT)")
    engine.execute("INSERT INTO t VALUES (1, 'a', 10), (2, 'b', NULL), (3, 'c', 3)")
    return engine


# ---------------------------------------------------------------- subscribing


@pytest.mark.parametrize("placement", ["hot", "cold", "cold then updated"])
def test_subscription_has_an_id_a_schema_and_the_rows_the_same_select_returns(
    t: Engine, placement: str
) -> None:
    if placement != "hot":
        t.flush("t")
    if placement == "cold then updated":
        t.execute("UPDATE t SET v = 11 WHERE id = 1")
    query = "SELECT id, v * 2 AS doubled FROM default.t WHERE v > 5 OR v IS NULL"
    with t.subscribe(f"SUBSCRIBE TO {query}") as sub:
        assert sub.id.startswith("live")
        assert sub.schema.names == ["id", "doubled"]
        assert sub.schema.field("doubled").type == pa.int64()
        got = sorted(sub.initial.to_pylist(), key=lambda r: r["id"])
        assert got == sorted(t.execute(query).to_pylist(), key=lambda r: r["id"])
        assert len(got) == 2


def test_a_bare_select_the_short_form_and_execute_all_subscribe(t: Engine) -> None:
    with t.subscribe("SELECT id FROM t WHERE v = 3") as bare:
        assert bare.initial.to_pylist() == [{"id": 3}]
    with t.subscribe("SUBSCRIBE TO default.t WHERE v = 3") as short:
        assert short.initial.to_pylist() == [{"id": 3, "name": "c", "v": 3}]
    result = t.execute("SUBSCRIBE TO SELECT name FROM t WHERE id = 1")
    with result.subscription as sub:
        assert result.is_query and result.to_pylist() == [{"name": "a"}]
        assert sub.id in result.message


def test_insert_update_delete_arrive_in_commit_order_with_old_values(t: Engine) -> None:
    with t.subscribe("SUBSCRIBE TO SELECT id, v FROM t") as sub:
        t.execute("INSERT INTO t VALUES (4, 'd', 40)")
        t.execute("UPDATE t SET v = 41 WHERE id = 4")
        t.execute("DELETE FROM t WHERE id = 4")
        t.execute("UPDATE t SET v = v + 1 WHERE id IN (1, 3)")
        found = changes(sub, 4)
        assert [summary(c) for c in found] == [
            ("insert", [{"id": 4, "v": 40}], None),
            ("update", [{"id": 4, "v": 41}], [{"id": 4, "v": 40}]),
            ("delete", [{"id": 4, "v": 41}], None),
            (
                "update",
                [{"id": 1, "v": 11}, {"id": 3, "v": 4}],
                [{"id": 1, "v": 10}, {"id": 3, "v": 3}],
            ),
        ]
        seqs = [c.seq for c in found]
        assert seqs == sorted(seqs) and len(set(seqs)) == 4
        assert replay(sub, found) == t.execute("SELECT id, v FROM t ORDER BY id").to_pylist()


def test_an_update_moving_a_row_into_the_where_is_an_insert_and_out_of_it_a_delete(
    t: Engine,
) -> None:
    with t.subscribe("SUBSCRIBE TO SELECT id, v FROM t WHERE v >= 10") as sub:
        assert sub.initial.to_pylist() == [{"id": 1, "v": 10}]
        t.execute("UPDATE t SET v = 30 WHERE id = 3")  # enters
        t.execute("UPDATE t SET v = 5 WHERE id = 1")  # leaves
        t.execute("UPDATE t SET v = 4 WHERE id = 1")  # stays out: nothing
        t.execute("INSERT INTO t VALUES (5, 'e', 1)")  # never in: nothing
        t.execute("DELETE FROM t WHERE id = 5")  # never seen: nothing
        t.execute("UPDATE t SET v = 31 WHERE id = 3")  # stays in
        assert [summary(c) for c in changes(sub, 3)] == [
            ("insert", [{"id": 3, "v": 30}], None),
            ("delete", [{"id": 1, "v": 10}], None),
            ("update", [{"id": 3, "v": 31}], [{"id": 3, "v": 30}]),
        ]
        nothing_more(t, sub)


@pytest.mark.parametrize(
    "where",
    ["v > 5", "v IS NULL", "NOT (v > 5)", "v <> 3", "coalesce(v, 0) = 0", "v IN (3, NULL)"],
)
def test_nulls_in_the_where_behave_exactly_as_in_a_select(t: Engine, where: str) -> None:
    query = f"SELECT id FROM t WHERE {where}"
    with t.subscribe(query) as sub:
        t.execute("UPDATE t SET v = NULL WHERE id = 1")
        t.execute("UPDATE t SET v = 0 WHERE id = 2")
        t.execute("INSERT INTO t VALUES (7, 'g', NULL), (8, 'h', 9)")
        t.execute("UPDATE t SET v = 3 WHERE id = 7")
        expected = t.execute(query + " ORDER BY id").to_pylist()
        assert replay(sub, drain(t, sub)) == expected


def test_the_projection_computes_what_the_select_computes(t: Engine) -> None:
    query = (
        "SELECT t.id, upper(name) AS shout, v + 1 AS next, v IS NULL AS missing, "
        "CASE WHEN v > 5 THEN 'big' ELSE 'small' END AS size FROM default.t AS t"
    )
    with t.subscribe(query) as sub:
        t.execute("INSERT INTO t VALUES (4, 'dd', NULL)")
        t.execute("UPDATE t SET name = 'zz', v = 100 WHERE id = 2")
        found = changes(sub, 2)
        got = replay(sub, found)
        assert got == t.execute(query + " ORDER BY id").to_pylist()
        assert got[1] == {"id": 2, "shout": "ZZ", "next": 101, "missing": False, "size": "big"}


def test_star_and_seq_follow_the_row_versions(t: Engine) -> None:
    with t.subscribe("SELECT *, _seq FROM t WHERE id = 1") as sub:
        assert sub.schema.names == ["id", "name", "v", "_seq"]
        (before,) = sub.initial.to_pylist()
        t.execute("UPDATE t SET v = 12 WHERE id = 1")
        (change,) = changes(sub, 1)
        (after,) = change.rows.to_pylist()
        assert after["_seq"] > before["_seq"] and after["_seq"] == change.seq
        assert after == t.execute("SELECT *, _seq FROM t WHERE id = 1").to_pylist()[0]


def test_upsert_and_insert_arrow_are_changes_and_flush_is_not(t: Engine) -> None:
    with t.subscribe("SELECT id, v FROM t") as sub:
        t.execute(
            "INSERT INTO t VALUES (1, 'a', 15), (6, 'f', 60) "
            "ON CONFLICT (id) DO UPDATE SET v = excluded.v"
        )
        t.insert_arrow("t", pa.table({"id": pa.array([7], pa.int32()), "v": [70]}))
        t.flush("t")
        t.execute("UPDATE t SET v = 16 WHERE id = 1")  # a cold row now
        found = changes(sub, 4)
        assert [summary(c) for c in found] == [
            ("insert", [{"id": 6, "v": 60}], None),
            ("update", [{"id": 1, "v": 15}], [{"id": 1, "v": 10}]),
            ("insert", [{"id": 7, "v": 70}], None),
            ("update", [{"id": 1, "v": 16}], [{"id": 1, "v": 15}]),
        ]
        nothing_more(t, sub)


# ---------------------------------------------------------------- scopes


def test_user_table_subscribers_see_only_their_own_rows_and_changes(engine: Engine) -> None:
    engine.execute("CREATE USER TABLE notes (id INT PRIMARY KEY, body TEXT, v INT)")
    engine.execute("INSERT INTO notes VALUES (1, 'alice one', 1)", user="alice")
    engine.execute("INSERT INTO notes VALUES (1, 'bob one', 1)", user="bob")
    alice = engine.connect(user="alice")
    with alice.subscribe("SELECT id, body FROM notes") as sub:
        assert sub.initial.to_pylist() == [{"id": 1, "body": "alice one"}]
        engine.execute("INSERT INTO notes VALUES (2, 'bob two', 2)", user="bob")
        engine.execute("UPDATE notes SET body = 'bob edited' WHERE id = 1", user="bob")
        engine.execute("DELETE FROM notes WHERE id = 1", user="bob")
        engine.execute("INSERT INTO notes VALUES (2, 'alice two', 2)", user="alice")
        (change,) = changes(sub, 1)
        assert summary(change) == ("insert", [{"id": 2, "body": "alice two"}], None)
        nothing_more(engine, sub)


def test_plain_users_see_and_kill_only_their_own_live_queries(engine: Engine) -> None:
    engine.execute("CREATE USER TABLE notes (id INT PRIMARY KEY, v INT)")
    mine = engine.subscribe("SELECT id FROM notes", user="alice")
    theirs = engine.subscribe("SELECT id FROM notes", user="bob")
    try:
        listed = engine.execute(
            "SELECT query_id, user, kind, table_name, state FROM system.live_queries "
            "WHERE kind = 'subscription'",
            user="alice",
        ).to_pylist()
        assert listed == [
            {
                "query_id": mine.id,
                "user": "alice",
                "kind": "subscription",
                "table_name": "default.notes",
                "state": "live",
            }
        ]
        with pytest.raises(PermissionDeniedError):
            engine.execute(f"KILL LIVE QUERY '{theirs.id}'", user="alice")
        assert not theirs.closed
        engine.execute(f"KILL LIVE QUERY '{theirs.id}'")  # root may
        assert theirs.closed and "KILL LIVE QUERY" in (theirs.close_reason or "")
    finally:
        mine.close()
        theirs.close()


# ---------------------------------------------------------------- concurrency


def test_concurrent_writers_lose_and_repeat_nothing_and_arrive_in_commit_order(
    engine: Engine,
) -> None:
    engine.execute("CREATE TABLE c (id INT PRIMARY KEY, w INT, n INT)")
    writers, per_writer = 4, 40
    with engine.subscribe("SELECT id, w, n FROM c WHERE n % 2 = 0") as sub:

        def write(w: int) -> None:
            conn = engine.connect()
            for i in range(per_writer):
                key = w * 1000 + i % 10
                if i < 10:
                    conn.execute("INSERT INTO c VALUES (?, ?, ?)", [key, w, i])
                elif i % 7 == 0:
                    conn.execute("DELETE FROM c WHERE id = ?", [key])
                    conn.execute("INSERT INTO c VALUES (?, ?, ?)", [key, w, i])
                else:
                    conn.execute("UPDATE c SET n = ? WHERE id = ?", [i, key])

        threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(WAIT)
            assert not th.is_alive()
        expected = engine.execute("SELECT id, w, n FROM c WHERE n % 2 = 0 ORDER BY id")
        found = drain(engine, sub)
        assert replay(sub, found) == expected.to_pylist()
        # One scope, one sequence: commit order is _seq order.
        seqs = [c.seq for c in found]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)


def test_subscribing_while_writers_run_neither_misses_nor_repeats_a_change(
    engine: Engine,
) -> None:
    engine.execute("CREATE TABLE c (id INT PRIMARY KEY, n INT)")
    stop = threading.Event()
    written = [0]

    def write() -> None:
        conn = engine.connect()
        i = 0
        while not stop.is_set() or i < 30:
            conn.execute("INSERT INTO c VALUES (?, ?)", [i, i])
            if i % 3 == 0:
                conn.execute("UPDATE c SET n = n + 100 WHERE id = ?", [i // 2])
            i += 1
        written[0] = i

    writer = threading.Thread(target=write)
    writer.start()
    subs = []
    try:
        for _ in range(5):  # subscribe at several points of the stream
            subs.append(engine.subscribe("SELECT id, n FROM c"))
    finally:
        stop.set()
        writer.join(WAIT)
    expected = engine.execute("SELECT id, n FROM c ORDER BY id").to_pylist()
    assert len(expected) == written[0]
    for sub in subs:
        assert replay(sub, drain(engine, sub)) == expected
        sub.close()


# ---------------------------------------------------------------- ending


def test_kill_live_query_ends_it_and_get_says_why(t: Engine) -> None:
    sub = t.subscribe("SELECT id FROM t")
    t.execute("INSERT INTO t VALUES (4, 'd', 4)")
    changes(sub, 1)
    row = t.execute(
        "SELECT changes_delivered FROM system.live_queries WHERE query_id = ?", [sub.id]
    ).scalar()
    assert row == 1
    result = t.execute(f"KILL LIVE QUERY '{sub.id}'")
    assert result.rows_affected == 1
    assert sub.closed
    with pytest.raises(LiveQueryClosedError) as info:
        sub.get(timeout=WAIT)
    assert info.value.code == "LIVE_QUERY_CLOSED" and "killed" in info.value.message
    listed = t.execute("SELECT count(*) FROM system.live_queries WHERE kind = 'subscription'")
    assert listed.scalar() == 0
    with pytest.raises(QueryNotFoundError):
        t.execute(f"KILL LIVE QUERY '{sub.id}'")
    with pytest.raises(SqlParseError):
        t.execute("KILL LIVE QUERY")


def test_changes_queued_before_a_kill_are_still_read_first(t: Engine) -> None:
    sub = t.subscribe("SELECT id FROM t")
    t.execute("INSERT INTO t VALUES (4, 'd', 4)")
    t.execute("INSERT INTO t VALUES (5, 'e', 5)")
    t.execute("INSERT INTO t VALUES (6, 'f', 6)")
    assert t.db.subscriptions.sync(WAIT)
    first = changes(sub, 1)[0]
    t.execute(f"KILL LIVE QUERY '{sub.id}'")
    rest = [sub.get(timeout=WAIT), sub.get(timeout=WAIT)]
    assert [c.rows.column("id").to_pylist() for c in [first, *rest] if c] == [[4], [5], [6]]
    with pytest.raises(LiveQueryClosedError):
        sub.get(timeout=WAIT)


@pytest.mark.parametrize(
    ("statement", "reason"),
    [
        ("DROP TABLE t", "was dropped"),
        ("ALTER TABLE t ADD COLUMN extra INT", "was altered"),
        ("ALTER TABLE t RENAME TO t2", "was renamed"),
    ],
)
def test_dropping_renaming_or_altering_the_table_ends_its_subscriptions(
    t: Engine, statement: str, reason: str
) -> None:
    sub = t.subscribe("SELECT id FROM t")
    t.execute("INSERT INTO t VALUES (4, 'd', 4)")
    t.execute(statement)
    (change,) = changes(sub, 1)  # what committed before still arrives
    assert change.change_type == "insert"
    with pytest.raises(LiveQueryClosedError) as info:
        sub.get(timeout=WAIT)
    assert reason in info.value.message


def test_a_slow_subscriber_is_closed_with_an_error_never_silently_dropped(t: Engine) -> None:
    sub = t.subscribe("SELECT id FROM t", max_pending=3)
    for i in range(10, 15):
        t.execute("INSERT INTO t VALUES (?, 'x', 0)", [i])
    assert t.db.subscriptions.sync(WAIT)  # the subscriber has not read anything yet
    assert sub.closed
    got = []
    with pytest.raises(LiveQueryClosedError) as info:
        while True:
            change = sub.get(timeout=WAIT)
            assert change is not None
            got.append(change.rows.column("id")[0].as_py())
    assert "fell behind" in info.value.message and "3" in info.value.message
    assert got == [10, 11, 12]  # what was queued is intact and in order


def test_close_ends_callbacks_and_the_hub_and_leaves_no_thread(open_engine: Any) -> None:
    before = set(threading.enumerate())
    eng = open_engine(background_jobs=False)
    eng.execute("CREATE TABLE t (id INT PRIMARY KEY, v INT)")
    seen: list[Change] = []
    closed: list[str] = []
    arrived = threading.Event()
    sub = eng.subscribe("SELECT id FROM t")
    sub.on_change(lambda c: (seen.append(c), arrived.set()), on_close=closed.append)
    other = eng.subscribe("SELECT v FROM t")
    eng.execute("INSERT INTO t VALUES (1, 1)")
    assert arrived.wait(WAIT)
    assert [c.rows.to_pylist() for c in seen] == [[{"id": 1}]]
    sub.close()
    assert closed == ["closed by the subscriber"]
    eng.close()
    assert other.closed and other.close_reason == "the engine was closed"
    leaked = [th for th in set(threading.enumerate()) - before if th.name.startswith("kalam-live")]
    assert leaked == []


def test_a_failing_callback_ends_its_subscription_with_the_error(t: Engine) -> None:
    done = threading.Event()
    sub = t.subscribe("SELECT id FROM t")

    def boom(change: Change) -> None:
        raise ValueError("bad subscriber")

    sub.on_change(boom, on_close=lambda reason: done.set())
    t.execute("INSERT INTO t VALUES (4, 'd', 4)")
    assert done.wait(WAIT)
    assert sub.closed and "bad subscriber" in (sub.close_reason or "")


# ---------------------------------------------------------------- refused shapes


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ("SELECT a.id FROM t a JOIN t b ON a.id = b.id", "JOIN"),
        ("SELECT v, count(*) FROM t GROUP BY v", "GROUP BY"),
        ("SELECT count(*) FROM t", "aggregate"),
        ("SELECT id FROM t ORDER BY id", "ORDER BY"),
        ("SELECT id FROM t LIMIT 3", "LIMIT"),
        ("SELECT DISTINCT v FROM t", "DISTINCT"),
        ("SELECT id, row_number() OVER (ORDER BY id) FROM t", "window"),
        ("SELECT id FROM t WHERE v IN (SELECT v FROM t)", "subquer"),
        ("SELECT id FROM t UNION SELECT id FROM t", "UNION"),
        ("WITH x AS (SELECT * FROM t) SELECT * FROM x", "WITH"),
        ("SELECT 1", "without FROM"),
        ("SELECT id FROM t, t AS u", "JOIN"),
        ("SUBSCRIBE TO t OPTIONS (last_rows = 5)", "OPTIONS"),
        ("SELECT id FROM t WHERE v = ?", "parameters"),
        ("SELECT id FROM t WHERE _deleted", "_deleted"),
    ],
)
def test_queries_a_live_query_cannot_follow_are_refused_naming_the_construct(
    t: Engine, query: str, named: str
) -> None:
    with pytest.raises(UnsupportedStatementError) as info:
        t.subscribe(query)
    assert named in info.value.message
    assert t.db.subscriptions.snapshot() == []


def test_system_tables_and_missing_tables_are_refused(t: Engine) -> None:
    with pytest.raises(UnsupportedStatementError, match="system table"):
        t.subscribe("SELECT * FROM system.tables")
    with pytest.raises(TableNotFoundError):
        t.subscribe("SELECT * FROM nowhere")
    assert t.db.subscriptions.snapshot() == []


def test_a_stream_table_without_a_key_streams_its_events(engine: Engine) -> None:
    engine.execute("CREATE STREAM TABLE typing (room INT, who TEXT) WITH (TTL_SECONDS = 60)")
    engine.execute("INSERT INTO typing VALUES (1, 'ann')")
    with engine.subscribe("SUBSCRIBE TO typing WHERE room = 1") as sub:
        assert sub.initial.to_pylist() == [{"room": 1, "who": "ann"}]
        engine.execute("INSERT INTO typing VALUES (1, 'bo'), (2, 'cy'), (1, 'di')")
        engine.execute("DELETE FROM typing WHERE who = 'ann'")
        assert [summary(c) for c in drain(engine, sub)] == [
            ("insert", [{"room": 1, "who": "bo"}, {"room": 1, "who": "di"}], None),
            ("delete", [{"room": 1, "who": "ann"}], None),
        ]


def test_a_projection_error_on_a_change_ends_the_subscription_with_it(t: Engine) -> None:
    sub = t.subscribe("SELECT id, arrow_cast(name, 'Int32') AS n FROM t WHERE id > 3")
    t.execute("INSERT INTO t VALUES (4, 'not a number', 4)")
    with pytest.raises(LiveQueryClosedError) as info:
        sub.get(timeout=WAIT)
    assert "evaluating a change failed" in info.value.message
