"""Parquet segments: layout, statistics, checksums and loud corruption (invariant 5)."""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import os
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from engine.errors import StorageCorruptionError
from engine.storage import cold, fs
from engine.storage.cold import (
    STATS_PREFIX_LEN,
    SegmentEntry,
    SegmentVerifier,
    compute_column_stats,
    decode_stat_value,
    open_segment,
    segments_dataset,
    verify_segment,
    write_segment,
)

NOW = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)


def segment_table(n: int, *, start: int = 0, shuffled: bool = False) -> pa.Table:
    ids = list(range(start, start + n))
    if shuffled:
        ids = ids[::-1]
    return pa.table(
        {
            "c1": pa.array(ids, pa.int64()),
            "c2": pa.array([f"name-{i}" for i in ids], pa.string()),
            "_seq": pa.array([i + 1 for i in ids], pa.int64()),
            "_deleted": pa.array([i % 7 == 0 for i in ids], pa.bool_()),
        }
    )


def write(tmp_path: Path, n: int = 100, segment_id: int = 1, **kw) -> SegmentEntry:
    kw.setdefault("sort_column", "c1")
    kw.setdefault("schema_version", 3)
    return write_segment(tmp_path, segment_id, segment_table(n), now=NOW, **kw)


# --------------------------------------------------------------------------- writing


def test_segment_entry_describes_the_file_written(tmp_path):
    entry = write(tmp_path, 25_000, segment_id=4)
    path = tmp_path / "batch-4.parquet"
    data = path.read_bytes()
    assert entry.path == "batch-4.parquet"
    assert entry.size_bytes == len(data)
    assert entry.checksum == "sha256:" + hashlib.sha256(data).hexdigest()
    assert (entry.row_count, entry.min_seq, entry.max_seq) == (25_000, 1, 25_000)
    assert (entry.schema_version, entry.created_at) == (3, NOW)
    assert entry.column_stats["1"] == {"type": "int64", "min": 0, "max": 24_999, "null_count": 0}
    assert set(entry.column_stats) == {"1", "2"}  # hidden columns have no column stats


def test_segment_layout_row_groups_compression_statistics_page_index(tmp_path):
    write(tmp_path, 25_000, row_group_size=10_000)
    meta = pq.ParquetFile(tmp_path / "batch-1.parquet").metadata
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [
        10_000,
        10_000,
        5_000,
    ]
    chunk = meta.row_group(1).column(0)
    assert chunk.compression == "ZSTD"
    assert chunk.statistics.has_min_max and chunk.statistics.min == 10_000
    assert chunk.has_offset_index and chunk.has_column_index
    assert meta.row_group(0).sorting_columns[0].column_index == 0
    assert meta.schema.to_arrow_schema().names == ["c1", "c2", "_seq", "_deleted"]


def test_rows_are_sorted_by_the_primary_key(tmp_path):
    entry = write_segment(
        tmp_path, 1, segment_table(50, shuffled=True), sort_column="c1", schema_version=1
    )
    ids = pq.read_table(tmp_path / entry.path).column("c1").to_pylist()
    assert ids == sorted(ids) and len(ids) == 50


def test_snappy_is_available_as_an_option(tmp_path):
    write(tmp_path, 10, compression="snappy")
    meta = pq.ParquetFile(tmp_path / "batch-1.parquet").metadata
    assert meta.row_group(0).column(0).compression == "SNAPPY"


def test_write_leaves_no_temp_file(tmp_path):
    write(tmp_path)
    write(tmp_path, segment_id=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["batch-1.parquet", "batch-2.parquet"]


def test_failed_write_leaves_neither_temp_nor_segment(tmp_path, monkeypatch):
    def boom(src, dst):
        raise OSError("disk gone")

    monkeypatch.setattr(fs.os, "replace", boom)
    with pytest.raises(OSError, match="disk gone"):
        write(tmp_path)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (segment_table(0), "empty segment"),
        (segment_table(3).drop_columns(["_seq"]), "_seq"),
        (segment_table(3).drop_columns(["_deleted"]), "_deleted"),
        (segment_table(3).rename_columns(["id", "c2", "_seq", "_deleted"]), "'id'"),
        (segment_table(3).set_column(2, "_seq", pa.array([1, 2, 3], pa.int32())), "_seq"),
        (segment_table(3).set_column(2, "_seq", pa.array([1, None, 3], pa.int64())), "nulls"),
    ],
)
def test_malformed_segment_tables_are_refused(tmp_path, table, message):
    with pytest.raises(ValueError, match=message):
        write_segment(tmp_path, 1, table, sort_column="c1", schema_version=1)
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- statistics


def stats_of(arr: pa.Array) -> dict:
    return compute_column_stats(pa.table({"c7": arr}))["7"]


@pytest.mark.parametrize(
    ("arr", "expected"),
    [
        (
            pa.array([3, None, -2], pa.int32()),
            {"type": "int32", "min": -2, "max": 3, "null_count": 1},
        ),
        (
            pa.array([2**62, None, -(2**62)], pa.int64()),
            {"type": "int64", "min": -(2**62), "max": 2**62, "null_count": 1},
        ),
        (
            pa.array([1.5, None, -0.25], pa.float32()),
            {"type": "float", "min": -0.25, "max": 1.5, "null_count": 1, "nan_count": 0},
        ),
        (
            pa.array([math.nan, 2.0, None, math.inf], pa.float64()),
            {"type": "double", "min": 2.0, "max": "inf", "null_count": 1, "nan_count": 1},
        ),
        (
            pa.array([math.nan, None], pa.float64()),
            {"type": "double", "min": None, "max": None, "null_count": 1, "nan_count": 1},
        ),
        (
            pa.array(["b", None, "ab", "é"]),
            {"type": "string", "min": "ab", "max": "é", "null_count": 1},
        ),
        (
            pa.array([True, None, True]),
            {"type": "bool", "min": True, "max": True, "null_count": 1},
        ),
        (
            pa.array(
                [dt.datetime(2024, 1, 2), None, dt.datetime(1969, 12, 31, 23, 59, 59)],
                pa.timestamp("us"),
            ),
            {"type": "timestamp[us]", "min": -1_000_000, "max": 1704153600000000, "null_count": 1},
        ),
        (
            pa.array([dt.datetime(2024, 1, 2)], pa.timestamp("us", tz="UTC")),
            {
                "type": "timestamp[us, tz=UTC]",
                "min": 1704153600000000,
                "max": 1704153600000000,
                "null_count": 0,
            },
        ),
        (
            pa.array([dt.date(1970, 1, 3), None, dt.date(1969, 12, 31)], pa.date32()),
            {"type": "date32[day]", "min": -1, "max": 2, "null_count": 1},
        ),
        (
            pa.array([b"\x02\x00", None, b"\x01\xff"], pa.binary()),
            {"type": "binary", "min": "01ff", "max": "0200", "null_count": 1},
        ),
        (
            pa.array([None, None], pa.int64()),
            {"type": "int64", "min": None, "max": None, "null_count": 2},
        ),
        (
            pa.array([dt.time(1, 2)], pa.time64("us")),  # no statistics for this type
            {"type": "time64[us]", "min": None, "max": None, "null_count": 0},
        ),
    ],
)
def test_column_stats_for_every_supported_type(arr, expected):
    stats = stats_of(arr)
    assert stats == expected
    # JSON-serialisable and decodable as the manifest will store it
    back = orjson.loads(orjson.dumps(stats))
    assert back == expected
    for bound in ("min", "max"):
        decode_stat_value(back["type"], back[bound])


@pytest.mark.parametrize(
    ("values", "typ"),
    [
        (["a" * 100, "b" * 65, "\U0010ffff" * 70 + "x"], pa.string()),
        (["\ud7ff" * 70], pa.string()),  # the next code point is a surrogate: skipped
        ([b"\x00" * 100, b"\x7f" * 80 + b"\x01"], pa.binary()),
        ([b"\xff" * 100], pa.binary()),
        (["z" * 70, "a"], pa.large_string()),
    ],
)
def test_long_values_are_cut_but_still_bound_every_value(values, typ):
    stats = stats_of(pa.array(values, typ))
    orjson.dumps(stats)  # no lone surrogates or raw bytes in the manifest
    lo = decode_stat_value(stats["type"], stats["min"])
    hi = decode_stat_value(stats["type"], stats["max"])
    assert len(lo) <= STATS_PREFIX_LEN
    assert hi is None or len(hi) <= STATS_PREFIX_LEN
    for v in values:
        assert lo <= v and (hi is None or v <= hi)


def test_decode_stat_value_rejects_values_of_the_wrong_type():
    with pytest.raises(ValueError):
        decode_stat_value("int64", "3")
    with pytest.raises(ValueError):
        decode_stat_value("double", True)
    with pytest.raises(ValueError):
        decode_stat_value("binary", "zz")
    assert decode_stat_value("double", "-inf") == -math.inf


# --------------------------------------------------------------------------- verification


def flip_byte(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def test_open_segment_reads_a_verified_file(tmp_path):
    entry = write(tmp_path, 100)
    pf = open_segment(tmp_path, entry, verifier=SegmentVerifier())
    assert pf.read().column("c1").to_pylist() == list(range(100))


def test_flipped_byte_raises_naming_the_file(tmp_path):
    entry = write(tmp_path, 1000)
    path = tmp_path / entry.path
    flip_byte(path, entry.size_bytes // 2)
    with pytest.raises(StorageCorruptionError, match="batch-1.parquet") as info:
        open_segment(tmp_path, entry, verifier=SegmentVerifier())
    assert "checksum" in str(info.value)
    assert info.value.code == "STORAGE_CORRUPTION"


def test_truncated_file_raises_naming_the_file(tmp_path):
    entry = write(tmp_path, 1000)
    path = tmp_path / entry.path
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(StorageCorruptionError, match=r"batch-1\.parquet.*bytes"):
        verify_segment(tmp_path, entry)


def test_missing_file_raises_naming_the_file(tmp_path):
    entry = write(tmp_path)
    (tmp_path / entry.path).unlink()
    with pytest.raises(StorageCorruptionError, match=r"batch-1\.parquet is missing"):
        open_segment(tmp_path, entry)


def test_a_segment_is_hashed_once_per_verifier(tmp_path, monkeypatch):
    entry = write(tmp_path)
    calls = []
    real = cold.file_checksum
    monkeypatch.setattr(cold, "file_checksum", lambda p: calls.append(p) or real(p))
    verifier = SegmentVerifier()
    for _ in range(3):
        open_segment(tmp_path, entry, verifier=verifier)
    assert len(calls) == 1
    open_segment(tmp_path, entry, verifier=SegmentVerifier())  # a new engine checks again
    assert len(calls) == 2


def test_a_file_replaced_after_verification_is_checked_again(tmp_path):
    entry = write(tmp_path)
    verifier = SegmentVerifier()
    verify_segment(tmp_path, entry, verifier=verifier)
    path = tmp_path / entry.path
    damaged = bytearray(path.read_bytes())
    damaged[100] ^= 0xFF
    tmp = tmp_path / "x"
    tmp.write_bytes(bytes(damaged))
    os.replace(tmp, path)  # same size, new inode
    with pytest.raises(StorageCorruptionError, match="checksum"):
        verify_segment(tmp_path, entry, verifier=verifier)


def test_a_failed_verification_is_not_remembered(tmp_path):
    entry = write(tmp_path)
    path = tmp_path / entry.path
    good = path.read_bytes()
    flip_byte(path, 50)
    verifier = SegmentVerifier()
    with pytest.raises(StorageCorruptionError):
        verify_segment(tmp_path, entry, verifier=verifier)
    with pytest.raises(StorageCorruptionError):
        verify_segment(tmp_path, entry, verifier=verifier)
    path.write_bytes(good)
    verify_segment(tmp_path, entry, verifier=verifier)


def test_entry_with_a_path_outside_the_directory_is_refused(tmp_path):
    entry = write(tmp_path)
    evil = SegmentEntry(**{**entry.__dict__, "path": "../batch-1.parquet"})
    with pytest.raises(StorageCorruptionError, match="invalid segment file"):
        open_segment(tmp_path, evil)


def test_segments_dataset_reads_only_the_named_segments_and_fills_new_columns(tmp_path):
    e1 = write_segment(tmp_path, 1, segment_table(10), sort_column="c1", schema_version=1)
    write_segment(tmp_path, 2, segment_table(10, start=10), sort_column="c1", schema_version=1)
    schema = pa.schema([("c1", pa.int64()), ("c9", pa.float64()), ("_seq", pa.int64())])
    table = segments_dataset(tmp_path, [e1], schema=schema, verifier=SegmentVerifier()).to_table()
    assert table.column("c1").to_pylist() == list(range(10))  # segment 2 is not named
    assert table.column("c9").null_count == 10  # a column added after the flush reads as NULL


def test_segments_dataset_refuses_a_damaged_segment(tmp_path):
    entry = write(tmp_path)
    flip_byte(tmp_path / entry.path, 10)
    with pytest.raises(StorageCorruptionError, match="batch-1.parquet"):
        segments_dataset(tmp_path, [entry], schema=pa.schema([("c1", pa.int64())]))


def test_parquet_alone_would_not_notice_a_flipped_value_byte(tmp_path):
    # Why the checksum exists: find a byte inside the plain-encoded values whose
    # flip still decodes, then show the checksum catches it.
    table = pa.table(
        {
            "c1": pa.array(range(1000), pa.int64()),
            "_seq": pa.array(range(1, 1001), pa.int64()),
            "_deleted": pa.array([False] * 1000),
        }
    )
    entry = write_segment(
        tmp_path, 1, table, sort_column="c1", schema_version=1, compression="none"
    )
    path = tmp_path / entry.path
    data = path.read_bytes()
    offset = data.index((500).to_bytes(8, "little"))
    flip_byte(path, offset)
    assert 500 not in pq.read_table(path).column("c1").to_pylist()  # silently wrong
    with pytest.raises(StorageCorruptionError):
        verify_segment(tmp_path, entry)


@pytest.mark.parametrize(
    ("name", "segment_id"),
    [
        ("batch-12.parquet", 12),
        ("batch-1.parquet", 1),
        ("batch-007.parquet", None),  # one spelling per id, or a manifest could name it twice
        ("batch-0.parquet", None),
        ("batch-\u0663.parquet", None),  # a non-ASCII digit
        ("batch-1.parquet.tmp", None),
        ("xbatch-1.parquet", None),
    ],
)
def test_segment_file_names(name, segment_id):
    assert cold.parse_segment_file_name(name) == segment_id
    if segment_id is not None:
        assert cold.segment_file_name(segment_id) == name
