"""Flush policies (``rows:N``, ``interval:S``, both) and STREAM eviction, driven
by ``engine.scheduler.tick()`` on a fake clock: each job runs exactly when it
is due and not a millisecond before."""

from __future__ import annotations

import pytest

pytest.register_assert_rewrite("conftest_cold")

from conftest_cold import Cold  # noqa: E402

from engine.storage import keys  # noqa: E402

pytest_plugins = ["conftest_cold"]


def with_policy(cold: Cold, policy: str, kind: str = "SHARED") -> None:
    cold.kind = kind
    cold.user = "alice" if kind == "USER" else "root"
    cold.engine.execute(
        f"CREATE TABLE t (id BIGINT PRIMARY KEY, v INT, note TEXT) "
        f"WITH (TYPE = '{kind}', FLUSH_POLICY = '{policy}')"
    )


def hot_count(cold: Cold, table: str = "t") -> int:
    """Row versions physically in the hot store (visible or not)."""
    table_id = cold.engine.catalog.get_table("default", table).table_id
    return sum(1 for _ in cold.engine.store.scan(keys.rows_prefix(table_id)))


def flush_jobs(cold: Cold) -> list:
    return [j for j in cold.engine.jobs.jobs.values() if j.job_type == "flush"]


def assert_flushed_by(cold: Cold, ids: list[str], reason: str, rows: int) -> None:
    assert len(ids) == 1, ids
    job = cold.engine.jobs.jobs[ids[0]]
    assert job.job_type == "flush"
    assert job.status == "completed", job.error
    assert (job.namespace, job.table_name) == ("default", "t")
    assert job.rows == rows
    assert f"policy: {reason}" in job.message
    assert hot_count(cold) == 0
    assert cold.manifest_path.exists()


# ---------------------------------------------------------------- rows:N


def test_rows_policy_flushes_when_the_row_count_is_reached(cold, clock):
    with_policy(cold, "rows:5")
    cold.insert(range(0, 4))
    assert cold.engine.scheduler.tick() == []
    clock.advance(24 * 3600)  # time alone never triggers a rows-only policy
    assert cold.engine.scheduler.tick() == []
    assert flush_jobs(cold) == []
    assert not cold.manifest_path.exists()
    cold.insert([4])
    ids = cold.engine.scheduler.tick()
    assert_flushed_by(cold, ids, "rows", 5)
    assert cold.count() == 5
    assert cold.engine.scheduler.tick() == []  # nothing pending any more
    assert len(flush_jobs(cold)) == 1


def test_rows_policy_counts_updates_and_deletes_as_pending(cold):
    with_policy(cold, "rows:3")
    cold.insert(range(0, 3))
    assert len(cold.engine.scheduler.tick()) == 1
    cold.sql("UPDATE t SET v = 9 WHERE id = 0")
    cold.sql("DELETE FROM t WHERE id = 1")
    assert cold.engine.scheduler.tick() == []
    cold.insert([3])
    assert len(cold.engine.scheduler.tick()) == 1
    assert cold.rows() == [(0, 9), (2, 2), (3, 3)]


def test_rows_policy_of_a_user_table_flushes_every_scope(cold):
    with_policy(cold, "rows:4", kind="USER")
    cold.insert(range(0, 2), user="alice")
    assert cold.engine.scheduler.tick() == []
    cold.insert(range(0, 2), user="bob")
    ids = cold.engine.scheduler.tick()
    assert_flushed_by(cold, ids, "rows", 4)
    assert (cold.table_dir / "bob" / "manifest.json").exists()


# ---------------------------------------------------------------- interval:S


def test_interval_policy_flushes_when_the_oldest_pending_row_reaches_the_interval(cold, clock):
    with_policy(cold, "interval:60")
    cold.insert([1])
    clock.advance(30)
    cold.insert(range(2, 200))  # many rows do not matter to an interval-only policy
    clock.advance(29.999)
    assert cold.engine.scheduler.tick() == []
    assert not cold.manifest_path.exists()
    clock.advance(0.001)
    ids = cold.engine.scheduler.tick()
    assert_flushed_by(cold, ids, "interval", 199)
    # The next interval runs from the oldest row written after that flush.
    clock.advance(10)
    cold.insert([500])
    clock.advance(59.999)
    assert cold.engine.scheduler.tick() == []
    clock.advance(0.001)
    assert len(cold.engine.scheduler.tick()) == 1
    assert cold.count() == 200


def test_tick_takes_an_explicit_time(cold, clock):
    with_policy(cold, "interval:10")
    cold.insert([1])
    now = clock()
    assert cold.engine.scheduler.tick(now + 9_999) == []
    assert len(cold.engine.scheduler.tick(now + 10_000)) == 1
    assert hot_count(cold) == 0


def test_interval_is_measured_across_a_restart(cold, clock):
    with_policy(cold, "interval:60")
    cold.insert([1])
    clock.advance(45)
    cold.restart()
    clock.advance(14.999)
    assert cold.engine.scheduler.tick() == []
    clock.advance(0.001)
    assert len(cold.engine.scheduler.tick()) == 1


# ---------------------------------------------------------------- both


def test_rows_and_interval_policy_flushes_on_whichever_comes_first(cold, clock):
    with_policy(cold, "rows:5,interval:60")
    cold.insert(range(0, 3))
    clock.advance(59.999)
    assert cold.engine.scheduler.tick() == []
    cold.insert(range(3, 5))  # fifth row: due by count before the interval
    assert_flushed_by(cold, cold.engine.scheduler.tick(), "rows", 5)

    cold.insert([10])
    clock.advance(59.999)
    assert cold.engine.scheduler.tick() == []
    clock.advance(0.001)
    assert_flushed_by(cold, cold.engine.scheduler.tick(), "interval", 1)
    assert cold.count() == 6
    assert [j.status for j in flush_jobs(cold)] == ["completed", "completed"]


def test_table_without_a_policy_is_never_flushed_by_the_scheduler(cold, clock):
    cold.create("SHARED")
    cold.insert(range(0, 100))
    clock.advance(365 * 24 * 3600)
    assert cold.engine.scheduler.tick() == []
    assert hot_count(cold) == 100


# ---------------------------------------------------------------- STREAM eviction


def test_stream_rows_vanish_at_their_ttl_and_eviction_removes_them_later(cold, clock):
    cold.engine.execute(
        "CREATE STREAM TABLE t (id BIGINT PRIMARY KEY, v INT) WITH (TTL_SECONDS = 10)"
    )
    cold.engine.execute("INSERT INTO t VALUES (1, 1), (2, 2)")
    clock.advance(5)
    cold.engine.execute("INSERT INTO t VALUES (3, 3)")
    clock.advance(4.999)
    assert cold.engine.scheduler.tick() == []
    assert cold.engine.execute("SELECT id FROM t ORDER BY id").rows() == [(1,), (2,), (3,)]

    clock.advance(0.001)  # rows 1 and 2 are exactly 10 s old now
    # Invisible at once, before any eviction ran.
    assert cold.engine.execute("SELECT id FROM t ORDER BY id").rows() == [(3,)]
    assert cold.engine.execute("SELECT COUNT(*) FROM t").scalar() == 1
    assert hot_count(cold) == 3

    ids = cold.engine.scheduler.tick()
    assert len(ids) == 1
    job = cold.engine.jobs.jobs[ids[0]]
    assert (job.job_type, job.status, job.rows) == ("evict", "completed", 2)
    assert hot_count(cold) == 1
    assert cold.engine.execute("SELECT id FROM t").rows() == [(3,)]
    assert cold.engine.scheduler.tick() == []

    clock.advance(5)
    assert cold.engine.execute("SELECT COUNT(*) FROM t").scalar() == 0
    assert len(cold.engine.scheduler.tick()) == 1
    assert hot_count(cold) == 0
    cold.restart()
    assert cold.engine.execute("SELECT COUNT(*) FROM t").scalar() == 0
    assert not (cold.table_dir / "manifest.json").exists()


def test_stream_rows_expire_across_a_restart_without_any_eviction(cold, clock):
    cold.engine.execute("CREATE STREAM TABLE t (id BIGINT PRIMARY KEY) WITH (TTL_SECONDS = 60)")
    cold.engine.execute("INSERT INTO t VALUES (1), (2)")
    cold.restart()
    clock.advance(60)
    assert cold.engine.execute("SELECT COUNT(*) FROM t").scalar() == 0
    assert hot_count(cold) == 2


def test_scheduler_never_flushes_a_stream_table(cold, clock):
    cold.engine.execute("CREATE STREAM TABLE t (id BIGINT PRIMARY KEY) WITH (TTL_SECONDS = 3600)")
    cold.engine.execute("INSERT INTO t SELECT value FROM range(0, 500)")
    clock.advance(3599)
    assert cold.engine.scheduler.tick() == []
    assert flush_jobs(cold) == []
    assert hot_count(cold) == 500
    assert list(cold.data_dir.rglob("*.parquet")) == []
