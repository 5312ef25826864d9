"""Row version encoding: ``[seq, deleted, {column_id: value}]`` in msgpack.

Decoding is strict: a hot row that does not decode to that shape raises
``StorageCorruptionError`` naming the table and the row's key, so a damaged
row is reported (and REPAIR TABLE can drop it) instead of surfacing as a raw
msgpack error or a wrong value.
"""

from __future__ import annotations

from typing import Any

import msgpack
import pyarrow as pa

from engine.errors import StorageCorruptionError
from engine.storage import keys

_pack = msgpack.Packer(use_bin_type=True, default=keys.pack_extra).pack

RowVersion = tuple[int, bool, dict[int, Any]]


def encode_row(seq: int, deleted: bool, values: dict[int, Any]) -> bytes:
    return _pack((seq, deleted, values))


def decode_row(raw: bytes, *, table: str = "", key: bytes | None = None) -> RowVersion:
    """One row version; ``StorageCorruptionError`` naming ``table`` and ``key`` if damaged.

    Only the outer shape is checked: this runs for every hot row at startup
    (~0.5 µs/row), and RocksDB's checksums already vouch for the bytes."""
    try:
        seq, deleted, values = msgpack.unpackb(
            raw, raw=False, strict_map_key=False, ext_hook=keys.unpack_extra
        )
    except Exception as exc:  # msgpack raises several unrelated types
        raise row_damage(table, key, exc) from None
    if type(seq) is not int or type(deleted) is not bool or type(values) is not dict:
        raise row_damage(table, key, ValueError("not [seq, deleted, {column id: value}]"))
    return seq, deleted, values


def decode_hot_row(key: bytes, raw: bytes, *, table: str) -> tuple[str, Any, RowVersion]:
    """(scope, primary key, version) of one stored row of ``table``."""
    try:
        scope, pk = keys.split_row_key(key)
    except Exception as exc:  # a damaged key: undecodable scope or primary key
        raise row_damage(table, key, exc) from None
    return scope, pk, decode_row(raw, table=table, key=key)


def row_damage(table: str, key: bytes | None, exc: BaseException) -> StorageCorruptionError:
    shown = key.hex() if key is not None else "?"
    return StorageCorruptionError(
        f"Hot row of table {table or '?'} is damaged (key 0x{shown}: {exc}); "
        f"REPAIR TABLE {table or '<table>'} drops damaged hot rows and reports them",
        table=table,
        key=key,
    )


def encode_chunk(batch: pa.RecordBatch) -> bytes:
    """A bulk chunk's rows as an Arrow IPC stream (see ``keys.chunk_key``)."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, batch.schema) as writer:
        writer.write_batch(batch)
    return bytes(sink.getvalue().to_pybytes())


def decode_chunk(key: bytes, raw: bytes, *, table: str) -> tuple[str, int, pa.RecordBatch]:
    """(scope, first seq, rows) of a stored bulk chunk; damage names the key."""
    found = keys.split_chunk_key(key)
    try:
        if found is None:
            raise ValueError("not a chunk key")
        scope, first, last = found
        reader = pa.ipc.open_stream(raw)
        batches = list(reader)
        batch = pa.concat_batches(batches) if len(batches) != 1 else batches[0]
        if batch.num_rows != last - first + 1:
            raise ValueError(f"{batch.num_rows} rows for seqs {first}..{last}")
    except Exception as exc:  # pyarrow raises several unrelated types
        raise row_damage(table, key, exc) from None
    return scope, first, batch


def check_hot_record(key: bytes, raw: bytes, *, table: str) -> None:
    """Raise ``StorageCorruptionError`` if a hot record (row or chunk) is damaged."""
    if keys.split_chunk_key(key) is not None:
        decode_chunk(key, raw, table=table)
    else:
        decode_hot_row(key, raw, table=table)
