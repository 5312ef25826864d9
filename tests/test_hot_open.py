"""Opening a data directory with many hot rows (issue 15, "a bounded hot tier").

An open reads the catalog and the engine's counters, never a table's hot
rows: bulk chunks (one statement's rows as Arrow IPC, MBs each) live in
RocksDB blob files, and prefix scans stop at the prefix's end instead of
stepping onto (and loading) the next key. Hot rows are read by the first
statement that touches their table, and only that table's.
"""

from __future__ import annotations

import contextlib
import gc
from pathlib import Path

import pyarrow as pa
import pytest

from engine import Engine
from engine.errors import StorageCorruptionError
from engine.storage import keys
from engine.storage.hot import BLOB_MIN_BYTES, Batch, HotStore, prefix_end

DDL = "CREATE TABLE {t} (id BIGINT PRIMARY KEY, name TEXT) WITH (FLUSH_POLICY = 'none')"


def data(lo: int, hi: int) -> pa.Table:
    ids = list(range(lo, hi))
    return pa.table({"id": pa.array(ids, pa.int64()), "name": [f"row-{i}" for i in ids]})


def test_prefix_end_is_the_smallest_key_past_the_prefix():
    assert prefix_end(b"N") == b"O"
    assert prefix_end(b"R\x00\x01") == b"R\x00\x02"
    assert prefix_end(b"a\xff\xff") == b"b"
    assert prefix_end(b"\xff\xff") is None
    assert prefix_end(b"") is None


def test_a_prefix_scan_returns_exactly_its_keys_next_to_big_values(tmp_path: Path):
    store = HotStore(tmp_path / "hot")
    batch = Batch()
    big = b"x" * (4 * BLOB_MIN_BYTES)
    batch.put(b"Na", b"1")
    for i in range(3):
        batch.put(b"Ob%d" % i, big)  # the neighbours a scan of N must not read
    batch.put(b"Pc", b"2")
    store.commit(batch)
    store.close()
    store = HotStore(tmp_path / "hot", create=False)  # values now in table and blob files
    try:
        assert list((tmp_path / "hot").glob("*.blob")), "big values belong in blob files"
        for _ in range(50):  # the bound must stay valid while the scan runs
            scanned = list(store.scan(b"N"))
            gc.collect()
            assert scanned == [(b"Na", b"1")]
            assert [k for k, _ in store.scan(b"O")] == [b"Ob0", b"Ob1", b"Ob2"]
            assert [k for k, v in store.scan_some(b"O", lambda k: False)] == [
                b"Ob0",
                b"Ob1",
                b"Ob2",
            ]
        assert [k for k, _ in store.scan(b"")] == [b"Na", b"Ob0", b"Ob1", b"Ob2", b"Pc"]
    finally:
        store.close()


def test_open_reads_no_hot_rows_and_the_first_query_reads_only_its_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    with Engine.open(tmp_path, embedded=True) as eng:
        for t in ("a", "b"):
            eng.execute(DDL.format(t=t))
            eng.insert_arrow(t, data(0, 5000))
            eng.execute(f"INSERT INTO {t} VALUES (9000, 'one row')")
        ids = {t: eng.catalog.get_table("default", t).table_id for t in ("a", "b")}
    read: list[bytes] = []
    real_iterate, real_get = HotStore._iterate, HotStore.get

    def iterate(self, prefix, wanted):
        read.append(prefix)
        return real_iterate(self, prefix, wanted)

    def get(self, key):
        read.append(key)
        return real_get(self, key)

    monkeypatch.setattr(HotStore, "_iterate", iterate)
    monkeypatch.setattr(HotStore, "get", get)
    with Engine.open(tmp_path, embedded=True) as eng:
        assert not [k for k in read if k.startswith(b"R")], "open read hot rows"
        assert all(eng.db.find_provider(tid) is None for tid in ids.values())
        eng.execute("SELECT count(*) FROM a").rows()
        touched = {k[:9] for k in read if k.startswith(b"R")}
        assert touched == {keys.rows_prefix(ids["a"])}
        assert eng.execute("SELECT count(*) FROM b").rows() == [(5001,)]
        assert eng.execute("SELECT count(*) FROM a").rows() == [(5001,)]


def test_bulk_rows_survive_a_crash_and_reopen_with_blob_files(tmp_path: Path):
    """A clean close moves the memtable into table and blob files; a crash
    image keeps it in the write-ahead log. Both read back every row."""
    import shutil

    with Engine.open(tmp_path / "d", embedded=True) as eng:
        eng.execute(DDL.format(t="t"))
        eng.insert_arrow("t", data(0, 20_000))
        shutil.copytree(tmp_path / "d", tmp_path / "crash")  # as after a kill
    assert list((tmp_path / "d" / "hot").glob("*.blob"))
    for where in ("d", "crash"):
        with Engine.open(tmp_path / where, embedded=True) as eng:
            assert eng.execute("SELECT count(*), max(id) FROM t").rows() == [(20_000, 19_999)]


def test_a_damaged_blob_file_is_loud(tmp_path: Path):
    with Engine.open(tmp_path, embedded=True) as eng:
        eng.execute(DDL.format(t="t"))
        eng.insert_arrow("t", data(0, 20_000))
    (blob,) = (tmp_path / "hot").glob("*.blob")
    raw = bytearray(blob.read_bytes())
    raw[len(raw) // 2] ^= 0x04
    blob.write_bytes(bytes(raw))
    eng = Engine.open(tmp_path, embedded=True)  # the open does not read the blob
    try:
        with pytest.raises(StorageCorruptionError, match="hot"):
            eng.execute("SELECT count(*) FROM t").rows()
    finally:
        eng.close()


def test_a_bulk_load_leaves_no_write_ahead_log_to_replay(tmp_path: Path):
    """A statement writing MBs of bulk chunks asks RocksDB to flush its
    memtable at once, so an open after a crash replays almost nothing."""
    import time

    from engine.storage.hot import wal_files

    hot_dir = tmp_path / "hot"

    def log_bytes() -> int:
        total = 0
        for name in wal_files(hot_dir):
            # RocksDB may drop a log after the listing: nothing left to replay.
            with contextlib.suppress(FileNotFoundError):
                total += (hot_dir / name).stat().st_size
        return total

    with Engine.open(tmp_path, embedded=True) as eng:
        eng.execute(DDL.format(t="t"))
        eng.insert_arrow("t", data(0, 300_000))
        deadline = time.monotonic() + 30
        while log_bytes() > 2**20 and time.monotonic() < deadline:
            time.sleep(0.05)  # polling a background flush, bounded by the deadline
        assert log_bytes() <= 2**20, f"{log_bytes()} bytes of log after the flush"
        eng.execute("INSERT INTO t VALUES (-1, 'after')")
        image = tmp_path.parent / (tmp_path.name + "-crash")
        import shutil

        shutil.copytree(tmp_path, image)  # as after a kill
    with Engine.open(image, embedded=True) as eng:
        assert eng.execute("SELECT count(*), min(id) FROM t").rows() == [(300_001, -1)]


def test_freed_memory_goes_back_to_the_os_on_linux():
    import sys

    from engine.memtrim import release_freed_memory

    assert release_freed_memory() is sys.platform.startswith("linux")


def test_repair_of_a_damaged_blob_file_rebuilds_from_the_manifests(tmp_path: Path):
    with Engine.open(tmp_path, embedded=True) as eng:
        eng.execute(DDL.format(t="t"))
        eng.insert_arrow("t", data(0, 1000))
        eng.flush("t")
        eng.insert_arrow("t", data(1000, 21_000))  # hot, one chunk in a blob file
    (blob,) = (tmp_path / "hot").glob("*.blob")
    raw = bytearray(blob.read_bytes())
    raw[len(raw) // 2] ^= 0x04
    blob.write_bytes(bytes(raw))
    with Engine.open(tmp_path, embedded=True, repair=True) as eng:
        assert "Rebuilt the catalog" in str(eng.recovery)
        assert eng.execute("SELECT count(*), max(id) FROM t").rows() == [(1000, 999)]
