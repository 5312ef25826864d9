"""The columnar hot tier (issue 15): a scope's hot versions held as Arrow
batches with a key index, bulk writes stored as one chunk record.

Every behaviour is checked against plain SQL answers, with the Python tail
switched off (``tail_off``) so the columnar base serves every read and write,
and across reopen and flush, where the two storage layouts (a record per key,
a chunk per bulk statement) must agree.
"""

from __future__ import annotations

import tracemalloc

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from engine.errors import PrimaryKeyViolationError, StorageCorruptionError
from engine.jobs.flush import flush_table
from engine.providers import hot_rows
from engine.providers.hot_rows import HotRows
from engine.storage import keys

DDL = "CREATE TABLE t (id BIGINT PRIMARY KEY, name TEXT, value DOUBLE)"


def data(lo: int, hi: int) -> pa.Table:
    ids = pa.array(range(lo, hi), pa.int64())
    return pa.table(
        {
            "id": ids,
            "name": pc.binary_join_element_wise("n", pc.cast(ids, pa.string()), ""),
            "value": pc.cast(ids, pa.float64()),
        }
    )


@pytest.fixture
def tail_off(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every write goes straight to the columnar base, and batches stay tiny
    (so merging, shrinking and multi-batch reads all happen)."""
    monkeypatch.setattr(hot_rows, "TAIL_LIMIT", 0)
    monkeypatch.setattr(hot_rows, "SMALL_BATCH", 3)


def chunk_records(eng, table: str = "t") -> list[bytes]:
    tdef = eng.db.catalog.find_table("default", table)
    prefix = keys.chunk_prefix(tdef.table_id, "")
    return [k for k, _ in eng.db.store.scan(prefix)]


def state(eng, table: str = "t") -> list[tuple]:
    return eng.execute(f"SELECT id, name, value FROM {table} ORDER BY id").rows()


# ---------------------------------------------------------------- HotRows alone


class _Col:
    def __init__(self, cid: int, type_: str, pk: bool = False) -> None:
        from engine.types import arrow_type

        self.id, self.type, self.primary_key, self.fill = cid, type_, pk, None
        self.arrow_type = arrow_type(type_)


class _Table:
    def __init__(self, key_type: str, composite: bool = False) -> None:
        self.columns = (_Col(1, key_type, True), _Col(2, "TEXT", composite))
        self.key_columns = self.columns if composite else self.columns[:1]


@pytest.mark.parametrize(
    ("key_type", "composite", "make_key"),
    [
        ("BIGINT", False, lambda i: i),
        ("TEXT", False, lambda i: f"k{i}"),
        ("BIGINT", True, lambda i: (i, f"v{i}")),
    ],
    ids=["integer key", "text key", "composite key"],
)
def test_hot_rows_keep_the_newest_version_per_key_across_tail_and_base(
    key_type, composite, make_key, monkeypatch
):
    monkeypatch.setattr(hot_rows, "SMALL_BATCH", 4)
    table = _Table(key_type, composite)
    rows = HotRows(lambda: table)  # type: ignore[arg-type, return-value]

    def version(i: int, seq: int, deleted: bool = False):
        k = make_key(i)
        first = k[0] if isinstance(k, tuple) else k
        return k, (seq, deleted, {1: first, 2: f"v{i}"})

    bulk = dict(version(i, i + 1) for i in range(hot_rows.TAIL_LIMIT + 10))
    rows.update(bulk)  # big: straight into the base as one batch
    assert rows._tail == {} and len(rows) == len(bulk)
    k5, v5 = version(5, 10_000)
    rows[k5] = v5  # newer version: lands in the tail, the base copy dies
    k6, v6 = version(6, 10_001, deleted=True)
    rows[k6] = v6
    del rows[make_key(7)]
    assert rows[k5] == v5 and rows[k6] == v6 and make_key(7) not in rows
    assert rows[make_key(8)] == version(8, 9)[1]
    rows.fold()
    assert rows._tail == {}
    assert rows[k5] == v5 and rows.state_of(k6) == (10_001, True)
    assert len(rows) == len(bulk) - 1
    assert dict(rows.items())[make_key(9)] == version(9, 10)[1]
    assert rows.seqs_of([make_key(9), make_key(7), k5]).tolist() == [10, -1, 10_000]
    # A flush up to seq 100 forgets exactly the versions at or below it.
    assert sorted(map(repr, rows.keys_through(100))) == sorted(
        repr(make_key(i)) for i in range(100) if i not in (5, 6, 7)
    )
    assert rows.forget_through(100) == 97
    assert make_key(50) not in rows and rows[k5] == v5
    assert rows[make_key(200)] == version(200, 201)[1]


def test_dead_versions_are_reclaimed_once_they_outnumber_the_live(monkeypatch):
    monkeypatch.setattr(hot_rows, "SMALL_BATCH", 4)
    table = _Table("BIGINT")
    rows = HotRows(lambda: table)  # type: ignore[arg-type, return-value]
    rows.update({i: (i + 1, False, {1: i, 2: "a"}) for i in range(5000)})
    rows.update({i: (10_000 + i, False, {1: i, 2: "b"}) for i in range(4500)})
    assert rows._n == 9500
    rows.forget_through(9999)  # the 500 untouched first versions
    assert rows._n == 4500 and len(rows) == 4500  # rebuilt without the dead
    assert rows[4499] == (14_499, False, {1: 4499, 2: "b"})
    assert 4600 not in rows


@pytest.mark.parametrize("seed", range(6))
def test_integer_key_index_stays_exact_through_small_and_bulk_writes(seed, monkeypatch):
    """The sorted key index is merged, not re-sorted, after each write; a
    read skips a few dead rows of a big batch by slicing around them. Both
    must answer exactly as a plain dict of the newest versions."""
    import random

    import numpy as np

    monkeypatch.setattr(hot_rows, "SMALL_BATCH", 64)
    rng = random.Random(seed)
    table = _Table("BIGINT")
    rows = HotRows(lambda: table)  # type: ignore[arg-type, return-value]
    model: dict[int, tuple[int, bool]] = {}
    seq = 0
    for _ in range(60):
        op = rng.random()
        if op < 0.55:  # a write of 1 to 3,000 versions (the big ones go straight to the base)
            keys = rng.sample(range(6000), rng.choice([1, 2, 5, 40, 900, 1500, 3000]))
            batch = {}
            for k in keys:
                seq += 1
                batch[k] = (seq, rng.random() < 0.1, {1: k, 2: f"v{seq}"})
            rows.update(batch)
            model.update({k: (v[0], v[1]) for k, v in batch.items()})
        elif op < 0.7 and model:  # deletes: tombstones
            for k in rng.sample(sorted(model), min(len(model), rng.choice([1, 3, 50]))):
                seq += 1
                rows[k] = (seq, True, {1: k, 2: None})
                model[k] = (seq, True)
        elif op < 0.8:
            rows.fold()
        elif op < 0.9 and seq:  # a flush forgets the versions at or below a seq
            mark = rng.randint(max(0, seq - 2000), seq)
            rows.forget_through(mark)
            model = {k: v for k, v in model.items() if v[0] > mark}
        # Lookups one by one, vectorised, and a full read.
        probe = rng.sample(range(6100), 300)
        assert [rows.state_of(k) for k in probe] == [model.get(k) for k in probe]
        want = [model[k][0] if k in model else -1 for k in probe]
        assert rows.seqs_of(probe).tolist() == want
        rows.fold()
        batches, seqs, dels = rows.select(table, include_deleted=True)  # type: ignore[arg-type]
        got_keys = [k for b in batches for k in b.column(0).to_pylist()]
        assert len(got_keys) == len(seqs) == len(model)
        assert dict(zip(got_keys, zip(seqs.tolist(), dels.tolist(), strict=True), strict=True)) == (
            model
        )
        assert np.all(np.diff(rows._sorted_keys) > 0)  # each key indexed once


def test_reading_a_big_batch_with_a_few_dead_rows_copies_nothing(monkeypatch):
    table = _Table("BIGINT")
    rows = HotRows(lambda: table)  # type: ignore[arg-type, return-value]
    n = 100_000  # above SMALL_BATCH: later writes get batches of their own
    rows.update({i: (i + 1, False, {1: i, 2: "a"}) for i in range(n)})
    rows.fold()
    base = rows._batches[0].column(0)
    for i, k in enumerate((0, 17, 18, 99_999)):  # newer versions: these base rows die
        rows[k] = (n + 1 + i, False, {1: k, 2: "b"})
    batches, seqs, _ = rows.select(table, include_deleted=False)  # type: ignore[arg-type]
    old = [b for b in batches if b.num_rows > 10]
    assert [b.num_rows for b in old] == [16, 99_980]  # slices around the dead rows
    # Zero-copy: each slice reads the base batch's own buffer.
    assert all(b.column(0).buffers()[1].address >= base.buffers()[1].address for b in old)
    assert all(
        b.column(0).buffers()[1].address < base.buffers()[1].address + base.buffers()[1].size
        for b in old
    )
    keys = [k for b in batches for k in b.column(0).to_pylist()]
    assert sorted(keys) == list(range(n)) and len(seqs) == n


# ---------------------------------------------------------------- engine


def test_every_statement_gives_the_same_answers_with_the_tail_off(engine, reopen, tail_off):
    engine.execute(DDL)
    engine.execute("INSERT INTO t VALUES (1, 'a', 1.0), (2, 'b', 2.0), (3, 'c', 3.0)")
    engine.execute("UPDATE t SET value = value * 10 WHERE id >= 2")
    engine.execute("DELETE FROM t WHERE id = 1")
    engine.execute("INSERT INTO t VALUES (1, 'again', 0.5)")
    engine.execute("UPDATE t SET name = 'by key' WHERE id = 3")
    expected = [(1, "again", 0.5), (2, "b", 20.0), (3, "by key", 30.0)]
    assert state(engine) == expected
    assert engine.execute("SELECT name FROM t WHERE id = 2").rows() == [("b",)]
    engine = reopen(engine)
    assert state(engine) == expected
    engine.flush("t")
    engine.execute("UPDATE t SET value = -1 WHERE id = 1")
    engine = reopen(engine)
    assert state(engine) == [(1, "again", -1.0), (2, "b", 20.0), (3, "by key", 30.0)]


def test_bulk_insert_is_one_chunk_record_read_back_after_reopen(engine, reopen):
    engine.execute(DDL)
    engine.insert_arrow("t", data(0, 5000))
    assert len(chunk_records(engine)) == 1
    engine = reopen(engine)
    assert engine.execute("SELECT count(*), sum(value) FROM t").rows() == [(5000, 12497500.0)]
    assert engine.execute("SELECT name FROM t WHERE id = 4321").rows() == [("n4321",)]


def test_rows_changed_after_a_bulk_insert_keep_their_newest_version_after_reopen(engine, reopen):
    engine.execute(DDL)
    engine.insert_arrow("t", data(0, 3000))
    engine.execute("UPDATE t SET name = 'new' WHERE id < 10")
    engine.execute("DELETE FROM t WHERE id >= 2990")
    engine.insert_arrow("t", data(2995, 2997))  # small: records per key, over tombstones
    engine.execute("INSERT INTO t SELECT id + 10000, name, value FROM t WHERE id < 2000")
    expected = state(engine)
    assert len(expected) == 2990 + 2 + 2000
    assert expected[0] == (0, "new", 0.0) and expected[10] == (10, "n10", 10.0)
    assert len(chunk_records(engine)) == 2
    engine = reopen(engine)
    assert state(engine) == expected
    engine.flush("t")
    assert chunk_records(engine) == []  # the flush took them
    engine = reopen(engine)
    assert state(engine) == expected
    engine.execute("DELETE FROM t WHERE id = 5")  # a deleted cold row stays deleted
    engine.flush("t")
    engine = reopen(engine)
    assert engine.execute("SELECT count(*) FROM t WHERE id = 5").rows() == [(0,)]


def test_bulk_insert_refuses_a_key_held_hot_or_in_the_same_batch(engine):
    engine.execute(DDL)
    engine.insert_arrow("t", data(0, 2000))
    engine.execute("INSERT INTO t VALUES (5000, 'one', 1.0)")
    before = state(engine)
    for clash in (data(1999, 3100), data(4000, 5001), pa.concat_tables([data(6000, 7100)] * 2)):
        with pytest.raises(PrimaryKeyViolationError):
            engine.insert_arrow("t", clash)
    assert state(engine) == before
    engine.execute("DELETE FROM t WHERE id < 1500")
    engine.insert_arrow("t", data(0, 1500))  # keys of deleted rows are free again
    assert engine.execute("SELECT count(*) FROM t").rows() == [(2001,)]


def test_a_flush_that_dies_after_manifest_json_leaves_no_chunk_twice(engine, reopen):
    engine.execute(DDL)
    engine.insert_arrow("t", data(0, 3000))
    table = engine.db.catalog.find_table("default", "t")

    def die(step: str) -> None:
        if step == "manifest_json_written":
            raise RuntimeError("simulated crash")

    with pytest.raises(RuntimeError):
        flush_table(engine.db, table, crash=die)
    engine = reopen(engine)
    assert engine.execute("SELECT count(*), sum(value) FROM t").rows() == [(3000, 4498500.0)]
    engine.execute("UPDATE t SET value = 0 WHERE id = 7")
    engine = reopen(engine)
    assert engine.execute("SELECT count(*), sum(value) FROM t").rows() == [(3000, 4498493.0)]


def test_user_tables_keep_bulk_rows_per_user(engines, reopen):
    eng = engines.open()
    eng.execute("CREATE USER TABLE u (id BIGINT PRIMARY KEY, name TEXT, value DOUBLE)")
    eng.insert_arrow("u", data(0, 2000), user="alice")
    eng.insert_arrow("u", data(0, 1500), user="bob")
    eng = reopen(eng)
    count = "SELECT count(*) FROM u"
    assert eng.execute(count, user="alice").rows() == [(2000,)]
    assert eng.execute(count, user="bob").rows() == [(1500,)]


def test_a_damaged_chunk_is_loud_and_repair_drops_it(engine, reopen):
    engine.execute(DDL)
    engine.insert_arrow("t", data(0, 2000))
    engine.execute("INSERT INTO t VALUES (9000, 'kept', 1.0)")
    (key,) = chunk_records(engine)
    batch = engine.db.store._db  # the raw handle: only a test damages records
    batch[key] = b"not arrow"
    engine = reopen(engine)
    with pytest.raises(StorageCorruptionError, match="REPAIR TABLE"):
        engine.execute("SELECT count(*) FROM t")
    engine.execute("REPAIR TABLE t")
    assert state(engine) == [(9000, "kept", 1.0)]


def test_hot_rows_are_held_without_a_python_object_per_row(engines, reopen):
    eng = engines.open()
    eng.execute(DDL)
    eng.insert_arrow("t", data(0, 100_000))
    eng.execute("UPDATE t SET name = 'x' WHERE id < 500")  # a record per key too
    eng = reopen(eng)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        assert eng.execute("SELECT count(*) FROM t").rows() == [(100_000,)]
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    # A tuple and a dict per row cost ~500 bytes a row (50 MB here); the
    # columnar tier holds numpy arrays (~30 bytes a row) and Arrow buffers
    # (which tracemalloc does not see).
    assert held < 8 * 2**20, f"{held / 2**20:.1f} MB of Python objects for 100k hot rows"


def test_a_set_based_update_is_one_chunk_and_outlives_reopen_and_flush(engine, reopen):
    engine.execute(DDL)
    engine.insert_arrow("t", data(0, 4000))
    engine.flush("t")
    engine.execute("UPDATE t SET value = value + 0.5 WHERE id < 3000")  # cold rows, new versions
    assert len(chunk_records(engine)) == 1
    engine.execute("UPDATE t SET name = 'last' WHERE id = 10")  # newer than the chunk's
    expected = [(3000 * 2999 / 2 + 1500) + (sum(range(3000, 4000)))]
    total = "SELECT count(*), sum(value) FROM t"
    assert engine.execute(total).rows() == [(4000, expected[0])]
    engine = reopen(engine)
    assert engine.execute(total).rows() == [(4000, expected[0])]
    assert engine.execute("SELECT name, value FROM t WHERE id = 10").rows() == [("last", 10.5)]
    engine.flush("t")
    assert chunk_records(engine) == []
    engine = reopen(engine)
    assert engine.execute(total).rows() == [(4000, expected[0])]
    assert engine.execute("SELECT name, value FROM t WHERE id = 10").rows() == [("last", 10.5)]


def test_a_data_directory_of_records_per_row_opens_and_mixes_with_chunks(
    engine, reopen, monkeypatch
):
    from engine.providers import base

    # The layout before issue 15: one msgpack record per key, whatever the size.
    monkeypatch.setattr(base, "CHUNK_MIN_ROWS", 10**9)
    monkeypatch.setattr(base, "_LOAD_CHUNK", 100)  # the open reads it in many pieces
    engine.execute(DDL)
    engine.insert_arrow("t", data(0, 1500))
    engine.execute("DELETE FROM t WHERE id < 100")
    engine.execute("UPDATE t SET name = 'u' WHERE id >= 1400")
    assert chunk_records(engine) == []
    expected = state(engine)
    engine = reopen(engine)
    assert state(engine) == expected
    monkeypatch.setattr(base, "CHUNK_MIN_ROWS", 1024)
    engine.insert_arrow("t", data(2000, 3500))
    engine.execute("UPDATE t SET name = 'w' WHERE id >= 1450 AND id < 2010")
    expected = state(engine)
    assert len(expected) == 1400 + 1500 and len(chunk_records(engine)) == 1
    engine = reopen(engine)
    assert state(engine) == expected
