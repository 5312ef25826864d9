"""System tables: every table and column, read-only, built on demand.

``system.namespaces``, ``system.tables`` (with the ``options`` JSON),
``system.columns``, ``system.jobs``, ``system.manifests`` (equal to
``manifest.json`` on disk), ``system.segments``, ``system.stats`` and
``system.users`` are checked against what the engine did; the fake clock of
``conftest`` makes every engine-side timestamp exact. ``system.live_queries``
lives in ``test_live_queries.py``; who may read what is in ``test_roles.py``.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from conftest import START_MS, FakeClock

import engine as engine_pkg
from engine import Engine, KalamError
from engine.errors import StorageCorruptionError, TableNotFoundError
from engine.manifest import encode as encode_manifest
from engine.manifest import read_manifest_json

EXPECTED_COLUMNS = {
    "namespaces": ["namespace", "created_at", "table_count", "options"],
    "tables": [
        "namespace",
        "table_name",
        "table_type",
        "created_at",
        "updated_at",
        "schema_version",
        "options",
    ],
    "columns": [
        "namespace",
        "table_name",
        "column_id",
        "column_name",
        "data_type",
        "nullable",
        "default",
        "is_primary_key",
        "ordinal",
        "key_position",
    ],
    "jobs": [
        "job_id",
        "job_type",
        "namespace",
        "table_name",
        "scope",
        "status",
        "rows",
        "segments",
        "message",
        "error",
        "created_at",
        "started_at",
        "finished_at",
    ],
    "manifests": [
        "namespace",
        "table_name",
        "scope",
        "version",
        "segment_count",
        "row_count",
        "size_bytes",
        "flushed_seq",
        "in_sync",
        "manifest_json",
    ],
    "live_queries": [
        "query_id",
        "session_id",
        "user",
        "sql",
        "start_time",
        "duration_ms",
        "state",
        "kind",
        "table_name",
        "changes_delivered",
    ],
    "stats": ["metric", "value"],
    "users": [
        "user",
        "role",
        "created_at",
        "has_password",
        "failed_login_attempts",
        "locked_until",
    ],
}
# The issue asks for "one row per segment with statistics" without naming columns.
SEGMENT_COLUMNS_AT_LEAST = {
    "namespace",
    "table_name",
    "scope",
    "path",
    "row_count",
    "size_bytes",
    "min_seq",
    "max_seq",
    "column_stats",
}


def at(ms: int) -> datetime:
    """An engine timestamp (naive UTC, as system tables return it) for clock ``ms``."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).replace(tzinfo=None)


def rows(eng: Engine, sql: str, params: Any = None, **kwargs: Any) -> list[dict[str, Any]]:
    return eng.execute(sql, params, **kwargs).to_pylist()


def one(eng: Engine, sql: str, params: Any = None, **kwargs: Any) -> dict[str, Any]:
    found = rows(eng, sql, params, **kwargs)
    assert len(found) == 1, found
    return found[0]


def table_options(eng: Engine, name: str, namespace: str = "default") -> dict[str, Any]:
    row = one(
        eng,
        "SELECT options FROM system.tables WHERE namespace = ? AND table_name = ?",
        [namespace, name],
    )
    return json.loads(row["options"])


def stats(eng: Engine) -> dict[str, str]:
    return {r["metric"]: r["value"] for r in rows(eng, "SELECT * FROM system.stats")}


def scope_dir(eng: Engine, table: str, scope: str | None = None) -> Path:
    base = eng.data_dir / "storage" / "default" / table
    return base / scope if scope else base


def disk_manifest(eng: Engine, table: str, scope: str | None = None) -> dict[str, Any]:
    # manifest.json with its change log (manifest.jsonl) replayed
    path = scope_dir(eng, table, scope) / "manifest.json"
    return json.loads(encode_manifest(read_manifest_json(path)))


def system_manifest(eng: Engine, table: str, scope: str | None = None) -> dict[str, Any]:
    where = "scope IS NULL" if scope is None else "scope = ?"
    params = [table] if scope is None else [table, scope]
    return one(
        eng,
        f"SELECT * FROM system.manifests WHERE namespace = 'default' AND table_name = ? AND {where}",
        params,
    )


@pytest.fixture
def engine(open_engine: Callable[..., Engine]) -> Engine:
    """Durability is not under test here: skip the per-statement fsync."""
    return open_engine(durability="async")


@pytest.fixture
def quiet(open_engine: Callable[..., Engine]) -> Engine:
    """An engine whose flushes and evictions happen only when a test asks."""
    return open_engine(durability="async", background_jobs=False)


# ---------------------------------------------------------------- shape


@pytest.mark.parametrize("name", sorted(EXPECTED_COLUMNS))
def test_each_system_table_has_the_documented_columns(engine: Engine, name: str) -> None:
    assert engine.execute(f"SELECT * FROM system.{name}").columns == EXPECTED_COLUMNS[name]


def test_system_segments_has_one_row_per_segment_with_its_statistics_columns(
    engine: Engine,
) -> None:
    columns = set(engine.execute("SELECT * FROM system.segments").columns)
    assert not SEGMENT_COLUMNS_AT_LEAST - columns


def test_unknown_system_table_is_an_error_naming_the_known_ones(engine: Engine) -> None:
    with pytest.raises(TableNotFoundError) as info:
        engine.execute("SELECT * FROM system.nope")
    assert info.value.code == "TABLE_NOT_FOUND"
    assert "system.nope" in info.value.message
    for name in EXPECTED_COLUMNS:
        assert f"system.{name}" in info.value.message


@pytest.mark.parametrize(
    "sql",
    [
        "INSERT INTO system.users (user, role) VALUES ('mallory', 'system')",
        "UPDATE system.users SET role = 'system'",
        "DELETE FROM system.jobs",
        "DROP TABLE system.tables",
        "ALTER TABLE system.tables ADD COLUMN x INT",
        "CREATE TABLE system.extra (id INT PRIMARY KEY)",
        "FLUSH TABLE system.tables WAIT",
    ],
)
def test_writing_a_system_table_is_refused_as_read_only(engine: Engine, sql: str) -> None:
    before = rows(engine, "SELECT user, role FROM system.users ORDER BY user")
    with pytest.raises(KalamError) as info:
        engine.execute(sql)
    message = info.value.message.lower()
    assert "read-only" in message or "read only" in message, info.value
    # The hint must not send the user to a statement that is itself refused.
    assert "create namespace system" not in message, info.value
    assert rows(engine, "SELECT user, role FROM system.users ORDER BY user") == before


def test_system_tables_take_filters_joins_with_user_tables_and_aggregates(engine: Engine) -> None:
    engine.execute("CREATE NAMESPACE app")
    engine.execute("CREATE TABLE app.a (id INT PRIMARY KEY, x TEXT, y TEXT)")
    engine.execute("CREATE TABLE app.b (id INT PRIMARY KEY)")
    engine.execute("CREATE TABLE owners (table_name TEXT PRIMARY KEY, owner TEXT)")
    engine.execute("INSERT INTO owners VALUES ('a', 'ann'), ('b', 'ben')")

    filtered = engine.execute(
        "SELECT table_name FROM system.tables WHERE namespace = 'app' ORDER BY table_name"
    )
    assert filtered.rows() == [("a",), ("b",)]

    aggregated = engine.execute(
        "SELECT table_name, count(*) AS n, max(ordinal) AS last FROM system.columns "
        "WHERE namespace = 'app' GROUP BY table_name ORDER BY table_name"
    )
    assert aggregated.rows() == [("a", 3, 3), ("b", 1, 1)]

    joined = engine.execute(
        "SELECT o.owner, t.table_type, count(c.column_name) AS n "
        "FROM system.tables t JOIN owners o ON o.table_name = t.table_name "
        "JOIN system.columns c ON c.namespace = t.namespace AND c.table_name = t.table_name "
        "WHERE t.namespace = 'app' GROUP BY o.owner, t.table_type ORDER BY o.owner"
    )
    assert joined.rows() == [("ann", "SHARED", 3), ("ben", "SHARED", 1)]


def test_system_tables_are_built_on_demand(engine: Engine) -> None:
    count = "SELECT count(*) FROM system.tables WHERE table_name = 'fresh'"
    assert engine.execute(count).scalar() == 0
    engine.execute("CREATE TABLE fresh (id INT PRIMARY KEY)")
    assert engine.execute(count).scalar() == 1
    engine.execute("DROP TABLE fresh")
    assert engine.execute(count).scalar() == 0


# ---------------------------------------------------------------- system.namespaces


def test_namespaces_list_each_namespace_with_created_at_table_count_and_options(
    engine: Engine, clock: FakeClock
) -> None:
    clock.advance(60)
    engine.execute("CREATE NAMESPACE sales")
    engine.execute("CREATE TABLE sales.orders (id INT PRIMARY KEY)")
    engine.execute("CREATE USER TABLE sales.carts (id INT PRIMARY KEY)")
    engine.execute("CREATE TABLE plain (id INT PRIMARY KEY)")

    found = {r["namespace"]: r for r in rows(engine, "SELECT * FROM system.namespaces")}
    assert set(found) == {"default", "sales"}
    assert found["default"]["created_at"] == at(START_MS)
    assert found["sales"]["created_at"] == at(START_MS + 60_000)
    assert found["default"]["table_count"] == 1
    assert found["sales"]["table_count"] == 2
    for row in found.values():
        assert isinstance(json.loads(row["options"]), dict)

    engine.execute("DROP TABLE sales.orders")
    assert one(engine, "SELECT table_count FROM system.namespaces WHERE namespace = 'sales'") == {
        "table_count": 1
    }
    engine.execute("DROP NAMESPACE sales CASCADE")
    assert engine.execute("SELECT namespace FROM system.namespaces").rows() == [("default",)]


# ---------------------------------------------------------------- system.tables


def test_tables_list_every_table_with_type_times_and_schema_version(
    engine: Engine, clock: FakeClock
) -> None:
    engine.execute("CREATE USER TABLE u (id INT PRIMARY KEY)")
    clock.advance(1)
    engine.execute("CREATE SHARED TABLE s (id INT PRIMARY KEY)")
    clock.advance(1)
    engine.execute("CREATE STREAM TABLE e (id INT) WITH (TTL_SECONDS = 60)")
    clock.advance(1)
    engine.execute("CREATE TABLE d (id INT PRIMARY KEY)")

    found = {
        r["table_name"]: r
        for r in rows(engine, "SELECT * FROM system.tables WHERE namespace = 'default'")
    }
    assert {name: r["table_type"] for name, r in found.items()} == {
        "u": "USER",
        "s": "SHARED",
        "e": "STREAM",
        "d": "SHARED",  # no type given
    }
    for offset, name in enumerate(["u", "s", "e", "d"]):
        assert found[name]["created_at"] == at(START_MS + offset * 1000)
        assert found[name]["updated_at"] == found[name]["created_at"]
        assert found[name]["schema_version"] == 1


def test_type_given_as_a_with_option_is_the_table_type(engine: Engine) -> None:
    engine.execute("CREATE TABLE t (id INT PRIMARY KEY) WITH (TYPE = 'USER')")
    assert one(engine, "SELECT table_type FROM system.tables WHERE table_name = 't'") == {
        "table_type": "USER"
    }
    assert table_options(engine, "t")["table_type"] == "USER"


@pytest.mark.parametrize(
    ("create", "expected"),
    [
        pytest.param(
            "CREATE USER TABLE t (id INT PRIMARY KEY, v TEXT) "
            "WITH (FLUSH_POLICY = 'rows:100', COMPRESSION = 'snappy', ROW_GROUP_SIZE = 500)",
            {
                "table_type": "USER",
                "flush_policy": {"row_limit": 100, "interval_seconds": None},
                "ttl_seconds": None,
                "compression": "snappy",
                "row_group_size": 500,
            },
            id="user-rows-snappy",
        ),
        pytest.param(
            "CREATE SHARED TABLE t (id INT PRIMARY KEY, v TEXT) "
            "WITH (FLUSH_POLICY = 'rows:10,interval:30', STORAGE_ID = 'local')",
            {
                "table_type": "SHARED",
                "flush_policy": {"row_limit": 10, "interval_seconds": 30},
                "ttl_seconds": None,
                "compression": "zstd",
                "storage_id": "local",
            },
            id="shared-rows-interval",
        ),
        pytest.param(
            "CREATE TABLE t (id INT PRIMARY KEY) "
            "WITH (TYPE = 'SHARED', FLUSH_POLICY = 'interval:5', COMPRESSION = 'none')",
            {
                "table_type": "SHARED",
                "flush_policy": {"row_limit": None, "interval_seconds": 5},
                "compression": "none",
            },
            id="shared-by-type-option",
        ),
        pytest.param(
            "CREATE STREAM TABLE t (id INT, v TEXT) WITH (TTL_SECONDS = 90, COMPRESSION = 'none')",
            {"table_type": "STREAM", "ttl_seconds": 90, "compression": "none"},
            id="stream-ttl",
        ),
    ],
)
def test_table_options_json_holds_type_flush_policy_ttl_compression_and_with_options(
    engine: Engine, create: str, expected: dict[str, Any]
) -> None:
    engine.execute(create)
    options = table_options(engine, "t")
    for key in ("table_type", "flush_policy", "ttl_seconds", "storage_path", "compression"):
        assert key in options, (key, options)
    assert {k: options.get(k) for k in expected} == expected


def test_table_options_json_follows_alter_table_set(engine: Engine, clock: FakeClock) -> None:
    engine.execute("CREATE USER TABLE u (id INT PRIMARY KEY) WITH (FLUSH_POLICY = 'rows:100')")
    engine.execute("CREATE STREAM TABLE e (id INT) WITH (TTL_SECONDS = 60)")
    clock.advance(30)
    engine.execute(
        "ALTER TABLE u SET (FLUSH_POLICY = 'rows:5,interval:10', COMPRESSION = 'snappy', "
        "ROW_GROUP_SIZE = 250)"
    )
    engine.execute("ALTER TABLE e SET (TTL_SECONDS = 120)")

    u = table_options(engine, "u")
    assert u["flush_policy"] == {"row_limit": 5, "interval_seconds": 10}
    assert u["compression"] == "snappy"
    assert u["row_group_size"] == 250
    assert u["table_type"] == "USER"
    assert table_options(engine, "e")["ttl_seconds"] == 120

    row = one(engine, "SELECT created_at, updated_at FROM system.tables WHERE table_name = 'u'")
    assert row == {"created_at": at(START_MS), "updated_at": at(START_MS + 30_000)}


def test_stream_table_flush_policy_given_at_creation_is_not_silently_dropped(
    engine: Engine,
) -> None:
    # ALTER TABLE refuses FLUSH_POLICY on a STREAM table; CREATE must either refuse it
    # too or keep it in the options. Accepting it and then forgetting it is neither.
    try:
        engine.execute(
            "CREATE STREAM TABLE e (id INT) WITH (TTL_SECONDS = 60, FLUSH_POLICY = 'rows:5')"
        )
    except KalamError as exc:
        assert exc.code == "INVALID_OPTION", exc
        return
    assert table_options(engine, "e")["flush_policy"] == {"row_limit": 5, "interval_seconds": None}


@pytest.mark.parametrize(("kind", "scope"), [("SHARED", None), ("USER", "alice")])
def test_table_storage_path_is_where_a_flush_writes_the_manifest(
    quiet: Engine, kind: str, scope: str | None
) -> None:
    quiet.execute(f"CREATE {kind} TABLE t (id INT PRIMARY KEY)")
    quiet.execute("INSERT INTO t VALUES (1)", user=scope)
    quiet.flush("t")
    path = table_options(quiet, "t")["storage_path"]
    if scope is not None:
        assert "{user_id}" in path
        path = path.replace("{user_id}", scope)
    assert (quiet.data_dir / path / "manifest.json").is_file()


# ---------------------------------------------------------------- system.columns


def test_columns_describe_every_column(engine: Engine) -> None:
    engine.execute(
        "CREATE TABLE t (id BIGINT PRIMARY KEY, name TEXT NOT NULL, "
        "score DOUBLE DEFAULT 1.5, note VARCHAR)"
    )
    found = rows(
        engine,
        "SELECT * FROM system.columns WHERE namespace = 'default' AND table_name = 't' "
        "ORDER BY ordinal",
    )
    shape = [
        (
            r["ordinal"],
            r["column_id"],
            r["column_name"],
            r["data_type"],
            r["nullable"],
            r["is_primary_key"],
        )
        for r in found
    ]
    assert shape == [
        (1, 1, "id", "BIGINT", False, True),
        (2, 2, "name", "TEXT", False, False),
        (3, 3, "score", "DOUBLE", True, False),
        (4, 4, "note", "TEXT", True, False),
    ]
    defaults = {r["column_name"]: r["default"] for r in found}
    assert defaults["id"] is None and defaults["name"] is None and defaults["note"] is None
    assert float(defaults["score"]) == 1.5


def test_columns_keep_ids_across_alter_table(engine: Engine) -> None:
    engine.execute("CREATE TABLE t (id INT PRIMARY KEY, a TEXT, b INT)")
    engine.execute("ALTER TABLE t RENAME COLUMN a TO alpha")
    engine.execute("ALTER TABLE t DROP COLUMN b")
    engine.execute("ALTER TABLE t ADD COLUMN b BIGINT")
    found = engine.execute(
        "SELECT ordinal, column_id, column_name, data_type FROM system.columns "
        "WHERE table_name = 't' ORDER BY ordinal"
    ).rows()
    assert found == [(1, 1, "id", "INT"), (2, 2, "alpha", "TEXT"), (3, 4, "b", "BIGINT")]
    version = "SELECT schema_version FROM system.tables WHERE table_name = 't'"
    assert engine.execute(version).scalar() == 4


# ---------------------------------------------------------------- system.jobs


def jobs(eng: Engine) -> dict[str, dict[str, Any]]:
    return {r["job_id"]: r for r in rows(eng, "SELECT * FROM system.jobs")}


@pytest.mark.parametrize("how", ["FLUSH TABLE t WAIT", "Engine.flush"])
def test_a_flush_is_recorded_as_a_completed_job(quiet: Engine, how: str) -> None:
    quiet.execute("CREATE TABLE t (id INT PRIMARY KEY)")
    quiet.execute("INSERT INTO t VALUES (1), (2), (3)")
    result = quiet.execute(how) if how.startswith("FLUSH") else quiet.flush("t")
    assert result.job_id
    job = jobs(quiet)[result.job_id]
    assert job["job_type"] == "flush"
    assert (job["namespace"], job["table_name"], job["scope"]) == ("default", "t", None)
    assert job["status"] == "completed"
    assert (job["rows"], job["segments"]) == (3, 1)
    assert "3 row(s)" in job["message"]
    assert job["error"] is None
    # The fake clock does not move during the flush: all three are its time.
    assert job["created_at"] == job["started_at"] == job["finished_at"] == at(START_MS)


def test_jobs_show_queued_then_running_then_completed(quiet: Engine) -> None:
    quiet.execute("CREATE TABLE t (id INT PRIMARY KEY)")
    quiet.execute("INSERT INTO t VALUES (1)")
    entered, release = threading.Event(), threading.Event()

    def hold(job: Any) -> None:
        entered.set()
        release.wait(30)

    # Jobs run one at a time: a job holding the worker keeps the next one queued.
    blocker = quiet.jobs.submit("flush", hold, namespace="default", table_name="t")
    try:
        assert entered.wait(10)
        queued = quiet.execute("FLUSH TABLE t")
        assert queued.job_id
        now = jobs(quiet)
        assert now[blocker.job_id]["status"] == "running"
        assert now[blocker.job_id]["started_at"] is not None
        assert now[blocker.job_id]["finished_at"] is None
        assert now[queued.job_id]["status"] == "queued"
        assert now[queued.job_id]["started_at"] is None
        assert now[queued.job_id]["finished_at"] is None
    finally:
        release.set()
    quiet.jobs.wait(quiet.jobs.jobs[queued.job_id], timeout=30)
    done = jobs(quiet)[queued.job_id]
    assert (done["status"], done["rows"], done["error"]) == ("completed", 1, None)


def test_a_failed_flush_job_records_its_error(quiet: Engine, reopen: Callable[..., Engine]) -> None:
    quiet.execute("CREATE TABLE t (id INT PRIMARY KEY)")
    quiet.execute("INSERT INTO t VALUES (1)")
    quiet.flush("t")
    quiet.execute("INSERT INTO t VALUES (2)")
    manifest = scope_dir(quiet, "t") / "manifest.json"
    quiet.close()
    manifest.write_text("{ not json")
    eng = reopen(quiet, durability="async", background_jobs=False)
    with pytest.raises(StorageCorruptionError):
        eng.execute("FLUSH TABLE t WAIT")
    failed = [j for j in jobs(eng).values() if j["status"] == "failed"]
    assert len(failed) == 1, jobs(eng)
    assert failed[0]["job_type"] == "flush"
    assert "manifest.json" in failed[0]["error"]
    assert failed[0]["finished_at"] is not None


def test_policy_flushes_and_stream_evictions_are_recorded_as_jobs(
    quiet: Engine, clock: FakeClock
) -> None:
    quiet.execute("CREATE TABLE t (id INT PRIMARY KEY) WITH (FLUSH_POLICY = 'rows:2')")
    quiet.execute("CREATE STREAM TABLE e (id INT) WITH (TTL_SECONDS = 10)")
    quiet.execute("INSERT INTO t VALUES (1), (2)")
    quiet.execute("INSERT INTO e VALUES (1), (2), (3)")
    clock.advance(11)
    ids = quiet.scheduler.tick()
    assert len(ids) == 2
    found = jobs(quiet)
    by_type = {found[i]["job_type"]: found[i] for i in ids}
    assert set(by_type) == {"flush", "evict"}
    flush, evict = by_type["flush"], by_type["evict"]
    assert (flush["table_name"], flush["status"], flush["rows"]) == ("t", "completed", 2)
    assert (evict["table_name"], evict["status"], evict["rows"]) == ("e", "completed", 3)
    assert flush["finished_at"] == at(START_MS + 11_000)


def test_repair_table_is_recorded_as_a_repair_job(quiet: Engine) -> None:
    quiet.execute("CREATE TABLE t (id INT PRIMARY KEY)")
    quiet.execute("INSERT INTO t VALUES (1)")
    quiet.flush("t")
    quiet.execute("REPAIR TABLE t")
    repairs = [j for j in jobs(quiet).values() if j["job_type"] == "repair"]
    assert len(repairs) == 1, jobs(quiet)
    assert (repairs[0]["table_name"], repairs[0]["status"]) == ("t", "completed")


# ---------------------------------------------------------------- system.manifests (acceptance 2)


@pytest.mark.parametrize("how", ["FLUSH TABLE t WAIT", "Engine.flush"])
def test_manifest_json_exists_when_the_flush_returns_and_equals_system_manifests(
    quiet: Engine, how: str
) -> None:
    quiet.execute("CREATE TABLE t (id INT PRIMARY KEY, v TEXT)")
    quiet.execute("INSERT INTO t VALUES (1, 'a'), (2, 'b')")
    path = scope_dir(quiet, "t") / "manifest.json"
    assert not path.exists()
    if how.startswith("FLUSH"):
        quiet.execute(how)
    else:
        quiet.flush("t")
    assert path.is_file()
    row = system_manifest(quiet, "t")
    assert json.loads(row["manifest_json"]) == disk_manifest(quiet, "t")
    assert row["in_sync"] is True


def test_system_manifests_equal_disk_for_every_user_scope_after_each_flush(quiet: Engine) -> None:
    # No Delta log: alice's deleted row stays a delete marker instead of a rewrite.
    quiet.execute("CREATE USER TABLE t (id INT PRIMARY KEY, v TEXT) WITH (DELTA = false)")
    quiet.execute("INSERT INTO t VALUES (1, 'a'), (2, 'b')", user="alice")
    quiet.execute("INSERT INTO t VALUES (1, 'x')", user="bob")
    quiet.flush("t")
    quiet.execute("INSERT INTO t VALUES (3, 'c')", user="alice")
    quiet.execute("DELETE FROM t WHERE id = 1", user="alice")
    quiet.flush("t")

    for scope, version, segments, live_rows in [("alice", 2, 2, 2), ("bob", 1, 1, 1)]:
        row = system_manifest(quiet, "t", scope)
        on_disk = disk_manifest(quiet, "t", scope)
        assert json.loads(row["manifest_json"]) == on_disk
        assert row["in_sync"] is True
        assert row["version"] == on_disk["version"] == version
        assert row["segment_count"] == len(on_disk["segments"]) == segments
        assert row["flushed_seq"] == on_disk["flushed_seq"]
        assert row["size_bytes"] == sum(s["size_bytes"] for s in on_disk["segments"])
        visible = quiet.execute("SELECT count(*) FROM t", user=scope).scalar()
        assert visible == live_rows
    # Row counts are what the segments hold (alice's deleted id 1 is superseded, not rewritten).
    assert system_manifest(quiet, "t", "alice")["row_count"] == 3


def test_a_damaged_manifest_json_shows_as_out_of_sync(quiet: Engine) -> None:
    quiet.execute("CREATE TABLE t (id INT PRIMARY KEY)")
    quiet.execute("INSERT INTO t VALUES (1)")
    quiet.flush("t")
    path = scope_dir(quiet, "t") / "manifest.json"
    doc = json.loads(path.read_text())
    doc["flushed_seq"] += 1
    path.write_text(json.dumps(doc))
    assert system_manifest(quiet, "t")["in_sync"] is False


def test_tables_never_flushed_have_no_manifest_rows(quiet: Engine) -> None:
    quiet.execute("CREATE TABLE t (id INT PRIMARY KEY)")
    quiet.execute("INSERT INTO t VALUES (1)")
    assert rows(quiet, "SELECT * FROM system.manifests") == []
    assert rows(quiet, "SELECT * FROM system.segments") == []


# ---------------------------------------------------------------- system.segments


def test_segments_have_one_row_per_segment_with_its_statistics(quiet: Engine) -> None:
    quiet.execute("CREATE TABLE t (id INT PRIMARY KEY, v TEXT)")
    quiet.execute("INSERT INTO t VALUES (1, 'a'), (5, 'e')")
    quiet.flush("t")
    quiet.execute("INSERT INTO t VALUES (10, 'j'), (11, 'k'), (12, 'l')")
    quiet.flush("t")

    found = rows(quiet, "SELECT * FROM system.segments WHERE table_name = 't' ORDER BY min_seq")
    manifest = disk_manifest(quiet, "t")
    assert len(found) == len(manifest["segments"]) == 2
    assert [r["row_count"] for r in found] == [2, 3]
    id_column = "1"  # column ids key the statistics
    assert [json.loads(r["column_stats"])[id_column]["min"] for r in found] == [1, 10]
    assert [json.loads(r["column_stats"])[id_column]["max"] for r in found] == [5, 12]
    for row, entry in zip(found, manifest["segments"], strict=True):
        assert row["namespace"] == "default" and row["scope"] is None
        file = scope_dir(quiet, "t") / row["path"]
        assert file.is_file()
        assert row["size_bytes"] == file.stat().st_size == entry["size_bytes"]
        assert row["min_seq"] == entry["min_seq"] <= row["max_seq"] == entry["max_seq"]
        digest = hashlib.sha256(file.read_bytes()).hexdigest()
        assert row["checksum"].endswith(digest)
    assert found[0]["max_seq"] < found[1]["min_seq"]


# ---------------------------------------------------------------- system.stats


def test_stats_count_namespaces_tables_hot_rows_segments_bytes_and_flushes(
    quiet: Engine,
) -> None:
    quiet.execute("CREATE NAMESPACE other")
    quiet.execute("CREATE TABLE other.x (id INT PRIMARY KEY)")
    quiet.execute("CREATE TABLE t (id INT PRIMARY KEY)")
    quiet.execute("CREATE USER TABLE u (id INT PRIMARY KEY)")
    quiet.execute("INSERT INTO t VALUES (1), (2)")
    quiet.execute("INSERT INTO u VALUES (1)", user="alice")
    quiet.execute("INSERT INTO u VALUES (1)", user="bob")
    quiet.flush("t")
    quiet.flush("u")
    quiet.execute("INSERT INTO t VALUES (3)")
    quiet.execute("INSERT INTO other.x VALUES (1), (2)")

    figures = stats(quiet)
    assert int(figures["namespaces"]) == 2
    assert int(figures["tables"]) == 3
    assert int(figures["hot_rows"]) == 3
    assert int(figures["segments"]) == 3  # t, and u once per user
    on_disk = sum(p.stat().st_size for p in (quiet.data_dir / "storage").rglob("*.parquet"))
    assert int(figures["bytes_on_disk"]) == on_disk
    assert int(figures["flushes"]) == 2


def test_stats_count_queries_run_and_segments_pruned(quiet: Engine) -> None:
    quiet.execute("CREATE TABLE t (id INT PRIMARY KEY)")
    quiet.execute("INSERT INTO t VALUES (1), (2)")
    quiet.flush("t")
    quiet.execute("INSERT INTO t VALUES (10), (11)")
    quiet.flush("t")
    before = stats(quiet)
    point = quiet.execute("SELECT * FROM t WHERE id = 10")
    assert point.rows() == [(10,)]
    assert point.stats["default.t"]["segments_pruned"] == 1
    quiet.execute("SELECT 1")
    after = stats(quiet)
    # Two queries in between, plus the first stats query itself.
    assert int(after["queries_run"]) - int(before["queries_run"]) == 3
    assert int(after["segments_pruned"]) - int(before["segments_pruned"]) == 1


def test_stats_report_uptime_and_engine_version(engine: Engine) -> None:
    figures = stats(engine)
    assert {"uptime_seconds", "engine_version"} <= set(figures)
    assert float(figures["uptime_seconds"]) >= 0
    assert figures["engine_version"] == engine_pkg.__version__


# ---------------------------------------------------------------- system.users


def test_users_list_root_and_every_user_with_role_and_created_at(
    engine: Engine, clock: FakeClock
) -> None:
    clock.advance(5)
    engine.execute("CREATE USER ops ROLE dba")
    clock.advance(5)
    engine.execute("SELECT 1", user="alice")  # created on first use
    found = engine.execute("SELECT user, role, created_at FROM system.users ORDER BY user").rows()
    assert found == [
        ("alice", "user", at(START_MS + 10_000)),
        ("ops", "dba", at(START_MS + 5_000)),
        ("root", "system", at(START_MS)),
    ]
