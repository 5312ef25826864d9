"""The manifest's append-only copies (issue 15, "Metadata that scales").

Cold copy: ``manifest.json`` is a checkpoint and ``manifest.jsonl`` its change
log; a flush appends one line, readers replay, a torn last line is not
committed, a damaged complete line is loud and names the log, a crashed fold
or an uncommitted line makes the next writer fold. Hot copy: a header key and
one key per segment; a flush's batch holds only what changed; damage to any
key is loud. ``Change`` (``diff`` / ``apply``) round-trips any sequence of
manifest versions.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import engine.manifest.files as files
from engine import Engine
from engine.errors import StorageCorruptionError
from engine.manifest import Manifest, SegmentEntry, encode
from engine.manifest import hot as hot_copy
from engine.manifest.files import (
    LOG_FILE,
    commit_manifest_json,
    read_manifest_json,
    write_manifest_json,
)
from engine.manifest.model import Replay, apply, diff
from engine.storage import keys
from engine.storage.hot import Batch, HotStore

T0 = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)


def entry(segment_id: int, seq: int) -> SegmentEntry:
    return SegmentEntry(
        id=segment_id,
        path=f"batch-{segment_id}.parquet",
        row_count=10,
        size_bytes=1000 + segment_id,
        created_at=T0,
        min_seq=seq - 9,
        max_seq=seq,
        schema_version=1,
        checksum="sha256:" + f"{segment_id:064x}",
        column_stats={
            "1": {"type": "int64", "min": segment_id, "max": segment_id + 9, "null_count": 0}
        },
    )


def grown(n: int, base: Manifest | None = None) -> Manifest:
    """A manifest with ``n`` more segments, one flush each."""
    m = base or Manifest.new(7, None, now=T0)
    for _ in range(n):
        i = m.next_segment_id()
        m = m.with_segments([entry(i, 10 * i)], flushed_seq=10 * i, now=T0)
    return m


def next_flush(m: Manifest, superseded: tuple[int, ...] = ()) -> Manifest:
    i = m.next_segment_id()
    return m.with_segments([entry(i, 10 * i)], flushed_seq=10 * i, superseded=superseded, now=T0)


def log_lines(directory: Path) -> list[bytes]:
    return (directory / LOG_FILE).read_bytes().splitlines()


# --------------------------------------------------------------------------- cold copy


def test_a_flush_appends_one_line_and_leaves_the_checkpoint_alone(tmp_path):
    m1 = grown(1)
    write_manifest_json(tmp_path, m1)
    checkpoint = (tmp_path / "manifest.json").read_bytes()
    m2 = next_flush(m1)
    commit_manifest_json(tmp_path, m1, m2)
    m3 = next_flush(m2, superseded=(3, 4))
    commit_manifest_json(tmp_path, m2, m3)
    assert (tmp_path / "manifest.json").read_bytes() == checkpoint
    assert len(log_lines(tmp_path)) == 3  # the checkpoint's line, then two changes
    assert read_manifest_json(tmp_path / "manifest.json") == m3


def test_the_appended_line_does_not_grow_with_the_segment_count(tmp_path):
    sizes = []
    for n in (20, 2000):
        directory = tmp_path / str(n)
        m = grown(n)
        write_manifest_json(directory, m)
        before = (directory / LOG_FILE).stat().st_size
        commit_manifest_json(directory, m, next_flush(m))
        sizes.append((directory / LOG_FILE).stat().st_size - before)
        assert read_manifest_json(directory / "manifest.json") == next_flush(m)
    # The same line whatever came before it, but for wider numbers (ids, seqs).
    assert sizes[0] <= sizes[1] <= sizes[0] + 40, sizes


def test_a_torn_last_line_is_not_committed_and_the_next_append_cuts_it_off(tmp_path):
    m1 = grown(2)
    write_manifest_json(tmp_path, m1)
    m2 = next_flush(m1)
    commit_manifest_json(tmp_path, m1, m2)
    log = tmp_path / LOG_FILE
    whole = log.read_bytes()
    for cut in (1, len(log_lines(tmp_path)[-1]) // 2, len(log_lines(tmp_path)[-1])):
        log.write_bytes(whole[:-cut])  # a crash mid-append: no final newline
        assert read_manifest_json(tmp_path / "manifest.json") == m1
    other = next_flush(m1, superseded=(5,))  # what the hot copy (at m1) commits next
    commit_manifest_json(tmp_path, m1, other)
    assert read_manifest_json(tmp_path / "manifest.json") == other
    assert log.read_bytes().endswith(b"\n") and len(log_lines(tmp_path)) == 2


@pytest.mark.parametrize(
    ("damage", "phrase"),
    [
        (lambda b: b.replace(b'"row_count":10', b'"row_count":11', 1), "line 2: checksum mismatch"),
        (lambda b: b.replace(b'"add":[', b'"add":{', 1), "line 2: not valid JSON"),
        (lambda b: b[:20] + b"X" + b[21:], "line 1:"),
        (lambda b: b.replace(b'"base":2', b'"base":1', 1), "line 2"),
    ],
)
def test_a_damaged_complete_line_is_loud_and_names_the_log_and_line(tmp_path, damage, phrase):
    m = grown(2)
    write_manifest_json(tmp_path, m)
    for _ in range(2):
        new = next_flush(m)
        commit_manifest_json(tmp_path, m, new)
        m = new
    log = tmp_path / LOG_FILE
    log.write_bytes(damage(log.read_bytes()))
    with pytest.raises(StorageCorruptionError) as info:
        read_manifest_json(tmp_path / "manifest.json")
    assert str(log) in info.value.message and phrase in info.value.message, info.value.message
    assert info.value.fields["file"] == str(log)


def test_a_long_log_replays_to_the_manifest_it_records(tmp_path, monkeypatch):
    monkeypatch.setattr(files, "FOLD_BYTES", 1 << 40)  # never fold: one long log
    m = grown(3000)
    write_manifest_json(tmp_path, m)
    for k in range(3000):
        new = next_flush(m, superseded=(k,) if k % 7 == 0 else ())
        commit_manifest_json(tmp_path, m, new)
        m = new
    assert len(log_lines(tmp_path)) == 3001
    assert read_manifest_json(tmp_path / "manifest.json") == m


def test_a_base_mismatch_that_still_verifies_is_loud(tmp_path):
    # A line re-checksummed after its base was changed: replay refuses the gap.
    m = grown(2)
    write_manifest_json(tmp_path, m)
    new = next_flush(m)
    commit_manifest_json(tmp_path, m, new)
    log = tmp_path / LOG_FILE
    lines = log.read_bytes().splitlines()
    d = orjson.loads(lines[1])
    d.pop("checksum")
    d["base"] = 1
    lines[1] = files._line(d).rstrip(b"\n")
    log.write_bytes(b"\n".join(lines) + b"\n")
    with pytest.raises(StorageCorruptionError, match="line 2: change 3 applies to version 1"):
        read_manifest_json(tmp_path / "manifest.json")


def test_a_line_of_the_wrong_shape_is_loud_and_names_the_log(tmp_path):
    m = grown(2)
    write_manifest_json(tmp_path, m)
    commit_manifest_json(tmp_path, m, next_flush(m))
    log = tmp_path / LOG_FILE
    lines = log.read_bytes().splitlines()
    d = orjson.loads(lines[1])
    d.pop("checksum")
    d["add"] = [{"id": "three"}]
    lines[1] = files._line(d).rstrip(b"\n")
    log.write_bytes(b"\n".join(lines) + b"\n")
    with pytest.raises(StorageCorruptionError) as info:
        read_manifest_json(tmp_path / "manifest.json")
    assert f"{log} line 2" in info.value.message and info.value.fields["file"] == str(log)


def test_a_fold_that_crashed_before_its_log_leaves_a_stale_log_that_is_ignored(tmp_path):
    m1 = grown(1)
    write_manifest_json(tmp_path, m1)
    m2 = next_flush(m1)
    commit_manifest_json(tmp_path, m1, m2)
    stale_log = (tmp_path / LOG_FILE).read_bytes()
    m3 = next_flush(m2)
    write_manifest_json(tmp_path, m3)  # the fold's checkpoint ...
    (tmp_path / LOG_FILE).write_bytes(stale_log)  # ... and the crash before its log
    assert read_manifest_json(tmp_path / "manifest.json") == m3
    m4 = next_flush(m3)
    commit_manifest_json(tmp_path, m3, m4)  # the writer folds: the log is not m3's
    assert len(log_lines(tmp_path)) == 1
    assert read_manifest_json(tmp_path / "manifest.json") == m4


def test_a_line_the_hot_copy_never_committed_makes_the_next_writer_fold(tmp_path):
    m1 = grown(1)
    write_manifest_json(tmp_path, m1)
    orphan = next_flush(m1)
    commit_manifest_json(tmp_path, m1, orphan)  # the flush died before its hot commit
    redo = next_flush(m1, superseded=(2,))  # the next flush starts from the hot copy, m1
    commit_manifest_json(tmp_path, m1, redo)
    assert read_manifest_json(tmp_path / "manifest.json") == redo
    assert len(log_lines(tmp_path)) == 1  # folded: the orphan line is gone


def test_the_log_folds_once_it_outgrows_the_checkpoint(tmp_path, monkeypatch):
    monkeypatch.setattr(files, "FOLD_BYTES", 0)
    m = grown(3)
    write_manifest_json(tmp_path, m)
    checkpoint = (tmp_path / "manifest.json").stat().st_size
    folds = 0
    for _ in range(40):
        new = next_flush(m)
        before = (tmp_path / "manifest.json").stat().st_ino
        commit_manifest_json(tmp_path, m, new)
        folds += (tmp_path / "manifest.json").stat().st_ino != before
        assert (tmp_path / LOG_FILE).stat().st_size <= 2 * max(
            checkpoint, (tmp_path / "manifest.json").stat().st_size
        )
        assert read_manifest_json(tmp_path / "manifest.json") == new
        m = new
    assert 1 <= folds < 40


def test_a_manifest_without_a_log_reads_as_its_checkpoint(tmp_path):
    m = grown(2)
    (tmp_path / "manifest.json").write_bytes(encode(m, pretty=True))  # an older data directory
    assert read_manifest_json(tmp_path / "manifest.json") == m
    new = next_flush(m)
    commit_manifest_json(tmp_path, m, new)  # no log to append to: a fold starts one
    assert read_manifest_json(tmp_path / "manifest.json") == new
    assert len(log_lines(tmp_path)) == 1


# --------------------------------------------------------------------------- Change


_op = st.one_of(
    st.tuples(st.just("flush"), st.lists(st.integers(1, 400), max_size=4)),
    st.tuples(st.just("compact"), st.integers(0, 3)),
    st.tuples(st.just("watermark"), st.integers(0, 5)),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(_op, min_size=1, max_size=12))
def test_diff_then_apply_gives_back_every_next_version(ops):
    m = Manifest.new(3, "bob", now=T0)
    replay = Replay(m)  # all changes at once, as a log replay applies them
    for op, arg in ops:
        if op == "flush":
            new = next_flush(m, superseded=tuple(arg))
        elif op == "compact" and m.segments:
            gone = [s.id for s in m.segments[: arg + 1]]
            i = m.next_segment_id()
            new = m.replace_segments(gone, [entry(i, m.flushed_seq)], now=T0)
            new = Manifest(**{**new.__dict__, "superseded_seqs": new.superseded_seqs[1:]})
        else:
            new = m.with_watermark(m.flushed_seq + int(arg), now=T0)
        change = diff(m, new)
        assert change is not None
        assert apply(m, change) == new
        replay.add(change)
        m = new
    assert replay.result() == m


# --------------------------------------------------------------------------- hot copy


@pytest.fixture
def store(tmp_path):
    s = HotStore(tmp_path / "hot", sync=False)
    yield s
    s.close()


def commit(store: HotStore, fill: Any) -> Batch:
    batch = Batch()
    fill(batch)
    store.commit(batch)
    return batch


def test_a_flush_puts_only_its_new_segment_and_the_header(store):
    m = grown(2000)
    commit(store, lambda b: hot_copy.stage(b, store, 7, "", m, None))
    new = next_flush(m, superseded=(11, 12))
    batch = commit(store, lambda b: hot_copy.stage(b, store, 7, "", new, m))
    assert batch.ops == 3  # the new segment, its markers, the header
    loaded, bad, layered = hot_copy.load(store, 7)
    assert loaded == {"": new} and bad == {} and layered == {""}


def test_removing_segments_and_markers_rewrites_only_what_changed(store):
    m = next_flush(grown(5), superseded=(3,))
    commit(store, lambda b: hot_copy.stage(b, store, 7, "", m, None))
    compacted = m.replace_segments([1, 2], [entry(7, m.flushed_seq)], now=T0)
    compacted = Manifest(**{**compacted.__dict__, "superseded_seqs": ()})
    commit(store, lambda b: hot_copy.stage(b, store, 7, "", compacted, m))
    assert hot_copy.load(store, 7)[0] == {"": compacted}


@pytest.mark.parametrize("target", ["segment", "header", "markers"])
def test_a_damaged_hot_key_is_loud_and_names_the_copy(store, target):
    m = next_flush(grown(3), superseded=(4,))
    commit(store, lambda b: hot_copy.stage(b, store, 7, "", m, None))
    key = {
        "segment": hot_copy.parts_prefix(7, "") + b"s" + (2).to_bytes(8, "big"),
        "header": keys.manifest_key(7, ""),
        "markers": next(k for k in hot_copy.hot_keys(store, 7, "") if b"\x00d" in k),
    }[target]
    raw = store.get(key)
    assert raw is not None
    commit(store, lambda b: b.put(key, raw.replace(b"1", b"2", 1)))
    loaded, bad, _ = hot_copy.load(store, 7)
    assert loaded == {} and "hot manifest copy of table id 7" in bad[""].message


def test_a_lost_segment_key_is_loud(store):
    m = grown(3)
    commit(store, lambda b: hot_copy.stage(b, store, 7, "", m, None))
    commit(store, lambda b: b.delete(hot_copy.parts_prefix(7, "") + b"s" + (2).to_bytes(8, "big")))
    _, bad, _ = hot_copy.load(store, 7)
    assert "2 segment entries, the header says 3" in bad[""].message


def test_a_whole_manifest_in_the_header_still_loads_and_its_next_write_is_whole(store):
    m = grown(3)
    commit(store, lambda b: b.put(keys.manifest_key(7, "alice"), encode(m)))  # older layout
    loaded, bad, layered = hot_copy.load(store, 7)
    assert loaded == {"alice": m} and layered == set()
    new = next_flush(m)
    commit(store, lambda b: hot_copy.stage(b, store, 7, "alice", new, None))
    assert hot_copy.load(store, 7)[:3] == ({"alice": new}, {}, {"alice"})


# --------------------------------------------------------------------------- the engine


def test_a_catalog_rebuilt_from_manifest_files_replays_their_logs(tmp_path):
    data = tmp_path / "data"
    with Engine.open(data, background_jobs=False) as eng:
        eng.execute(
            "CREATE TABLE t (id BIGINT PRIMARY KEY, v INT) "
            "WITH (COMPACT_POLICY = 'none', DELTA = false)"  # the delete stays a marker
        )
        for k in range(4):
            eng.execute(
                "INSERT INTO t VALUES " + ", ".join(f"({i}, {i})" for i in range(k * 5, k * 5 + 5))
            )
            eng.flush("t")
        eng.execute("DELETE FROM t WHERE id = 3")
        eng.flush("t")
    log = data / "storage" / "default" / "t" / LOG_FILE
    assert len(log.read_bytes().splitlines()) == 5  # four changes after the first checkpoint
    shutil.rmtree(data / "hot")  # the hot store is lost: only the cold copies remain
    with Engine.open(data, background_jobs=False, repair=True) as eng:
        ids = [r[0] for r in eng.execute("SELECT id FROM t ORDER BY id").rows()]
        assert ids == [i for i in range(20) if i != 3]
