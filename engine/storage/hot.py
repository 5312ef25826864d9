"""The hot store: the only module that imports ``rocksdict``.

One RocksDB per data directory holds rows, the catalog, manifests' hot copies
and sequence state, all under short key prefixes (see ``keys``). Every
statement commits through exactly one ``WriteBatch``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from rocksdict import Options, Rdict, WriteBatch, WriteOptions

from engine.errors import DataDirInUseError, StorageCorruptionError


class Batch:
    """An atomic group of puts and deletes; nothing is visible until committed."""

    __slots__ = ("_wb", "ops")

    def __init__(self) -> None:
        self._wb = WriteBatch(raw_mode=True)
        self.ops = 0

    def put(self, key: bytes, value: bytes) -> None:
        self._wb.put(key, value)
        self.ops += 1

    def put_many(self, items: list[tuple[bytes, bytes]]) -> None:
        put = self._wb.put
        for key, value in items:
            put(key, value)
        self.ops += len(items)

    def delete(self, key: bytes) -> None:
        self._wb.delete(key)
        self.ops += 1

    def __repr__(self) -> str:
        return f"<Batch {self.ops} op(s)>"


class HotStore:
    """A RocksDB database in raw (bytes) mode."""

    def __init__(self, path: Path, *, sync: bool = True) -> None:
        self.path = path
        opts = Options(raw_mode=True)
        opts.create_if_missing(True)
        try:
            self._db = Rdict(str(path), opts)
        except Exception as exc:  # rocksdict raises a bare Exception
            text = str(exc)
            if "lock hold by current process" in text:
                raise DataDirInUseError(
                    f"Data directory {path.parent} is already open in this process; "
                    "reuse that Engine or close it first"
                ) from None
            if "LOCK" in text or "lock" in text:
                raise DataDirInUseError(
                    f"Data directory {path.parent} is in use by another process"
                ) from None
            raise StorageCorruptionError(f"Cannot open hot store {path}: {text}") from None
        self._sync = WriteOptions()
        self._sync.sync = sync
        self.sync = sync
        self._closed = False

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("sync" if self.sync else "async")
        return f"<HotStore {self.path} {state}>"

    def get(self, key: bytes) -> bytes | None:
        return self._db.get(key)

    def commit(self, batch: Batch, *, sync: bool | None = None) -> None:
        if batch.ops == 0:
            return
        if sync is None or sync == self.sync:
            self._db.write(batch._wb, self._sync)
        else:
            opts = WriteOptions()
            opts.sync = sync
            self._db.write(batch._wb, opts)

    def scan(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        """All (key, value) pairs whose key starts with ``prefix``, in key order."""
        it = self._db.iter()
        it.seek(prefix)
        while it.valid():
            key = it.key()
            if not key.startswith(prefix):
                break
            yield key, it.value()
            it.next()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._db.close()
