"""Manifests: strict JSON, atomic manifest.json, watermark bookkeeping, orphans (invariant 4)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import orjson
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.errors import StorageCorruptionError
from engine.manifest import (
    Manifest,
    SegmentEntry,
    decode,
    encode,
    find_manifest_json,
    find_orphans,
    read_manifest_json,
    remove_orphans,
    write_manifest_json,
)
from engine.storage import fs
from engine.storage.cold import write_segment

T0 = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)
T1 = dt.datetime(2024, 5, 1, 12, 5, 30, 123456, tzinfo=dt.UTC)


def entry(segment_id: int, min_seq: int = 1, max_seq: int = 10, **kw: Any) -> SegmentEntry:
    fields: dict[str, Any] = {
        "id": segment_id,
        "path": f"batch-{segment_id}.parquet",
        "row_count": max_seq - min_seq + 1,
        "size_bytes": 1234,
        "created_at": T1,
        "min_seq": min_seq,
        "max_seq": max_seq,
        "schema_version": 1,
        "checksum": "sha256:" + "ab" * 32,
        "column_stats": {
            "1": {"type": "int64", "min": 1, "max": 10, "null_count": 0},
            "2": {"type": "double", "min": "-inf", "max": 2.5, "null_count": 3, "nan_count": 1},
            "3": {"type": "binary", "min": "00ff", "max": None, "null_count": 0},
        },
    }
    fields.update(kw)
    return SegmentEntry(**fields)


def two_segment_manifest() -> Manifest:
    m = Manifest.new(42, "alice", now=T0)
    m = m.with_segment(entry(1, 1, 10), flushed_seq=10, now=T1)
    return m.with_segment(entry(2, 11, 25), flushed_seq=30, now=T1)


# --------------------------------------------------------------------------- model


def test_new_manifest_is_empty_version_zero():
    m = Manifest.new(7, None, now=T0)
    assert (m.version, m.flushed_seq, m.last_segment_id, m.segments) == (0, 0, 0, ())
    assert m.next_segment_id() == 1


def test_with_segment_bumps_version_ids_and_watermark():
    m = two_segment_manifest()
    assert m.version == 2
    assert m.last_segment_id == 2 and m.next_segment_id() == 3
    assert m.flushed_seq == 30  # a flush may advance the watermark past its last row
    assert [s.id for s in m.segments] == [1, 2]
    assert m.get_segment(2).max_seq == 25 and m.find_segment(9) is None
    assert m.row_count == 25
    assert m.updated_at == T1 and m.created_at == T0


def test_watermark_never_moves_back():
    m = two_segment_manifest()
    assert m.with_watermark(5).flushed_seq == 30
    assert m.with_segment(entry(3, 26, 28), flushed_seq=1).flushed_seq == 30


def test_segment_ids_are_never_reused():
    m = two_segment_manifest().replace_segments([2], [])
    assert m.last_segment_id == 2 and m.next_segment_id() == 3
    with pytest.raises(ValueError, match="not above"):
        m.with_segment(entry(2, 11, 25), flushed_seq=30)


def test_replace_segments_compacts():
    m = two_segment_manifest().replace_segments([1, 2], [entry(3, 1, 25)])
    assert [s.id for s in m.segments] == [3] and m.version == 3
    with pytest.raises(ValueError, match="not in the manifest"):
        m.replace_segments([1], [])


def test_a_segment_above_the_watermark_is_refused():
    with pytest.raises(ValueError, match="watermark"):
        Manifest.new(1, None).with_segment(entry(1, 1, 10), flushed_seq=9)


# --------------------------------------------------------------------------- JSON


def test_encode_decode_round_trip():
    m = two_segment_manifest()
    assert decode(encode(m)) == m
    assert decode(encode(m, pretty=True)) == m
    assert b"\n" not in encode(m)  # compact for the hot copy


def test_manifest_json_round_trip(tmp_path):
    m = two_segment_manifest()
    path = write_manifest_json(tmp_path, m)
    assert path == tmp_path / "manifest.json"
    assert read_manifest_json(path) == m
    assert find_manifest_json(tmp_path) == m


def test_manifest_json_is_readable_json_with_iso_timestamps(tmp_path):
    write_manifest_json(tmp_path, two_segment_manifest())
    d = orjson.loads((tmp_path / "manifest.json").read_bytes())
    assert d["format"] == 1 and d["scope"] == "alice" and d["table_id"] == 42
    assert d["updated_at"] == "2024-05-01T12:05:30.123456+00:00"
    assert d["segments"][0]["column_stats"]["2"]["min"] == "-inf"


def test_real_segment_entries_round_trip(tmp_path):
    table = pa.table(
        {
            "c1": pa.array([3, 1, 2], pa.int64()),
            "c2": pa.array([float("inf"), None, float("nan")]),
            "c3": pa.array([b"\x00", b"\xff" * 80, None]),
            "_seq": pa.array([5, 6, 7], pa.int64()),
            "_deleted": pa.array([False, True, False]),
        }
    )
    e = write_segment(tmp_path, 1, table, sort_column="c1", schema_version=2)
    m = Manifest.new(1, None).with_segment(e, flushed_seq=7)
    assert decode(encode(m)) == m


def test_write_is_atomic_and_leaves_no_temp_file(tmp_path):
    write_manifest_json(tmp_path, Manifest.new(1, None))
    write_manifest_json(tmp_path, two_segment_manifest())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["manifest.json", "manifest.jsonl"]
    assert read_manifest_json(tmp_path / "manifest.json").version == 2


def test_a_crash_during_write_keeps_the_previous_manifest(tmp_path, monkeypatch):
    old = Manifest.new(1, None)
    write_manifest_json(tmp_path, old)

    def crash(src, dst):
        raise OSError("power cut")

    monkeypatch.setattr(fs.os, "replace", crash)
    with pytest.raises(OSError, match="power cut"):
        write_manifest_json(tmp_path, two_segment_manifest())
    assert read_manifest_json(tmp_path / "manifest.json") == old
    assert sorted(p.name for p in tmp_path.iterdir()) == ["manifest.json", "manifest.jsonl"]


def test_missing_manifest_json_is_an_error_naming_the_file(tmp_path):
    assert find_manifest_json(tmp_path) is None
    with pytest.raises(StorageCorruptionError, match=r"manifest\.json is missing"):
        read_manifest_json(tmp_path / "manifest.json")


def valid_dict() -> dict[str, Any]:
    return orjson.loads(encode(two_segment_manifest()))


def mutate(path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    d = valid_dict()
    target: Any = d
    for key in path[:-1]:
        target = target[key]
    if value is DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return d


DELETE = object()
SEG = ("segments", 0)


@pytest.mark.parametrize(
    ("path", "value", "why"),
    [
        (("version",), DELETE, "missing"),
        (("surprise",), 1, "unexpected"),
        (("format",), 2, "format"),
        (("table_id",), "42", "table_id"),
        (("version",), True, "version"),
        (("flushed_seq",), -1, "flushed_seq"),
        (("scope",), 5, "scope"),
        (("created_at",), "yesterday", "created_at"),
        (("created_at",), "2024-05-01T12:00:00", "UTC offset"),
        (("segments",), {}, "segments"),
        (("last_segment_id",), 1, "last_segment_id"),
        (("flushed_seq",), 20, "watermark"),
        ((*SEG,), {**entry(2, 1, 10).to_dict()}, "duplicate"),
        ((*SEG, "path"), "../../etc/passwd", "segment file name"),
        ((*SEG, "path"), "batch-2.parquet", "not the file name of segment 1"),
        ((*SEG, "checksum"), "md5:abc", "checksum"),
        ((*SEG, "min_seq"), 11, "min_seq > max_seq"),
        ((*SEG, "row_count"), 1.5, "row_count"),
        ((*SEG, "column_stats"), [], "column_stats"),
        ((*SEG, "column_stats", "x"), {}, "column id"),
        ((*SEG, "column_stats", "1", "min"), "1", "does not fit"),
        ((*SEG, "column_stats", "2", "max"), "NaN", "does not fit"),
        ((*SEG, "column_stats", "3", "min"), "zz", "does not fit"),
        ((*SEG, "column_stats", "1", "null_count"), None, "null_count"),
        ((*SEG, "column_stats", "1", "extra"), 0, "unexpected"),
        ((*SEG, "created_at"), None, "created_at"),
    ],
)
def test_wrong_shape_is_corruption_naming_the_file(tmp_path, path, value, why):
    file = tmp_path / "manifest.json"
    file.write_bytes(orjson.dumps(mutate(path, value)))
    with pytest.raises(StorageCorruptionError, match=why) as info:
        read_manifest_json(file)
    assert str(file) in str(info.value)


@pytest.mark.parametrize(
    "content", [b"", b"{", b"not json", b"[]", b"null", b'{"format": 1}', b"\xff\xfe"]
)
def test_bad_json_is_corruption_naming_the_file(tmp_path, content):
    file = tmp_path / "manifest.json"
    file.write_bytes(content)
    with pytest.raises(StorageCorruptionError, match="manifest.json"):
        read_manifest_json(file)


def test_truncated_manifest_json_is_corruption(tmp_path):
    path = write_manifest_json(tmp_path, two_segment_manifest())
    data = path.read_bytes()
    for cut in (1, len(data) // 3, len(data) - 2):
        path.write_bytes(data[:cut])
        with pytest.raises(StorageCorruptionError, match="manifest.json"):
            read_manifest_json(path)


def test_damaged_hot_copy_names_its_source():
    with pytest.raises(StorageCorruptionError, match="hot manifest of table 42"):
        decode(b"{oops", source="hot manifest of table 42")


# --------------------------------------------------------------------------- orphans


def test_orphans_are_temp_files_and_unnamed_segments(tmp_path):
    m = two_segment_manifest()
    for name in ["batch-1.parquet", "batch-2.parquet", "manifest.json", "notes.txt"]:
        (tmp_path / name).write_bytes(b"x")
    orphans = ["batch-3.parquet", ".batch-4.parquet.0a1b2c.tmp", ".manifest.json.ffee00.tmp"]
    for name in orphans:
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "batch-9.parquet").mkdir()  # not a file: left alone
    assert [p.name for p in find_orphans(tmp_path, m)] == sorted(orphans)
    assert sorted(p.name for p in remove_orphans(tmp_path, m)) == sorted(orphans)
    assert find_orphans(tmp_path, m) == []
    assert (tmp_path / "batch-1.parquet").exists() and (tmp_path / "manifest.json").exists()


def test_every_segment_is_an_orphan_without_a_manifest(tmp_path):
    (tmp_path / "batch-1.parquet").write_bytes(b"x")
    assert find_orphans(tmp_path, None) == [tmp_path / "batch-1.parquet"]
    assert find_orphans(tmp_path / "absent", None) == []


def test_a_crashed_flush_leaves_an_orphan_the_next_flush_overwrites(tmp_path):
    table = pa.table(
        {"c1": pa.array([1], pa.int64()), "_seq": pa.array([1], pa.int64()), "_deleted": [False]}
    )
    m = Manifest.new(1, None)
    write_manifest_json(tmp_path, m)
    # crash after the segment write, before the manifest write:
    write_segment(tmp_path, m.next_segment_id(), table, sort_column="c1", schema_version=1)
    m = read_manifest_json(tmp_path / "manifest.json")
    assert m.segments == () and [p.name for p in find_orphans(tmp_path, m)] == ["batch-1.parquet"]
    e = write_segment(tmp_path, m.next_segment_id(), table, sort_column="c1", schema_version=1)
    write_manifest_json(tmp_path, m.with_segment(e, flushed_seq=1))
    m = read_manifest_json(tmp_path / "manifest.json")
    assert find_orphans(tmp_path, m) == [] and m.segments == (e,)


# --------------------------------------------------------------------------- property


TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=5)


@st.composite
def manifests(draw: st.DrawFn) -> Manifest:
    m = Manifest.new(draw(st.integers(0, 2**40)), draw(st.none() | TEXT), now=T0)
    for _ in range(draw(st.integers(0, 5))):
        lo = draw(st.integers(m.flushed_seq + 1, m.flushed_seq + 1000))
        hi = draw(st.integers(lo, lo + 1000))
        stats = {
            str(draw(st.integers(1, 50))): {
                "type": "string",
                "min": draw(TEXT),
                "max": draw(st.none() | TEXT),
                "null_count": draw(st.integers(0, 10)),
            }
        }
        e = entry(m.next_segment_id() + draw(st.integers(0, 3)), lo, hi, column_stats=stats)
        m = m.with_segment(e, flushed_seq=hi + draw(st.integers(0, 5)), now=T1)
    return m


@settings(max_examples=150, deadline=None)
@given(manifests())
def test_any_manifest_round_trips(m):
    assert decode(encode(m)) == m
    assert decode(encode(m, pretty=True)) == m


def test_manifest_repr_is_short():
    assert repr(two_segment_manifest()) == (
        "Manifest(table_id=42, scope='alice', version=2, flushed_seq=30, segments=2)"
    )
