"""FLUSH: statements, jobs, segment files, manifest.json, SHOW MANIFEST,
progress, and the invariants a flush must keep (``_seq`` monotonic, one
writer of manifest.json)."""

from __future__ import annotations

import hashlib

import pyarrow.parquet as pq
import pytest

pytest.register_assert_rewrite("conftest_cold")

from conftest_cold import OTHER_USER, Cold, read_json, segment_files  # noqa: E402

from engine.errors import InvalidOptionError  # noqa: E402

pytest_plugins = ["conftest_cold"]

MANIFEST_KEYS = {
    "table_id",
    "scope",
    "version",
    "created_at",
    "updated_at",
    "flushed_seq",
    "last_segment_id",
    "segments",
    "superseded_seqs",
}
SEGMENT_KEYS = {
    "id",
    "path",
    "row_count",
    "size_bytes",
    "created_at",
    "min_seq",
    "max_seq",
    "schema_version",
    "checksum",
    "column_stats",
    "columns",
}


def hot_rows(cold: Cold, *, user: str | None = None) -> int:
    return cold.sql("SELECT * FROM t", user=user).stats["default.t"]["hot_rows"]


def job_of(cold: Cold, job_id: str):
    return cold.engine.jobs.wait(cold.engine.jobs.jobs[job_id])


# ---------------------------------------------------------------- statements and jobs


@pytest.mark.parametrize(
    "statement",
    ["FLUSH TABLE t WAIT", "FLUSH TABLE default.t WAIT", "STORAGE FLUSH TABLE t WAIT"],
)
def test_flush_table_wait_moves_rows_to_a_segment_and_returns_its_job(cold, statement):
    cold.create("SHARED")
    cold.insert(range(0, 30))
    assert hot_rows(cold) == 30
    result = cold.sql(statement)
    assert result.job_id
    assert result.message == "Flushed 30 row(s) of default.t into 1 segment(s)"
    assert result.rows_affected == 30
    job = cold.engine.jobs.jobs[result.job_id]
    assert (job.job_type, job.status, job.rows, job.segments) == ("flush", "completed", 30, 1)
    assert hot_rows(cold) == 0
    assert cold.count() == 30
    assert segment_files(cold.scope_dir) == ["batch-1.parquet"]


def test_flush_table_without_wait_returns_a_job_to_wait_on(cold):
    cold.create("SHARED")
    cold.insert(range(0, 5))
    result = cold.sql("FLUSH TABLE t")
    assert result.job_id
    assert result.job_id in result.message
    assert "default.t" in result.message
    job = job_of(cold, result.job_id)
    assert job.status == "completed"
    assert job.rows == 5
    assert hot_rows(cold) == 0
    assert cold.count() == 5


def test_engine_flush_returns_a_job_id_and_message(cold):
    cold.create("SHARED")
    cold.insert(range(0, 3))
    result = cold.engine.flush("t", wait=True)
    assert result.job_id
    assert result.message == "Flushed 3 row(s) of default.t into 1 segment(s)"
    assert cold.engine.jobs.jobs[result.job_id].status == "completed"
    cold.insert(range(3, 5))
    assert cold.engine.flush("default.t").message == (
        "Flushed 2 row(s) of default.t into 1 segment(s)"
    )
    assert hot_rows(cold) == 0
    assert cold.count() == 5


def test_engine_flush_without_wait_returns_before_the_job_is_awaited(cold):
    cold.create("SHARED")
    cold.insert(range(0, 4))
    result = cold.engine.flush("t", wait=False)
    assert result.job_id
    assert job_of(cold, result.job_id).status == "completed"
    assert hot_rows(cold) == 0


@pytest.mark.parametrize("statement", ["FLUSH TABLE t WAIT", "FLUSH TABLE t"])
def test_flush_with_nothing_pending_says_so(cold, statement):
    cold.create("SHARED")
    result = cold.sql(statement)
    assert result.message == "Nothing to flush in default.t"
    assert result.job_id is None
    assert not cold.manifest_path.exists()
    cold.insert(range(0, 3))
    cold.flush()
    assert cold.sql(statement).message == "Nothing to flush in default.t"
    assert cold.engine.flush("t").message == "Nothing to flush in default.t"
    assert cold.manifest()["version"] == 1


def test_flush_all_flushes_every_table_with_pending_rows(cold):
    cold.create("SHARED")
    cold.engine.execute("CREATE NAMESPACE other")
    cold.engine.execute("CREATE SHARED TABLE other.p (id BIGINT PRIMARY KEY)")
    cold.engine.execute("CREATE SHARED TABLE idle (id BIGINT PRIMARY KEY)")
    cold.engine.execute("CREATE STREAM TABLE s (id BIGINT PRIMARY KEY) WITH (TTL_SECONDS = 60)")
    cold.insert(range(0, 4))
    cold.engine.execute("INSERT INTO other.p VALUES (1), (2)")
    cold.engine.execute("INSERT INTO s VALUES (1)")
    result = cold.engine.execute("FLUSH ALL WAIT")
    assert result.job_id
    assert len(result.job_id.split(",")) == 2
    assert result.rows_affected == 6
    assert "2 table(s)" in result.message
    assert hot_rows(cold) == 0
    assert cold.engine.execute("SELECT * FROM other.p").stats["other.p"]["hot_rows"] == 0
    assert cold.engine.execute("SELECT COUNT(*) FROM s").scalar() == 1  # STREAM: untouched
    assert not (cold.data_dir / "storage" / "default" / "s" / "manifest.json").exists()
    assert cold.engine.execute("FLUSH ALL WAIT").message.startswith("Nothing to flush")


def test_flush_all_in_a_namespace_leaves_other_namespaces_hot(cold):
    cold.create("SHARED")
    cold.engine.execute("CREATE NAMESPACE other")
    cold.engine.execute("CREATE SHARED TABLE other.p (id BIGINT PRIMARY KEY)")
    cold.insert(range(0, 4))
    cold.engine.execute("INSERT INTO other.p VALUES (1), (2)")
    result = cold.engine.execute("FLUSH ALL IN other WAIT")
    assert result.job_id
    assert result.rows_affected == 2
    assert cold.engine.execute("SELECT * FROM other.p").stats["other.p"]["hot_rows"] == 0
    assert hot_rows(cold) == 4
    assert not cold.manifest_path.exists()


def test_flushing_a_stream_table_is_an_error(cold):
    cold.engine.execute("CREATE STREAM TABLE s (id BIGINT PRIMARY KEY) WITH (TTL_SECONDS = 60)")
    cold.engine.execute("INSERT INTO s VALUES (1)")
    for run in (
        lambda: cold.engine.execute("FLUSH TABLE s WAIT"),
        lambda: cold.engine.execute("FLUSH TABLE s"),
        lambda: cold.engine.flush("s"),
    ):
        with pytest.raises(InvalidOptionError) as info:
            run()
        assert info.value.code == "INVALID_OPTION"
        assert "default.s" in info.value.message
        assert "STREAM" in info.value.message
    assert cold.engine.execute("SELECT COUNT(*) FROM s").scalar() == 1
    assert not (cold.data_dir / "storage" / "default" / "s" / "manifest.json").exists()


# ---------------------------------------------------------------- segment files


def test_segment_is_sorted_by_primary_key_in_32k_row_groups_compressed(cold):
    cold.create("SHARED")
    n = 70_000
    # 7919 is prime, so this visits every id once, far from key order.
    cold.sql(
        f"INSERT INTO t (id, v) SELECT (value * 7919) % {n}, CAST(value AS INT) FROM range(0, {n})"
    )
    cold.flush()
    path = cold.scope_dir / "batch-1.parquet"
    meta = pq.ParquetFile(path).metadata
    assert meta.num_rows == n
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [
        32_768,
        32_768,
        4_464,
    ]
    for i in range(meta.num_row_groups):
        group = meta.row_group(i)
        for j in range(group.num_columns):
            assert group.column(j).compression not in ("UNCOMPRESSED", None)
    ids = pq.read_table(path, columns=["id"]).column(0).to_pylist()
    assert ids == list(range(n))
    assert cold.count() == n
    assert cold.stats("SELECT * FROM t")["hot_rows"] == 0


def test_user_table_flush_writes_one_segment_and_manifest_per_user(cold):
    cold.create("USER")
    users = {"alice": range(0, 5), "bob": range(0, 3), "carol": range(10, 12)}
    for user, ids in users.items():
        cold.insert(ids, user=user, v=lambda i, u=user: len(u) * 100 + i)
    result = cold.flush()
    assert result.message == "Flushed 10 row(s) of default.t into 3 segment(s) across 3 scope(s)"
    assert not (cold.table_dir / "manifest.json").exists()
    for user, ids in users.items():
        directory = cold.table_dir / user
        assert segment_files(directory) == ["batch-1.parquet"]
        manifest = read_json(directory / "manifest.json")
        assert manifest["scope"] == user
        segment = pq.read_table(directory / "batch-1.parquet")
        assert segment.column("id").to_pylist() == list(ids)  # logical names in the file
        assert segment.column("v").to_pylist() == [len(user) * 100 + i for i in ids]
        assert hot_rows(cold, user=user) == 0
        assert cold.rows(user=user) == [(i, len(user) * 100 + i) for i in ids]


def test_no_manifest_json_before_the_first_flush(cold, kind):
    cold.create(kind)
    cold.insert(range(0, 5))
    cold.sql("UPDATE t SET v = 1 WHERE id = 1")
    cold.sql("DELETE FROM t WHERE id = 2")
    cold.restart()
    assert cold.count() == 4
    assert not cold.manifest_path.exists()
    assert list(cold.data_dir.rglob("manifest.json")) == []
    assert list(cold.data_dir.rglob("*.parquet")) == []
    assert len(cold.sql("SHOW MANIFEST t")) == 0
    cold.flush()
    assert cold.manifest_path.exists()


# ---------------------------------------------------------------- manifest.json


def test_manifest_json_records_every_field_of_the_flush(cold, kind):
    cold.create(kind)
    cold.insert(range(0, 10), v=lambda i: i * 3)
    cold.sql("UPDATE t SET note = NULL WHERE id < 2")
    min_seq, max_seq = cold.sql("SELECT MIN(_seq), MAX(_seq) FROM t").rows()[0]
    cold.flush()
    m = cold.manifest()
    assert set(m) >= MANIFEST_KEYS
    table_id = cold.engine.catalog.get_table("default", "t").table_id
    assert m["table_id"] == table_id
    assert m["scope"] == (cold.user if kind == "USER" else None)
    assert m["version"] == 1
    assert m["flushed_seq"] == max_seq
    assert m["last_segment_id"] == 1
    assert m["superseded_seqs"] == []
    assert m["created_at"] <= m["updated_at"]
    [seg] = m["segments"]
    assert set(seg) == SEGMENT_KEYS
    path = cold.scope_dir / seg["path"]
    assert seg["id"] == 1
    assert seg["path"] == "batch-1.parquet"
    assert seg["row_count"] == 10
    assert seg["size_bytes"] == path.stat().st_size
    assert seg["checksum"] == "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
    assert (seg["min_seq"], seg["max_seq"]) == (min_seq, max_seq)
    assert seg["schema_version"] == 1
    stats = seg["column_stats"]
    assert set(stats) == {"1", "2", "3"}  # column ids, not names
    assert seg["columns"] == {"1": "id", "2": "v", "3": "note"}  # id -> name in the file
    assert {k: (s["min"], s["max"], s["null_count"]) for k, s in stats.items()} == {
        "1": (0, 9, 0),
        "2": (0, 27, 0),
        "3": ("n2", "n9", 2),
    }


def test_second_flush_appends_a_segment_and_records_superseded_versions(cold, kind):
    # Delete markers as such: a Delta-publishing table rewrites marked segments.
    cold.create(kind, with_="DELTA = false")
    cold.insert(range(0, 10))
    cold.flush()
    first = cold.manifest()
    old_seqs = dict(cold.sql("SELECT id, _seq FROM t WHERE id IN (3, 4)").rows())
    cold.sql("UPDATE t SET v = 33 WHERE id = 3")
    cold.sql("DELETE FROM t WHERE id = 4")
    cold.insert(range(10, 15))
    cold.flush()
    second = cold.manifest()
    assert second["version"] == first["version"] + 1
    assert second["created_at"] == first["created_at"]
    assert second["flushed_seq"] > first["flushed_seq"]
    assert second["last_segment_id"] == 2
    assert [s["path"] for s in second["segments"]] == ["batch-1.parquet", "batch-2.parquet"]
    assert second["segments"][0] == first["segments"][0]  # segments never change
    assert second["segments"][1]["row_count"] == 6  # 5 new rows + the new version of 3
    assert sorted(second["superseded_seqs"]) == sorted(old_seqs.values())
    assert segment_files(cold.scope_dir) == ["batch-1.parquet", "batch-2.parquet"]


def test_show_manifest_lists_the_segments_of_manifest_json(cold, kind):
    cold.create(kind)
    cold.insert(range(0, 10))
    cold.flush()
    cold.insert(range(10, 12))
    cold.flush()
    if kind == "USER":
        cold.insert(range(0, 7), user=OTHER_USER)
        cold.flush()
    m = cold.manifest()
    for statement in ("SHOW MANIFEST t", "SHOW MANIFEST default.t"):
        result = cold.sql(statement)
        rows = result.to_pylist()
        assert [(r["segment_id"], r["path"], r["row_count"]) for r in rows] == [
            (s["id"], s["path"], s["row_count"]) for s in m["segments"]
        ]
        for row, seg in zip(rows, m["segments"], strict=True):
            assert row["checksum"] == seg["checksum"]
            assert row["size_bytes"] == seg["size_bytes"]
            assert (row["min_seq"], row["max_seq"]) == (seg["min_seq"], seg["max_seq"])
            assert row["flushed_seq"] == m["flushed_seq"]
            assert row["manifest_version"] == m["version"]
    if kind == "USER":
        other = cold.sql("SHOW MANIFEST t", user=OTHER_USER).to_pylist()
        assert [(r["scope"], r["row_count"]) for r in other] == [(OTHER_USER, 7)]


# ---------------------------------------------------------------- progress


def test_progress_callback_ends_with_done_equal_to_total(cold):
    cold.create("USER")
    for user, n in (("alice", 4), ("bob", 3), ("carol", 5)):
        cold.insert(range(0, n), user=user)
    calls: list[tuple[int, int]] = []
    cold.engine.flush("t", progress=lambda done, total: calls.append((done, total)))
    assert calls, "progress was never called"
    assert calls[-1] == (12, 12)
    assert all(total == 12 for _, total in calls)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)


def test_progress_reaches_total_when_the_flush_holds_tombstones(cold):
    cold.create("SHARED")
    cold.insert(range(0, 10))
    cold.flush()
    cold.sql("DELETE FROM t WHERE id < 3")
    cold.insert(range(10, 15))
    calls: list[tuple[int, int]] = []
    cold.engine.flush("t", progress=lambda done, total: calls.append((done, total)))
    assert calls
    done, total = calls[-1]
    assert done == total, calls


# ---------------------------------------------------------------- invariants


def test_seq_grows_across_flushes_and_restarts_even_if_the_clock_steps_back(cold, clock):
    cold.create("SHARED")
    seen: list[int] = []

    def new_seq(i: int) -> int:
        cold.insert([i])
        return cold.sql("SELECT _seq FROM t WHERE id = ?", [i]).scalar()

    for i in range(0, 12):
        seen.append(new_seq(i))
        if i % 3 == 0:
            cold.flush()
        if i % 4 == 1:
            cold.restart()
        if i == 6:
            clock.advance(-3600)  # the wall clock stepped back an hour
    assert seen == sorted(seen)
    assert len(set(seen)) == len(seen)
    # Updates get a new, higher seq too, whether the row was hot or cold.
    cold.flush()
    cold.sql("UPDATE t SET v = 5 WHERE id = 0")
    assert cold.sql("SELECT _seq FROM t WHERE id = 0").scalar() > seen[-1]
    assert cold.manifest()["flushed_seq"] == seen[-1]


def test_manifest_json_is_written_only_by_a_flush(cold, kind):
    # Delete markers as such: a Delta-publishing table rewrites marked segments.
    cold.create(kind, with_="DELTA = false")
    cold.insert(range(0, 10))
    cold.flush()
    path = cold.manifest_path
    log = path.with_name("manifest.jsonl")  # its change log: flushes append there

    def fingerprint():
        return [(p.read_bytes(), p.stat().st_mtime_ns, p.stat().st_ino) for p in (path, log)]

    before = fingerprint()
    cold.insert(range(10, 20))
    cold.sql("UPDATE t SET v = 0 WHERE id < 15")
    cold.sql("DELETE FROM t WHERE id IN (1, 11)")
    cold.sql("SELECT * FROM t WHERE id = 3")
    cold.sql("SHOW MANIFEST t")
    cold.engine.execute("CREATE SHARED TABLE other (id BIGINT PRIMARY KEY)")
    cold.engine.execute("INSERT INTO other VALUES (1)")
    cold.engine.flush("other")
    cold.restart()
    cold.sql("SELECT COUNT(*) FROM t")
    assert fingerprint() == before
    assert segment_files(cold.scope_dir) == ["batch-1.parquet"]
    cold.flush()
    after = fingerprint()
    assert after != before
    assert read_json(path)["version"] == 2
    assert cold.rows() == sorted([(i, 0 if i < 15 else i) for i in range(20) if i not in (1, 11)])


def test_hot_manifest_copy_is_authoritative_over_a_stale_manifest_json(cold, kind):
    # Delete markers as such: a Delta-publishing table rewrites marked segments.
    cold.create(kind, with_="DELTA = false")
    cold.insert(range(0, 10))
    cold.flush()
    stale = cold.manifest_path.read_bytes()
    cold.sql("DELETE FROM t WHERE id = 0")
    cold.insert(range(10, 20))
    cold.flush()
    cold.engine.close()
    cold.manifest_path.write_bytes(stale)  # an intact but older manifest.json
    cold.restart()
    assert cold.rows() == [(i, i) for i in range(1, 20)]
    assert [r["path"] for r in cold.sql("SHOW MANIFEST t").to_pylist()] == [
        "batch-1.parquet",
        "batch-2.parquet",
    ]
