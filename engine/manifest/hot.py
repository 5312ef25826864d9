"""The hot copy of a manifest: RocksDB keys, written in the commit's batch.

Layout (per table id and scope)
    ``M<table id><scope>``                  the header: the manifest without
                                            its segments and delete markers,
                                            plus ``layout`` (2),
                                            ``segment_count``,
                                            ``marker_count`` and ``digest``.
    ``m<table id><scope>\\0s<segment id>``  one segment entry (its
                                            ``SegmentEntry.to_dict()`` and a
                                            ``digest``).
    ``m<table id><scope>\\0d<version>``     the delete markers one version
                                            added (``{"seqs": [...],
                                            "digest"}``).
Ids and versions are 8-byte big-endian, so a prefix scan lists a scope's
parts in order. A flush's commit puts its new segment keys, one marker key
and the header; the rest stay untouched, so the commit costs the same at 20
or 20,000 segments. All of it goes into the statement's ``WriteBatch``, so a
crash leaves the old manifest or the new one, never a mix.

Each record's ``digest`` is the SHA-256 of its other keys, sorted (not
``checksum``: a segment entry already has one, its file's). Damage is loud: a
part or header whose digest does not match, a part whose
key and content disagree, or a count that does not match the header raises
``StorageCorruptionError`` naming the copy. Headers written before this layout
(``M`` holding the whole manifest) still load; their next write is a whole
one (``stage`` with no ``stored``), which also deletes any parts a lost header
left behind.
"""

from __future__ import annotations

import struct
from typing import Any

import orjson

from engine.errors import StorageCorruptionError
from engine.manifest.model import Manifest, decode, diff, record_digest
from engine.storage import keys
from engine.storage.hot import Batch, HotStore

LAYOUT = 2
_ID = struct.Struct(">Q")
_SEGMENT = b"s"
_MARKERS = b"d"


def parts_prefix(table_id: int, scope: str | None = None) -> bytes:
    """Every part key of a table, or (with ``scope``) of one scope."""
    base = b"m" + _ID.pack(table_id)
    return base if scope is None else base + scope.encode() + b"\x00"


def _segment_key(table_id: int, scope: str, segment_id: int) -> bytes:
    return parts_prefix(table_id, scope) + _SEGMENT + _ID.pack(segment_id)


def _markers_key(table_id: int, scope: str, version: int) -> bytes:
    return parts_prefix(table_id, scope) + _MARKERS + _ID.pack(version)


def _record(d: dict[str, Any]) -> bytes:
    # "digest", not "checksum": a segment entry has a "checksum" (its file's).
    return orjson.dumps({**d, "digest": record_digest(d)})


def source_of(table_id: int, scope: str) -> str:
    return f"the hot manifest copy of table id {table_id}, scope {scope or 'shared'}"


# --------------------------------------------------------------------------- writing


def stage(
    batch: Batch,
    store: HotStore,
    table_id: int,
    scope: str,
    new: Manifest,
    stored: Manifest | None,
) -> None:
    """Put ``new`` into ``batch``. ``stored`` is the manifest now in the store
    in this layout (``None``: unknown, older layout or absent — write whole)."""
    change = diff(stored, new) if stored is not None else None
    if change is None:
        delete(batch, store, table_id, scope, header=False)
        for s in new.segments:
            batch.put(_segment_key(table_id, scope, s.id), _record(s.to_dict()))
        if new.superseded_seqs:
            key = _markers_key(table_id, scope, new.version)
            batch.put(key, _record({"seqs": list(new.superseded_seqs)}))
    else:
        for i in change.removed:
            batch.delete(_segment_key(table_id, scope, i))
        for s in change.added:
            batch.put(_segment_key(table_id, scope, s.id), _record(s.to_dict()))
        if change.markers_removed:  # rare (compaction, a rewrite): all markers anew
            for key, _ in store.scan(parts_prefix(table_id, scope) + _MARKERS):
                batch.delete(key)
            if new.superseded_seqs:
                key = _markers_key(table_id, scope, new.version)
                batch.put(key, _record({"seqs": list(new.superseded_seqs)}))
        elif change.markers_added:
            key = _markers_key(table_id, scope, new.version)
            batch.put(key, _record({"seqs": list(change.markers_added)}))
    batch.put(keys.manifest_key(table_id, scope), _header(new))


def _header(m: Manifest) -> bytes:
    d = m.header_dict()
    if m.table is not None:
        d["table"] = m.table
    d["layout"] = LAYOUT
    d["segment_count"] = len(m.segments)
    d["marker_count"] = len(m.superseded_seqs)
    return _record(d)


def delete(
    batch: Batch, store: HotStore, table_id: int, scope: str, *, header: bool = True
) -> None:
    """Delete a scope's hot copy (its header too unless ``header`` is false)."""
    for key, _ in store.scan(parts_prefix(table_id, scope)):
        batch.delete(key)
    if header:
        batch.delete(keys.manifest_key(table_id, scope))


def delete_table(batch: Batch, store: HotStore, table_id: int, scopes: list[str]) -> None:
    """Delete every hot copy of a table (parts whose header was lost too)."""
    for scope in scopes:
        batch.delete(keys.manifest_key(table_id, scope))
    for key, _ in store.scan(parts_prefix(table_id)):
        batch.delete(key)


def hot_keys(store: HotStore, table_id: int, scope: str) -> list[bytes]:
    """Every key of a scope's hot copy, header first (tests copy them)."""
    out = [keys.manifest_key(table_id, scope)]
    return out + [k for k, _ in store.scan(parts_prefix(table_id, scope))]


# --------------------------------------------------------------------------- reading


def load(
    store: HotStore, table_id: int
) -> tuple[dict[str, Manifest], dict[str, StorageCorruptionError], set[str]]:
    """Every scope's hot copy: (manifests, damaged scopes' errors, scopes
    stored in this layout)."""
    manifests: dict[str, Manifest] = {}
    bad: dict[str, StorageCorruptionError] = {}
    layered: set[str] = set()
    prefix = keys.manifest_key(table_id, "")
    for key, raw in store.scan(prefix):
        scope = key[len(prefix) :].decode()
        source = source_of(table_id, scope)
        try:
            m, is_layered = _decode(store, table_id, scope, raw, source)
            if m.table_id != table_id:
                raise StorageCorruptionError(
                    f"Corrupt manifest data in {source}: it names table id {m.table_id}",
                    file=source,
                )
        except StorageCorruptionError as exc:
            bad[scope] = exc
            continue
        manifests[scope] = m
        if is_layered:
            layered.add(scope)
    return manifests, bad, layered


def _fail(source: str, why: str) -> StorageCorruptionError:
    return StorageCorruptionError(f"Corrupt manifest data in {source}: {why}", file=source)


def _checked(raw: bytes, source: str, what: str) -> dict[str, Any]:
    try:
        d = orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise _fail(source, f"{what} is not valid JSON ({e})") from None
    if not isinstance(d, dict) or not isinstance(d.get("digest"), str):
        raise _fail(source, f"{what} is not a checksummed record")
    digest = d.pop("digest")
    if digest != record_digest(d):
        raise _fail(source, f"{what}: checksum mismatch")
    return d


def _decode(
    store: HotStore, table_id: int, scope: str, raw: bytes, source: str
) -> tuple[Manifest, bool]:
    try:
        peek = orjson.loads(raw)
    except orjson.JSONDecodeError:
        peek = None
    if not (isinstance(peek, dict) and "layout" in peek):
        return decode(raw, source=source), False  # the whole manifest in one value
    d = _checked(raw, source, "the header")
    if d.pop("layout") != LAYOUT:
        raise _fail(source, "unknown layout")
    n_segments, n_markers = d.pop("segment_count", None), d.pop("marker_count", None)
    if type(n_segments) is not int or type(n_markers) is not int:
        raise _fail(source, "the header has no part counts")
    segments: list[dict[str, Any]] = []
    markers: set[int] = set()
    prefix = parts_prefix(table_id, scope)
    for key, value in store.scan(prefix):
        kind, number = key[len(prefix) : len(prefix) + 1], key[len(prefix) + 1 :]
        if len(number) != _ID.size:
            raise _fail(source, f"a part key of {len(key)} bytes")
        (n,) = _ID.unpack(number)
        if kind == _SEGMENT:
            part = _checked(value, source, f"segment {n}")
            if part.get("id") != n:
                raise _fail(source, f"the key of segment {n} holds segment {part.get('id')!r}")
            segments.append(part)
        elif kind == _MARKERS:
            part = _checked(value, source, f"the markers of version {n}")
            seqs = part.get("seqs")
            if (
                set(part) != {"seqs"}
                or not isinstance(seqs, list)
                or not all(type(x) is int for x in seqs)
            ):
                raise _fail(source, f"the markers of version {n} are not a list")
            markers.update(seqs)
        else:
            raise _fail(source, f"a part of unknown kind {kind!r}")
    if len(segments) != n_segments:
        raise _fail(source, f"{len(segments)} segment entries, the header says {n_segments}")
    if len(markers) != n_markers:
        raise _fail(source, f"{len(markers)} delete markers, the header says {n_markers}")
    d["segments"] = segments
    d["superseded_seqs"] = sorted(markers)
    return Manifest.from_dict(d, source=source), True
