"""Key layout of the hot store. One byte-prefix per record family:

``N<ns>``            namespace record (JSON)
``T<table_id:8>``    table definition (JSON)
``S<name>``          engine state (``Sseq:<scope>``: a scope's ``_seq`` high-water mark)
``R<table_id:8><scope>\\x00<pk>``  a row version (msgpack), newest only
``M<table_id:8><scope>``          a manifest's hot copy
"""

from __future__ import annotations

import struct
from decimal import Decimal
from typing import Any

import msgpack

from engine.errors import StorageCorruptionError

_ID = struct.Struct(">Q")

SEQ_KEY = b"Sseq"  # the engine-wide mark of older data directories (a floor)
SEQ_SCOPE_PREFIX = b"Sseq:"


def seq_key(scope: str) -> bytes:
    """The ``_seq`` high-water mark of one scope."""
    return SEQ_SCOPE_PREFIX + scope.encode()


TABLE_ID_KEY = b"Stable_id"
FORMAT_KEY = b"Sformat"  # the data-directory format version (see ``engine.storage.format``)


def namespace_key(name: str) -> bytes:
    return b"N" + name.encode()


def table_key(table_id: int) -> bytes:
    return b"T" + _ID.pack(table_id)


def rows_prefix(table_id: int, scope: str | None = None) -> bytes:
    prefix = b"R" + _ID.pack(table_id)
    return prefix if scope is None else prefix + scope.encode() + b"\x00"


# A DECIMAL value is a msgpack extension holding its exact text (msgpack has
# no decimal type, and its integers stop at 64 bits, short of DECIMAL(38)).
DECIMAL_EXT = 1


def pack_extra(value: Any) -> msgpack.ExtType:
    """msgpack's fallback for values it has no type for (called only for those)."""
    if isinstance(value, Decimal):
        return msgpack.ExtType(DECIMAL_EXT, str(value).encode("ascii"))
    raise TypeError(f"cannot store a value of type {type(value).__name__}")


def unpack_extra(code: int, data: bytes) -> Any:
    if code == DECIMAL_EXT:
        return Decimal(data.decode("ascii"))
    raise ValueError(f"unknown msgpack extension {code}")


# primary key -> key suffix. A composite key is a tuple (a msgpack array).
pk_bytes = msgpack.Packer(use_bin_type=True, default=pack_extra).pack


# A bulk chunk: ``R<table_id:8><scope>\x00\xc1<first seq:8><last seq:8>``
# holding one statement's rows as an Arrow IPC stream (row i is version
# first + i). 0xc1 is never the first byte of a msgpack value, so a chunk key
# never equals a row key, and both live under the table's and scope's prefix
# (DROP, DROP USER and REPAIR find them with the rows).
CHUNK_MARK = b"\xc1"


def chunk_key(table_id: int, scope: str, first_seq: int, last_seq: int) -> bytes:
    return rows_prefix(table_id, scope) + CHUNK_MARK + _ID.pack(first_seq) + _ID.pack(last_seq)


def chunk_prefix(table_id: int, scope: str) -> bytes:
    return rows_prefix(table_id, scope) + CHUNK_MARK


def split_chunk_key(key: bytes) -> tuple[str, int, int] | None:
    """(scope, first seq, last seq) of a chunk key; None for a row key."""
    scope, _, rest = key[9:].partition(b"\x00")
    if rest[:1] != CHUNK_MARK or len(rest) != 17:
        return None
    return scope.decode(), int(_ID.unpack(rest[1:9])[0]), int(_ID.unpack(rest[9:17])[0])


def row_key(table_id: int, scope: str, pk: object) -> bytes:
    return rows_prefix(table_id, scope) + pk_bytes(pk)


def split_row_key(key: bytes) -> tuple[str, object]:
    """(scope, primary key) of a row key."""
    rest = key[9:]
    scope, _, pk = rest.partition(b"\x00")
    # use_list=False: a composite key comes back as the tuple it was written as.
    return scope.decode(), msgpack.unpackb(pk, raw=False, use_list=False, ext_hook=unpack_extra)


RENAME_PREFIX = b"Srename:"  # pending moves written by older versions; still finished on open
MOVE_PREFIX = b"Smove:"


def move_key(table_id: int, scope: str = "") -> bytes:
    """A pending move (RENAME TO) or removal (DROP TABLE; DROP USER: one scope)
    of a table's storage directory."""
    return MOVE_PREFIX + _ID.pack(table_id) + scope.encode()


def manifest_key(table_id: int, scope: str) -> bytes:
    return b"M" + _ID.pack(table_id) + scope.encode()


def encode_int(value: int) -> bytes:
    return _ID.pack(value)


def decode_int(raw: bytes | None, *, what: str = "an engine state record") -> int:
    """An 8-byte counter (``0`` when absent); damage names ``what``."""
    if not raw:
        return 0
    if len(raw) != _ID.size:
        raise StorageCorruptionError(
            f"Corrupt {what} in the hot store: {len(raw)} bytes, expected {_ID.size}",
            record=what,
        )
    return int(_ID.unpack(raw)[0])
