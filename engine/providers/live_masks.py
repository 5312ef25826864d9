"""Deletion masks: which rows of a cached cold segment are still live.

A cold row is hidden when its scope's hot tier holds a version of its key
(live or a tombstone) or when a delete marker (``superseded_seqs``) names its
``_seq``. Over files the merge hides them with an anti-join against the hot
keys; probing every cold row through that join cost 263 ms of a 10M-row
``sum`` with 1% of the rows updated (10x the clean scan). A segment in the
warm cache is already in memory, so its hidden rows are found once (a key's
row is ``key - first key`` for dense integer keys, else a binary search of
the hot keys in the segment's sorted keys, or a hash lookup for text keys)
and the scan keeps the rest without a join: a batch with no hidden row as it
is, a batch with some as a copy without them (made on a background thread,
once per batch and set of hidden rows, within a quarter of the cache's
budget), and until that copy exists, with a boolean ``__live`` column that
DataFusion filters on (only the columns a query reads).

Masks are kept per scope for one *stamp*: the manifest and schema version,
the hot partition and its ``removals`` count. While the stamp holds, the
keys the hot tier holds can only grow, and every newer version has a higher
``_seq``, so a write only adds the rows of the keys written since the mask
was made (``through``). Any other change (flush, compaction, ALTER, DROP, a
hot key removed) starts the scope's masks again.
"""

from __future__ import annotations

import functools
import itertools
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from datafusion import DataFrame

from engine.catalog.model import TableDef
from engine.exec.background import BackgroundWorker
from engine.exec.cast import type_stable_since
from engine.providers.cold_tier import CANNOT_MASK, RowMask
from engine.providers.hot_rows import INT_KEY_TYPES
from engine.storage.cold import SegmentEntry

_TOKENS = itertools.count(1)


@dataclass(frozen=True)
class _Keys:
    """A segment's key column, searchable: its keys sorted and, when the
    file's order is not sorted, the positions that sort them. Dense integer
    keys (lo, lo + 1, ... in file order: ids from a counter, the usual case)
    keep only ``lo`` and the row count: a key's row is ``key - lo``, and no
    copy of the column is held outside the cache's budget."""

    sorted_keys: Any  # int64 numpy array, a pyarrow string array (unsorted), or None (dense)
    order: np.ndarray | None
    lo: int = 0
    n: int = 0


@dataclass(frozen=True)
class _Mask:
    hidden: np.ndarray  # positions of the hidden rows (int64, sorted, each once)
    through: int  # hot versions with a seq at or below this are applied
    row_mask: RowMask | None  # None: no row hidden


class ScopeMasks:
    """The masks of one scope's cached segments for one stamp (see module)."""

    def __init__(self, stamp: tuple[Any, ...], limit_bytes: int = 0) -> None:
        self.stamp = stamp
        self._lock = threading.Lock()
        self._keys: dict[tuple[int, str], _Keys | None] = {}
        self._masks: dict[tuple[int, str], _Mask] = {}
        # The hot versions as of one partition version: (version, keys, seqs)
        self.versions: tuple[int, Any, np.ndarray] | None = None
        # (segment, first row) -> (hidden rows, the batch without them): the
        # copies ``kept`` made, outside the cache's budget: every scope's
        # copies together stay within ``limit_bytes`` (a quarter of that
        # budget, set by the provider; ``_HELD``), given back when this
        # state is dropped (a flush, an ALTER, a removed hot key...).
        self._kept: dict[tuple[tuple[int, str], int], tuple[int, pa.RecordBatch]] = {}
        self._queued: set[tuple[tuple[tuple[int, str], int], int]] = set()
        self.limit_bytes = limit_bytes
        self._held = [0]  # bytes of this state's copies (shared with the finalizer)
        weakref.finalize(self, _give_back, self._held)
        # segment -> how many copies landed: part of a scan's memo key, so the
        # next scan after a copy lands uses it
        self.landed: dict[tuple[int, str], int] = {}

    def kept(
        self, ident: tuple[int, str], hidden: np.ndarray, live: pa.Array, batches: list[Any]
    ) -> list[pa.RecordBatch | None]:
        """The batches of a segment (in order, from its first row) without the
        rows among ``hidden`` (sorted positions): a batch itself when none is
        hidden; else the copy made for that batch and that number of hidden
        rows in it (within a stamp the hidden rows only grow, so the number
        tells the set). When there is none yet, None (the scan filters the
        batch itself) and the copy is made on a background thread
        (``_COPIES``) for the next scan, within ``limit_bytes``: copying every
        batch of 10M rows cost ~0.5 s, more than the one query it speeds up."""
        sizes = np.fromiter((b.num_rows for b in batches), np.int64, len(batches))
        ends = np.cumsum(sizes)
        counts = np.diff(np.searchsorted(hidden, ends), prepend=0).tolist()
        starts = (ends - sizes).tolist()
        out: list[pa.RecordBatch | None] = []
        with self._lock:
            for batch, start, count in zip(batches, starts, counts, strict=True):
                if not count:
                    out.append(batch)
                    continue
                where = (ident, start)
                hit = self._kept.get(where)
                if hit is not None and hit[0] == count:
                    out.append(hit[1])
                    continue
                out.append(None)
                room = _HELD[0] + batch.nbytes <= self.limit_bytes
                if room and (where, count) not in self._queued:
                    self._queued.add((where, count))
                    _COPIES.submit(functools.partial(self._copy, where, count, batch, live, start))
        return out

    def landed_count(self, ident: tuple[int, str]) -> int:
        return self.landed.get(ident, 0)

    def _copy(
        self, where: tuple[tuple[int, str], int], count: int, batch: Any, live: Any, start: int
    ) -> None:
        try:
            made = batch.filter(live.slice(start, batch.num_rows))
        finally:
            with self._lock:
                self._queued.discard((where, count))
        with self._lock:
            old = self._kept.get(where)
            if old is not None and old[0] > count:
                return  # a newer copy landed first
            change = made.nbytes - (old[1].nbytes if old is not None else 0)
            with _HELD_LOCK:
                if _HELD[0] + change > self.limit_bytes:
                    return
                _HELD[0] += change
            self._held[0] += change
            self._kept[where] = (count, made)
            self.landed[where[0]] = self.landed.get(where[0], 0) + 1

    def __repr__(self) -> str:
        return f"<ScopeMasks {len(self._masks)} segment(s)>"

    def matches(self, stamp: tuple[Any, ...]) -> bool:
        return len(stamp) == len(self.stamp) and all(
            a is b or (type(a) is int and a == b) for a, b in zip(stamp, self.stamp, strict=True)
        )


class LiveRows:
    """One query's view of a scope's hidden cold rows, from a snapshot of the
    hot versions taken with the manifest (under the provider's lock)."""

    def __init__(
        self,
        masks: ScopeMasks,
        table: TableDef,
        markers: tuple[int, ...],
        keys: Any,
        seqs: np.ndarray,
        exclude: Callable[[DataFrame], DataFrame],
    ) -> None:
        self._masks = masks
        self._table = table
        self._markers = np.asarray(markers, dtype=np.int64)
        self._hot_keys = keys
        self._seqs = seqs
        self._newest = int(seqs.max()) if len(seqs) else -1
        self.exclude = exclude

    def __repr__(self) -> str:
        return f"<LiveRows {len(self._seqs)} hot key(s), {len(self._markers)} marker(s)>"

    def mask(self, entry: SegmentEntry, data: pa.Table) -> RowMask | None:
        """The live rows of a cached segment (``data``: its decoded file);
        None when every row is live; ``CANNOT_MASK`` when the hot keys cannot
        be matched here (the caller anti-joins the segment instead)."""
        ident = (entry.id, entry.checksum)
        state = self._masks
        with state._lock:
            known = state._masks.get(ident)
        if known is not None and known.through == self._newest:
            return known.row_mask
        keys = self._segment_keys(entry, data)
        if keys is CANNOT_MASK:
            return CANNOT_MASK
        if known is not None and known.through < self._newest:
            # Only the versions written since: their keys are the new ones.
            fresh = self._seqs > known.through
            delta: Any
            if isinstance(self._hot_keys, np.ndarray):
                delta = self._hot_keys[fresh]
            else:
                delta = [k for k, f in zip(self._hot_keys, fresh.tolist(), strict=True) if f]
            added = _positions(keys, delta)
            if not len(added):  # the same rows hidden: the same mask (and memoised scan)
                made = _Mask(known.hidden, self._newest, known.row_mask)
                with state._lock:
                    current = state._masks.get(ident)
                    if current is None or current.through <= made.through:
                        state._masks[ident] = made
                return known.row_mask
            hidden = np.concatenate([known.hidden, added])
        else:  # first use, or an older snapshot than the one kept
            hidden = _positions(keys, self._hot_keys)
            if len(self._markers) and self._may_mark(entry):
                seq = data.column("_seq").to_numpy()
                hidden = np.concatenate([hidden, np.flatnonzero(np.isin(seq, self._markers))])
        row_mask = None
        if len(hidden):
            hidden = _sorted_once(hidden)
            live = np.ones(data.num_rows, np.bool_)
            live[hidden] = False
            live_arr = pa.array(live, pa.bool_())
            kept = functools.partial(state.kept, ident, hidden, live_arr)
            row_mask = RowMask(
                next(_TOKENS), live_arr, kept, functools.partial(state.landed_count, ident)
            )
        made = _Mask(hidden, self._newest, row_mask)
        with state._lock:
            current = state._masks.get(ident)
            if current is None or current.through <= made.through:
                state._masks[ident] = made
        return row_mask

    def _may_mark(self, entry: SegmentEntry) -> bool:
        m = self._markers
        return bool(((m >= entry.min_seq) & (m <= entry.max_seq)).any())

    def _segment_keys(self, entry: SegmentEntry, data: pa.Table) -> Any:
        """The segment's key column made searchable (once per stamp), None
        for a table without a primary key (hot keys never hide its cold rows)."""
        ident = (entry.id, entry.checksum)
        state = self._masks
        with state._lock:
            if ident in state._keys:
                return state._keys[ident]
        found = _searchable(self._table, entry, data)
        with state._lock:
            state._keys[ident] = found
        return found


def _sorted_once(positions: np.ndarray) -> np.ndarray:
    """Positions sorted, each once (mostly sorted already: a stable sort of
    integers is a radix sort; numpy's hash-based unique cost 3 ms a segment)."""
    out = np.sort(positions, kind="stable")
    if len(out) > 1:
        out = out[np.concatenate([[True], out[1:] != out[:-1]])]
    return out


# A copy that fails is left undone: the scans keep filtering that batch themselves.
_COPIES = BackgroundWorker("kalam-live-masks")
wait_idle = _COPIES.wait_idle
# Bytes held by the copies of every live ``ScopeMasks`` of the process.
_HELD = [0]
_HELD_LOCK = threading.Lock()


def _give_back(held: list[int]) -> None:
    with _HELD_LOCK:
        _HELD[0] -= held[0]
    held[0] = 0


def _searchable(table: TableDef, entry: SegmentEntry, data: pa.Table) -> Any:
    key = table.key_columns
    if not key:
        return None
    if len(key) != 1 or entry.schema_version < type_stable_since(table, key[0].id):
        return CANNOT_MASK  # composite, or written in another type: the anti-join
    column = data.column(entry.file_column(key[0].id))
    if column.null_count:
        return CANNOT_MASK
    if key[0].type in INT_KEY_TYPES and pa.types.is_integer(column.type):
        values = column.to_numpy().astype(np.int64, copy=False)
        if len(values) > 1 and not bool((values[1:] > values[:-1]).all()):
            order = np.argsort(values, kind="stable")
            return _Keys(values[order], order)
        if len(values) and int(values[-1]) - int(values[0]) == len(values) - 1:
            return _Keys(None, None, int(values[0]), len(values))
        return _Keys(values, None)
    if key[0].type == "TEXT" and pa.types.is_string(column.type):
        return _Keys(column.combine_chunks(), None)  # matched by hashing, in file order
    return CANNOT_MASK


def _positions(keys: _Keys | None, hot_keys: Any) -> np.ndarray:
    """Row positions (in the file's order) of the segment rows whose key is
    among ``hot_keys``; every row of a repeated key."""
    if keys is None or not len(hot_keys):
        return np.zeros(0, np.int64)
    ordered = keys.sorted_keys
    if ordered is None:  # dense: lo .. lo + n - 1, in file order
        probe = np.asarray(hot_keys, dtype=np.int64)
        # Compared before subtracting: a difference can overflow int64.
        probe = probe[(probe >= keys.lo) & (probe <= keys.lo + keys.n - 1)]
        return probe - keys.lo
    if not len(ordered):
        return np.zeros(0, np.int64)
    if isinstance(ordered, np.ndarray):
        probe = np.asarray(hot_keys, dtype=np.int64)
        probe = probe[(probe >= ordered[0]) & (probe <= ordered[-1])]
        left = np.searchsorted(ordered, probe, side="left")
        right = np.searchsorted(ordered, probe, side="right")
    else:
        probe_arr = pa.array([k for k in hot_keys if isinstance(k, str)], pa.string())
        hits = pc.is_in(ordered, value_set=probe_arr).to_numpy(zero_copy_only=False)
        found = np.flatnonzero(hits)
        return found if keys.order is None else keys.order[found]
    spans = right - left
    if not bool((spans > 0).any()):
        return np.zeros(0, np.int64)
    if bool((spans <= 1).all()):
        found = left[spans == 1]
    else:  # a key held twice in one segment: every copy is hidden
        found = np.concatenate([np.arange(lo, hi) for lo, hi in zip(left, right, strict=True)])
    return found if keys.order is None else keys.order[found]
