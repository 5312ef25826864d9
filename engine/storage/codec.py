"""Row version encoding: ``[seq, deleted, {column_id: value}]`` in msgpack."""

from __future__ import annotations

from typing import Any

import msgpack

_pack = msgpack.Packer(use_bin_type=True).pack


def encode_row(seq: int, deleted: bool, values: dict[int, Any]) -> bytes:
    return _pack((seq, deleted, values))


def decode_row(raw: bytes) -> tuple[int, bool, dict[int, Any]]:
    seq, deleted, values = msgpack.unpackb(raw, raw=False, strict_map_key=False)
    return seq, deleted, values
