"""A process killed at any step of a flush loses and duplicates nothing
(invariant 4).

``crash_child.py`` writes rows, printing each acknowledged statement, then
runs ``flush_table`` with a hook that SIGKILLs the process at one step. The
parent replays the acknowledgements into a model, reopens the data directory
and compares. Orphaned segment and temp files (the crash's own, plus planted
ones) must be ignored by readers and removed later: by the next flush of the
scope, and by ``REPAIR TABLE``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from crash_runs import run_to_death

pytest.register_assert_rewrite("conftest_cold")

from conftest_cold import read_json, segment_files, stray_files  # noqa: E402

from engine import Engine  # noqa: E402

CHILD = Path(__file__).with_name("crash_child.py")
STEPS = (
    "segment_written",
    "manifest_json_written",
    "hot_manifest_committed",
    "hot_rows_partly_removed",
)


def run_child(data_dir: Path, step: str, scenario: str, kind: str) -> dict[str, dict[int, int]]:
    """Run the child to its death; returns the acknowledged rows {user: {id: v}}."""
    return run_to_death(CHILD, data_dir, step, scenario, kind)


def check_against_model(eng: Engine, model: dict[str, dict[int, int]]) -> None:
    for user, rows in model.items():
        got = eng.execute("SELECT id, v FROM t ORDER BY id", user=user).rows()
        assert got == sorted(rows.items()), user
        assert eng.execute("SELECT COUNT(*) FROM t", user=user).scalar() == len(rows)
        dupes = eng.execute("SELECT id FROM t GROUP BY id HAVING COUNT(*) > 1", user=user).rows()
        assert dupes == [], user
        for probe in (0, 5, 33, 61):  # point lookups go through pruning
            want = [(probe, rows[probe])] if probe in rows else []
            assert (
                eng.execute("SELECT id, v FROM t WHERE id = ?", [probe], user=user).rows() == want
            )


def scope_dirs(data_dir: Path, kind: str, model: dict[str, Any]) -> list[Path]:
    table_dir = data_dir / "storage" / "default" / "t"
    return [table_dir / u for u in model] if kind == "USER" else [table_dir]


def named_segments(eng: Engine, user: str) -> list[str]:
    """The segments the engine's (hot, authoritative) manifest names for ``user``."""
    return [r["path"] for r in eng.execute("SHOW MANIFEST t", user=user).to_pylist()]


@pytest.mark.parametrize("kind", ["SHARED", "USER"])
@pytest.mark.parametrize("scenario", ["first", "second"])
@pytest.mark.parametrize("step", STEPS)
def test_crash_during_flush_loses_and_duplicates_nothing(tmp_path, step, scenario, kind):
    data_dir = (tmp_path / "data").resolve()
    model = run_child(data_dir, step, scenario, kind)
    assert all(len(rows) >= 25 for rows in model.values())
    crashed_user = "alice" if kind == "USER" else "root"

    # Plant what a flush killed inside a file write would leave behind: a temp
    # file and a segment file no manifest names. Readers must never open them.
    planted = []
    for directory in scope_dirs(data_dir, kind, model):
        directory.mkdir(parents=True, exist_ok=True)
        for name in (".batch-90.parquet.0123456789ab.tmp", "batch-90.parquet"):
            (directory / name).write_bytes(b"not parquet at all")
            planted.append(directory / name)

    with Engine.open(data_dir, background_jobs=False) as eng:
        check_against_model(eng, model)
        named = named_segments(eng, crashed_user)
        on_disk = segment_files(scope_dirs(data_dir, kind, {crashed_user: 0})[0])
        if step == "segment_written":
            # The new segment is an orphan: written, never named.
            expected_named = [] if scenario == "first" else ["batch-1.parquet"]
            assert named == expected_named
            new_id = len(expected_named) + 1
            assert f"batch-{new_id}.parquet" in on_disk
        elif step == "manifest_json_written" and scenario == "first":
            # No hot copy was ever stored: startup loaded manifest.json.
            assert named == ["batch-1.parquet"]
            assert (
                eng.execute("SELECT * FROM t", user=crashed_user).stats["default.t"]["hot_rows"]
                == 0
            )
        elif step == "manifest_json_written":
            assert named == ["batch-1.parquet"]  # the hot copy is authoritative
        else:
            expected = (
                ["batch-1.parquet"]
                if scenario == "first"
                else [
                    "batch-1.parquet",
                    "batch-2.parquet",
                ]
            )
            assert named == expected

    with Engine.open(data_dir, background_jobs=False) as eng:
        check_against_model(eng, model)  # a second start changes nothing

        # The next successful flush publishes everything and removes the orphans.
        for user, rows in model.items():
            eng.execute("INSERT INTO t (id, v) VALUES (100, 100)", user=user)
            rows[100] = 100
        eng.flush("t")
        check_against_model(eng, model)
        for directory in scope_dirs(data_dir, kind, model):
            assert stray_files(directory) == [], directory
            assert not any(p.exists() for p in planted if p.parent == directory)
            m = read_json(directory / "manifest.json")
            assert sum(s["row_count"] for s in m["segments"]) >= len(
                model[directory.name if kind == "USER" else "root"]
            )
        for user in model:
            assert eng.execute("SELECT * FROM t", user=user).stats["default.t"]["hot_rows"] == 0

    with Engine.open(data_dir, background_jobs=False) as eng:
        check_against_model(eng, model)


@pytest.mark.parametrize("kind", ["SHARED", "USER"])
@pytest.mark.parametrize("scenario", ["first", "second"])
def test_repair_table_removes_the_orphans_a_crash_left(tmp_path, scenario, kind):
    data_dir = (tmp_path / "data").resolve()
    model = run_child(data_dir, "segment_written", scenario, kind)
    dirs = scope_dirs(data_dir, kind, model)
    for directory in dirs:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / ".batch-7.parquet.00aa00aa00aa.tmp").write_bytes(b"half a segment")
        (directory / "batch-90.parquet").write_bytes(b"not parquet at all")
    with Engine.open(data_dir, background_jobs=False) as eng:
        check_against_model(eng, model)
        result = eng.execute("REPAIR TABLE t")
        assert "removed" in result.message, result.message
        if kind == "USER":  # a USER table has no table-wide scope
            assert not (data_dir / "storage" / "default" / "t" / "manifest.json").exists()
        for directory in dirs:
            assert stray_files(directory) == [], directory
        check_against_model(eng, model)
    with Engine.open(data_dir, background_jobs=False) as eng:
        check_against_model(eng, model)


# (step inside the manifest's cold commit, scenario, the cold copy's version
# right after the crash: 1 = the torn or unfinished write is not committed)
MANIFEST_STEPS = [
    ("manifest_log_half_written", "second", 1),  # a torn last line
    ("manifest_log_appended", "second", 2),  # appended; the hot copy never committed
    ("manifest_checkpoint_written", "first", 1),  # the first flush's checkpoint, no log yet
    ("manifest_checkpoint_written", "second_fold", 2),  # new checkpoint next to the old log
    ("manifest_json_written", "second_fold", 2),  # fold done; the hot copy never committed
]


@pytest.mark.parametrize("kind", ["SHARED", "USER"])
@pytest.mark.parametrize(("step", "scenario", "cold_version"), MANIFEST_STEPS)
def test_crash_inside_the_manifest_commit_loses_and_duplicates_nothing(
    tmp_path, step, scenario, cold_version, kind
):
    data_dir = (tmp_path / "data").resolve()
    model = run_child(data_dir, step, scenario, kind)
    crashed_user = "alice" if kind == "USER" else "root"
    directory = scope_dirs(data_dir, kind, {crashed_user: 0})[0]
    log = directory / "manifest.jsonl"
    if step == "manifest_log_half_written":
        assert not log.read_bytes().endswith(b"\n")  # the torn line is really there
    # The cold copy reads (a torn line is not committed, a stale log is ignored).
    cold = read_json(directory / "manifest.json")
    assert cold["version"] == cold_version
    assert [s["path"] for s in cold["segments"]] == [
        f"batch-{i}.parquet" for i in range(1, cold_version + 1)
    ]

    with Engine.open(data_dir, background_jobs=False) as eng:
        check_against_model(eng, model)
        # The hot copy is authoritative; with none (a first flush), manifest.json.
        assert named_segments(eng, crashed_user) == ["batch-1.parquet"]

    with Engine.open(data_dir, background_jobs=False) as eng:
        check_against_model(eng, model)
        for user, rows in model.items():
            eng.execute("INSERT INTO t (id, v) VALUES (100, 100)", user=user)
            rows[100] = 100
        eng.flush("t")  # appends after cutting a torn line off, or folds
        check_against_model(eng, model)
        synced = eng.execute("SELECT scope, in_sync FROM system.manifests").rows()
        assert synced and all(ok for _, ok in synced), synced
        for d in scope_dirs(data_dir, kind, model):
            assert stray_files(d) == [], d
            assert (d / "manifest.jsonl").read_bytes().endswith(b"\n")

    with Engine.open(data_dir, background_jobs=False) as eng:
        check_against_model(eng, model)
