"""STREAM tables and the cold tier: never flushed, rows invisible from the
moment they pass TTL_SECONDS (reads, DML and key checks never wait for the
eviction job), eviction only reclaims space."""

from __future__ import annotations

import pytest

pytest.register_assert_rewrite("conftest_cold")

from conftest_cold import Cold  # noqa: E402

from engine.errors import InvalidOptionError, PrimaryKeyViolationError  # noqa: E402
from engine.jobs.flush import evict_expired  # noqa: E402
from engine.storage import keys  # noqa: E402

pytest_plugins = ["conftest_cold"]

TTL = 30


@pytest.fixture
def stream(cold: Cold) -> Cold:
    cold.engine.execute(
        f"CREATE STREAM TABLE s (id BIGINT PRIMARY KEY, v INT) WITH (TTL_SECONDS = {TTL})"
    )
    return cold


def ids(cold: Cold) -> list[int]:
    return [i for (i,) in cold.engine.execute("SELECT id FROM s ORDER BY id").rows()]


def hot_count(cold: Cold) -> int:
    table_id = cold.engine.catalog.get_table("default", "s").table_id
    return sum(1 for _ in cold.engine.store.scan(keys.rows_prefix(table_id)))


@pytest.mark.parametrize(
    "statement",
    ["FLUSH TABLE s", "FLUSH TABLE s WAIT", "FLUSH TABLE default.s WAIT", "STORAGE FLUSH TABLE s"],
)
def test_flush_of_a_stream_table_is_an_error_that_changes_nothing(stream, statement):
    stream.engine.execute("INSERT INTO s VALUES (1, 1)")
    with pytest.raises(InvalidOptionError) as info:
        stream.engine.execute(statement)
    assert info.value.code == "INVALID_OPTION"
    assert "STREAM" in info.value.message
    assert ids(stream) == [1]
    assert hot_count(stream) == 1
    assert not (stream.data_dir / "storage" / "default" / "s").exists() or not list(
        (stream.data_dir / "storage" / "default" / "s").iterdir()
    )


def test_flush_all_skips_stream_tables(stream):
    stream.engine.execute("INSERT INTO s VALUES (1, 1)")
    assert stream.engine.execute("FLUSH ALL WAIT").message.startswith("Nothing to flush")
    assert hot_count(stream) == 1
    assert list(stream.data_dir.rglob("manifest.json")) == []


def test_row_is_visible_until_exactly_its_ttl(stream, clock):
    stream.engine.execute("INSERT INTO s VALUES (1, 1)")
    clock.advance(TTL - 0.001)
    assert ids(stream) == [1]
    clock.advance(0.001)
    assert ids(stream) == []
    assert stream.engine.execute("SELECT COUNT(*) FROM s").scalar() == 0
    assert stream.engine.execute("SELECT * FROM s WHERE id = 1").rows() == []
    assert hot_count(stream) == 1  # still stored: nothing evicted it yet


def test_update_and_delete_do_not_see_expired_rows(stream, clock):
    stream.engine.execute("INSERT INTO s VALUES (1, 1), (2, 2)")
    clock.advance(TTL / 2)
    stream.engine.execute("INSERT INTO s VALUES (3, 3)")
    clock.advance(TTL / 2)
    assert stream.engine.execute("UPDATE s SET v = 100 WHERE id >= 1").rows_affected == 1
    assert stream.engine.execute("DELETE FROM s WHERE v >= 0").rows_affected == 1
    assert ids(stream) == []


def test_expired_key_can_be_inserted_again_before_eviction(stream, clock):
    stream.engine.execute("INSERT INTO s VALUES (1, 1)")
    clock.advance(TTL)
    assert ids(stream) == []
    stream.engine.execute("INSERT INTO s VALUES (1, 2)")
    assert stream.engine.execute("SELECT id, v FROM s").rows() == [(1, 2)]


def test_live_key_is_still_a_primary_key_violation(stream, clock):
    stream.engine.execute("INSERT INTO s VALUES (1, 1)")
    clock.advance(TTL - 1)
    with pytest.raises(PrimaryKeyViolationError):
        stream.engine.execute("INSERT INTO s VALUES (1, 2)")
    assert stream.engine.execute("SELECT id, v FROM s").rows() == [(1, 1)]


def test_eviction_removes_only_expired_rows_and_survives_restart(stream, clock):
    stream.engine.execute("INSERT INTO s VALUES (1, 1), (2, 2)")
    clock.advance(TTL - 1)
    stream.engine.execute("INSERT INTO s VALUES (3, 3)")
    clock.advance(1)
    tdef = stream.engine.catalog.get_table("default", "s")
    assert evict_expired(stream.engine.db, tdef) == 2
    assert hot_count(stream) == 1
    assert stream.engine.execute("SELECT id, v FROM s").rows() == [(3, 3)]
    assert evict_expired(stream.engine.db, tdef) == 0
    stream.restart()
    assert stream.engine.execute("SELECT id, v FROM s").rows() == [(3, 3)]
    assert hot_count(stream) == 1
    stream.engine.execute("INSERT INTO s VALUES (1, 10)")
    assert ids(stream) == [1, 3]
