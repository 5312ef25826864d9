"""REPAIR never makes things worse, and damage to hot records is loud.

- REPAIR TABLE keeps delete markers (an intact manifest.json wins over a
  damaged hot copy), salvages the intact row groups of a damaged segment and
  says exactly how many rows it could not recover;
- undecodable hot rows and catalog / user / state records raise
  ``StorageCorruptionError`` naming the object; REPAIR drops bad hot rows;
- a table never shows another (dropped) table's files;
- a lost hot store is an error, and ``Engine.open(repair=True)`` rebuilds the
  catalog from the manifest.json files.
"""

from __future__ import annotations

import shutil

import pytest

pytest.register_assert_rewrite("conftest_cold")

from conftest_cold import Cold  # noqa: E402

from engine import Engine  # noqa: E402
from engine.errors import StorageCorruptionError  # noqa: E402
from engine.manifest.hot import hot_keys  # noqa: E402
from engine.storage import keys  # noqa: E402
from engine.txn import Txn  # noqa: E402

pytest_plugins = ["conftest_cold"]


def put_raw(engine: Engine, key: bytes, value: bytes) -> None:
    txn = Txn(engine.store)
    txn.batch.put(key, value)
    txn.commit()


def hot_copy(engine: Engine, table_id: int, scope: str = "") -> dict[bytes, bytes | None]:
    """Every key of a scope's hot manifest copy (header and parts) with its value."""
    return {k: engine.store.get(k) for k in hot_keys(engine.store, table_id, scope)}


def restore_hot_copy(
    engine: Engine, table_id: int, saved: dict[bytes, bytes | None], scope: str = ""
) -> None:
    txn = Txn(engine.store)
    for key in hot_keys(engine.store, table_id, scope):
        if saved.get(key) is None:
            txn.batch.delete(key)
    for key, value in saved.items():
        if value is not None:
            txn.batch.put(key, value)
    txn.commit()


def flip_bit_in_middle(path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x04
    path.write_bytes(bytes(data))


# ------------------------------------------------------------------ REPAIR


def test_repair_keeps_delete_markers_when_the_hot_manifest_copy_is_damaged(cold, kind):
    cold.create(kind)
    cold.insert(range(10))
    cold.flush()
    cold.sql("DELETE FROM t WHERE id < 3")
    cold.sql("UPDATE t SET v = 99 WHERE id = 5")
    cold.flush()  # the old versions of 0, 1, 2 and 5 are now delete markers
    expected = cold.rows()
    assert [r[0] for r in expected] == list(range(3, 10))
    scope = cold.user if kind == "USER" else ""
    table_id = cold.engine.catalog.get_table("default", "t").table_id
    put_raw(cold.engine, keys.manifest_key(table_id, scope), b"{damaged")
    cold.restart()
    with pytest.raises(StorageCorruptionError):
        cold.rows()
    result = cold.engine.execute("REPAIR TABLE t")
    assert "0 flushed row(s) could not be recovered" in result.message, result.message
    assert cold.rows() == expected
    cold.restart()
    assert cold.rows() == expected


def test_repair_adopting_a_newer_manifest_json_does_not_duplicate_hot_rows(cold):
    cold.create("SHARED")
    cold.insert(range(5))
    cold.flush()
    table_id = cold.engine.catalog.get_table("default", "t").table_id
    stale = hot_copy(cold.engine, table_id)
    cold.insert(range(5, 8))
    hot_rows = list(cold.engine.store.scan(keys.rows_prefix(table_id)))
    assert len(hot_rows) == 3
    cold.flush()
    # As if the flush crashed after writing manifest.json: the hot copy is the
    # previous version and the flushed rows are still hot.
    restore_hot_copy(cold.engine, table_id, stale)
    for key, raw in hot_rows:
        put_raw(cold.engine, key, raw)
    cold.restart()
    assert cold.rows() == [(i, i) for i in range(8)]
    result = cold.engine.execute("REPAIR TABLE t")
    assert "kept 2 segment(s)" in result.message, result.message
    assert cold.rows() == [(i, i) for i in range(8)]
    assert cold.count() == 8
    assert list(cold.engine.store.scan(keys.rows_prefix(table_id))) == []
    cold.restart()
    assert cold.count() == 8


def test_repair_salvages_intact_row_groups_and_counts_the_rows_lost(cold):
    cold.engine.execute(
        "CREATE SHARED TABLE t (id BIGINT PRIMARY KEY, v INT, note TEXT) "
        "WITH (ROW_GROUP_SIZE = 100, DELTA = false)"  # keeps batch-1 with its delete marker
    )
    cold.kind, cold.user = "SHARED", "root"
    cold.insert(range(1000))
    cold.flush()
    cold.sql("DELETE FROM t WHERE id = 999")
    cold.flush()
    segment = cold.segment_paths()[0]
    cold.engine.close()
    flip_bit_in_middle(segment)
    cold.engine = cold.open()
    with pytest.raises(StorageCorruptionError, match="batch-1.parquet"):
        cold.count()
    result = cold.engine.execute("REPAIR TABLE t")
    lost = int(result.message.split("; ")[1].split()[0])
    assert 0 < lost <= 100, result.message  # one row group of 100, not the whole segment
    assert "batch-1.parquet (" in result.message
    rows = cold.rows()
    assert len(rows) == 999 - lost
    assert all(v == i for i, v in rows)  # salvaged values are the written ones
    assert 999 not in {i for i, _ in rows}  # the delete marker still holds
    job = cold.engine.execute(
        "SELECT rows, message FROM system.jobs WHERE job_type = 'repair'"
    ).rows()
    assert job[0][0] == lost and f"{lost} flushed row(s)" in job[0][1]
    cold.restart()
    assert len(cold.rows()) == 999 - lost
    assert (cold.scope_dir / "batch-1.parquet.damaged").exists()


def test_repair_drops_undecodable_hot_rows_and_reports_them(cold, kind):
    cold.create(kind)
    cold.insert(range(3))
    table_id = cold.engine.catalog.get_table("default", "t").table_id
    scope = cold.user if kind == "USER" else ""
    put_raw(cold.engine, keys.row_key(table_id, scope, 7), b"\xc1\xc1garbage")
    cold.restart()
    with pytest.raises(StorageCorruptionError) as info:
        cold.rows()
    assert "default.t" in info.value.message and "REPAIR TABLE" in info.value.message
    result = cold.engine.execute("REPAIR TABLE t")
    assert "dropped 1 damaged hot row(s)" in result.message
    assert cold.rows() == [(0, 0), (1, 1), (2, 2)]


# ------------------------------------------------------------------ records


@pytest.mark.parametrize("prefix", [b"T", b"N", b"U"])
def test_garbage_catalog_or_user_record_is_corruption_naming_it(engines, prefix):
    eng = engines.open(background_jobs=False)
    eng.execute("CREATE SHARED TABLE t (id BIGINT PRIMARY KEY)")
    key = next(k for k, _ in eng.store.scan(prefix) if prefix != b"N" or k == b"Ndefault")
    put_raw(eng, key, b'{"not": "a record"')
    eng.close()
    with pytest.raises(StorageCorruptionError) as info:
        engines.open(background_jobs=False)
    kind = {b"T": "table record", b"N": "namespace record", b"U": "user record"}[prefix]
    assert kind in info.value.message


def test_damaged_seq_counter_is_corruption(engines):
    eng = engines.open(background_jobs=False)
    put_raw(eng, keys.SEQ_KEY, b"\x01\x02")
    eng.close()
    with pytest.raises(StorageCorruptionError, match="_seq high-water mark"):
        engines.open(background_jobs=False)


# ------------------------------------------------------------------ table ownership


def test_recreated_table_never_shows_rows_of_a_dropped_table_left_on_disk(cold, kind, monkeypatch):
    cold.create(kind)
    cold.insert(range(10))
    cold.flush()
    # DROP commits and its directory is left behind with nothing noting it (as a
    # data directory of an older version could be left): the ownership check alone
    # must keep the new table from adopting it.
    from engine.core import Database

    monkeypatch.setattr(Database, "stage_storage_move", lambda *a, **k: lambda: None)
    cold.engine.execute("DROP TABLE t")
    monkeypatch.undo()
    assert cold.manifest_path.exists()
    cold.create(kind)
    cold.insert([100, 101])
    cold.restart()
    assert cold.rows() == [(100, 100), (101, 101)]
    cold.engine.execute("REPAIR TABLE t")
    assert cold.rows() == [(100, 100), (101, 101)]
    cold.flush()
    cold.restart()
    assert cold.rows() == [(100, 100), (101, 101)]


def test_segments_name_their_table(cold):
    from engine.storage.cold import segment_owner

    cold.create("SHARED")
    cold.insert(range(3))
    cold.flush()
    table_id = cold.engine.catalog.get_table("default", "t").table_id
    assert segment_owner(cold.segment_paths()[0]) == table_id
    assert cold.manifest()["table"]["table_id"] == table_id


# ------------------------------------------------------------------ lost hot store


def test_lost_hot_store_is_loud_and_repair_rebuilds_the_catalog(cold):
    cold.create("USER")
    cold.insert(range(5))
    cold.flush()
    cold.sql("DELETE FROM t WHERE id = 1")
    cold.flush()
    cold.engine.execute("CREATE SHARED TABLE s (id BIGINT PRIMARY KEY, v INT)")
    cold.engine.execute("INSERT INTO s VALUES (1, 10)")
    cold.engine.flush("s")
    cold.engine.execute("ALTER TABLE t RENAME TO t2")
    cold.table = "t2"
    cold.engine.close()
    shutil.rmtree(cold.data_dir / "hot")
    with pytest.raises(StorageCorruptionError, match="hot"):
        cold.open()
    cold.engine = cold.open(repair=True)
    assert "Rebuilt the catalog" in str(cold.engine.recovery)
    assert cold.rows() == [(0, 0), (2, 2), (3, 3), (4, 4)]
    assert cold.engine.execute("SELECT id, v FROM s").rows() == [(1, 10)]
    cold.insert([7])  # new seqs stay above everything flushed
    cold.flush()
    cold.restart()
    assert cold.rows() == [(0, 0), (2, 2), (3, 3), (4, 4), (7, 7)]


def crash_image(cold: Cold, dest) -> None:
    """A copy of the data directory taken while the engine is open (as after a kill)."""
    shutil.copytree(cold.data_dir, dest)


def test_damaged_write_ahead_log_is_loud_and_repair_keeps_it_up_to_the_damage(
    cold, tmp_path, clock
):
    cold.create("SHARED")
    cold.insert(range(5))
    cold.flush()
    cold.restart()
    cold.insert([10])
    cold.insert([11])
    image = tmp_path / "image"
    crash_image(cold, image)
    log = next((image / "hot").glob("*.log"))
    data = bytearray(log.read_bytes())
    data[-3] ^= 0x01  # inside the last statement's record
    log.write_bytes(bytes(data))
    with pytest.raises(StorageCorruptionError) as info:
        Engine.open(image, background_jobs=False)
    assert str(image / "hot") in info.value.message
    with Engine.open(image, background_jobs=False, repair=True, clock_ms=clock) as eng:
        assert "write-ahead log" in str(eng.recovery)
        ids = [r[0] for r in eng.execute("SELECT id FROM t ORDER BY id").rows()]
        assert ids[:5] == list(range(5)) and 11 not in ids


def test_deleted_write_ahead_log_after_a_crash_is_loud(cold, tmp_path):
    cold.create("SHARED")
    cold.insert(range(3))
    image = tmp_path / "image"
    crash_image(cold, image)
    for log in (image / "hot").glob("*.log"):
        log.unlink()
    with pytest.raises(StorageCorruptionError, match="write-ahead log .* is missing"):
        Engine.open(image, background_jobs=False)


def test_damaged_sst_is_loud_and_repair_rebuilds_from_the_manifests(cold, capsys):
    from engine.cli import main

    cold.create("SHARED")
    cold.insert(range(5))
    cold.flush()
    cold.engine.close()
    sst = next((cold.data_dir / "hot").glob("*.sst"))
    flip_bit_in_middle(sst)
    with pytest.raises(StorageCorruptionError, match="hot"):
        cold.open()
    assert main(["repair", "--data-dir", str(cold.data_dir)]) == 0
    out = capsys.readouterr().out
    assert "Moved the damaged hot store" in out and "Rebuilt the catalog" in out
    assert (cold.data_dir / "hot.damaged-1").is_dir()
    cold.engine = cold.open()
    assert cold.rows() == [(i, i) for i in range(5)]


def test_repair_with_both_manifest_copies_damaged_rebuilds_from_owned_files_and_says_so(cold):
    cold.create("SHARED")
    cold.insert(range(5))
    cold.flush()
    cold.sql("UPDATE t SET v = 50 WHERE id = 0")
    cold.flush()
    table_id = cold.engine.catalog.get_table("default", "t").table_id
    put_raw(cold.engine, keys.manifest_key(table_id, ""), b"{damaged")
    cold.engine.close()
    cold.manifest_path.write_bytes(b"{damaged too")
    cold.engine = cold.open()
    result = cold.engine.execute("REPAIR TABLE t")
    assert "both manifest copies" in result.message and "reappeared" in result.message
    assert "kept 2 segment(s)" in result.message
    # The newest version of each key wins even without the delete markers.
    assert cold.rows() == [(0, 50), (1, 1), (2, 2), (3, 3), (4, 4)]
    assert cold.manifest()["table"]["name"] == "t"
