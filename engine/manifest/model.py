"""The manifest: the only truth about a scope's cold data (invariant 4).

One ``Manifest`` per table scope (a user id for USER tables, ``None`` for
SHARED) lists every visible segment. It is immutable: a flush builds the next
version with ``with_segment`` (compaction with ``replace_segments``) and
stores it hot (``encode``) and cold (``manifest.json``, see ``files``).

Fields
    ``format`` (always ``FORMAT_VERSION``), ``table_id`` (catalog table id),
    ``scope``, ``version`` (bumped by every change; the larger of the hot and
    cold copies is the newer), ``created_at`` / ``updated_at`` (UTC),
    ``flushed_seq`` (the flush watermark: every row version with
    ``_seq <= flushed_seq`` of this scope is in the listed segments),
    ``last_segment_id`` (ids are never reused), ``segments``; optionally
    ``superseded_seqs`` (delete markers) and ``table`` (the table definition
    as of the writing flush, for rebuilding a lost catalog). Encoded copies
    also carry ``checksum`` (SHA-256 of the rest, keys sorted), verified on
    decode when present.

Serialisation is strict: ``decode`` / ``Manifest.from_dict`` reject bad JSON,
missing or unexpected keys, wrong types and broken invariants (duplicate ids,
a segment above ``last_segment_id`` or above the watermark) with a
``StorageCorruptionError`` that names the source.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import orjson

from engine.errors import StorageCorruptionError
from engine.storage.cold import RecordValidator, SegmentEntry

FORMAT_VERSION = 1
_KEYS = {
    "format",
    "table_id",
    "scope",
    "version",
    "created_at",
    "updated_at",
    "flushed_seq",
    "last_segment_id",
    "segments",
}
_OPTIONAL_KEYS = {"superseded_seqs", "table"}
_TABLE_KEYS = {"table_id", "namespace", "name", "table_type", "columns"}


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Manifest:
    table_id: int
    scope: str | None
    version: int
    created_at: datetime
    updated_at: datetime
    flushed_seq: int
    last_segment_id: int
    segments: tuple[SegmentEntry, ...] = ()
    # Delete markers: seqs of segment rows that a later flush superseded (updated or
    # deleted). Readers anti-join them away; segments themselves never change.
    superseded_seqs: tuple[int, ...] = ()
    # The table definition (``TableDef.to_dict()``) as of the flush that wrote
    # this version, so the catalog can be rebuilt from manifest.json files
    # when the hot store is lost. Checked here for shape and owner only; the
    # catalog validates it fully when it rebuilds a table from it.
    table: dict[str, Any] | None = None

    def __repr__(self) -> str:
        return (
            f"Manifest(table_id={self.table_id}, scope={self.scope!r}, version={self.version}, "
            f"flushed_seq={self.flushed_seq}, segments={len(self.segments)})"
        )

    # ------------------------------------------------------------------ building

    @classmethod
    def new(cls, table_id: int, scope: str | None, *, now: datetime | None = None) -> Manifest:
        """The empty manifest (version 0) of a scope that has never flushed."""
        t = now or _now()
        return cls(table_id, scope, 0, t, t, flushed_seq=0, last_segment_id=0)

    def next_segment_id(self) -> int:
        return self.last_segment_id + 1

    def with_segment(
        self, entry: SegmentEntry, *, flushed_seq: int, now: datetime | None = None
    ) -> Manifest:
        """The next version, naming one more segment and advancing the watermark."""
        if entry.id <= self.last_segment_id:
            raise ValueError(f"segment id {entry.id} is not above {self.last_segment_id}")
        return self.replace_segments(
            (), [entry], flushed_seq=max(flushed_seq, self.flushed_seq), now=now
        )

    def with_segments(
        self,
        entries: list[SegmentEntry] | tuple[SegmentEntry, ...],
        *,
        flushed_seq: int,
        superseded: list[int] | tuple[int, ...] = (),
        now: datetime | None = None,
        table: dict[str, Any] | None = None,
    ) -> Manifest:
        """The next version after a flush: new segments, watermark, delete markers
        (and, when given, the table definition it was written under)."""
        new = self.replace_segments(
            (), list(entries), flushed_seq=max(flushed_seq, self.flushed_seq), now=now
        )
        if table is not None:
            new = new.with_table(table)
        if superseded:
            merged = tuple(sorted(set(self.superseded_seqs) | set(superseded)))
            new = replace(new, superseded_seqs=merged)
        return new

    def with_table(self, table: dict[str, Any]) -> Manifest:
        """The same version carrying ``table`` (a ``TableDef.to_dict()``)."""
        if table.get("table_id") != self.table_id:
            raise ValueError(f"table {table.get('table_id')} does not own manifest {self!r}")
        return replace(self, table=table)

    def with_watermark(self, flushed_seq: int, *, now: datetime | None = None) -> Manifest:
        """The next version with only the watermark moved (a flush with nothing to write)."""
        return self.replace_segments(
            (), (), flushed_seq=max(flushed_seq, self.flushed_seq), now=now
        )

    def replace_segments(
        self,
        remove_ids: tuple[int, ...] | list[int] | set[int],
        add: tuple[SegmentEntry, ...] | list[SegmentEntry],
        *,
        flushed_seq: int | None = None,
        now: datetime | None = None,
    ) -> Manifest:
        """The next version without ``remove_ids`` and with ``add`` (compaction)."""
        missing = set(remove_ids) - {s.id for s in self.segments}
        if missing:
            raise ValueError(f"segments {sorted(missing)} are not in the manifest")
        kept = tuple(s for s in self.segments if s.id not in set(remove_ids))
        segments = kept + tuple(add)
        new = replace(
            self,
            version=self.version + 1,
            updated_at=now or _now(),
            flushed_seq=self.flushed_seq if flushed_seq is None else flushed_seq,
            last_segment_id=max([self.last_segment_id, *(s.id for s in add)]),
            segments=tuple(sorted(segments, key=lambda s: s.id)),
        )
        problem = new._problem()
        if problem:
            raise ValueError(problem)
        return new

    # ------------------------------------------------------------------ queries

    def find_segment(self, segment_id: int) -> SegmentEntry | None:
        for s in self.segments:
            if s.id == segment_id:
                return s
        return None

    def get_segment(self, segment_id: int) -> SegmentEntry:
        s = self.find_segment(segment_id)
        if s is None:
            raise KeyError(f"segment {segment_id} is not in {self!r}")
        return s

    @property
    def row_count(self) -> int:
        return sum(s.row_count for s in self.segments)

    @property
    def size_bytes(self) -> int:
        return sum(s.size_bytes for s in self.segments)

    # ------------------------------------------------------------------ (de)serialisation

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT_VERSION,
            "table_id": self.table_id,
            "scope": self.scope,
            "version": self.version,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "flushed_seq": self.flushed_seq,
            "last_segment_id": self.last_segment_id,
            "segments": [s.to_dict() for s in self.segments],
            "superseded_seqs": list(self.superseded_seqs),
            **({"table": self.table} if self.table is not None else {}),
        }

    @classmethod
    def from_dict(cls, d: Any, *, source: str) -> Manifest:
        v = RecordValidator(source)
        v.keys(d, _KEYS, "manifest", optional=_OPTIONAL_KEYS)
        if d["format"] != FORMAT_VERSION or type(d["format"]) is not int:
            v.fail(f"unsupported manifest format {d['format']!r}")
        scope = d["scope"]
        if scope is not None:
            v.string(scope, "scope")
        if not isinstance(d["segments"], list):
            v.fail("segments is not a list")
        m = cls(
            table_id=v.integer(d["table_id"], "table_id"),
            scope=scope,
            version=v.integer(d["version"], "version"),
            created_at=v.timestamp(d["created_at"], "created_at"),
            updated_at=v.timestamp(d["updated_at"], "updated_at"),
            flushed_seq=v.integer(d["flushed_seq"], "flushed_seq"),
            last_segment_id=v.integer(d["last_segment_id"], "last_segment_id"),
            segments=tuple(SegmentEntry.from_dict(s, source=source) for s in d["segments"]),
            superseded_seqs=tuple(
                v.integer(x, "superseded seq") for x in d.get("superseded_seqs", [])
            ),
            table=d.get("table"),
        )
        if m.table is not None:
            v.keys(m.table, _TABLE_KEYS, "table", optional=set(m.table) - _TABLE_KEYS)
            if m.table["table_id"] != m.table_id:
                v.fail(f"table {m.table['table_id']!r} is not the owner {m.table_id}")
            for key in ("namespace", "name", "table_type"):
                v.string(m.table[key], f"table.{key}")
        problem = m._problem()
        if problem:
            v.fail(problem)
        return m

    def _problem(self) -> str | None:
        ids = [s.id for s in self.segments]
        if len(set(ids)) != len(ids):
            return "duplicate segment ids"
        if len({s.path for s in self.segments}) != len(ids):
            return "two segments name the same file"
        if ids and max(ids) > self.last_segment_id:
            return f"segment {max(ids)} is above last_segment_id {self.last_segment_id}"
        above = [s.id for s in self.segments if s.max_seq > self.flushed_seq]
        if above:
            return f"segments {above} hold rows above the flush watermark {self.flushed_seq}"
        return None


def _digest(d: dict[str, Any]) -> str:
    body = orjson.dumps(
        {k: v for k, v in d.items() if k != "checksum"}, option=orjson.OPT_SORT_KEYS
    )
    return "sha256:" + hashlib.sha256(body).hexdigest()


def encode(manifest: Manifest, *, pretty: bool = False) -> bytes:
    """Bytes for the hot copy (compact) or ``manifest.json`` (``pretty``).

    Both carry a ``checksum`` of their content: a flipped bit that still
    leaves valid JSON (a digit of a statistic, a watermark) must not be
    believed by REPAIR or a catalog rebuild."""
    d = manifest.to_dict()
    d["checksum"] = _digest(d)
    return orjson.dumps(d, option=orjson.OPT_INDENT_2 if pretty else 0)


def decode(data: bytes, *, source: str = "the hot manifest copy") -> Manifest:
    """Parse ``encode`` output; any damage raises ``StorageCorruptionError`` naming ``source``."""
    try:
        d = orjson.loads(data)
    except orjson.JSONDecodeError as e:
        raise StorageCorruptionError(
            f"Corrupt manifest data in {source}: not valid JSON ({e})", file=source
        ) from None
    checksum = d.pop("checksum", None) if isinstance(d, dict) else None
    manifest = Manifest.from_dict(d, source=source)  # shape first: its errors say more
    if checksum is not None and checksum != _digest(d):  # older manifests have none
        raise StorageCorruptionError(
            f"Corrupt manifest data in {source}: checksum mismatch", file=source
        )
    return manifest
