"""The commit path for table state: per-table locks, pending storage moves
and cache invalidation.

Rules (each is pinned by a test in tests/test_commit_path.py):

1. **One writer of a table's state at a time.** A flush publishing segments,
   compaction, every ALTER form, DROP, RENAME and REPAIR hold the table's
   commit lock (``TableLocks``) for their whole run. A flush holds it from its
   snapshot of hot rows to its last hot-row removal, so no ALTER, RENAME or
   DROP can commit between a flush's preparation (against schema version N)
   and its publication; the flush also re-checks the schema version and the
   table's directory before it publishes and abandons its files if either
   moved.
2. **Lock order:** table commit locks (several: ascending table id) before the
   engine lock. DML takes only the engine lock, so writers never wait for a
   flush's file I/O.
3. **Rewritten hot rows get a new ``_seq``.** A flush decides what it removed
   from the hot tier by ``_seq`` against its watermark; a row version that
   keeps its ``_seq`` while its values change would be mistaken for the one
   already flushed. (STREAM tables are never flushed and read their TTL from
   ``_seq``, so their rows keep it.)
4. **Storage directories move only after their catalog change committed**,
   and the move is recorded in the same batch (``Smove:`` records); an
   interrupted move or removal is finished when the data directory opens.
5. **Caches are keyed by identity** (table id, scope, segment id, checksum),
   never by file path, and every commit through ``Database.changing`` drops
   what it holds for that table.
"""

from __future__ import annotations

import shutil
import threading
from pathlib import Path
from typing import Any

import orjson

from engine.errors import StorageCorruptionError
from engine.names import safe_path
from engine.storage import keys


class TableLocks:
    """One re-entrant commit lock per table id, created on first use."""

    def __init__(self) -> None:
        self._locks: dict[int, threading.RLock] = {}
        self._guard = threading.Lock()

    def __repr__(self) -> str:
        return f"<TableLocks {len(self._locks)} table(s)>"

    def get(self, table_id: int) -> threading.RLock:
        with self._guard:
            lock = self._locks.get(table_id)
            if lock is None:
                lock = self._locks[table_id] = threading.RLock()
            return lock


def stage_move(
    txn: Any, marker: bytes, src: list[str] | tuple[str, ...], dst: list[str] | None
) -> bytes:
    """Record in ``txn``, under ``marker``, that directory ``src`` moves to
    ``dst`` (name parts under the data directory, starting with ``storage``;
    ``None``: is removed) once the batch commits; returns the marker."""
    txn.batch.put(marker, orjson.dumps({"from": list(src), "to": dst}))
    return marker


def finish_move(data_dir: Path, store: Any, marker: bytes, raw: bytes) -> None:
    """Carry out a recorded move or removal (idempotent), then drop the record."""
    try:
        move = orjson.loads(raw)
        src = safe_path(data_dir, *move["from"])
        dst = safe_path(data_dir, *move["to"]) if move["to"] is not None else None
    except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
        raise StorageCorruptionError(
            f"Damaged pending storage move record {marker!r} in the hot store: {exc}"
        ) from None
    if dst is None:
        if src.exists():
            shutil.rmtree(src)
    elif src.exists() and not (dst.exists() and any(dst.iterdir())):
        if dst.exists():
            dst.rmdir()
        dst.parent.mkdir(parents=True, exist_ok=True)
        src.rename(dst)
    from engine.storage.hot import Batch

    batch = Batch()
    batch.delete(marker)
    store.commit(batch)


def finish_pending_moves(data_dir: Path, store: Any) -> None:
    for prefix in (keys.MOVE_PREFIX, keys.RENAME_PREFIX):  # RENAME_PREFIX: older data dirs
        for marker, raw in list(store.scan(prefix)):
            finish_move(data_dir, store, marker, raw)
