"""The commit path for table state (engine/core/commit.py): a flush, every
ALTER form, RENAME, DROP and REPAIR of a table are serialised; rewritten hot
rows get a new ``_seq``; caches are keyed by identity; storage moves and
removals survive a crash. Races are driven with the flush's step hook and
events, never with sleeps."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from engine import Engine, KalamError
from engine.core import Database
from engine.errors import FlushAbandonedError
from engine.jobs.flush import _check_unchanged, flush_table

ROWS = 2_000
TIMEOUT = 60


class PausedFlush:
    """A flush of ``t`` on its own thread, held at ``step`` until released."""

    def __init__(self, eng: Engine, step: str) -> None:
        self.reached = threading.Event()
        self.release = threading.Event()
        self.errors: list[BaseException] = []
        table = eng.catalog.get_table("default", "t")

        def hook(name: str) -> None:
            if name == step:
                self.reached.set()
                assert self.release.wait(TIMEOUT)

        def run() -> None:
            try:
                flush_table(eng.db, table, crash=hook)
            except BaseException as exc:  # reported by join()
                self.errors.append(exc)

        self.thread = threading.Thread(target=run, name="flush")
        self.thread.start()
        assert self.reached.wait(TIMEOUT), "the flush never reached its step"

    def join(self) -> None:
        self.release.set()
        self.thread.join(TIMEOUT)
        assert not self.thread.is_alive()
        assert self.errors == []


class Statement:
    """One statement on its own thread; ``done`` is set when it returns."""

    def __init__(self, eng: Engine, sql: str) -> None:
        self.done = threading.Event()
        self.outcome: list[Any] = []

        def run() -> None:
            try:
                self.outcome.append(eng.execute(sql))
            except KalamError as exc:
                self.outcome.append(exc)
            self.done.set()

        self.thread = threading.Thread(target=run)
        self.thread.start()

    def result(self) -> Any:
        assert self.done.wait(TIMEOUT)
        return self.outcome[0]


def _table_with_rows(eng: Engine, *, flushed: int = 0) -> None:
    eng.execute("CREATE TABLE t (id BIGINT PRIMARY KEY, b INT, s TEXT)")
    if flushed:
        eng.execute(f"INSERT INTO t SELECT value, value, 'c' FROM range(0, {flushed})")
        eng.flush("t")
    eng.execute(f"INSERT INTO t SELECT value, value, 'h' FROM range({flushed}, {ROWS})")


def _overlap(eng: Engine, step: str, sql: str) -> Any:
    """Run ``sql`` while a flush of ``t`` is held at ``step``; the statement must
    not complete before the flush does (the table's commit lock)."""
    flush = PausedFlush(eng, step)
    stmt = Statement(eng, sql)
    committed_early = stmt.done.wait(0.3)  # a negative check: nothing to wait for
    flush.join()
    assert not committed_early, f"{sql} committed while a flush of the table was running"
    return stmt.result()


@pytest.mark.parametrize("step", ["segment_written", "manifest_json_written"])
def test_modify_column_overlapping_a_flush_loses_no_row(tmp_path: Path, step: str) -> None:
    with Engine.open(tmp_path, background_jobs=False) as eng:
        _table_with_rows(eng, flushed=500)
        result = _overlap(eng, step, "ALTER TABLE t MODIFY COLUMN b BIGINT")
        assert not isinstance(result, KalamError), result
        assert eng.execute("SELECT count(*) FROM t").scalar() == ROWS
        eng.execute("UPDATE t SET s = 'u' WHERE id % 7 = 0")
        eng.flush("t")
        assert eng.execute("SELECT count(*), sum(b) FROM t").rows() == [(ROWS, sum(range(ROWS)))]
    with Engine.open(tmp_path, background_jobs=False) as eng:
        assert eng.execute("SELECT count(*), sum(b) FROM t").rows() == [(ROWS, sum(range(ROWS)))]
        assert eng.execute("SELECT count(*) FROM t WHERE s = 'u'").scalar() == len(
            range(0, ROWS, 7)
        )


def test_modify_column_gives_rewritten_hot_rows_a_new_seq(tmp_path: Path) -> None:
    with Engine.open(tmp_path, background_jobs=False) as eng:
        eng.execute("CREATE TABLE t (id BIGINT PRIMARY KEY, b INT)")
        eng.execute("INSERT INTO t VALUES (1, 10), (2, 20)")
        before = dict(eng.execute("SELECT id, _seq FROM t").rows())
        eng.execute("ALTER TABLE t MODIFY COLUMN b BIGINT")
        after = dict(eng.execute("SELECT id, _seq FROM t").rows())
        assert all(after[k] > before[k] for k in before)
        assert len(set(after.values())) == 2
        # and a flush followed by a second flush keeps exactly one version each
        eng.flush("t")
        eng.execute("UPDATE t SET b = b + 1 WHERE id = 1")
        eng.flush("t")
        assert eng.execute("SELECT id, b FROM t ORDER BY id").rows() == [(1, 11), (2, 20)]


def test_a_stream_table_keeps_its_rows_seq_on_modify_column(tmp_path: Path) -> None:
    """STREAM rows read their age from _seq (TTL); a type change is not a new row."""
    with Engine.open(tmp_path, background_jobs=False) as eng:
        eng.execute("CREATE STREAM TABLE e (id BIGINT PRIMARY KEY, b INT) WITH (TTL_SECONDS = 60)")
        eng.execute("INSERT INTO e VALUES (1, 10)")
        before = eng.execute("SELECT _seq FROM e").scalar()
        eng.execute("ALTER TABLE e MODIFY COLUMN b BIGINT")
        assert eng.execute("SELECT _seq FROM e").scalar() == before


@pytest.mark.parametrize("step", ["segment_written", "hot_manifest_committed"])
def test_rename_to_overlapping_a_flush_keeps_every_row_readable(tmp_path: Path, step: str) -> None:
    with Engine.open(tmp_path, background_jobs=False) as eng:
        _table_with_rows(eng, flushed=500)
        result = _overlap(eng, step, "ALTER TABLE t RENAME TO t2")
        assert not isinstance(result, KalamError), result
        storage = tmp_path / "storage" / "default"
        assert sorted(p.name for p in storage.iterdir()) == ["t2"]
        assert eng.execute("SELECT count(*) FROM t2").scalar() == ROWS
        eng.flush("t2")
        assert eng.execute("SELECT count(*) FROM t2").scalar() == ROWS
    with Engine.open(tmp_path, background_jobs=False) as eng:
        assert eng.execute("SELECT count(*), sum(b) FROM t2").rows() == [(ROWS, sum(range(ROWS)))]
        eng.execute("REPAIR TABLE t2")
        assert eng.execute("SELECT count(*) FROM t2").scalar() == ROWS


@pytest.mark.parametrize(
    "sql",
    [
        "ALTER TABLE t ADD COLUMN x INT DEFAULT 5",
        "ALTER TABLE t DROP COLUMN s",
        "ALTER TABLE t RENAME COLUMN s TO s2",
        "ALTER TABLE t ALTER COLUMN s SET DEFAULT 'd'",
        "ALTER TABLE t SET (ROW_GROUP_SIZE = 500)",
        "REPAIR TABLE t",
    ],
)
def test_every_table_change_waits_for_a_running_flush(tmp_path: Path, sql: str) -> None:
    with Engine.open(tmp_path, background_jobs=False) as eng:
        _table_with_rows(eng, flushed=500)
        result = _overlap(eng, "segment_written", sql)
        assert not isinstance(result, KalamError), result
        assert eng.execute("SELECT count(*), sum(b) FROM t").rows() == [(ROWS, sum(range(ROWS)))]
        assert eng.execute("SELECT count(*) FROM t").stats["default.t"]["segments_total"] == 2


def test_drop_table_overlapping_a_flush_leaves_nothing_behind(tmp_path: Path) -> None:
    with Engine.open(tmp_path, background_jobs=False) as eng:
        _table_with_rows(eng, flushed=500)
        result = _overlap(eng, "segment_written", "DROP TABLE t")
        assert not isinstance(result, KalamError), result
        assert not (tmp_path / "storage" / "default" / "t").exists()
        eng.execute("CREATE TABLE t (id BIGINT PRIMARY KEY, b INT, s TEXT)")
        assert eng.execute("SELECT count(*) FROM t").scalar() == 0
    with Engine.open(tmp_path, background_jobs=False) as eng:
        assert eng.execute("SELECT count(*) FROM t").scalar() == 0


def test_a_flush_queued_before_drop_table_does_nothing(tmp_path: Path) -> None:
    with Engine.open(tmp_path, background_jobs=False) as eng:
        _table_with_rows(eng)
        stale = eng.catalog.get_table("default", "t")
        eng.execute("DROP TABLE t")
        report = flush_table(eng.db, stale)
        assert (report.rows, report.segments) == (0, 0)
        assert not (tmp_path / "storage" / "default" / "t").exists()


def test_a_flush_never_publishes_work_prepared_against_an_older_schema(tmp_path: Path) -> None:
    with Engine.open(tmp_path, background_jobs=False) as eng:
        _table_with_rows(eng)
        before = eng.catalog.get_table("default", "t")
        eng.execute("ALTER TABLE t ADD COLUMN x INT")
        prov = eng.db.provider(before)
        directory = prov.cold.scope_dir("")
        directory.mkdir(parents=True)
        (directory / "batch-1.parquet").write_bytes(b"unpublished")

        class Entry:
            path = "batch-1.parquet"

        with pytest.raises(FlushAbandonedError, match="changed while it ran"):
            _check_unchanged(eng.db, prov, before, "", directory, [Entry()])  # type: ignore[list-item]
        assert not (directory / "batch-1.parquet").exists()


@pytest.mark.parametrize(
    "change",
    [
        ["DROP TABLE t", "CREATE TABLE t (id BIGINT PRIMARY KEY, v TEXT)"],
        [
            "ALTER TABLE t RENAME TO old",
            "CREATE TABLE t (id BIGINT PRIMARY KEY, v TEXT)",
        ],
    ],
    ids=["drop", "rename"],
)
def test_point_reads_never_serve_a_replaced_tables_cached_rows(
    tmp_path: Path, change: list[str]
) -> None:
    with Engine.open(tmp_path, background_jobs=False) as eng:
        eng.execute("CREATE TABLE t (id BIGINT PRIMARY KEY, v TEXT)")
        eng.execute("INSERT INTO t VALUES (1, 'old'), (2, 'old2')")
        eng.flush("t")
        assert eng.execute("SELECT v FROM t WHERE id = 1").scalar() == "old"  # caches the group
        for sql in change:
            eng.execute(sql)
        eng.execute("INSERT INTO t VALUES (1, 'new'), (2, 'new2')")
        eng.flush("t")
        assert eng.execute("SELECT v FROM t WHERE id = 1").scalar() == "new"
        eng.execute("UPDATE t SET v = v || '!' WHERE id = 2")
        assert eng.execute("SELECT id, v FROM t ORDER BY id").rows() == [(1, "new"), (2, "new2!")]


def _interrupt_storage_moves(monkeypatch: pytest.MonkeyPatch) -> None:
    """What a crash right after the catalog commit leaves: the move is noted, not done."""
    original: Callable[..., Any] = Database.stage_storage_move

    def noted_only(self: Database, txn: Any, table: Any, new_name: str | None) -> Any:
        original(self, txn, table, new_name)
        return lambda: None

    monkeypatch.setattr(Database, "stage_storage_move", noted_only)


def test_a_drop_interrupted_before_its_directory_was_removed_is_finished_on_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Engine.open(tmp_path, background_jobs=False) as eng:
        eng.execute("CREATE TABLE t (id BIGINT PRIMARY KEY, v TEXT)")
        eng.execute("INSERT INTO t VALUES (1, 'dropped'), (2, 'dropped')")
        eng.flush("t")
        with monkeypatch.context() as patch:
            _interrupt_storage_moves(patch)
            eng.execute("DROP TABLE t")
        assert (tmp_path / "storage" / "default" / "t" / "manifest.json").exists()
    with Engine.open(tmp_path, background_jobs=False) as eng:
        assert not (tmp_path / "storage" / "default" / "t").exists()
        eng.execute("CREATE TABLE t (id BIGINT PRIMARY KEY, v TEXT)")
        eng.execute("INSERT INTO t VALUES (3, 'new')")
        eng.flush("t")
    with Engine.open(tmp_path, background_jobs=False) as eng:
        assert eng.execute("SELECT id, v FROM t ORDER BY id").rows() == [(3, "new")]


def test_a_namespace_drop_interrupted_before_its_directories_were_removed_is_finished_on_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Engine.open(tmp_path, background_jobs=False) as eng:
        eng.execute("CREATE NAMESPACE app")
        eng.execute("CREATE TABLE app.t (id BIGINT PRIMARY KEY, v TEXT)")
        eng.execute("INSERT INTO app.t VALUES (1, 'dropped')")
        eng.flush("app.t")
        with monkeypatch.context() as patch:
            _interrupt_storage_moves(patch)
            patch.setattr("engine.sql.ddl._remove_dir", lambda *a: None)
            eng.execute("DROP NAMESPACE app CASCADE")
    with Engine.open(tmp_path, background_jobs=False) as eng:
        assert not (tmp_path / "storage" / "app" / "t").exists()
        eng.execute("CREATE NAMESPACE app")
        eng.execute("CREATE TABLE app.t (id BIGINT PRIMARY KEY, v TEXT)")
        assert eng.execute("SELECT count(*) FROM app.t").scalar() == 0


def _pause_narrowing_check(
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[threading.Event, threading.Event]:
    """Hold a narrowing MODIFY inside its scan of stored values."""
    from engine.sql import alter

    reached, release = threading.Event(), threading.Event()
    original = alter._check_all_fit

    def paused(*args: Any, **kwargs: Any) -> None:
        original(*args, **kwargs)
        reached.set()
        assert release.wait(TIMEOUT)

    monkeypatch.setattr(alter, "_check_all_fit", paused)
    return reached, release


def test_a_narrowing_modify_does_not_block_writers_while_it_scans(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Engine.open(tmp_path, background_jobs=False) as eng:
        eng.execute("CREATE TABLE t (id BIGINT PRIMARY KEY, b BIGINT)")
        eng.execute("INSERT INTO t SELECT value, value FROM range(0, 1000)")
        eng.flush("t")
        reached, release = _pause_narrowing_check(monkeypatch)
        alter = Statement(eng, "ALTER TABLE t MODIFY COLUMN b INT")
        assert reached.wait(TIMEOUT)
        writer = Statement(eng, "INSERT INTO t VALUES (5000, 7)")
        assert writer.done.wait(TIMEOUT), "a writer waited for the MODIFY's scan"
        assert not isinstance(writer.result(), KalamError)
        release.set()
        assert not isinstance(alter.result(), KalamError), alter.result()
        assert eng.execute("SELECT count(*), sum(b) FROM t").rows() == [(1001, 499507)]
        assert eng.catalog.get_table("default", "t").get_column("b").type == "INT"


def test_a_value_written_during_a_narrowing_modifys_scan_is_still_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Engine.open(tmp_path, background_jobs=False) as eng:
        eng.execute("CREATE TABLE t (id BIGINT PRIMARY KEY, b BIGINT)")
        eng.execute("INSERT INTO t VALUES (1, 1), (2, 2)")
        eng.flush("t")
        reached, release = _pause_narrowing_check(monkeypatch)
        alter = Statement(eng, "ALTER TABLE t MODIFY COLUMN b INT")
        assert reached.wait(TIMEOUT)
        eng.execute("INSERT INTO t VALUES (3, 9999999999)")  # does not fit INT
        release.set()
        assert isinstance(alter.result(), KalamError)
        assert eng.catalog.get_table("default", "t").get_column("b").type == "BIGINT"
        assert eng.execute("SELECT id, b FROM t ORDER BY id").rows() == [
            (1, 1),
            (2, 2),
            (3, 9999999999),
        ]
