"""The default flush policy bounds the hot tier (issue 15): a table without
FLUSH_POLICY is flushed by the scheduler once its hot rows reach
``DEFAULT_ROWS`` versions or ``DEFAULT_BYTES``; ``bytes:N`` and ``rows:N``
set bounds of their own, ``interval:S`` alone keeps the default size bounds,
``'none'`` opts out. The scheduler never reads the hot rows of a table nobody
touched since the open, unless their age matters (an interval policy)."""

from __future__ import annotations

import pyarrow as pa
import pytest

from engine.catalog import flush_policy
from engine.errors import InvalidOptionError

DDL = "CREATE TABLE {t} (id BIGINT PRIMARY KEY, name TEXT){with_}"


def data(lo: int, hi: int) -> pa.Table:
    ids = list(range(lo, hi))
    return pa.table({"id": pa.array(ids, pa.int64()), "name": [f"row-{i}" for i in ids]})


@pytest.fixture
def small_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    """Default bounds a test can reach: 1,000 rows or 1 MB."""
    monkeypatch.setattr(flush_policy, "DEFAULT_ROWS", 1000)
    monkeypatch.setattr(flush_policy, "DEFAULT_BYTES", 2**20)


def make(eng, t: str, policy: str | None = None) -> None:
    with_ = f" WITH (FLUSH_POLICY = '{policy}')" if policy is not None else ""
    eng.execute(DDL.format(t=t, with_=with_))


def hot(eng, t: str) -> int:
    table = eng.catalog.get_table("default", t)
    prov = eng.db.provider(table)
    return sum(len(p.rows) for p in prov.partitions.values())


def flushed_reasons(eng) -> list[str]:
    return sorted(j.message for j in eng.jobs.jobs.values() if j.job_type == "flush")


def test_a_table_without_a_policy_is_flushed_at_the_default_row_bound(open_engine, small_defaults):
    eng = open_engine(background_jobs=False)
    make(eng, "t")
    eng.insert_arrow("t", data(0, 999))
    assert eng.scheduler.tick() == []
    eng.execute("INSERT INTO t VALUES (5000, 'the thousandth')")
    assert len(eng.scheduler.tick()) == 1
    assert hot(eng, "t") == 0
    assert eng.execute("SELECT count(*) FROM t").rows() == [(1000,)]
    assert "policy: rows" in flushed_reasons(eng)[0]


def test_the_default_byte_bound_flushes_wide_rows_before_the_row_bound(open_engine, monkeypatch):
    monkeypatch.setattr(flush_policy, "DEFAULT_BYTES", 200_000)
    eng = open_engine(background_jobs=False)
    make(eng, "t")
    wide = pa.table({"id": pa.array(range(100), pa.int64()), "name": ["x" * 4000] * 100})
    eng.insert_arrow("t", wide)  # 400 KB in 100 rows: far below 1M rows
    (job,) = eng.scheduler.tick()
    assert "policy: bytes" in eng.jobs.jobs[job].message
    assert hot(eng, "t") == 0
    assert eng.execute("SELECT count(*) FROM t").rows() == [(100,)]


def test_a_bytes_policy_sets_the_table_its_own_bound(open_engine):
    eng = open_engine(background_jobs=False)
    make(eng, "t", "bytes:50000")
    eng.insert_arrow("t", data(0, 100))
    assert eng.scheduler.tick() == []  # a few KB
    eng.insert_arrow("t", data(100, 5000))
    assert len(eng.scheduler.tick()) == 1
    assert hot(eng, "t") == 0


def test_none_opts_out_of_every_bound(open_engine, small_defaults):
    eng = open_engine(background_jobs=False)
    make(eng, "t", "NONE")
    eng.insert_arrow("t", data(0, 5000))
    assert eng.scheduler.tick() == []
    assert hot(eng, "t") == 5000
    eng.execute("ALTER TABLE t SET (FLUSH_POLICY = 'rows:10')")
    assert len(eng.scheduler.tick()) == 1
    eng.execute("ALTER TABLE t SET (FLUSH_POLICY = 'none')")
    eng.insert_arrow("t", data(5000, 10_000))
    assert eng.scheduler.tick() == []


def test_an_interval_policy_keeps_the_default_size_bounds(open_engine, small_defaults, clock):
    eng = open_engine(background_jobs=False)
    make(eng, "t", "interval:3600")
    eng.insert_arrow("t", data(0, 1500))
    (job,) = eng.scheduler.tick()
    assert "policy: rows" in eng.jobs.jobs[job].message


def test_a_rows_policy_replaces_the_default_bounds(open_engine, small_defaults):
    eng = open_engine(background_jobs=False)
    make(eng, "t", "rows:3000")
    eng.insert_arrow("t", data(0, 2000))
    assert eng.scheduler.tick() == []


@pytest.mark.parametrize("policy", ["none:1", "bytes:0", "bytes:x", "bytes:5,bytes:6", "nothing"])
def test_a_bad_flush_policy_is_refused(open_engine, policy):
    eng = open_engine(background_jobs=False)
    with pytest.raises(InvalidOptionError, match="FLUSH_POLICY"):
        make(eng, "t", policy)
    assert eng.catalog.find_table("default", "t") is None


def test_the_scheduler_leaves_tables_untouched_since_the_open_unread(
    open_engine, reopen, small_defaults, clock
):
    eng = open_engine(background_jobs=False)
    make(eng, "plain", "none")
    make(eng, "timed", "interval:60")
    eng.insert_arrow("plain", data(0, 500))
    eng.insert_arrow("timed", data(0, 500))
    eng = reopen(eng, background_jobs=False)
    ids = {t: eng.catalog.get_table("default", t).table_id for t in ("plain", "timed")}
    assert eng.scheduler.tick() == []
    # the interval policy needs the rows' ages; the other table stays unread
    assert eng.db.find_provider(ids["plain"]) is None
    assert eng.db.find_provider(ids["timed"]) is not None
    clock.advance(61)
    assert len(eng.scheduler.tick()) == 1
    assert eng.db.find_provider(ids["plain"]) is None
    # once a statement touches it, its policy applies again
    eng.execute("ALTER TABLE plain SET (FLUSH_POLICY = 'rows:100')")
    eng.execute("SELECT count(*) FROM plain").rows()
    assert len(eng.scheduler.tick()) == 1
    assert hot(eng, "plain") == 0


def test_system_tables_shows_a_byte_bound_and_none(open_engine):
    import json

    eng = open_engine(background_jobs=False)
    make(eng, "b", "bytes:5000000,interval:9")
    make(eng, "n", "none")
    make(eng, "d")

    def shown(t: str) -> dict:
        sql = f"SELECT options FROM system.tables WHERE table_name = '{t}'"
        return json.loads(eng.execute(sql).scalar())["flush_policy"]

    assert shown("b") == {"row_limit": None, "interval_seconds": 9, "byte_limit": 5_000_000}
    assert shown("n") == {"row_limit": None, "interval_seconds": None, "none": True}
    assert shown("d") == {"row_limit": None, "interval_seconds": None}
