"""The newest hot version of every key of one scope, held as Arrow columns.

A Python dict holding a tuple and a ``{column id: value}`` dict per row cost
15-17x the Arrow size of the rows (issue 15: 1M hot rows, +662 MB). Here a
scope's versions live in two parts:

- the *base*: append-only Arrow record batches (one column per table column,
  named ``c<id>`` like segment columns, so a column's values survive RENAME),
  numpy arrays of each position's ``_seq`` and ``_deleted`` and whether the
  position still holds the newest version of its key (``alive``), and a
  key -> position index: sorted numpy arrays for integer keys (16 bytes a
  row), a dict for text and composite keys;
- the *tail*: versions written a few at a time (single-row INSERT, UPDATE by
  key) as Python tuples, folded into the base as one batch once it grows past
  ``TAIL_LIMIT`` or a scan needs Arrow. It keeps a one-row write as cheap as
  before: a 1-row record batch per statement would cost more than the write.

A key has at most one alive version, in the tail or in the base. ``HotRows``
is also a ``MutableMapping`` of key -> ``(seq, deleted, {column id: value})``
so code that touches a few rows by key keeps its shape; bulk readers and
writers (scan, flush, bulk insert, open) use the columnar methods.
"""

from __future__ import annotations

import bisect
import functools
import threading
from collections.abc import Callable, Iterator, Mapping, MutableMapping, Sequence
from typing import Any, TypeVar

import numpy as np
import pyarrow as pa

from engine.catalog.model import TableDef

RowVersion = tuple[int, bool, dict[int, Any]]  # (seq, deleted, {column id: value})

TAIL_LIMIT = 4096
# A small batch is merged with the next append (positions are unchanged:
# both are at the end), so one-row writes do not leave thousands of batches.
SMALL_BATCH = 65_536
INT_KEY_TYPES = ("SMALLINT", "INT", "BIGINT")


F = TypeVar("F", bound=Callable[..., Any])


def _locked(fn: F) -> F:
    """Run a ``HotRows`` method under its lock: a point query reads a scope
    without the engine lock while a writer or a flush may be changing it,
    and one lookup reads several arrays that a write replaces."""

    @functools.wraps(fn)
    def run(self: HotRows, *args: Any, **kwargs: Any) -> Any:
        with self._guard:
            return fn(self, *args, **kwargs)

    return run  # type: ignore[return-value]


def physical(column_id: int) -> str:
    return f"c{column_id}"


def stored_list(arr: pa.Array | pa.ChunkedArray) -> list[Any]:
    """Arrow values in the hot store's stored forms (timestamps and dates as integers)."""
    if pa.types.is_timestamp(arr.type):
        arr = arr.cast(pa.int64())
    elif pa.types.is_date32(arr.type):
        arr = arr.cast(pa.int32())
    return arr.to_pylist()


def versions_batch(table: TableDef, versions: Sequence[RowVersion]) -> pa.RecordBatch:
    """Row versions as one record batch of physical columns (the current
    columns; a value a version lacks is the column's fill)."""
    arrays = []
    for c in table.columns:
        cid, fill = c.id, c.fill
        arrays.append(pa.array([v[2].get(cid, fill) for v in versions], type=c.arrow_type))
    return pa.RecordBatch.from_arrays(arrays, names=[physical(c.id) for c in table.columns])


# A batch missing at most this many rows is read as zero-copy slices around
# them instead of a filtered copy: one UPDATE in a 1M-row batch would
# otherwise copy the whole batch on the next read.
SLICE_GAPS = 32


def _kept(batch: pa.RecordBatch, mask: np.ndarray) -> list[pa.RecordBatch]:
    """The rows of ``batch`` where ``mask`` holds, in order."""
    dead = np.flatnonzero(~mask)
    if not len(dead):
        return [batch]
    if len(dead) > SLICE_GAPS:
        return [batch.filter(pa.array(mask))]
    parts, start = [], 0
    for d in dead.tolist():
        if d > start:
            parts.append(batch.slice(start, d - start))
        start = d + 1
    if start < len(mask):
        parts.append(batch.slice(start))
    return parts


def _grow(arr: np.ndarray, need: int) -> np.ndarray:
    if need <= len(arr):
        return arr
    out = np.zeros(max(need, 2 * len(arr), 1024), dtype=arr.dtype)
    out[: len(arr)] = arr
    return out


class BatchVersions(Mapping[Any, RowVersion]):
    """Versions staged as one record batch, read as a mapping only if someone
    asks (a live query, a UNIQUE check): building a tuple per row is what the
    bulk path avoids."""

    def __init__(
        self, keys: Any, batch: pa.RecordBatch, seqs: np.ndarray, deleted: bool = False
    ) -> None:
        self.keys_list = keys.tolist() if isinstance(keys, np.ndarray) else keys
        self.batch, self.seqs, self.deleted = batch, seqs, deleted
        self._index: dict[Any, int] | None = None

    def __len__(self) -> int:
        return len(self.keys_list)

    def __iter__(self) -> Iterator[Any]:
        return iter(self.keys_list)

    def __getitem__(self, key: Any) -> RowVersion:
        if self._index is None:
            self._index = {k: i for i, k in enumerate(self.keys_list)}
        i = self._index[key]
        return _row_of(self.batch, i, int(self.seqs[i]), self.deleted)

    def items(self) -> Any:
        return list(zip(self.keys_list, self.values(), strict=True))

    def values(self) -> Any:
        return list(_rows_of(self.batch, self.seqs.tolist(), [self.deleted] * len(self.seqs)))


def _row_of(batch: pa.RecordBatch, i: int, seq: int, deleted: bool) -> RowVersion:
    row = batch.slice(i, 1)
    values = {
        int(name[1:]): stored_list(column)[0]
        for name, column in zip(row.schema.names, row.columns, strict=True)
    }
    return seq, deleted, values


def _rows_of(batch: pa.RecordBatch, seqs: list[int], deleted: list[bool]) -> Iterator[RowVersion]:
    ids = [int(name[1:]) for name in batch.schema.names]
    columns = [stored_list(c) for c in batch.columns]
    for seq, gone, values in zip(seqs, deleted, zip(*columns, strict=True), strict=True):
        yield seq, gone, dict(zip(ids, values, strict=True))
    if not columns:  # a batch without columns still has its rows
        for seq, gone in zip(seqs, deleted, strict=True):
            yield seq, gone, {}


class HotRows(MutableMapping[Any, RowVersion]):
    """Key -> newest hot version of one scope (see the module docstring)."""

    def __init__(self, table: Callable[[], TableDef]) -> None:
        self._table = table
        self._guard = threading.RLock()
        key = table().key_columns
        # Keyless tables (STREAM) key a row by its first seq: an integer too.
        self.int_keys = not key or (len(key) == 1 and key[0].type in INT_KEY_TYPES)
        self._tail: dict[Any, RowVersion] = {}
        self._batches: list[pa.RecordBatch] = []
        self._ends: list[int] = []
        self._n = 0
        self._live = 0  # alive base positions
        self._seq = np.zeros(0, np.int64)
        self._del = np.zeros(0, np.bool_)
        self._alive = np.zeros(0, np.bool_)
        # Whether a position came from a bulk chunk record (one hot-store value
        # for the whole batch) rather than a record per key.
        self._chunked = np.zeros(0, np.bool_)
        self._pkeys: Any = np.zeros(0, np.int64) if self.int_keys else []
        self._sorted_keys = np.zeros(0, np.int64)
        self._sorted_pos = np.zeros(0, np.int64)
        self._recent: dict[Any, int] = {}  # int keys: appended since the last sort; else all
        # Bumped whenever a key stops being held (a delete, a flush forgetting
        # it): the keys held can only grow while it stays the same, which lets
        # a reader of the hiding keys (``engine.providers.live_masks``) add
        # only the versions newer than what it saw.
        self.removals = 0

    def __repr__(self) -> str:
        return f"<HotRows {len(self)} key(s): {self._live} columnar, {len(self._tail)} in the tail>"

    # ---- index
    def _base_pos(self, key: Any) -> int | None:
        p = self._recent.get(key)
        if p is None and self.int_keys and len(self._sorted_keys) and type(key) is int:
            i = int(np.searchsorted(self._sorted_keys, key))
            if i < len(self._sorted_keys) and self._sorted_keys[i] == key:
                p = int(self._sorted_pos[i])
        if p is not None and self._alive[p]:
            return p
        return None

    def _sort_index(self) -> None:
        alive = np.flatnonzero(self._alive[: self._n])
        keys = self._pkeys[alive]
        order = np.argsort(keys, kind="stable")
        self._sorted_keys, self._sorted_pos = keys[order], alive[order]
        self._recent.clear()

    def _index_recent(self) -> None:
        """Fold the integer keys appended since the last sort into the index."""
        if self._recent:
            keys = np.fromiter(self._recent.keys(), np.int64, len(self._recent))
            pos = np.fromiter(self._recent.values(), np.int64, len(self._recent))
            self._recent.clear()
            self._index_merge(keys, pos)

    def _index_merge(self, keys: np.ndarray, pos: np.ndarray) -> None:
        """Add (key, newest position) pairs to the sorted index. While they
        are few against the index, a merge: O(n + k log k), ~1 ms at 1M keys,
        where re-sorting everything after each small write cost 12+ ms. A key
        already indexed gets its new position (the old one is dead); entries
        of keys that died since stay until the next full sort, and lookups
        check ``_alive`` anyway."""
        if len(keys) * 8 > len(self._sorted_keys):
            self._sort_index()
            return
        order = np.argsort(keys, kind="stable")
        keys, pos = keys[order], pos[order]
        newest = np.ones(len(keys), np.bool_)  # a key twice: its later position
        newest[:-1] = keys[1:] != keys[:-1]
        keys, pos = keys[newest], pos[newest]
        at = np.searchsorted(self._sorted_keys, keys)
        known = at < len(self._sorted_keys)
        known[known] = self._sorted_keys[at[known]] == keys[known]
        if known.any():
            self._sorted_pos[at[known]] = pos[known]
        fresh = ~known
        if fresh.any():
            self._sorted_keys = np.insert(self._sorted_keys, at[fresh], keys[fresh])
            self._sorted_pos = np.insert(self._sorted_pos, at[fresh], pos[fresh])

    @_locked
    def positions_of(self, keys: Any) -> np.ndarray:
        """Alive base position of each key (-1: none; a tail key also gives -1)."""
        if not self.int_keys:
            get = self._base_pos
            return np.array([-1 if (p := get(k)) is None else p for k in keys], dtype=np.int64)
        self._index_recent()
        wanted = np.asarray(keys, dtype=np.int64)
        out = np.full(len(wanted), -1, dtype=np.int64)
        if len(self._sorted_keys) and len(wanted):
            i = np.minimum(np.searchsorted(self._sorted_keys, wanted), len(self._sorted_keys) - 1)
            hit = self._sorted_keys[i] == wanted
            out[hit] = self._sorted_pos[i[hit]]
            out[(out >= 0) & ~self._alive[np.maximum(out, 0)]] = -1
        return out

    def _kill(self, p: int) -> None:
        self._alive[p] = False
        self._live -= 1

    # ---- mapping protocol
    @_locked
    def __len__(self) -> int:
        return len(self._tail) + self._live

    @_locked
    def __contains__(self, key: object) -> bool:
        return key in self._tail or self._base_pos(key) is not None

    @_locked
    def __getitem__(self, key: Any) -> RowVersion:
        found = self._tail.get(key)
        if found is not None:
            return found
        p = self._base_pos(key)
        if p is None:
            raise KeyError(key)
        b = bisect.bisect_right(self._ends, p)
        start = self._ends[b - 1] if b else 0
        return _row_of(self._batches[b], p - start, int(self._seq[p]), bool(self._del[p]))

    @_locked
    def __setitem__(self, key: Any, version: RowVersion) -> None:
        p = self._base_pos(key)
        if p is not None:
            self._kill(p)
        # No fold here: an ALTER sets versions of the new column type before
        # the catalog holds it; the owner calls ``settle`` once it is consistent.
        self._tail[key] = version

    @_locked
    def __delitem__(self, key: Any) -> None:
        if self._tail.pop(key, None) is not None:
            self.removals += 1
            return
        p = self._base_pos(key)
        if p is None:
            raise KeyError(key)
        self.removals += 1
        self._kill(p)
        self._maybe_shrink()

    def __iter__(self) -> Iterator[Any]:
        return iter(self._key_list())

    @_locked
    def _key_list(self) -> list[Any]:
        out = list(self._tail)
        alive = np.flatnonzero(self._alive[: self._n])
        if self.int_keys:
            out += self._pkeys[alive].tolist()
        else:
            out += [self._pkeys[p] for p in alive.tolist()]
        return out

    @_locked
    def items(self) -> Any:
        return list(self._iter_items())

    @_locked
    def values(self) -> Any:
        return [v for _, v in self._iter_items()]

    def _iter_items(self) -> Iterator[tuple[Any, RowVersion]]:
        yield from list(self._tail.items())
        start = 0
        for batch, end in zip(self._batches, self._ends, strict=True):
            alive = np.flatnonzero(self._alive[start:end])
            if len(alive):
                part = batch.take(pa.array(alive))
                pos = alive + start
                if self.int_keys:
                    keys = self._pkeys[pos].tolist()
                else:
                    keys = [self._pkeys[p] for p in pos.tolist()]
                rows = _rows_of(part, self._seq[pos].tolist(), self._del[pos].tolist())
                yield from zip(keys, rows, strict=False)
            start = end

    @_locked
    def update(self, other: Any = (), /, **kw: Any) -> None:  # type: ignore[override]
        if isinstance(other, Mapping) and len(other) > TAIL_LIMIT:
            keys = list(other)
            versions = [other[k] for k in keys]
            self.fold()
            self.append(
                keys,
                versions_batch(self._table(), versions),
                np.fromiter((v[0] for v in versions), np.int64, len(versions)),
                np.fromiter((v[1] for v in versions), np.bool_, len(versions)),
            )
            return
        super().update(other, **kw)

    @_locked
    def seq_of(self, key: Any) -> int | None:
        found = self._tail.get(key)
        if found is not None:
            return found[0]
        p = self._base_pos(key)
        return None if p is None else int(self._seq[p])

    @_locked
    def state_of(self, key: Any) -> tuple[int, bool] | None:
        """(seq, deleted) of a key's version, without building its values."""
        found = self._tail.get(key)
        if found is not None:
            return found[0], found[1]
        p = self._base_pos(key)
        return None if p is None else (int(self._seq[p]), bool(self._del[p]))

    @_locked
    def seqs_of(self, keys: Any) -> np.ndarray:
        """Seq of each key's version (-1: none)."""
        pos = self.positions_of(keys)
        out = np.full(len(pos), -1, np.int64)
        hit = pos >= 0
        out[hit] = self._seq[pos[hit]]
        if self._tail:
            for i, k in enumerate(keys):
                found = self._tail.get(k)
                if found is not None:
                    out[i] = found[0]
        return out

    @_locked
    def states_of(self, keys: Any) -> tuple[np.ndarray, np.ndarray]:
        """(seq, deleted) of each key's version (seq -1: none), vectorised."""
        pos = self.positions_of(keys)
        hit = pos >= 0
        seqs = np.full(len(pos), -1, np.int64)
        seqs[hit] = self._seq[pos[hit]]
        dels = np.zeros(len(pos), np.bool_)
        dels[hit] = self._del[pos[hit]]
        if self._tail:
            for i, k in enumerate(keys):
                v = self._tail.get(k)
                if v is not None:
                    seqs[i], dels[i] = v[0], v[1]
        return seqs, dels

    @_locked
    def keys_at_seqs(self, seqs: np.ndarray) -> np.ndarray:
        """For a keyless scope (key = a row's first seq): the key of the alive
        version with each seq (the seq itself where none holds it). A row
        rewritten by UPDATE keeps its key while its ``_seq`` moves on."""
        wanted = np.asarray(seqs, dtype=np.int64)
        out = wanted.copy()
        alive = np.flatnonzero(self._alive[: self._n])
        if len(alive) and len(wanted):
            current = self._seq[alive]
            order = np.argsort(current, kind="stable")
            current, at = current[order], alive[order]
            i = np.minimum(np.searchsorted(current, wanted), len(current) - 1)
            hit = current[i] == wanted
            out[hit] = self._pkeys[at[i[hit]]]
        if self._tail:
            by_seq = {v[0]: k for k, v in self._tail.items()}
            for j, seq in enumerate(wanted.tolist()):
                key = by_seq.get(seq)
                if key is not None:
                    out[j] = key
        return out

    @_locked
    def min_seq(self) -> int | None:
        seqs = [v[0] for v in self._tail.values()]
        alive = self._seq[: self._n][self._alive[: self._n]]
        if len(alive):
            seqs.append(int(alive.min()))
        return min(seqs, default=None)

    @_locked
    def key_array(self) -> np.ndarray:
        """Every held key (live or tombstone) as one int64 array, for integer
        keys only: what hides a cold row, without a Python int per key."""
        assert self.int_keys, "key_array is for integer keys"
        base = self._pkeys[: self._n][self._alive[: self._n]]
        if not self._tail:
            return base
        tail = np.fromiter(self._tail, np.int64, len(self._tail))
        return np.concatenate([base, tail])

    @_locked
    def versions(self) -> tuple[Any, np.ndarray]:
        """Every held key (live or tombstone) and the seq of its version: an
        int64 array of keys for integer keys, else a list."""
        alive = self._alive[: self._n]
        seqs = self._seq[: self._n][alive]  # base first, then the tail, as the keys
        if self._tail:
            tail_seqs = np.fromiter((v[0] for v in self._tail.values()), np.int64, len(self._tail))
            seqs = np.concatenate([seqs, tail_seqs])
        if self.int_keys:
            return self.key_array(), seqs
        keys = [self._pkeys[p] for p in np.flatnonzero(alive).tolist()]
        return keys + list(self._tail), seqs

    @_locked
    def live_count(self) -> int:
        tail = sum(1 for v in self._tail.values() if not v[1])
        return tail + int((self._alive[: self._n] & ~self._del[: self._n]).sum())

    @_locked
    def held_bytes(self) -> int:
        """Memory the base holds (Arrow batches, per-position arrays, the
        integer key index); the tail is bounded by ``TAIL_LIMIT``. For the
        size bound of the flush policy (``engine.catalog.flush_policy``)."""
        per_position = 8 + 3 + (8 if self.int_keys else 0)  # seq, 3 flags, the key
        held = sum(b.nbytes for b in self._batches) + self._n * per_position
        return held + self._sorted_keys.nbytes + self._sorted_pos.nbytes

    # ---- columnar writes
    @_locked
    def settle(self) -> None:
        """Fold the tail once it has grown past ``TAIL_LIMIT`` (after a commit)."""
        if len(self._tail) > TAIL_LIMIT:
            self.fold()

    @_locked
    def fold(self) -> None:
        """Move the tail into the base as one batch."""
        if not self._tail:
            return
        keys = list(self._tail)
        versions = list(self._tail.values())
        self._tail = {}
        self.append(
            keys,
            versions_batch(self._table(), versions),
            np.fromiter((v[0] for v in versions), np.int64, len(versions)),
            np.fromiter((v[1] for v in versions), np.bool_, len(versions)),
        )

    @_locked
    def append(
        self,
        keys: Sequence[Any],
        batch: pa.RecordBatch,
        seqs: np.ndarray,
        deleted: np.ndarray,
        *,
        chunked: Any = False,
    ) -> None:
        """Add versions (newer than any held for the same keys) to the base."""
        n = len(keys)
        if not n:
            return
        if self._tail:
            for k in keys:
                self._tail.pop(k, None)
        old = self.positions_of(keys)
        old = old[old >= 0]
        if len(old):
            self._alive[old] = False
            self._live -= len(old)
        start, end = self._n, self._n + n
        self._seq = _grow(self._seq, end)
        self._del = _grow(self._del, end)
        self._alive = _grow(self._alive, end)
        self._chunked = _grow(self._chunked, end)
        self._chunked[start:end] = chunked
        self._seq[start:end] = seqs
        self._del[start:end] = deleted
        self._alive[start:end] = True
        if self.int_keys:
            self._pkeys = _grow(self._pkeys, end)
            self._pkeys[start:end] = np.asarray(keys, dtype=np.int64)
        else:
            self._pkeys.extend(keys)
        if self._batches and self._batches[-1].num_rows < SMALL_BATCH and n < SMALL_BATCH:
            last = self._batches[-1]
            if last.schema.equals(batch.schema):
                self._batches[-1] = pa.concat_batches([last, batch])
                self._ends[-1] = end
            else:
                self._batches.append(batch)
                self._ends.append(end)
        else:
            self._batches.append(batch)
            self._ends.append(end)
        self._n = end
        self._live += n
        if self.int_keys and n > 1024:
            self._index_recent()  # older than these keys: merged first
            self._index_merge(self._pkeys[start:end].copy(), np.arange(start, end))
        else:
            if isinstance(keys, np.ndarray):
                keys = keys.tolist()
            for i, k in enumerate(keys):
                self._recent[k] = start + i
            if self.int_keys and len(self._recent) > 65_536 + self._n // 8:
                self._index_recent()

    @_locked
    def forget_through(self, watermark: int) -> int:
        """Drop every version with seq <= ``watermark`` (flushed); returns how many."""
        gone = [k for k, v in self._tail.items() if v[0] <= watermark]
        for k in gone:
            del self._tail[k]
        stale = self._alive[: self._n] & (self._seq[: self._n] <= watermark)
        count = int(stale.sum())
        if gone or count:
            self.removals += 1
        if count:
            self._alive[: self._n][stale] = False
            self._live -= count
            self._maybe_shrink()
        return len(gone) + count

    @_locked
    def keys_through(self, watermark: int) -> list[Any]:
        """Keys whose version has seq <= ``watermark``."""
        out = [k for k, v in self._tail.items() if v[0] <= watermark]
        pos = np.flatnonzero(self._alive[: self._n] & (self._seq[: self._n] <= watermark))
        if self.int_keys:
            out += self._pkeys[pos].tolist()
        else:
            out += [self._pkeys[p] for p in pos.tolist()]
        return out

    def _maybe_shrink(self) -> None:
        """Rewrite the base without dead positions once they outnumber the live."""
        dead = self._n - self._live
        if dead < SMALL_BATCH or dead < self._live:
            return
        keep = np.flatnonzero(self._alive[: self._n])
        table = self._table()
        batches = self._physical(table, keep_mask=self._alive[: self._n].copy())
        seqs, dels = self._seq[keep].copy(), self._del[keep].copy()
        chunked = self._chunked[keep].copy()
        if self.int_keys:
            keys: Any = self._pkeys[keep].copy()
        else:
            keys = [self._pkeys[p] for p in keep.tolist()]
        self._batches, self._ends, self._n, self._live = [], [], 0, 0
        self._seq = np.zeros(0, np.int64)
        self._del = np.zeros(0, np.bool_)
        self._alive = np.zeros(0, np.bool_)
        self._chunked = np.zeros(0, np.bool_)
        self._pkeys = np.zeros(0, np.int64) if self.int_keys else []
        self._sorted_keys = np.zeros(0, np.int64)
        self._sorted_pos = np.zeros(0, np.int64)
        self._recent = {}
        if batches:
            batch = pa.concat_batches(batches) if len(batches) > 1 else batches[0]
            self.append(keys, batch, seqs, dels, chunked=chunked)

    # ---- columnar reads
    def _physical(self, table: TableDef, *, keep_mask: np.ndarray) -> list[pa.RecordBatch]:
        """The kept base positions as batches of the current physical columns."""
        out = []
        start = 0
        for batch, end in zip(self._batches, self._ends, strict=True):
            mask = keep_mask[start:end]
            start = end
            if not mask.any():
                continue
            for part in _kept(batch, mask):
                arrays = []
                for c in table.columns:
                    name = physical(c.id)
                    if name in part.schema.names:
                        arr = part.column(name)
                        if arr.type != c.arrow_type:
                            arr = arr.cast(c.arrow_type)
                    elif c.fill is None:
                        arr = pa.nulls(part.num_rows, c.arrow_type)
                    else:
                        arr = pa.array([c.fill] * part.num_rows, type=c.arrow_type)
                    arrays.append(arr)
                names = [physical(c.id) for c in table.columns]
                out.append(pa.RecordBatch.from_arrays(arrays, names=names))
        return out

    @_locked
    def select(
        self,
        table: TableDef,
        *,
        include_deleted: bool,
        visible: Callable[[np.ndarray], np.ndarray] | None = None,
    ) -> tuple[list[pa.RecordBatch], np.ndarray, np.ndarray]:
        """(batches of physical columns, their seqs, their deleted flags) of
        the versions a scan sees; ``visible`` narrows by seq (STREAM TTL)."""
        self.fold()
        n = self._n
        mask = self._alive[:n].copy()
        if not include_deleted:
            mask &= ~self._del[:n]
        if visible is not None:
            mask &= visible(self._seq[:n])
        return self._physical(table, keep_mask=mask), self._seq[:n][mask], self._del[:n][mask]

    @_locked
    def merge_older(
        self, keys: Sequence[Any], batch: pa.RecordBatch, first_seq: int, *, deleted: bool = False
    ) -> None:
        """Add a bulk chunk read at open: row i is version ``first_seq + i``
        (a tombstone if ``deleted``), kept only where no newer version of
        its key is already held."""
        seqs = np.arange(first_seq, first_seq + len(keys), dtype=np.int64)
        newer = self.seqs_of(keys) > seqs
        if newer.any():
            keep = ~newer
            batch = batch.filter(pa.array(keep))
            seqs = seqs[keep]
            keys = [k for k, ok in zip(keys, keep.tolist(), strict=True) if ok]
        self.append(keys, batch, seqs, np.full(len(seqs), deleted, np.bool_), chunked=True)

    @_locked
    def snapshot(self, table: TableDef) -> tuple[list[Any], list[Any], np.ndarray, pa.Table]:
        """For a flush: (every key, the keys held as a record per key, their
        seqs, a physical table of the live versions with ``_seq`` / ``_deleted``)."""
        self.fold()
        n = self._n
        alive = self._alive[:n]
        pos = np.flatnonzero(alive)
        own = np.flatnonzero(alive & ~self._chunked[:n])
        if self.int_keys:
            keys, row_keys = self._pkeys[pos].tolist(), self._pkeys[own].tolist()
        else:
            keys = [self._pkeys[p] for p in pos.tolist()]
            row_keys = [self._pkeys[p] for p in own.tolist()]
        live = alive & ~self._del[:n]
        batches = self._physical(table, keep_mask=live)
        names = [physical(c.id) for c in table.columns]
        fields = [pa.field(nm, c.arrow_type) for nm, c in zip(names, table.columns, strict=True)]
        data = pa.Table.from_batches(batches, schema=pa.schema(fields))
        data = data.append_column("_seq", pa.array(self._seq[:n][live], pa.int64()))
        data = data.append_column("_deleted", pa.array(self._del[:n][live], pa.bool_()))
        return keys, row_keys, self._seq[pos].copy(), data
