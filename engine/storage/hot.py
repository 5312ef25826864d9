"""The hot store: the only module that imports ``rocksdict``.

One RocksDB per data directory holds rows, the catalog, manifests' hot copies
and sequence state, all under short key prefixes (see ``keys``). Every
statement commits through exactly one ``WriteBatch``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import suppress
from pathlib import Path
from typing import cast

import orjson
from rocksdict import DBRecoveryMode, Options, Rdict, ReadOptions, WriteBatch, WriteOptions

from engine.errors import DataDirInUseError, StorageCorruptionError
from engine.owner import in_use_message

# rocksdict's words for "this process already holds the LOCK file".
_LOCK_HELD_HERE = "lock hold by current process"


def _status(text: str) -> tuple[str, str]:
    """(RocksDB status code, rest) of an error message: RocksDB renders a
    ``Status`` as ``"<code>: <message>"`` (``"IO error: ..."``,
    ``"Corruption: ..."``); rocksdict passes that text on unchanged."""
    code, sep, rest = text.partition(": ")
    return (code, rest) if sep else ("", text)


def _held_elsewhere(text: str) -> bool:
    """Whether an open failed because another process holds the LOCK file: an
    ``IO error`` status from the lock step (a corruption status never is)."""
    code, rest = _status(text)
    return code == "IO error" and rest.startswith("While lock file")


def _lock_holder(lock_file: Path) -> int | None:
    """The pid holding a POSIX lock on ``lock_file`` (Linux ``/proc/locks``)."""
    try:
        inode = lock_file.stat().st_ino
        lines = Path("/proc/locks").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        fields = line.split()
        # "1: POSIX  ADVISORY  WRITE 4242 fd:00:1234567 0 EOF"
        if len(fields) >= 6 and fields[5].rsplit(":", 1)[-1] == str(inode):
            try:
                return int(fields[4])
            except ValueError:
                return None
    return None


# Written when the store opens, removed when it closes cleanly (a clean close
# flushes the memtable, so the log is empty then). It names the write-ahead
# logs of the open session: RocksDB does not notice a deleted log and would
# open without the writes it held, so after an unclean shutdown at least one
# log at or above the newest one named here must still exist.
OPEN_MARKER = "kalam-open.json"

# Values at least this big are kept in blob files (see ``HotStore``).
BLOB_MIN_BYTES = 64 * 1024
MEMTABLE_BYTES = 16 * 2**20
# A statement writing this many bytes of blob values flushes the memtable.
FLUSH_AFTER_BYTES = 4 * 2**20


def _log_number(name: str) -> int | None:
    stem, dot, ext = name.partition(".")
    return int(stem) if dot and ext == "log" and stem.isdigit() else None


def wal_files(path: Path) -> list[str]:
    """Names of the write-ahead log files in the store directory, oldest first."""
    if not path.is_dir():
        return []
    logs = [p.name for p in path.iterdir() if _log_number(p.name) is not None]
    return sorted(logs, key=lambda n: _log_number(n) or 0)


def prefix_end(prefix: bytes) -> bytes | None:
    """The smallest key above every key starting with ``prefix`` (None: no such key)."""
    head = prefix.rstrip(b"\xff")
    if not head:
        return None
    return head[:-1] + bytes([head[-1] + 1])


class Batch:
    """An atomic group of puts and deletes; nothing is visible until committed."""

    __slots__ = ("_wb", "big", "ops")

    def __init__(self) -> None:
        self._wb = WriteBatch(raw_mode=True)
        self.ops = 0
        self.big = 0  # bytes of values that go to blob files

    def put(self, key: bytes, value: bytes) -> None:
        self._wb.put(key, value)
        self.ops += 1
        if len(value) >= BLOB_MIN_BYTES:
            self.big += len(value)

    def put_many(self, items: list[tuple[bytes, bytes]]) -> None:
        put = self._wb.put
        for key, value in items:
            put(key, value)
            if len(value) >= BLOB_MIN_BYTES:
                self.big += len(value)
        self.ops += len(items)

    def delete(self, key: bytes) -> None:
        self._wb.delete(key)
        self.ops += 1

    def __repr__(self) -> str:
        return f"<Batch {self.ops} op(s)>"


class HotStore:
    """A RocksDB database in raw (bytes) mode.

    Damage is loud (invariant 5): the database is opened with paranoid checks,
    every read verifies block checksums, every iterator's status is checked
    when it stops, and any RocksDB error other than a held lock becomes a
    ``StorageCorruptionError`` naming the hot store directory. RocksDB's own
    message names the damaged file where it knows it (an SST, MANIFEST-*, ...).
    """

    def __init__(
        self, path: Path, *, sync: bool = True, create: bool = True, salvage_wal: bool = False
    ) -> None:
        self.path = path
        opts = Options(raw_mode=True)
        opts.create_if_missing(create)
        opts.set_paranoid_checks(True)
        # Large values (a bulk chunk: one statement's rows as Arrow IPC, MBs)
        # go to blob files, so the table files hold only small records. Inline,
        # a chunk shares a data block with its neighbours: looking up one
        # namespace record at open read (and checksummed) an 8 MB block per
        # table file, 0.45 s with 5M hot rows. Blob records carry their own
        # checksums, verified on read like blocks.
        opts.set_enable_blob_files(True)
        opts.set_min_blob_size(BLOB_MIN_BYTES)
        opts.set_enable_blob_gc(True)  # compaction moves live blobs out of mostly dead files
        # A smaller memtable than RocksDB's 64 MB: a bulk load moves to table
        # and blob files soon after it commits, so the memtable does not hold
        # a second copy of the rows the hot tier already holds, and an open
        # after a crash replays at most this much write-ahead log.
        opts.set_write_buffer_size(MEMTABLE_BYTES)
        opts.set_keep_log_file_num(4)  # RocksDB's info LOG of the last opens, not 1,000
        # RocksDB's default WAL replay stops quietly at the first damaged record,
        # losing every acknowledged write after it. Statements sync the WAL, so
        # a damaged record is damage, not a torn write: refuse to open. Only a
        # repair (``salvage_wal``) accepts losing the log from that point on
        # (or a missing log, see OPEN_MARKER).
        opts.set_wal_recovery_mode(
            DBRecoveryMode.point_in_time() if salvage_wal else DBRecoveryMode.absolute_consistency()
        )
        if not salvage_wal:
            self._check_logs()
        try:
            self._db = Rdict(str(path), opts)
        except Exception as exc:  # rocksdict raises a bare Exception
            text = str(exc)
            if _LOCK_HELD_HERE in text:
                raise DataDirInUseError(
                    f"Data directory {path.parent} is already open in this process; "
                    "reuse that Engine or close it first"
                ) from None
            if _held_elsewhere(text):
                message, fields = in_use_message(path.parent, _lock_holder(path / "LOCK"))
                raise DataDirInUseError(message, **fields) from None
            raise self._damaged("Cannot open", text) from None
        self._read = ReadOptions()
        self._read.set_verify_checksums(True)
        self._db.set_read_options(self._read)
        self._sync = WriteOptions()
        self._sync.sync = sync
        self.sync = sync
        self._closed = False
        try:
            self._write_marker()
        except BaseException:
            self._db.close()
            raise

    def _check_logs(self) -> None:
        marker = self.path / OPEN_MARKER
        try:
            raw = marker.read_bytes()
        except FileNotFoundError:
            return  # closed cleanly last time (or a fresh store)
        try:
            named = orjson.loads(raw)["logs"]
            newest = max((_log_number(n) or 0 for n in named), default=0)
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            raise StorageCorruptionError(
                f"Cannot open the hot store {self.path}: {marker} is damaged", file=str(marker)
            ) from None
        present = [_log_number(n) or 0 for n in wal_files(self.path)]
        if newest and not any(n >= newest for n in present):
            missing = self.path / f"{newest:06d}.log"
            raise StorageCorruptionError(
                f"Cannot open the hot store {self.path}: its write-ahead log {missing} is missing "
                "(the store was not closed cleanly, so the log held acknowledged writes). "
                "Restore it, or open with repair=True to continue without those writes",
                file=str(missing),
            )

    def _write_marker(self) -> None:
        data = orjson.dumps({"logs": wal_files(self.path)})
        tmp = self.path / f".{OPEN_MARKER}.tmp"
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path / OPEN_MARKER)

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("sync" if self.sync else "async")
        return f"<HotStore {self.path} {state}>"

    def _damaged(self, what: str, detail: str) -> StorageCorruptionError:
        return StorageCorruptionError(
            f"{what} the hot store {self.path}: it is damaged ({detail}). "
            "Restore it from a backup, or move it away and rebuild the catalog from the "
            "manifest.json files with Engine.open(..., repair=True) / `kalam repair` "
            "(rows not yet flushed are lost)",
            file=str(self.path),
        )

    def get(self, key: bytes) -> bytes | None:
        try:
            return self._db.get(key)
        except Exception as exc:  # rocksdict raises a bare Exception
            raise self._damaged("Cannot read from", str(exc)) from None

    def commit(self, batch: Batch, *, sync: bool | None = None) -> None:
        if batch.ops == 0:
            return
        if sync is None or sync == self.sync:
            opts = self._sync
        else:
            opts = WriteOptions()
            opts.sync = sync
        try:
            self._db.write(batch._wb, opts)
        except Exception as exc:  # paranoid checks turn the store read-only on damage
            raise self._damaged("Cannot write to", str(exc)) from None
        if batch.big >= FLUSH_AFTER_BYTES:
            # A bulk load: move the memtable to table and blob files in the
            # background now. The write is durable already (the log); this
            # frees the memtable's copy of the rows, and an open after a crash
            # need not replay it (RocksDB flushes a full memtable only at the
            # next write, which may never come). A failure here must not make
            # the committed statement look failed: the store reports it
            # (read-only) at the next write.
            with suppress(Exception):  # rocksdict raises a bare Exception
                self._db.flush(False)

    def scan(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        """All (key, value) pairs whose key starts with ``prefix``, in key order."""
        for key, value in self._iterate(prefix, None):
            yield key, cast(bytes, value)

    def scan_some(
        self, prefix: bytes, wanted: Callable[[bytes], bool]
    ) -> Iterator[tuple[bytes, bytes | None]]:
        """Like ``scan``, but a value is read only when ``wanted(key)``: the
        others come back as ``None`` (a bulk chunk is read later, on its own)."""
        return self._iterate(prefix, wanted)

    def _iterate(
        self, prefix: bytes, wanted: Callable[[bytes], bool] | None
    ) -> Iterator[tuple[bytes, bytes | None]]:
        """The scan behind ``scan`` / ``scan_some`` (``wanted`` None: every value).

        An iterator that stops because of an error looks exactly like one that
        reached the end, so its status is checked before the scan may end."""
        # ``bounded`` must outlive the iterator: RocksDB keeps a pointer to
        # the bound it holds (freed early, the bound reads as garbage).
        bounded = self._bounded(prefix)
        try:
            it = self._db.iter(bounded)
            it.seek(prefix)
            while it.valid():
                key = it.key()
                if not key.startswith(prefix):
                    break
                yield key, (it.value() if wanted is None or wanted(key) else None)
                it.next()
            it.status()  # raises when the iterator stopped on an error
            del it  # before its bound
        except Exception as exc:  # rocksdict raises a bare Exception
            raise self._damaged("Cannot read from", str(exc)) from None

    def _bounded(self, prefix: bytes) -> ReadOptions:
        """Read options for a scan of ``prefix``: checksums verified, and an
        upper bound at the prefix's end. Without the bound the iterator steps
        onto the first key past the prefix before the loop can stop, and
        stepping onto a key loads its value: after the namespace records
        comes a table's first bulk chunk (MBs from a blob file)."""
        end = prefix_end(prefix)
        if end is None:
            return self._read
        opts = ReadOptions()
        opts.set_verify_checksums(True)
        opts.set_iterate_upper_bound(end)
        return opts

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._db.close()
            (self.path / OPEN_MARKER).unlink(missing_ok=True)
