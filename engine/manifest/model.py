"""The manifest: the only truth about a scope's cold data (invariant 4).

One ``Manifest`` per table scope (a user id for USER tables, ``None`` for
SHARED) lists every visible segment. It is immutable: a flush builds the next
version with ``with_segments`` (compaction with ``replace_segments``) and
stores it hot (``hot``: a header key plus one key per segment) and cold
(``files``: a ``manifest.json`` checkpoint plus the ``manifest.jsonl``
change log). Both store a version as its ``Change`` from the previous one
(``diff`` / ``apply``), so a flush's commit does not grow with the number of
segments; ``encode`` / ``decode`` give the whole manifest (checkpoints, the
hot copy of older data directories).

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
from engine.storage.cold import RecordValidator, SegmentEntry, segment_file_name

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
        (and, when given, the table definition it was written under).

        Costs O(new entries + markers), not O(segments): the new entries are
        checked on their own (ids above ``last_segment_id``, canonical file
        names, rows at or below the watermark), which keeps every invariant
        ``_problem`` checks for the whole list."""
        entries = tuple(entries)
        watermark = max(flushed_seq, self.flushed_seq)
        ids = [e.id for e in entries]
        simple = (
            all(b > a for a, b in zip([self.last_segment_id, *ids], ids, strict=False))
            and all(e.path == segment_file_name(e.id) for e in entries)
            and all(e.max_seq <= watermark for e in entries)
        )
        if not simple:
            new = self.replace_segments((), list(entries), flushed_seq=watermark, now=now)
        else:
            new = replace(
                self,
                version=self.version + 1,
                updated_at=now or _now(),
                flushed_seq=watermark,
                last_segment_id=max([self.last_segment_id, *ids]),
                segments=self.segments + entries,  # ids ascend: still sorted
            )
        if table is not None:
            new = new.with_table(table)
        if superseded:
            new = replace(new, superseded_seqs=merge_markers(self.superseded_seqs, superseded))
        return new

    def with_table(self, table: dict[str, Any]) -> Manifest:
        """The same version carrying ``table`` (a ``TableDef.to_dict()``)."""
        if table.get("table_id") != self.table_id:
            raise ValueError(f"table {table.get('table_id')} does not own manifest {self!r}")
        if table == self.table:
            return self
        # As JSON has it (tuples become lists), so an unchanged definition
        # compares equal to its decoded copy and is not written again.
        return replace(self, table=orjson.loads(orjson.dumps(table)))

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
        gone = set(remove_ids)
        kept = tuple(s for s in self.segments if s.id not in gone) if gone else self.segments
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
            **self.header_dict(),
            "segments": [s.to_dict() for s in self.segments],
            "superseded_seqs": list(self.superseded_seqs),
            **({"table": self.table} if self.table is not None else {}),
        }

    def header_dict(self) -> dict[str, Any]:
        """``to_dict`` without segments, markers and table (O(1))."""
        return {
            "format": FORMAT_VERSION,
            "table_id": self.table_id,
            "scope": self.scope,
            "version": self.version,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "flushed_seq": self.flushed_seq,
            "last_segment_id": self.last_segment_id,
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

    def problem(self) -> str | None:
        """What breaks the manifest's invariants, or ``None`` (O(segments))."""
        return self._problem()

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


def merge_markers(old: tuple[int, ...], added: list[int] | tuple[int, ...]) -> tuple[int, ...]:
    """``old`` (sorted, unique) with ``added`` merged in, sorted and unique.

    The usual flush marks seqs above every older marker: then this is one
    concatenation, not a re-sort of every marker."""
    new = sorted(set(added))
    if not old or not new or new[0] > old[-1]:
        return old + tuple(new)
    return tuple(sorted(set(old).union(new)))


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
    return encode_checked(manifest, pretty=pretty)[0]


def encode_checked(manifest: Manifest, *, pretty: bool = False) -> tuple[bytes, str]:
    """``encode`` and the checksum it wrote."""
    d = manifest.to_dict()
    d["checksum"] = checksum = _digest(d)
    return orjson.dumps(d, option=orjson.OPT_INDENT_2 if pretty else 0), checksum


def decode(data: bytes, *, source: str = "the hot manifest copy") -> Manifest:
    """Parse ``encode`` output; any damage raises ``StorageCorruptionError`` naming ``source``."""
    return decode_checked(data, source=source)[0]


def decode_checked(
    data: bytes, *, source: str = "the hot manifest copy"
) -> tuple[Manifest, str | None]:
    """``decode`` and the checksum the data carried (``None`` in older manifests)."""
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
    return manifest, checksum


# --------------------------------------------------------------------------- changes


@dataclass(frozen=True)
class Change:
    """What version ``version`` of a manifest changed relative to ``base``.

    The unit of the append-only copies (``manifest.jsonl`` lines, the hot
    copy's per-segment keys): a flush's change names its new segments and
    markers only, so writing it costs the same at 20 segments or 20,000.
    ``table`` is set only when the table definition changed."""

    base: int
    version: int
    updated_at: datetime
    flushed_seq: int
    last_segment_id: int
    added: tuple[SegmentEntry, ...] = ()
    removed: tuple[int, ...] = ()
    markers_added: tuple[int, ...] = ()
    markers_removed: tuple[int, ...] = ()
    table: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "base": self.base,
            "version": self.version,
            "updated_at": self.updated_at.isoformat(),
            "flushed_seq": self.flushed_seq,
            "last_segment_id": self.last_segment_id,
            "add": [s.to_dict() for s in self.added],
            "remove": list(self.removed),
            "markers_add": list(self.markers_added),
            "markers_remove": list(self.markers_removed),
            **({"table": self.table} if self.table is not None else {}),
        }

    @classmethod
    def from_dict(cls, d: Any, *, source: str) -> Change:
        v = RecordValidator(source)
        v.keys(d, _CHANGE_KEYS, "manifest change", optional={"table"})
        for name in ("add", "remove", "markers_add", "markers_remove"):
            if not isinstance(d[name], list):
                v.fail(f"{name} is not a list")
        table = d.get("table")
        if table is not None and not isinstance(table, dict):
            v.fail("table is not an object")
        return cls(
            base=v.integer(d["base"], "base"),
            version=v.integer(d["version"], "version"),
            updated_at=v.timestamp(d["updated_at"], "updated_at"),
            flushed_seq=v.integer(d["flushed_seq"], "flushed_seq"),
            last_segment_id=v.integer(d["last_segment_id"], "last_segment_id"),
            added=tuple(SegmentEntry.from_dict(s, source=source) for s in d["add"]),
            removed=tuple(v.integer(x, "removed segment id") for x in d["remove"]),
            markers_added=tuple(v.integer(x, "marker") for x in d["markers_add"]),
            markers_removed=tuple(v.integer(x, "marker") for x in d["markers_remove"]),
            table=table,
        )


_CHANGE_KEYS = {
    "base",
    "version",
    "updated_at",
    "flushed_seq",
    "last_segment_id",
    "add",
    "remove",
    "markers_add",
    "markers_remove",
}


def diff(old: Manifest, new: Manifest) -> Change | None:
    """The change from ``old`` to ``new``, or ``None`` when it is not one
    (another table or scope, an older version): write ``new`` whole then.

    A flush's ``new`` shares ``old``'s segment tuple as its prefix, which the
    tuple comparison settles by identity, so this is O(change) for flushes."""
    if (
        new.table_id != old.table_id
        or new.scope != old.scope
        or new.created_at != old.created_at
        or new.version <= old.version
    ):
        return None
    n = len(old.segments)
    removed: tuple[int, ...] = ()
    m_removed: tuple[int, ...] = ()
    if new.segments[:n] == old.segments:
        added = new.segments[n:]
    else:
        before = {s.id: s for s in old.segments}
        after = {s.id: s for s in new.segments}
        added = tuple(s for s in new.segments if before.get(s.id) != s)
        removed = tuple(sorted(i for i, s in before.items() if after.get(i) != s))
    old_m, new_m = old.superseded_seqs, new.superseded_seqs
    if new_m[: len(old_m)] == old_m:
        m_added = new_m[len(old_m) :]
    else:
        a, b = set(old_m), set(new_m)
        m_added, m_removed = tuple(sorted(b - a)), tuple(sorted(a - b))
    return Change(
        base=old.version,
        version=new.version,
        updated_at=new.updated_at,
        flushed_seq=new.flushed_seq,
        last_segment_id=new.last_segment_id,
        added=added,
        removed=removed,
        markers_added=m_added,
        markers_removed=m_removed,
        table=new.table if new.table != old.table else None,
    )


def apply(old: Manifest, change: Change) -> Manifest:
    """``old`` with ``change`` applied; raises ``ValueError`` when it does not
    fit (another base, removing a segment that is not there). The result is
    not re-validated here: a reader replaying many changes checks once, at
    the end (``Manifest.problem``)."""
    if change.base != old.version:
        raise ValueError(
            f"change {change.version} applies to version {change.base}, not {old.version}"
        )
    segments = old.segments
    if change.removed:
        gone = set(change.removed)
        if gone - {s.id for s in segments}:
            raise ValueError(f"segments {sorted(gone - {s.id for s in segments})} are not there")
        segments = tuple(s for s in segments if s.id not in gone)
    if change.added:
        tail = segments[-1].id if segments else 0
        ids = [s.id for s in change.added]
        ascending = all(b > a for a, b in zip([tail, *ids], ids, strict=False))
        segments = segments + change.added
        if not ascending:
            segments = tuple(sorted(segments, key=lambda s: s.id))
    markers = old.superseded_seqs
    if change.markers_removed:
        gone_m = set(change.markers_removed)
        markers = tuple(q for q in markers if q not in gone_m)
    if change.markers_added:
        markers = merge_markers(markers, change.markers_added)
    return replace(
        old,
        version=change.version,
        updated_at=change.updated_at,
        flushed_seq=change.flushed_seq,
        last_segment_id=change.last_segment_id,
        segments=segments,
        superseded_seqs=markers,
        table=change.table if change.table is not None else old.table,
    )


class Replay:
    """Applies many changes to one manifest in O(segments + changes): a log
    replay (``files.read_manifest_json``) must not copy every segment per
    line. ``add`` raises ``ValueError`` for a change that does not fit."""

    def __init__(self, base: Manifest) -> None:
        self.base = base
        self.version = base.version
        self._segments = {s.id: s for s in base.segments}
        self._markers = set(base.superseded_seqs)
        self._last: Change | None = None
        self._table = base.table

    def add(self, change: Change) -> None:
        if change.base != self.version:
            raise ValueError(
                f"change {change.version} applies to version {change.base}, not {self.version}"
            )
        missing = [i for i in change.removed if i not in self._segments]
        if missing:
            raise ValueError(f"segments {missing} are not there")
        for i in change.removed:
            del self._segments[i]
        for s in change.added:
            self._segments[s.id] = s
        self._markers.difference_update(change.markers_removed)
        self._markers.update(change.markers_added)
        if change.table is not None:
            self._table = change.table
        self.version = change.version
        self._last = change

    def result(self) -> Manifest:
        last = self._last
        if last is None:
            return self.base
        return replace(
            self.base,
            version=last.version,
            updated_at=last.updated_at,
            flushed_seq=last.flushed_seq,
            last_segment_id=last.last_segment_id,
            segments=tuple(sorted(self._segments.values(), key=lambda s: s.id)),
            superseded_seqs=tuple(sorted(self._markers)),
            table=self._table,
        )


def record_digest(d: dict[str, Any]) -> str:
    """The ``checksum`` of a JSON record (every key but ``checksum``, sorted)."""
    return _digest(d)
