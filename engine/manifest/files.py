"""The cold copy of a manifest and orphan files.

On-disk format of a scope's cold copy (local disk)
    ``manifest.json``   a checkpoint: one whole manifest (``model.encode``,
                        pretty, with its ``checksum``), replaced atomically
                        (temp file, fsync, ``os.replace``, fsync directory).
    ``manifest.jsonl``  the change log since that checkpoint, one JSON object
                        per line, each with a ``checksum`` (SHA-256 of its
                        other keys, sorted). The first line names the
                        checkpoint it follows: ``{"checkpoint": V,
                        "checkpoint_checksum": <manifest.json's checksum>,
                        "file": [inode, size, mtime_ns]}``. Every later line
                        is a ``model.Change`` from ``base`` to ``version``
                        (segments added / removed by id, delete markers added
                        / removed, watermark, ``last_segment_id``,
                        ``updated_at``, the table definition when it changed).

The manifest is the checkpoint with the log's changes applied in order
(``read_manifest_json``). A flush appends one line and fsyncs the log
(``commit_manifest_json``), so its cost does not grow with the number of
segments. The writer *folds* (a new checkpoint, then a fresh log holding only
its first line, each written atomically) when the log is larger than the
checkpoint and ``FOLD_BYTES``, or when the log is not the one to append to:
it follows another checkpoint file (``file`` differs: a crashed fold, a
copied directory) or does not end at the version the writer started from (a
writer that crashed after appending, before the authoritative hot copy
committed).

Crash safety: an appended line counts only once it is whole. A torn last line
(no final newline, as a crash mid-append leaves) is not committed: readers
ignore it and the next append cuts it off. Any *complete* line that does not
verify is damage: ``StorageCorruptionError`` naming ``manifest.jsonl`` and
the line. A log whose first line names another checkpoint (by checksum) is
the log of an older checkpoint left by a fold that crashed before replacing
it: every change in it is in the checkpoint, and readers ignore it.

In a bucket (``ObjectPath``) there is no append: every commit writes the whole
``manifest.json`` in one PUT (atomic there) and no log is kept.

``find_orphans`` lists files in a scope directory the manifest does not
account for: temp files (``.<name>.<hex>.tmp``) and ``batch-*.parquet`` not
named by the manifest (left by a flush that crashed before its manifest
write). Readers never look at them; ``remove_orphans`` deletes them and must
run while no flush of that scope is in progress (a running flush's temp and
not-yet-published segment look exactly like orphans).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import orjson

from engine.errors import StorageCorruptionError
from engine.manifest.model import (
    Change,
    Manifest,
    Replay,
    decode_checked,
    diff,
    encode_checked,
    record_digest,
)
from engine.storage.cold import TEMP_SUFFIX, parse_segment_file_name
from engine.storage.fs import ColdPath, publish_bytes

MANIFEST_FILE = "manifest.json"
LOG_FILE = "manifest.jsonl"
# Fold the log into a new checkpoint once it is larger than FOLD_FACTOR times
# the checkpoint and than FOLD_BYTES: replaying it then costs about as much as
# reading the checkpoint, and folds (O(segments)) come once per O(segments)
# appends, so a flush's amortised cost stays independent of the segment count.
FOLD_BYTES = 256 * 1024
FOLD_FACTOR = 1.0
_TAIL = 64 * 1024  # bytes read from the log's end to find its last line
CrashHook = Callable[[str], None]


def manifest_path(directory: ColdPath) -> ColdPath:
    return directory / MANIFEST_FILE


def log_path(directory: ColdPath) -> ColdPath:
    return directory / LOG_FILE


def manifest_files(directory: ColdPath) -> list[ColdPath]:
    """The files of a scope's cold manifest (checkpoint and log)."""
    return [manifest_path(directory), log_path(directory)]


# --------------------------------------------------------------------------- lines


def _line(d: dict[str, object]) -> bytes:
    d = {**d, "checksum": record_digest(d)}
    return orjson.dumps(d) + b"\n"


def _parse_line(raw: bytes, path: ColdPath, number: int) -> dict[str, object]:
    where = f"{path} line {number}"
    try:
        d = orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise StorageCorruptionError(
            f"Corrupt manifest log {where}: not valid JSON ({e})", file=str(path)
        ) from None
    if not isinstance(d, dict) or not isinstance(d.get("checksum"), str):
        raise StorageCorruptionError(
            f"Corrupt manifest log {where}: not a checksummed record", file=str(path)
        )
    checksum = d.pop("checksum")
    if checksum != record_digest(d):
        raise StorageCorruptionError(
            f"Corrupt manifest log {where}: checksum mismatch", file=str(path)
        )
    return d


_FIRST_KEYS = {"checkpoint", "checkpoint_checksum", "file"}


def _first_line(d: dict[str, object], path: ColdPath) -> dict[str, object]:
    if set(d) != _FIRST_KEYS or type(d["checkpoint"]) is not int:
        raise StorageCorruptionError(
            f"Corrupt manifest log {path} line 1: it does not name its checkpoint",
            file=str(path),
        )
    return d


def _complete_lines(data: bytes) -> list[bytes]:
    """The whole lines of a log; a torn last line (no newline) is not committed."""
    return data.split(b"\n")[:-1]  # what follows the last newline is empty or torn


def _identity(path: Path) -> list[int]:
    """What tells the writer that ``manifest.json`` is still the file a log's
    first line names, without reading it (a copied directory just folds)."""
    st = path.stat()
    return [st.st_ino, st.st_size, st.st_mtime_ns]


# --------------------------------------------------------------------------- reading


def read_manifest_json(path: ColdPath) -> Manifest:
    """The manifest of ``path`` (a ``manifest.json``): the checkpoint with its
    log replayed. Damage to either raises ``StorageCorruptionError`` naming
    the damaged file."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise StorageCorruptionError(f"Manifest file {path} is missing", file=str(path)) from None
    manifest, checksum = decode_checked(data, source=str(path))
    log = path.parent / LOG_FILE
    if not isinstance(log, Path):
        return manifest  # buckets keep no log
    try:
        raw = log.read_bytes()
    except FileNotFoundError:
        return manifest
    return _replay(manifest, checksum, raw, log)


def _replay(manifest: Manifest, checksum: str | None, raw: bytes, log: ColdPath) -> Manifest:
    lines = _complete_lines(raw)
    if not lines:
        return manifest  # empty, or only a torn first line: nothing was committed to it
    first = _first_line(_parse_line(lines[0], log, 1), log)
    if first["checkpoint_checksum"] != checksum or first["checkpoint"] != manifest.version:
        # The log of an older checkpoint: a fold wrote the new checkpoint and
        # crashed before replacing the log. Its changes are all in the checkpoint.
        return manifest
    replay = Replay(manifest)
    for number, line in enumerate(lines[1:], start=2):
        d = _parse_line(line, log, number)
        try:
            change = Change.from_dict(d, source=f"{log} line {number}")
        except StorageCorruptionError as exc:  # the file is the log, whatever the line
            raise StorageCorruptionError(exc.message, file=str(log)) from None
        try:
            replay.add(change)
        except ValueError as exc:
            raise StorageCorruptionError(
                f"Corrupt manifest log {log} line {number}: {exc}", file=str(log)
            ) from None
    if replay.version != manifest.version:
        manifest = replay.result()
        problem = manifest.problem()
        if problem:
            raise StorageCorruptionError(f"Corrupt manifest log {log}: {problem}", file=str(log))
    return manifest


def find_manifest_json(directory: ColdPath) -> Manifest | None:
    """The scope's cold manifest, or ``None`` if it has never been written."""
    path = manifest_path(directory)
    if not path.exists():
        return None
    return read_manifest_json(path)


# --------------------------------------------------------------------------- writing


def write_manifest_json(
    directory: ColdPath, manifest: Manifest, *, crash: CrashHook | None = None
) -> ColdPath:
    """Write ``manifest`` whole (a fold): a new checkpoint, then a fresh log
    that follows it. Returns the checkpoint's path. ``crash`` is a test hook
    called with the name of each step (``manifest_checkpoint_written``)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = manifest_path(directory)
    data, checksum = encode_checked(manifest, pretty=True)
    publish_bytes(path, data)
    if isinstance(path, Path):
        if crash is not None:
            crash("manifest_checkpoint_written")
        # A crash here leaves the old log next to the new checkpoint: its first
        # line names another checkpoint, so readers and writers ignore it.
        first = {
            "checkpoint": manifest.version,
            "checkpoint_checksum": checksum,
            "file": _identity(path),
        }
        publish_bytes(log_path(directory), _line(first))
    return path


def commit_manifest_json(
    directory: ColdPath,
    old: Manifest | None,
    new: Manifest,
    *,
    crash: CrashHook | None = None,
) -> ColdPath:
    """Record ``new``, the next version after ``old`` (what the writer read
    from the authoritative hot copy): one appended, fsync'd log line when the
    log follows the checkpoint on disk and ends at ``old``; otherwise (and
    once the log outgrows the checkpoint) a fold, ``write_manifest_json``.
    ``crash``: a test hook, called with each step's name."""
    if old is None or old.version == 0 or not isinstance(directory, Path):
        return write_manifest_json(directory, new, crash=crash)
    change = diff(old, new)
    path, log = directory / MANIFEST_FILE, directory / LOG_FILE
    try:
        size = log.stat().st_size
        identity = _identity(path)
    except FileNotFoundError:
        return write_manifest_json(directory, new, crash=crash)
    if change is None or size > max(FOLD_BYTES, FOLD_FACTOR * identity[1]):
        return write_manifest_json(directory, new, crash=crash)
    good = _appendable(log, size, identity, old.version)
    if good is None:
        return write_manifest_json(directory, new, crash=crash)
    _append(log, good, size, _line(change.to_dict()), crash)
    return path


def _appendable(log: Path, size: int, identity: list[int], version: int) -> int | None:
    """The length of the log's whole lines when it follows the checkpoint
    whose file is ``identity`` and ends at ``version``; else ``None``."""
    with open(log, "rb") as f:
        head = f.read(min(size, 4096))
        end = head.find(b"\n")
        if end < 0:
            return None
        try:
            first = _first_line(_parse_line(head[:end], log, 1), log)
        except StorageCorruptionError:
            return None
        if first["file"] != identity:
            return None
        start = max(0, size - _TAIL)
        f.seek(start)
        data = f.read()
        good = data.rfind(b"\n")
        prev = data.rfind(b"\n", 0, good) if good >= 0 else -1
        if prev < 0 and start > 0:  # the last line is longer than the window
            f.seek(0)
            data, start = f.read(), 0
            good = data.rfind(b"\n")
            prev = data.rfind(b"\n", 0, good) if good >= 0 else -1
    if good < 0:
        return None
    if start + good == end:  # only the first line: the log ends at its checkpoint
        last = first["checkpoint"]
    else:
        try:  # its checksum verified; its version is all the writer needs
            last = _parse_line(data[prev + 1 : good], log, 0).get("version")
        except StorageCorruptionError:
            return None
    return start + good + 1 if type(last) is int and last == version else None


def _append(log: Path, good: int, size: int, line: bytes, crash: CrashHook | None) -> None:
    fd = os.open(log, os.O_WRONLY)
    try:
        if good != size:
            os.ftruncate(fd, good)  # cut a torn last line off: it was never committed
        os.lseek(fd, good, os.SEEK_SET)
        if crash is None:
            _write_all(fd, line)
        else:  # tests: die with half the line written, as a torn append leaves it
            _write_all(fd, line[: len(line) // 2])
            crash("manifest_log_half_written")
            _write_all(fd, line[len(line) // 2 :])
        os.fsync(fd)
    finally:
        os.close(fd)
    if crash is not None:
        crash("manifest_log_appended")


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


# --------------------------------------------------------------------------- orphans


def _is_temp(name: str) -> bool:
    return name.startswith(".") and name.endswith(TEMP_SUFFIX)


def find_orphans(directory: ColdPath, manifest: Manifest | None) -> list[ColdPath]:
    """Temp files and unnamed segment files in ``directory``, sorted by name."""
    if not directory.is_dir():
        return []
    named = {s.path for s in manifest.segments} if manifest else set()
    out: list[ColdPath] = []
    for p in directory.iterdir():
        name = p.name
        # Names first: a stat per file (``is_file``) only for candidates.
        if (
            _is_temp(name) or (parse_segment_file_name(name) is not None and name not in named)
        ) and p.is_file():
            out.append(p)
    return sorted(out)


def remove_orphans(directory: ColdPath, manifest: Manifest | None) -> list[ColdPath]:
    """Delete ``find_orphans``; returns what was removed. Not concurrent with a flush."""
    removed = []
    for p in find_orphans(directory, manifest):
        p.unlink(missing_ok=True)
        removed.append(p)
    return removed
