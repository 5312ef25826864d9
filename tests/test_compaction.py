"""Compaction (STORAGE COMPACT TABLE): fewer segments, no dead versions, same answers.

Answers are compared before and after compacting for every table type and
data placement, through schema changes, across restarts and later flushes;
a process killed at each step of a compaction loses and duplicates nothing;
files a running statement may still read are removed only after it finishes.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from crash_runs import run_to_death

pytest.register_assert_rewrite("conftest_cold")

from conftest_cold import read_json, segment_files, stray_files  # noqa: E402

from engine import Engine  # noqa: E402
from engine.errors import InvalidOptionError, PermissionDeniedError  # noqa: E402
from engine.jobs.compact import compact_table, parse_compact_policy  # noqa: E402

CHILD = Path(__file__).with_name("compact_child.py")
USERS = {"SHARED": ["root"], "USER": ["alice", "bob"]}


def manifest_rows(eng: Engine, user: str = "root") -> list[dict]:
    return eng.execute("SHOW MANIFEST t", user=user).to_pylist()


def snapshot(eng: Engine, user: str) -> list[tuple]:
    return eng.execute("SELECT * FROM t ORDER BY id", user=user).rows()


def fill(eng: Engine, kind: str, *, flushes: int = 4, per: int = 25) -> None:
    """Several segments per scope, cold rows updated and deleted after their
    flush (delete markers), and hot versions over cold rows."""
    # Markers pile up only where no Delta log is published (a publishing
    # table's flush rewrites segments with dead rows itself).
    eng.execute(
        f"CREATE {kind} TABLE t (id BIGINT PRIMARY KEY, v INT, s TEXT) WITH (DELTA = false)"
    )
    for user in USERS[kind]:
        for f in range(flushes):
            rows = ", ".join(f"({i}, {i * 10}, 's{i}')" for i in range(f * per, (f + 1) * per))
            eng.execute(f"INSERT INTO t VALUES {rows}", user=user)
            eng.flush("t")
        eng.execute("UPDATE t SET v = v + 1 WHERE id % 7 = 0", user=user)
        eng.execute("DELETE FROM t WHERE id % 11 = 0", user=user)
        eng.flush("t")
        eng.execute("UPDATE t SET s = 'hot' WHERE id % 13 = 0", user=user)
        eng.execute("DELETE FROM t WHERE id = 3", user=user)


@pytest.mark.parametrize("kind", ["SHARED", "USER"])
def test_compaction_keeps_every_answer_and_leaves_one_segment_without_markers(
    engines, data_dir, kind
):
    eng = engines.open(background_jobs=False)
    fill(eng, kind)
    before = {u: snapshot(eng, u) for u in USERS[kind]}
    assert all(len(manifest_rows(eng, u)) >= 5 for u in USERS[kind])
    result = eng.execute("COMPACT TABLE t WAIT")
    assert f"segment(s) into {len(USERS[kind])}," in result.message
    for u in USERS[kind]:
        assert snapshot(eng, u) == before[u]
        assert len(manifest_rows(eng, u)) == 1
    scope_dirs = (
        [data_dir / "storage/default/t" / u for u in USERS[kind]]
        if kind == "USER"
        else [data_dir / "storage/default/t"]
    )
    for directory in scope_dirs:
        cold = read_json(directory / "manifest.json")
        assert cold["superseded_seqs"] == []
        assert len(segment_files(directory)) == 1
    eng.flush("t")  # the hot versions supersede compacted rows, which keep their _seq
    for u in USERS[kind]:
        assert snapshot(eng, u) == before[u]
    eng = engines.reopen(eng, background_jobs=False)
    for u in USERS[kind]:
        assert snapshot(eng, u) == before[u]
        for probe in (0, 3, 13, 14, 22, 99):  # point lookups through the key index
            want = [r for r in before[u] if r[0] == probe]
            assert eng.execute("SELECT * FROM t WHERE id = ?", [probe], user=u).rows() == want


def test_compacted_segment_is_sorted_by_key_and_superseded_seqs_are_cleared(engines, data_dir):
    eng = engines.open(background_jobs=False)
    eng.execute("CREATE TABLE t (id BIGINT PRIMARY KEY, v INT) WITH (DELTA = false)")
    for ids in ([5, 9, 1], [7, 3, 8], [2, 6, 4]):
        eng.execute("INSERT INTO t VALUES " + ", ".join(f"({i}, {i})" for i in ids))
        eng.flush("t")
    eng.execute("DELETE FROM t WHERE id IN (9, 3)")
    eng.execute("UPDATE t SET v = 100 WHERE id = 1")
    eng.flush("t")
    manifest = read_json(data_dir / "storage/default/t/manifest.json")
    assert len(manifest["superseded_seqs"]) == 3
    eng.execute("COMPACT TABLE t WAIT")
    manifest = read_json(data_dir / "storage/default/t/manifest.json")
    assert manifest["superseded_seqs"] == []
    (seg,) = manifest["segments"]
    import pyarrow.parquet as pq

    data = pq.read_table(data_dir / "storage/default/t" / seg["path"])
    ids = data.column(data.column_names[0]).to_pylist()
    assert ids == [1, 2, 4, 5, 6, 7, 8]
    assert segment_files(data_dir / "storage/default/t") == [seg["path"]]
    assert eng.execute("SELECT v FROM t WHERE id = 1").scalar() == 100


def test_compaction_reads_old_segments_through_schema_changes(engines):
    eng = engines.open(background_jobs=False)
    eng.execute("CREATE TABLE t (id BIGINT PRIMARY KEY, a INT, b TEXT)")
    eng.execute("INSERT INTO t VALUES (1, 10, 'x'), (2, 20, 'y')")
    eng.flush("t")
    eng.execute("ALTER TABLE t ADD COLUMN c TEXT DEFAULT 'dflt'")
    eng.execute("ALTER TABLE t RENAME COLUMN a TO a2")
    eng.execute("INSERT INTO t VALUES (3, 30, 'z', 'cz')")
    eng.flush("t")
    eng.execute("ALTER TABLE t DROP COLUMN b")
    eng.execute("ALTER TABLE t MODIFY COLUMN a2 BIGINT")
    eng.execute("UPDATE t SET c = 'new' WHERE id = 2")
    eng.flush("t")
    before = eng.execute("SELECT * FROM t ORDER BY id").rows()
    eng.execute("COMPACT TABLE t WAIT")
    assert eng.execute("SELECT * FROM t ORDER BY id").rows() == before
    eng.execute("ALTER TABLE t ADD COLUMN b TEXT")  # a re-added name resurrects nothing
    assert eng.execute("SELECT b FROM t ORDER BY id").rows() == [(None,)] * 3
    eng = engines.reopen(eng, background_jobs=False)
    assert eng.execute("SELECT id, a2, c FROM t ORDER BY id").rows() == [
        (1, 10, "dflt"),
        (2, 20, "new"),
        (3, 30, "cz"),
    ]


def test_a_running_statement_keeps_the_files_it_may_read_until_it_ends(engines, data_dir):
    eng = engines.open(background_jobs=False)
    eng.execute("CREATE TABLE t (id BIGINT PRIMARY KEY, v INT)")
    for i in range(3):
        eng.execute(f"INSERT INTO t VALUES ({i}, {i})")
        eng.flush("t")
    directory = data_dir / "storage/default/t"
    old = segment_files(directory)
    assert len(old) == 3
    with eng.db.readers.reading():  # a query that started before the compaction
        eng.execute("COMPACT TABLE t WAIT")
        assert set(old) <= set(segment_files(directory))
        # A flush meanwhile must not sweep them as orphans either.
        eng.execute("INSERT INTO t VALUES (10, 10)")
        eng.flush("t")
        assert set(old) <= set(segment_files(directory))
        assert eng.execute("SELECT count(*) FROM t").scalar() == 4
    assert not set(old) & set(segment_files(directory))
    assert eng.execute("SELECT sum(v) FROM t").scalar() == 13


def test_retired_files_are_removed_at_once_when_nothing_reads(engines, data_dir):
    eng = engines.open(background_jobs=False)
    eng.execute("CREATE TABLE t (id BIGINT PRIMARY KEY)")
    for i in range(2):
        eng.execute(f"INSERT INTO t VALUES ({i})")
        eng.flush("t")
    eng.execute("COMPACT TABLE t WAIT")
    assert stray_files(data_dir / "storage/default/t") == []
    assert len(segment_files(data_dir / "storage/default/t")) == 1


def test_compacting_a_compact_table_changes_nothing(engines, data_dir):
    eng = engines.open(background_jobs=False)
    eng.execute("CREATE TABLE t (id BIGINT PRIMARY KEY)")
    eng.execute("INSERT INTO t VALUES (1), (2)")
    assert eng.execute("COMPACT TABLE t WAIT").message == "Nothing to compact in default.t"
    eng.flush("t")
    files = segment_files(data_dir / "storage/default/t")
    assert eng.execute("STORAGE COMPACT TABLE t WAIT").message == "Nothing to compact in default.t"
    assert segment_files(data_dir / "storage/default/t") == files


def test_compaction_is_a_job_with_its_outcome_in_system_jobs(engines):
    eng = engines.open(background_jobs=False)
    fill(eng, "SHARED", flushes=2, per=5)
    started = eng.execute("COMPACT TABLE t")
    assert started.job_id and "started" in started.message
    eng.db.jobs.wait(eng.db.jobs.jobs[started.job_id])
    row = eng.execute(
        "SELECT job_type, status, message FROM system.jobs WHERE job_id = ?", [started.job_id]
    ).rows()
    assert row[0][:2] == ("compact", "completed")
    assert "into 1" in row[0][2]


def test_compact_refuses_stream_tables_unknown_tables_and_plain_users(engines):
    eng = engines.open(background_jobs=False)
    eng.execute("CREATE STREAM TABLE s (id BIGINT PRIMARY KEY) WITH (TTL_SECONDS = 60)")
    with pytest.raises(InvalidOptionError, match="STREAM tables have no segments"):
        eng.execute("COMPACT TABLE s WAIT")
    with pytest.raises(Exception, match="nope"):
        eng.execute("COMPACT TABLE nope")
    eng.execute("CREATE USER TABLE u (id BIGINT PRIMARY KEY)")
    eng.execute("CREATE USER carol ROLE user")
    with pytest.raises(PermissionDeniedError):
        eng.execute("COMPACT TABLE u WAIT", user="carol")


def test_compact_policy_option_is_validated_and_drives_the_scheduler(engines):
    assert parse_compact_policy("none") == {}
    assert parse_compact_policy("segments:4,dead:30") == {"segments": 4, "dead_percent": 30}
    for bad in (
        "segments:1",
        "dead:0",
        "dead:101",
        "rows:5",
        "segments:x",
        "segments:3,segments:4",
    ):
        with pytest.raises(InvalidOptionError):
            parse_compact_policy(bad)
    eng = engines.open(background_jobs=False)
    with pytest.raises(InvalidOptionError, match="COMPACT_POLICY"):
        eng.execute("CREATE TABLE bad (id BIGINT PRIMARY KEY) WITH (COMPACT_POLICY = 'sometimes')")
    eng.execute("CREATE TABLE t (id BIGINT PRIMARY KEY) WITH (COMPACT_POLICY = 'segments:3')")
    eng.execute("CREATE TABLE off (id BIGINT PRIMARY KEY) WITH (COMPACT_POLICY = 'none')")
    for i in range(4):
        for name in ("t", "off"):
            eng.execute(f"INSERT INTO {name} VALUES ({i})")
            eng.flush(name)
    assert eng.scheduler.tick() != []
    assert len(manifest_rows(eng)) == 1
    assert len(eng.execute("SHOW MANIFEST off").rows()) == 4
    assert eng.scheduler.tick() == []  # compact now: nothing due


def test_dead_version_policy_compacts_a_scope_with_mostly_dead_rows(engines):
    eng = engines.open(background_jobs=False)
    eng.execute(
        "CREATE TABLE t (id BIGINT PRIMARY KEY) WITH (COMPACT_POLICY = 'dead:50', DELTA = false)"
    )
    eng.execute("INSERT INTO t VALUES " + ", ".join(f"({i})" for i in range(10)))
    eng.flush("t")
    eng.execute("DELETE FROM t WHERE id < 4")
    eng.flush("t")
    assert eng.scheduler.tick() == []  # 4 of 10 dead: below 50%
    eng.execute("DELETE FROM t WHERE id < 6")
    eng.flush("t")
    assert eng.scheduler.tick() != []
    (seg,) = manifest_rows(eng)
    assert seg["row_count"] == 4
    assert eng.execute("SELECT count(*) FROM t").scalar() == 4


@pytest.mark.parametrize("kind", ["SHARED", "USER"])
def test_user_scopes_are_compacted_separately_and_stay_isolated(engines, kind):
    eng = engines.open(background_jobs=False)
    fill(eng, kind, flushes=2, per=5)
    report = compact_table(eng.db, eng.catalog.get_table("default", "t"))
    assert report.scopes == len(USERS[kind])
    if kind == "USER":
        eng.execute("INSERT INTO t VALUES (500, 1, 'only alice')", user="alice")
        assert eng.execute("SELECT count(*) FROM t WHERE id = 500", user="bob").scalar() == 0


# ---------------------------------------------------------------- crashes


def run_child(data_dir: Path, step: str, kind: str) -> dict[str, dict[int, int]]:
    """Run the child to its death; returns the acknowledged rows {user: {id: v}}."""
    return run_to_death(CHILD, data_dir, step, kind)


def check(eng: Engine, model: dict[str, dict[int, int]]) -> None:
    for user, rows in model.items():
        assert eng.execute("SELECT id, v FROM t ORDER BY id", user=user).rows() == sorted(
            rows.items()
        )
        for probe in (0, 1, 2, 5, 15, 33, 39):
            want = [(probe, rows[probe])] if probe in rows else []
            got = eng.execute("SELECT id, v FROM t WHERE id = ?", [probe], user=user).rows()
            assert got == want, (user, probe)


@pytest.mark.parametrize("kind", ["SHARED", "USER"])
@pytest.mark.parametrize(
    "step", ["segments_written", "manifest_json_written", "hot_manifest_committed"]
)
def test_crash_during_compaction_loses_and_duplicates_nothing(tmp_path, step, kind):
    data_dir = (tmp_path / "data").resolve()
    model = run_child(data_dir, step, kind)
    table_dir = data_dir / "storage/default/t"
    crashed = table_dir / "alice" if kind == "USER" else table_dir
    with Engine.open(data_dir, background_jobs=False) as eng:
        check(eng, model)
        named = [r["path"] for r in manifest_rows(eng, "alice" if kind == "USER" else "root")]
        # The hot manifest copy is authoritative: until it committed, the old
        # five segments are what readers use; afterwards, the one new segment.
        assert len(named) == (1 if step == "hot_manifest_committed" else 5)
        assert set(named) <= set(segment_files(crashed))
    with Engine.open(data_dir, background_jobs=False) as eng:
        check(eng, model)
        eng.execute("COMPACT TABLE t WAIT")  # sweeps what the crash left, compacts the rest
        check(eng, model)
        for user, rows in model.items():
            eng.execute("INSERT INTO t (id, v) VALUES (100, 100)", user=user)
            rows[100] = 100
        eng.flush("t")
        check(eng, model)
        scope_dirs = [table_dir / u for u in model] if kind == "USER" else [table_dir]
        for directory in scope_dirs:
            assert stray_files(directory) == [], directory
            cold = read_json(directory / "manifest.json")
            assert sorted(s["path"] for s in cold["segments"]) == segment_files(directory)
    with Engine.open(data_dir, background_jobs=False) as eng:
        check(eng, model)


def test_compaction_of_a_composite_key_table_keeps_answers_and_sorts_by_the_whole_key(
    engines, data_dir
):
    eng = engines.open(background_jobs=False)
    eng.execute("CREATE TABLE t (a INT, b TEXT, v INT, PRIMARY KEY (a, b))")
    for rows in ("(2, 'y', 1), (1, 'z', 2)", "(1, 'a', 3), (2, 'b', 4)", "(1, 'm', 5)"):
        eng.execute(f"INSERT INTO t VALUES {rows}")
        eng.flush("t")
    eng.execute("UPDATE t SET v = 50 WHERE a = 1 AND b = 'm'")
    eng.execute("DELETE FROM t WHERE a = 2 AND b = 'y'")
    eng.flush("t")
    before = eng.execute("SELECT * FROM t ORDER BY a, b").rows()
    eng.execute("COMPACT TABLE t WAIT")
    assert eng.execute("SELECT * FROM t ORDER BY a, b").rows() == before
    (seg,) = manifest_rows(eng)
    import pyarrow.parquet as pq

    data = pq.read_table(data_dir / "storage/default/t" / seg["path"])
    a, b = (data.column(n).to_pylist() for n in data.column_names[:2])
    assert list(zip(a, b, strict=True)) == [(1, "a"), (1, "m"), (1, "z"), (2, "b")]
    assert eng.execute("SELECT v FROM t WHERE a = 1 AND b = 'm'").scalar() == 50
