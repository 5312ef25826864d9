"""Deletion masks (``engine.providers.live_masks``): cold rows that newer hot
versions (or delete markers) replace are hidden in cached segments by a mask
instead of an anti-join.

Every test compares the engine's answer with a model of the table (a dict of
the rows a reader must see) after each step, with the segments in the warm
cache, and checks that the masks were in use (so a test cannot pass by
falling back to the anti-join). A stale mask is a wrong answer: new hot
writes, DELETE of a cold row, FLUSH, an UPDATE back to the old value, ALTER,
DROP and re-create, a row updated twice, a tombstone then a re-insert, USER
scopes.
"""

from __future__ import annotations

import gc
from types import SimpleNamespace
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from engine import Engine
from engine.providers import live_masks
from engine.providers.live_masks import LiveRows, ScopeMasks

ROWS = 100  # rows per segment
Model = dict[int, tuple[int, str]]


@pytest.fixture
def eng(engines: Any) -> Engine:
    return engines.open(background_jobs=False, segment_cache_mb=64)


def make_table(eng: Engine, kind: str = "SHARED", key: str = "BIGINT", user: str = "root") -> Model:
    """Table t with two flushed segments (ids 0..199, v = id, name = 'n<id>')."""
    eng.execute(
        f"CREATE {kind} TABLE t (id {key} PRIMARY KEY, v INT, name TEXT) "
        "WITH (COMPACT_POLICY = 'none')"
    )
    model: Model = {}
    for first in (0, ROWS):
        add_segment(eng, model, first, user=user)
    return model


def add_segment(eng: Engine, model: Model, first: int, *, user: str = "root") -> None:
    values = ", ".join(f"({i}, {i}, 'n{i}')" for i in range(first, first + ROWS))
    eng.execute(f"INSERT INTO t (id, v, name) VALUES {values}", user=user)
    eng.flush("t")
    model.update({i: (i, f"n{i}") for i in range(first, first + ROWS)})


def check(eng: Engine, model: Model, *, user: str = "root", masked: bool = True) -> None:
    """The engine's rows and aggregates are the model's, read three times:
    from the files, from the warm cache with masks (batches filtered in the
    plan), and once the background copies without hidden rows landed."""
    for _ in range(3):
        got = eng.execute("SELECT id, v, name FROM t ORDER BY id", user=user).rows()
        assert got == [(k, *model[k]) for k in sorted(model)]
        ((total, n, names),) = eng.execute(
            "SELECT sum(v), count(v), count(DISTINCT name) FROM t", user=user
        ).rows()
        assert (total or 0, n, names) == (sum(v for v, _ in model.values()), len(model), len(model))
        assert eng.db.segment_cache.wait_idle(60)
        assert live_masks.wait_idle(60)
    if masked:
        assert masked_rows(eng) > 0


def masked_rows(eng: Engine) -> int:
    """How many cold rows the masks currently hide, over every scope of t."""
    table = eng.db.catalog.find_table("default", "t")
    prov = eng.db.provider(table)
    return sum(len(m.hidden) for s in prov._masks.values() for m in s._masks.values())


def test_an_update_of_cold_rows_is_masked_and_each_new_write_hides_more(eng):
    model = make_table(eng)
    eng.execute("UPDATE t SET v = v + 1000 WHERE id IN (3, 150)")
    model[3], model[150] = (1003, "n3"), (1150, "n150")
    check(eng, model)
    assert masked_rows(eng) == 2
    eng.execute("UPDATE t SET v = 7 WHERE id = 42")  # a new hot version: the mask grows
    model[42] = (7, "n42")
    check(eng, model)
    assert masked_rows(eng) == 3


def test_a_delete_of_cold_rows_hides_them(eng):
    model = make_table(eng)
    eng.execute("DELETE FROM t WHERE id % 10 = 0")
    for k in [k for k in model if k % 10 == 0]:
        del model[k]
    check(eng, model)


def test_a_row_updated_twice_and_back_to_its_old_value(eng):
    model = make_table(eng)
    eng.execute("UPDATE t SET v = 1 WHERE id = 5")
    check(eng, model | {5: (1, "n5")})
    eng.execute("UPDATE t SET v = 2 WHERE id = 5")
    check(eng, model | {5: (2, "n5")})
    eng.execute("UPDATE t SET v = 5 WHERE id = 5")  # back: the hot version still hides the cold
    check(eng, model)


def test_a_tombstone_then_a_reinsert_of_the_same_key(eng):
    model = make_table(eng)
    eng.execute("DELETE FROM t WHERE id = 120")
    del model[120]
    check(eng, model)
    eng.execute("INSERT INTO t (id, v, name) VALUES (120, -5, 'again')")
    model[120] = (-5, "again")
    check(eng, model)


def test_flush_of_the_hot_versions_replaces_the_masks_with_markers(eng):
    model = make_table(eng)
    eng.execute("UPDATE t SET v = 0 WHERE id < 10")
    eng.execute("DELETE FROM t WHERE id >= 190")
    model.update({k: (0, f"n{k}") for k in range(10)})
    for k in range(190, 200):
        del model[k]
    check(eng, model)
    eng.flush("t")  # the old versions are now gone (rewritten) or hidden by delete markers
    check(eng, model, masked=False)
    eng.execute("UPDATE t SET v = 9 WHERE id = 0")
    model[0] = (9, "n0")
    check(eng, model)


def test_hot_rows_forgotten_by_a_flush_never_leave_a_stale_mask(eng):
    """After a flush the same keys are cold in a newer segment: the old
    segment's rows stay hidden (markers), the new segment's rows show."""
    model = make_table(eng)
    eng.execute("UPDATE t SET v = 77 WHERE id = 1")
    model[1] = (77, "n1")
    check(eng, model)
    eng.flush("t")
    check(eng, model, masked=False)
    eng.execute("UPDATE t SET v = 88 WHERE id = 1")
    model[1] = (88, "n1")
    check(eng, model)


def test_alter_between_queries(eng):
    model = make_table(eng)
    eng.execute("UPDATE t SET v = -1 WHERE id = 7")
    model[7] = (-1, "n7")
    check(eng, model)
    eng.execute("ALTER TABLE t ADD COLUMN extra INT DEFAULT 5")
    check(eng, model)
    ((extra,),) = eng.execute("SELECT sum(extra) FROM t").rows()
    assert extra == 5 * len(model)
    eng.execute("ALTER TABLE t RENAME COLUMN name TO label")
    got = eng.execute("SELECT id, v, label FROM t ORDER BY id").rows()
    assert got == [(k, *model[k]) for k in sorted(model)]
    eng.execute("ALTER TABLE t MODIFY COLUMN v BIGINT")
    got = eng.execute("SELECT id, v, label FROM t WHERE id = 7").rows()
    assert got == [(7, -1, "n7")]
    ((total,),) = eng.execute("SELECT sum(v) FROM t").rows()
    assert total == sum(v for v, _ in model.values())


def test_drop_and_recreate_shows_none_of_the_old_rows(eng):
    model = make_table(eng)
    eng.execute("DELETE FROM t WHERE id < 50")
    check(eng, {k: v for k, v in model.items() if k >= 50})
    eng.execute("DROP TABLE t")
    model = make_table(eng)  # the same segment ids, other table
    eng.execute("UPDATE t SET v = 1 WHERE id = 60")
    model[60] = (1, "n60")
    check(eng, model)


def test_user_scopes_have_their_own_masks(eng):
    eng.execute(
        "CREATE USER TABLE t (id BIGINT PRIMARY KEY, v INT, name TEXT) "
        "WITH (COMPACT_POLICY = 'none')"
    )
    alice: Model = {}
    bob: Model = {}
    add_segment(eng, alice, 0, user="alice")
    add_segment(eng, bob, 0, user="bob")
    eng.execute("DELETE FROM t WHERE id < 20", user="alice")
    eng.execute("UPDATE t SET v = -v WHERE id >= 90", user="bob")
    for k in range(20):
        del alice[k]
    bob.update({k: (-k, f"n{k}") for k in range(90, 100)})
    check(eng, alice, user="alice")
    check(eng, bob, user="bob")
    check(eng, alice, user="alice")


def test_text_keys_are_masked_too(eng):
    eng.execute("CREATE TABLE t (id TEXT PRIMARY KEY, v INT) WITH (COMPACT_POLICY = 'none')")
    values = ", ".join(f"('k{i:03d}', {i})" for i in range(ROWS))
    eng.execute(f"INSERT INTO t (id, v) VALUES {values}")
    eng.flush("t")
    eng.execute("UPDATE t SET v = 1000 WHERE id = 'k005'")
    eng.execute("DELETE FROM t WHERE id = 'k006'")
    want = sum(range(ROWS)) - 5 + 1000 - 6
    for _ in range(2):
        assert eng.execute("SELECT sum(v), count(v) FROM t").rows() == [(want, ROWS - 1)]
        assert eng.db.segment_cache.wait_idle(60)
    assert masked_rows(eng) == 2


def test_composite_keys_fall_back_to_the_anti_join(eng):
    eng.execute(
        "CREATE TABLE t (a INT, b INT, v INT, PRIMARY KEY (a, b)) WITH (COMPACT_POLICY = 'none')"
    )
    values = ", ".join(f"({i % 7}, {i}, {i})" for i in range(ROWS))
    eng.execute(f"INSERT INTO t (a, b, v) VALUES {values}")
    eng.flush("t")
    eng.execute("UPDATE t SET v = 0 WHERE b < 10")
    want = sum(range(10, ROWS))
    for _ in range(2):
        assert eng.execute("SELECT sum(v), count(v) FROM t").rows() == [(want, ROWS)]
        assert eng.db.segment_cache.wait_idle(60)
    assert masked_rows(eng) == 0


def test_cache_off_gives_the_same_answers(engines):
    eng = engines.open(background_jobs=False, segment_cache_mb=0)
    model = make_table(eng)
    eng.execute("UPDATE t SET v = 3 WHERE id = 99")
    eng.execute("DELETE FROM t WHERE id = 100")
    model[99] = (3, "n99")
    del model[100]
    check(eng, model, masked=False)


def test_delete_markers_hide_rows_by_seq_and_keys_add_to_them(eng):
    """A segment's rows named by a delete marker (``superseded_seqs``) are
    masked with those a hot key hides; a later snapshot adds only new keys."""
    eng.execute("CREATE TABLE t (id BIGINT PRIMARY KEY, v INT)")
    table = eng.db.catalog.find_table("default", "t")
    key_col = f"c{table.key_columns[0].id}"
    data = pa.table({key_col: pa.array(range(10), pa.int64()), "_seq": pa.array(range(100, 110))})
    entry = _segment_entry(table, 100, 109)
    masks = ScopeMasks(("stamp",))
    keys, seqs = np.array([3], np.int64), np.array([500], np.int64)
    first = LiveRows(masks, table, (104, 106), keys, seqs, lambda df: df)
    found = first.mask(entry, data)  # type: ignore[arg-type]
    assert found is not None
    assert np.flatnonzero(~found.live.to_numpy(zero_copy_only=False)).tolist() == [3, 4, 6]
    later = LiveRows(
        masks, table, (104, 106), np.array([3, 8], np.int64), np.array([500, 501]), lambda df: df
    )
    found = later.mask(entry, data)  # type: ignore[arg-type]
    assert found is not None
    assert np.flatnonzero(~found.live.to_numpy(zero_copy_only=False)).tolist() == [3, 4, 6, 8]
    # An older snapshot than the masks kept is answered from scratch, not from them.
    again = first.mask(entry, data)  # type: ignore[arg-type]
    assert again is not None
    assert np.flatnonzero(~again.live.to_numpy(zero_copy_only=False)).tolist() == [3, 4, 6]


@pytest.mark.parametrize(
    "layout",
    [
        [10, 11, 12, 13, 14, 15],  # dense
        [10, 13, 20, 21, 40, 99],  # sorted, gaps
        [40, 10, 99, 13, 21, 20],  # not in key order
        [10, 13, 13, 20, 40, 40],  # a key twice (every copy is hidden)
        [-(2**63), -5, 0, 7, 2**62, 2**63 - 1],  # the ends of int64
    ],
)
def test_hot_keys_find_their_rows_whatever_the_segment_key_layout(eng, layout):
    eng.execute("CREATE TABLE t (id BIGINT PRIMARY KEY, v INT)")
    table = eng.db.catalog.find_table("default", "t")
    key_col = f"c{table.key_columns[0].id}"
    data = pa.table({key_col: pa.array(layout, pa.int64()), "_seq": pa.array(range(1, 7))})
    entry = _segment_entry(table, 1, 6)
    hot = [layout[1], layout[4], 12345678, -(2**63) + 1, 2**63 - 2]
    want = [i for i, k in enumerate(layout) if k in hot]
    live = LiveRows(
        ScopeMasks(("s",)), table, (), np.array(hot, np.int64), np.arange(1, 6), lambda df: df
    )
    found = live.mask(entry, data)  # type: ignore[arg-type]
    assert found is not None
    assert np.flatnonzero(~found.live.to_numpy(zero_copy_only=False)).tolist() == want


def test_copies_without_the_hidden_rows_are_used_once_made_and_replaced_after_a_write(eng):
    model = make_table(eng)
    eng.execute("UPDATE t SET v = 0 WHERE id IN (1, 2, 101)")
    model.update({k: (0, f"n{k}") for k in (1, 2, 101)})
    check(eng, model)
    table = eng.db.catalog.find_table("default", "t")
    (state,) = eng.db.provider(table)._masks.values()
    assert sorted(count for count, _ in state._kept.values()) == [1, 2]  # a batch per segment
    eng.execute("UPDATE t SET v = 5 WHERE id = 3")  # the same batch: its copy is stale now
    model[3] = (5, "n3")
    check(eng, model)
    assert sorted(count for count, _ in state._kept.values()) == [1, 3]


def test_copies_are_given_back_when_their_masks_are_dropped(eng):
    gc.collect()
    before = live_masks._HELD[0]  # (other engines of this process may hold some)
    model = make_table(eng)
    eng.execute("UPDATE t SET v = 0 WHERE id IN (1, 150)")
    model.update({1: (0, "n1"), 150: (0, "n150")})
    check(eng, model)
    assert live_masks._HELD[0] > before
    eng.execute("DROP TABLE t")
    gc.collect()
    assert live_masks._HELD[0] <= before


def _segment_entry(table, min_seq: int, max_seq: int) -> SimpleNamespace:
    """A stand-in manifest entry for one segment of ``table`` (the fields masks read)."""
    return SimpleNamespace(
        id=1,
        checksum="x",
        min_seq=min_seq,
        max_seq=max_seq,
        schema_version=table.schema_version,
        file_column=lambda cid: f"c{cid}",
    )
