"""system.live_queries and KILL QUERY.

A long query runs in a thread; another thread finds it in
``system.live_queries`` with a bounded poll (each pause is a
``threading.Event`` wait, never a bare sleep) and cancels it with
``KILL QUERY``. Its caller must get ``QueryCancelledError`` and the engine
must stay usable.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from conftest import START_MS

from engine import Engine, KalamError
from engine.errors import PermissionDeniedError, QueryCancelledError, SqlParseError

# About 2 s of work on this VM (longer under load): found and killed within tens of
# milliseconds, so the margin is wide, yet short enough that a cancelled query whose
# work keeps running (see the close-promptly test) does not stall the suite.
LONG_SQL = "SELECT count(*) FROM range(0, 400000000) a WHERE a.value % 7 = 3"
# About 10 s of work: only for checking that a killed query's work really stops.
LONGER_SQL = "SELECT count(*) FROM range(0, 2000000000) a WHERE a.value % 7 = 3"
FIND = "SELECT * FROM system.live_queries WHERE sql = ?"
TIMEOUT = 20.0


def at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).replace(tzinfo=None)


def wait_until(probe: Callable[[], Any], what: str, timeout: float = TIMEOUT) -> Any:
    """Call ``probe`` until it returns something truthy; bounded, paced by an Event."""
    pause = threading.Event()
    deadline = time.monotonic() + timeout
    while True:
        found = probe()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        pause.wait(0.01)


class LongQuery:
    """``sql`` (by default ``LONG_SQL``) running as ``user`` in its own thread."""

    def __init__(self, engine: Engine, user: str, sql: str = LONG_SQL) -> None:
        self.engine = engine
        self.user = user
        self.sql = sql
        self.done = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name=f"long-{user}", daemon=True)
        self.query_id = ""

    def _run(self) -> None:
        try:
            self.engine.execute(self.sql, user=self.user)
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            self.error = exc
        finally:
            self.done.set()

    def start(self) -> LongQuery:
        self.thread.start()
        row = wait_until(self._find, f"{self.user}'s query in system.live_queries")
        self.query_id = row["query_id"]
        return self

    def _find(self) -> dict[str, Any] | None:
        if self.done.is_set():
            raise AssertionError(f"the long query ended before it was seen: {self.error!r}")
        found = self.engine.execute(FIND, [self.sql]).to_pylist()
        return found[0] if found else None

    def row(self, *, user: str | None = None) -> dict[str, Any] | None:
        found = self.engine.execute(FIND, [self.sql], user=user).to_pylist()
        return found[0] if found else None


@pytest.fixture
def engine(open_engine: Callable[..., Engine]) -> Engine:
    """Durability is not under test here: skip the per-statement fsync."""
    return open_engine(durability="async", background_jobs=False)


@pytest.fixture
def long_query(engine: Engine) -> Iterator[Callable[..., LongQuery]]:
    """``long_query(user, sql=LONG_SQL)`` starts the query and returns once it is
    visible; whatever is still running at teardown is killed."""
    started: list[LongQuery] = []

    def start(user: str, sql: str = LONG_SQL) -> LongQuery:
        q = LongQuery(engine, user, sql)
        started.append(q)
        return q.start()

    yield start
    for q in started:
        if not q.done.is_set() and not engine.closed:
            with contextlib.suppress(KalamError):  # it may have just finished
                engine.execute(f"KILL QUERY '{q.query_id}'")
        q.done.wait(TIMEOUT)


# ---------------------------------------------------------------- what is listed


def test_a_query_sees_itself_in_live_queries(engine: Engine) -> None:
    sql = "SELECT * FROM system.live_queries"
    found = engine.execute(sql).to_pylist()
    assert len(found) == 1, found
    me = found[0]
    assert me["query_id"]
    assert me["session_id"] == engine.session_id
    assert (me["user"], me["sql"], me["state"], me["kind"]) == ("root", sql, "running", "query")
    assert me["start_time"] == at(START_MS)
    assert me["duration_ms"] >= 0


def test_each_statement_gets_its_own_query_id(engine: Engine) -> None:
    sql = "SELECT query_id FROM system.live_queries"
    assert engine.execute(sql).scalar() != engine.execute(sql).scalar()


def test_a_finished_query_is_no_longer_listed(engine: Engine) -> None:
    engine.execute("SELECT 42")
    listed = engine.execute("SELECT sql FROM system.live_queries").rows()
    assert listed == [("SELECT sql FROM system.live_queries",)]


def test_a_dml_statement_is_listed_with_kind_dml(engine: Engine) -> None:
    engine.execute("CREATE TABLE seen (kind TEXT PRIMARY KEY, sql TEXT)")
    insert = "INSERT INTO seen SELECT kind, sql FROM system.live_queries"
    engine.execute(insert)
    assert engine.execute("SELECT kind, sql FROM seen").rows() == [("dml", insert)]


def test_execute_as_lists_the_inner_statement_under_the_target_user(engine: Engine) -> None:
    inner = "SELECT user, kind, sql FROM system.live_queries"
    found = engine.execute(f"EXECUTE AS USER 'bob' ({inner})").rows()
    # bob (role user) sees his own row only, not root's enclosing EXECUTE AS.
    assert found == [("bob", "query", inner)]


def test_a_running_query_is_visible_from_another_thread_with_a_growing_duration(
    engine: Engine, long_query: Callable[..., LongQuery]
) -> None:
    q = long_query("alice")
    first = q.row()
    assert first is not None
    assert first["query_id"] == q.query_id
    assert (first["user"], first["sql"], first["kind"]) == ("alice", LONG_SQL, "query")
    assert first["state"] == "running"
    assert first["session_id"] == engine.session_id
    assert first["start_time"] == at(START_MS)
    later = wait_until(
        lambda: (r := q.row()) is not None and r["duration_ms"] > first["duration_ms"] + 20 and r,
        "the duration to grow",
    )
    assert later["query_id"] == q.query_id
    assert not q.done.is_set()


@pytest.mark.parametrize(("observer", "role"), [("bob", "user"), ("svc", "service")])
def test_plain_roles_see_only_their_own_live_queries(
    engine: Engine, long_query: Callable[..., LongQuery], observer: str, role: str
) -> None:
    engine.execute(f"CREATE USER {observer} ROLE {role}")
    engine.execute("CREATE USER ops ROLE dba")
    q = long_query("alice")
    assert q.row(user=observer) is None
    listed = engine.execute("SELECT user FROM system.live_queries", user=observer).rows()
    assert listed == [(observer,)]
    assert q.row(user="alice") is not None  # the owner, from another thread
    assert q.row(user="ops") is not None
    assert q.row(user="root") is not None


# ---------------------------------------------------------------- KILL QUERY


def test_kill_query_cancels_a_running_query_and_the_engine_stays_usable(
    engine: Engine, long_query: Callable[..., LongQuery]
) -> None:
    engine.execute("CREATE TABLE t (id INT PRIMARY KEY)")
    q = long_query("alice")
    killed = engine.execute(f"KILL QUERY '{q.query_id}'")
    assert q.query_id in killed.message
    assert q.done.wait(TIMEOUT), "the killed query's caller is still waiting"
    assert isinstance(q.error, QueryCancelledError), repr(q.error)
    assert q.error.code == "QUERY_CANCELLED"
    assert "cancelled" in q.error.message.lower()
    assert q.query_id in q.error.message
    assert q.row() is None
    engine.execute("INSERT INTO t VALUES (1)")
    assert engine.execute("SELECT id FROM t").rows() == [(1,)]
    assert (
        engine.execute("SELECT count(*) FROM range(0, 1000) a WHERE a.value % 7 = 3").scalar()
        == 143
    )


@pytest.mark.parametrize("killer", ["alice", "ops"])
def test_the_owner_and_a_dba_may_kill_a_query(
    engine: Engine, long_query: Callable[..., LongQuery], killer: str
) -> None:
    engine.execute("CREATE USER ops ROLE dba")
    q = long_query("alice")
    engine.execute(f"KILL QUERY '{q.query_id}'", user=killer)
    assert q.done.wait(TIMEOUT)
    assert isinstance(q.error, QueryCancelledError), repr(q.error)


@pytest.mark.parametrize(("killer", "role"), [("bob", "user"), ("svc", "service")])
def test_plain_roles_may_not_kill_another_users_query(
    engine: Engine, long_query: Callable[..., LongQuery], killer: str, role: str
) -> None:
    engine.execute(f"CREATE USER {killer} ROLE {role}")
    q = long_query("alice")
    with pytest.raises(PermissionDeniedError) as info:
        engine.execute(f"KILL QUERY '{q.query_id}'", user=killer)
    assert info.value.code == "PERMISSION_DENIED"
    row = q.row()
    assert row is not None and row["state"] == "running"
    assert not q.done.is_set()


def test_a_killed_query_stops_working_so_the_engine_closes_promptly(
    engine: Engine, long_query: Callable[..., LongQuery]
) -> None:
    q = long_query("alice", LONGER_SQL)
    engine.execute(f"KILL QUERY '{q.query_id}'")
    assert q.done.wait(TIMEOUT)
    closer = threading.Thread(target=engine.close, daemon=True)
    started = time.monotonic()
    closer.start()
    closer.join(2.0)
    assert not closer.is_alive(), (
        f"close() still blocked {time.monotonic() - started:.1f} s after KILL QUERY: "
        "the cancelled query keeps running"
    )


def test_killing_an_unknown_query_is_an_error_naming_it(engine: Engine) -> None:
    with pytest.raises(LookupError) as info:
        engine.execute("KILL QUERY 'q999-nothere'")
    assert "q999-nothere" in str(info.value)


@pytest.mark.parametrize("sql", ["KILL QUERY", "KILL 'q1'", "KILL QUERY 'a' 'b'"])
def test_malformed_kill_is_a_syntax_error(engine: Engine, sql: str) -> None:
    with pytest.raises(SqlParseError):
        engine.execute(sql)
