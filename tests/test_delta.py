"""The cold tier is a Delta Lake table: real Delta readers (deltalake, polars,
DataFusion, Daft) see exactly ``SELECT * FROM t`` after every
FLUSH and COMPACT, through UPDATE, DELETE and every ALTER form."""

from __future__ import annotations

import json
import os
from datetime import UTC
from pathlib import Path
from typing import Any

import deltalake
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from datafusion import SessionContext

from engine import Engine
from engine.delta.log import LOG_DIR, DeltaLog
from engine.errors import InvalidOptionError
from engine.manifest import encode, read_manifest_json

# Daft's usage telemetry would try the network from a daemon thread.
os.environ.setdefault("DO_NOT_TRACK", "1")
import daft  # noqa: E402


def cold_manifest(directory: Path) -> dict[str, Any]:
    """manifest.json with its change log (manifest.jsonl) replayed."""
    return json.loads(encode(read_manifest_json(directory / "manifest.json")))


def _norm(value: Any) -> Any:
    """Delta readers return UTC-aware timestamps; ours are naive UTC."""
    if hasattr(value, "tzinfo") and getattr(value, "tzinfo", None) is not None:
        return value.astimezone(UTC).replace(tzinfo=None)
    return value


def _rows(table: pa.Table, names: list[str]) -> list[tuple]:
    data = table.select(names).to_pylist()
    return sorted((tuple(_norm(r[n]) for n in names) for r in data), key=repr)


def engine_rows(eng: Engine, table: str = "t", user: str = "root") -> tuple[list[str], list]:
    result = eng.execute(f"SELECT * FROM {table}", user=user).table
    return result.column_names, _rows(result, result.column_names)


def readers(path: Path) -> dict[str, pa.Table]:
    """What every available Delta engine reads at ``path``."""
    out = {
        "deltalake": deltalake.DeltaTable(str(path)).to_pyarrow_table(),
        "polars": pl.scan_delta(str(path)).collect().to_arrow(),
    }
    ctx = SessionContext()
    ctx.register_table("d", deltalake.DeltaTable(str(path)))
    out["datafusion"] = ctx.sql("SELECT * FROM d").to_arrow_table()
    out["daft"] = daft.read_deltalake(str(path)).to_arrow()
    return out


def assert_readers_match(eng: Engine, path: Path, table: str = "t", user: str = "root") -> None:
    names, want = engine_rows(eng, table, user)
    for reader, got in readers(path).items():
        assert got.column_names == names, reader  # logical names, nothing else
        assert _rows(got, names) == want, reader


@pytest.fixture
def eng(engines) -> Engine:
    return engines.open(background_jobs=False)


def table_dir(eng: Engine, name: str = "t") -> Path:
    return eng.data_dir / "storage" / "default" / name


def fill(eng: Engine, kind: str = "SHARED", user: str = "root") -> None:
    eng.execute(
        f"CREATE {kind} TABLE t (id BIGINT PRIMARY KEY, v INT, s TEXT, ts TIMESTAMP, d DATE, "
        "x DOUBLE, b BOOLEAN, m DECIMAL(10,2))"
    )
    eng.execute(
        "INSERT INTO t VALUES (1, 10, 'a', '2024-01-01 10:00:00', '2024-01-02', 1.5, true, 1.25),"
        " (2, 20, 'b', NULL, NULL, NULL, NULL, NULL), (3, 30, 'c', '1999-12-31 23:59:59.5',"
        " '1970-01-01', -2.5, false, 99.99)",
        user=user,
    )
    eng.flush("t")


def test_a_flushed_shared_table_is_a_delta_table_every_reader_reads(eng):
    fill(eng)
    assert_readers_match(eng, table_dir(eng))
    dt = deltalake.DeltaTable(str(table_dir(eng)))
    assert dt.version() == 0
    assert dt.protocol().min_reader_version == 1  # no column mapping, no features
    assert [f.name for f in dt.schema().fields] == ["id", "v", "s", "ts", "d", "x", "b", "m"]


def test_updated_and_deleted_cold_rows_never_reach_a_delta_reader(eng):
    fill(eng)
    eng.execute("UPDATE t SET v = v + 1 WHERE id = 1")
    eng.execute("DELETE FROM t WHERE id = 2")
    eng.execute("INSERT INTO t (id, v) VALUES (4, 40)")
    eng.flush("t")
    assert_readers_match(eng, table_dir(eng))
    assert sorted(
        deltalake.DeltaTable(str(table_dir(eng))).to_pyarrow_table()["id"].to_pylist()
    ) == [
        1,
        3,
        4,
    ]
    # the segment holding the dead versions was rewritten: no markers left
    manifest = cold_manifest(table_dir(eng))
    assert manifest["superseded_seqs"] == []


def test_alter_add_drop_rename_and_retype_show_up_as_a_delta_schema_change(eng):
    fill(eng)
    eng.execute("ALTER TABLE t RENAME COLUMN v TO w")
    eng.execute("ALTER TABLE t ADD COLUMN z INT DEFAULT 7")
    eng.execute("ALTER TABLE t DROP COLUMN s")
    eng.flush("t")  # nothing hot: the flush still publishes the new schema
    assert_readers_match(eng, table_dir(eng))
    fields = {f.name: f.type for f in deltalake.DeltaTable(str(table_dir(eng))).schema().fields}
    assert set(fields) == {"id", "w", "ts", "d", "x", "b", "m", "z"}
    eng.execute("ALTER TABLE t ALTER COLUMN w TYPE BIGINT")
    eng.execute("ALTER TABLE t ADD COLUMN s TEXT")  # a dropped name comes back empty
    eng.execute("INSERT INTO t (id, w, s) VALUES (5, 50, 'new')")
    eng.flush("t")
    assert_readers_match(eng, table_dir(eng))
    got = deltalake.DeltaTable(str(table_dir(eng))).to_pyarrow_table()
    assert got.schema.field("w").type == pa.int64()
    assert sorted(got["s"].to_pylist(), key=repr) == ["new", None, None, None]


def test_compaction_commits_a_delta_version_that_removes_the_old_files(eng):
    eng.execute("CREATE SHARED TABLE t (id BIGINT PRIMARY KEY, v INT)")
    for start in range(0, 40, 10):
        eng.execute(
            "INSERT INTO t VALUES " + ", ".join(f"({i}, {i})" for i in range(start, start + 10))
        )
        eng.flush("t")
    before = deltalake.DeltaTable(str(table_dir(eng)))
    assert len(before.file_uris()) == 4
    eng.execute("COMPACT TABLE t WAIT")
    after = deltalake.DeltaTable(str(table_dir(eng)))
    assert after.version() == before.version() + 1
    assert len(after.file_uris()) == 1
    assert_readers_match(eng, table_dir(eng))
    history = after.history(1)[0]
    assert history["operation"] == "OPTIMIZE"


def test_each_user_scope_is_its_own_delta_table(eng):
    eng.execute("CREATE USER TABLE t (id BIGINT PRIMARY KEY, v TEXT)")
    eng.execute("INSERT INTO t VALUES (1, 'a'), (2, 'b')", user="alice")
    eng.execute("INSERT INTO t VALUES (1, 'z')", user="bob")
    eng.flush("t")
    eng.execute("DELETE FROM t WHERE id = 1", user="alice")
    eng.flush("t")
    for user in ("alice", "bob"):
        assert_readers_match(eng, table_dir(eng) / user, user=user)
    assert not (table_dir(eng) / LOG_DIR).exists()


def test_commit_info_names_the_manifest_version_and_show_delta_reports_it(eng):
    fill(eng)
    eng.execute("INSERT INTO t (id, v) VALUES (7, 70)")
    eng.flush("t")
    [row] = eng.execute("SHOW DELTA t").table.to_pylist()
    manifest = cold_manifest(table_dir(eng))
    assert row["delta_version"] == 1
    assert row["manifest_version"] == row["current_manifest_version"] == manifest["version"]
    assert row["files"] == len(manifest["segments"]) and row["rows"] == 4
    assert row["in_sync"] and row["publishing"]
    snap = DeltaLog(table_dir(eng)).snapshot()
    assert snap.manifest_version == manifest["version"]


def test_segment_files_carry_logical_names_plus_seq_and_deleted(eng):
    fill(eng)
    [path] = table_dir(eng).glob("batch-*.parquet")
    assert pq.read_schema(path).names == [
        "id",
        "v",
        "s",
        "ts",
        "d",
        "x",
        "b",
        "m",
        "_seq",
        "_deleted",
    ]


def test_delta_false_publishes_nothing_and_turning_it_on_catches_up(eng):
    eng.execute("CREATE SHARED TABLE t (id BIGINT PRIMARY KEY, v INT) WITH (DELTA = false)")
    eng.execute("INSERT INTO t VALUES (1, 1)")
    eng.flush("t")
    assert not (table_dir(eng) / LOG_DIR).exists()
    [row] = eng.execute("SHOW DELTA t").table.to_pylist()
    assert row["delta_version"] is None and not row["publishing"]
    eng.execute("ALTER TABLE t SET (DELTA = true)")
    eng.flush("t")
    assert_readers_match(eng, table_dir(eng))


def test_bad_delta_option_is_refused_and_changes_nothing(eng):
    with pytest.raises(InvalidOptionError, match="DELTA must be true or false"):
        eng.execute("CREATE SHARED TABLE t (id INT PRIMARY KEY) WITH (DELTA = 'maybe')")
    with pytest.raises(InvalidOptionError, match="STREAM"):
        eng.execute(
            "CREATE STREAM TABLE s (id INT PRIMARY KEY) WITH (TTL_SECONDS = 5, DELTA = true)"
        )
    assert (
        eng.execute("SELECT count(*) FROM system.tables WHERE table_name IN ('t', 's')").scalar()
        == 0
    )


def test_a_reopened_engine_keeps_publishing_where_the_log_stopped(engines):
    eng = engines.open(background_jobs=False)
    fill(eng)
    eng.close()
    eng = engines.open(background_jobs=False)
    eng.execute("UPDATE t SET s = 'again' WHERE id = 3")
    eng.flush("t")
    assert deltalake.DeltaTable(str(table_dir(eng))).version() == 1
    assert_readers_match(eng, table_dir(eng))


def test_segments_of_the_old_c_id_layout_still_read_and_are_rewritten_for_delta(
    engines, monkeypatch
):
    import engine.jobs.flush as flush_mod

    eng = engines.open(background_jobs=False)
    monkeypatch.setattr(flush_mod, "logical_names", lambda table: None)  # the old writer
    eng.execute("CREATE SHARED TABLE t (id BIGINT PRIMARY KEY, v INT) WITH (DELTA = false)")
    eng.execute("INSERT INTO t VALUES (1, 10), (2, 20)")
    eng.flush("t")
    monkeypatch.undo()
    [path] = table_dir(eng).glob("batch-*.parquet")
    assert pq.read_schema(path).names == ["c1", "c2", "_seq", "_deleted"]
    eng.close()
    eng = engines.open(background_jobs=False)
    assert eng.execute("SELECT id, v FROM t ORDER BY id").rows() == [(1, 10), (2, 20)]
    eng.execute("ALTER TABLE t RENAME COLUMN v TO w")
    assert eng.execute("SELECT w FROM t WHERE id = 2").rows() == [(20,)]
    eng.execute("ALTER TABLE t SET (DELTA = true)")
    eng.flush("t")
    assert_readers_match(eng, table_dir(eng))
    assert eng.execute("SELECT id, w FROM t ORDER BY id").rows() == [(1, 10), (2, 20)]


# ---------------------------------------------------------------- the log writer


def test_a_delta_version_is_never_overwritten(tmp_path):
    from engine.delta.log import commit_info_action, protocol_action
    from engine.errors import StorageCorruptionError

    log = DeltaLog(tmp_path)
    info = commit_info_action("WRITE", now_ms=1, manifest_version=1, schema_version=1)
    log.commit(0, [protocol_action(), info])
    before = (tmp_path / LOG_DIR / "00000000000000000000.json").read_bytes()
    with pytest.raises(StorageCorruptionError, match="already exists"):
        log.commit(0, [info])
    assert (tmp_path / LOG_DIR / "00000000000000000000.json").read_bytes() == before
    assert [p.name for p in (tmp_path / LOG_DIR).iterdir()] == ["00000000000000000000.json"]


def test_a_gap_in_the_delta_log_is_damage_naming_the_log(tmp_path):
    from engine.delta.log import commit_info_action
    from engine.errors import StorageCorruptionError

    log = DeltaLog(tmp_path)
    for version in (0, 1, 2):
        log.commit(
            version,
            [commit_info_action("WRITE", now_ms=1, manifest_version=version, schema_version=1)],
        )
    (tmp_path / LOG_DIR / "00000000000000000001.json").unlink()
    with pytest.raises(StorageCorruptionError, match=r"missing commit\(s\) \[1\]"):
        DeltaLog(tmp_path).snapshot()


def test_a_crash_before_the_delta_commit_is_derived_again_at_open(engines):
    eng = engines.open(background_jobs=False)
    fill(eng)
    eng.execute("DELETE FROM t WHERE id = 3")
    eng.flush("t")
    last = table_dir(eng) / LOG_DIR / "00000000000000000001.json"
    eng.close()
    last.unlink()  # as if the process died between the manifest and the commit
    eng = engines.open(background_jobs=False)
    assert last.is_file()
    assert_readers_match(eng, table_dir(eng))
    assert "derived from manifest version" in " ".join(eng.db.delta_recovery)


def test_repair_publishes_a_delta_version_without_the_damaged_file(engines):
    eng = engines.open(background_jobs=False)
    eng.execute("CREATE SHARED TABLE t (id BIGINT PRIMARY KEY, v INT)")
    for start in (0, 10):
        eng.execute(
            "INSERT INTO t VALUES " + ", ".join(f"({i}, {i})" for i in range(start, start + 10))
        )
        eng.flush("t")
    damaged = table_dir(eng) / "batch-1.parquet"
    eng.close()
    damaged.write_bytes(b"not parquet")
    eng = engines.open(background_jobs=False)
    eng.execute("REPAIR TABLE t")
    assert_readers_match(eng, table_dir(eng))
    names = [Path(u).name for u in deltalake.DeltaTable(str(table_dir(eng))).file_uris()]
    assert names == ["batch-2.parquet"]


def test_a_delta_log_left_by_a_dropped_table_of_the_same_name_is_never_extended(eng, tmp_path):
    import shutil

    eng.execute("CREATE SHARED TABLE t (id BIGINT PRIMARY KEY, v INT)")
    eng.execute("INSERT INTO t VALUES (1, 1), (2, 2)")
    eng.flush("t")
    shutil.copytree(table_dir(eng), tmp_path / "old")
    eng.execute("DROP TABLE t")
    eng.execute("CREATE SHARED TABLE t (id BIGINT PRIMARY KEY, v INT)")
    # as a DROP that crashed before removing the directory leaves it
    shutil.copytree(tmp_path / "old" / LOG_DIR, table_dir(eng) / LOG_DIR)
    eng.execute("INSERT INTO t VALUES (7, 7)")
    eng.flush("t")
    assert_readers_match(eng, table_dir(eng))
    assert deltalake.DeltaTable(str(table_dir(eng))).version() == 0
