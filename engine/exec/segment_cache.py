"""The warm cache: decoded segments held in memory under one byte budget.

One ``SegmentCache`` per engine, shared by every table, so the budget holds
engine-wide. A segment is a whole decoded Parquet file (every column, as
written) keyed by its identity (table id, scope, segment id, checksum):
segments are immutable, so an entry can never go stale. A flush adds
segments, a compaction or a DROP retires some (their entries are dropped at
the commit, ``forget``), an ALTER changes only how a segment is *read*: the
current schema is applied on top of the cached columns when a frame is built
(``engine.providers.cold_tier``), exactly as it is on top of the file.

Admission: a segment is decoded into the cache after its first scan while
the budget has room for it without evicting anything; once the cache is
full, a segment must be scanned a second time before it may evict older
entries, so one scan of a huge table read once does not flush out what is
reused. A big segment is decoded on a background thread (``decode_later``):
the scan that admits it reads its file as before and costs no more than with
the cache off (decoding every column first doubled the first run of the
TPC-H queries); the re-run finds it in memory. Small ones (up to
``inline_bytes`` a scan) are decoded at once and read from memory by the
scan that admits them: that costs next to nothing, and a re-run then always
finds them (notebook outputs stay reproducible). Eviction is least-recently-used and the budget is never exceeded (a segment
bigger than the whole budget is never cached).

DataFusion reads cached segments as in-memory tables (record batches in
partitions, with exact row counts and byte sizes for the join planner, but no
column min/max: datafusion-python 55 has no way to give an in-memory table
column statistics, so join cardinalities are estimated without them and a
few TPC-H joins (Q07) get a worse build side than over the files). The DataFrame built
over a set of cached segments is memoised here too (``frame``) and dropped
with any of its segments, so nothing outlives its data's place in the budget.
"""

from __future__ import annotations

import functools
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import pyarrow as pa

from engine.errors import InvalidOptionError
from engine.exec.background import BackgroundWorker

# (table id, scope, segment id, checksum)
SegmentKey = tuple[int, str, int, str]
# Share of physical memory the cache may use unless ``segment_cache_mb`` says.
DEFAULT_RAM_SHARE = 0.25
# Segments remembered as "scanned once" (for admission once the cache is full).
SEEN_LIMIT = 65_536
# Memoised DataFrames over cached segments (each a plan over shared buffers).
FRAME_LIMIT = 512
# Segments are decoded in the scan itself up to this many bytes (decoded,
# estimated) per scan; the rest on the background thread.
INLINE_DECODE_BYTES = 1 << 20


_call = threading.local()


@contextmanager
def files_only() -> Iterator[None]:
    """Scans built in this block (this thread) read segment files and leave
    the warm cache alone: an EXPLAIN shows the same plan (the files that
    survive pruning) whatever earlier queries left in memory."""
    before = getattr(_call, "files_only", False)
    _call.files_only = True
    try:
        yield
    finally:
        _call.files_only = before


def reading_files_only() -> bool:
    return bool(getattr(_call, "files_only", False))


def default_budget_bytes() -> int:
    """A quarter of the machine's physical memory (1 GiB if unknown)."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        total = 4 << 30
    return int(total * DEFAULT_RAM_SHARE)


def budget_from_mb(segment_cache_mb: int | None) -> int:
    """The byte budget for ``Engine.open(segment_cache_mb=...)`` (``None``:
    the default share of RAM; ``0`` disables the cache)."""
    if segment_cache_mb is None:
        return default_budget_bytes()
    if (
        isinstance(segment_cache_mb, bool)
        or not isinstance(segment_cache_mb, int)
        or segment_cache_mb < 0
    ):
        raise InvalidOptionError(
            f"segment_cache_mb must be a whole number of MB >= 0, not {segment_cache_mb!r}"
        )
    return segment_cache_mb << 20


def table_bytes(table: pa.Table) -> int:
    """Memory a decoded segment holds (whole buffers, not just the slices used)."""
    return int(table.get_total_buffer_size())


class SegmentCache:
    """Decoded segments of every table under ``budget`` bytes (LRU). Thread-safe."""

    def __init__(self, budget: int, *, inline_bytes: int = INLINE_DECODE_BYTES) -> None:
        self.budget = budget
        self.inline_bytes = inline_bytes
        self.used = 0
        self.hits = 0
        self.misses = 0
        self.evictions = 0
        self._items: OrderedDict[SegmentKey, tuple[pa.Table, int]] = OrderedDict()
        self._seen: OrderedDict[SegmentKey, None] = OrderedDict()
        # bytes promised to admitted segments not decoded yet, so a scan of
        # many segments does not admit more than the room there is
        self._reserved: dict[SegmentKey, int] = {}
        self._reserved_bytes = 0
        # memoised frames: frame key -> (DataFrame, the segments it reads)
        self._frames: OrderedDict[tuple[Any, ...], tuple[Any, tuple[SegmentKey, ...]]] = (
            OrderedDict()
        )
        self._lock = threading.Lock()
        # background decoding: ``_decode_into`` jobs, the keys queued or running
        self._worker = BackgroundWorker("kalam-segment-cache")
        self._pending: set[SegmentKey] = set()
        self.decode_errors = 0

    def __repr__(self) -> str:
        return (
            f"<SegmentCache {len(self._items)} segment(s), {self.used:,} of "
            f"{self.budget:,} bytes, {self.hits} hit(s)>"
        )

    @property
    def enabled(self) -> bool:
        return self.budget > 0

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def keys(self) -> list[SegmentKey]:
        """The cached segments, least recently used first."""
        with self._lock:
            return list(self._items)

    def __iter__(self) -> Iterator[SegmentKey]:
        return iter(self.keys())

    def get(self, key: SegmentKey) -> pa.Table | None:
        """The decoded segment, if cached (and counts a hit or a miss)."""
        with self._lock:
            hit = self._items.get(key)
            if hit is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return hit[0]

    def admit(self, key: SegmentKey, estimate: int) -> bool:
        """Whether a segment of about ``estimate`` bytes should be decoded into
        the cache now: it fits without evicting anything, or it was scanned
        before (a segment read once stays out of a full cache)."""
        if not self.enabled or estimate > self.budget:
            return False
        with self._lock:
            if key in self._reserved:
                return False  # being decoded already
            room = self.used + self._reserved_bytes + estimate <= self.budget
            if room or key in self._seen:
                self._seen.pop(key, None)
                self._reserved[key] = estimate
                self._reserved_bytes += estimate
                return True
            self._seen[key] = None
            while len(self._seen) > SEEN_LIMIT:
                self._seen.popitem(last=False)
            return False

    def put(self, key: SegmentKey, table: pa.Table) -> bool:
        """Keep ``table`` for ``key``, evicting least-recently-used segments
        as needed; ``False`` (nothing kept) if it is bigger than the budget."""
        size = table_bytes(table)
        with self._lock:
            self._unreserve(key)
            if not self.enabled or size > self.budget:
                return False
            if key in self._items:
                self._items.move_to_end(key)
                return True
            while self._items and self.used + size > self.budget:
                old, (_, old_size) = self._items.popitem(last=False)
                self.used -= old_size
                self.evictions += 1
                self._drop_frames_of({old})
            self._items[key] = (table, size)
            self.used += size
            return True

    def decode_later(self, key: SegmentKey, decode: Callable[[], pa.Table]) -> None:
        """Decode a segment into the cache on the background thread (once,
        however many scans ask meanwhile). A failure is left for the scans
        to report: they read the file themselves until it is cached."""
        with self._lock:
            if key in self._pending or key in self._items or not self.enabled:
                return
            self._pending.add(key)
            self._worker.submit(functools.partial(self._decode_into, key, decode))

    def _decode_into(self, key: SegmentKey, decode: Callable[[], pa.Table]) -> None:
        try:
            self.put(key, decode())
        except Exception:  # damage: the scans that read the file say so
            self.decode_errors += 1
        finally:
            with self._lock:
                self._pending.discard(key)
                self._unreserve(key)

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until no segment is waiting to be decoded (tests, benchmarks)."""
        return self._worker.wait_idle(timeout)

    def frame(
        self, key: tuple[Any, ...], members: tuple[SegmentKey, ...], build: Callable[[], Any]
    ) -> Any:
        """The DataFrame ``build()`` makes over the cached segments ``members``,
        memoised under ``key`` until one of them leaves the cache."""
        with self._lock:
            hit = self._frames.get(key)
            if hit is not None:
                self._frames.move_to_end(key)
                return hit[0]
        df = build()
        with self._lock:
            if all(m in self._items for m in members):
                self._frames[key] = (df, members)
                while len(self._frames) > FRAME_LIMIT:
                    self._frames.popitem(last=False)
        return df

    def forget(self, table_id: int, *, keep: Iterable[tuple[str, int, str]] | None = None) -> None:
        """Drop ``table_id``'s segments, except those whose (scope, segment
        id, checksum) is in ``keep`` (the segments its manifests still name)."""
        kept = set(keep) if keep is not None else set()
        with self._lock:
            gone = {k for k in self._items if k[0] == table_id and k[1:] not in kept}
            for k in gone:
                self.used -= self._items.pop(k)[1]
            for k in [k for k in self._seen if k[0] == table_id and k[1:] not in kept]:
                del self._seen[k]
            self._drop_frames_of(gone)

    def clear(self) -> None:
        """Drop everything (the engine is closing); queued decodings are skipped."""
        with self._lock:
            for job in self._worker.drain():
                self._pending.discard(job.args[0])  # type: ignore[attr-defined]
            self._items.clear()
            self._seen.clear()
            self._frames.clear()
            self._reserved.clear()
            self._reserved_bytes = 0
            self.used = 0

    def close(self) -> None:
        """The engine is closing: nothing is cached any more (a decoding
        still running is dropped when it finishes)."""
        self.budget = 0
        self.clear()

    def _unreserve(self, key: SegmentKey) -> None:
        self._reserved_bytes -= self._reserved.pop(key, 0)

    def _drop_frames_of(self, gone: set[SegmentKey]) -> None:
        if not gone:
            return
        for fk in [fk for fk, (_, members) in self._frames.items() if gone & set(members)]:
            del self._frames[fk]

    def figures(self) -> dict[str, int]:
        """What ``system.stats`` shows of the cache."""
        with self._lock:
            return {
                "segment_cache_bytes": self.used,
                "segment_cache_budget": self.budget,
                "segment_cache_segments": len(self._items),
                "segment_cache_hits": self.hits,
                "segment_cache_misses": self.misses,
                "segment_cache_evictions": self.evictions,
            }
