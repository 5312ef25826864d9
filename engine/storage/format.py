"""The data-directory format version: which on-disk layout a directory holds,
checked when it opens so an engine never misreads a layout it does not know.

The version is one integer for the whole directory, recorded twice:

* ``<data_dir>/kalam-format.json`` (``{"format_version": N, ...}``, written
  atomically), read before the hot store is opened, so a directory in a newer
  format is refused without touching a single file, and a tool can read the
  version without RocksDB;
* the hot store key ``Sformat`` (8-byte big-endian), so the version travels
  with the catalog it describes.

The file is the gate: a newer version found only in the hot store is
refused too, but after RocksDB has opened the store (which writes its own
log files), so a later format must write the file first, as this one does.
The directory's version is the higher of the two (a crash between the two
writes, or a hot store rebuilt by a repair, leaves one behind; the open
brings it up to date, so nothing ever lowers the version).

History
    1. Before versioning: nothing recorded. A bulk DELETE wrote one tombstone
       per row; a scope's manifest was one ``manifest.json`` rewritten whole;
       its hot copy was one ``M`` record.
    2. A bulk DELETE's tombstones are one chunk record marked ``kalam.deleted``
       in its Arrow schema metadata (an engine of format 1 reads it as live
       rows); ``manifest.json`` is a checkpoint plus a change log,
       ``manifest.jsonl`` (format 1 reads only the checkpoint); the hot copy
       of a manifest is a header plus one key per segment.

Upgrading 1 -> 2 rewrites nothing: this engine reads every format-1
structure as it is (a lone ``manifest.json`` is a checkpoint with an empty
log, a whole ``M`` record still loads, per-row tombstones are rows), and each
is written in the format-2 form by its next change. The upgrade only records
the version (the file first, then the key). Engines of format 1 predate the
check and cannot be stopped; every engine from format 2 on refuses a
directory in a format newer than it reads.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import orjson

from engine.errors import DataFormatTooNewError, StorageCorruptionError
from engine.storage import keys
from engine.storage.fs import TEMP_SUFFIX, fsync_directory, temp_path_for
from engine.storage.hot import Batch, HotStore
from engine.version import __version__

FORMAT_VERSION = 2  # the layout this engine writes, and the newest it reads
UNVERSIONED = 1  # what a directory with no version recorded holds
FORMAT_FILE = "kalam-format.json"

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DataFormat:
    """A directory's format after the open: ``found`` is what it recorded
    before (``None``: a new directory); ``actions`` what the open recorded."""

    version: int
    found: int | None
    actions: tuple[str, ...] = ()

    @property
    def upgraded(self) -> bool:
        return self.found is not None and self.found < self.version


def read_format_file(data_dir: Path) -> int | None:
    """The version ``kalam-format.json`` records (``None``: no such file).
    A damaged file is a ``StorageCorruptionError`` naming it."""
    path = data_dir / FORMAT_FILE
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    try:
        version = orjson.loads(raw)["format_version"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        version = None
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise StorageCorruptionError(
            f"The data-format file {path} is damaged (expected "
            '{"format_version": <a whole number >= 1>}). Restore it from a backup, or '
            "open with repair=True (`kalam repair`) to record this engine's version again",
            file=str(path),
        )
    return version


def check_before_open(data_dir: Path, *, repair: bool = False) -> int | None:
    """The version the file records, checked before anything else is opened:
    a newer one raises ``DataFormatTooNewError`` (nothing has been touched).
    With ``repair``, a damaged file counts as missing (the open rewrites it
    from the hot store's record)."""
    try:
        found = read_format_file(data_dir)
    except StorageCorruptionError:
        if not repair:
            raise
        return None
    if found is not None and found > FORMAT_VERSION:
        raise too_new(data_dir, found)
    return found


def too_new(data_dir: Path, found: int) -> DataFormatTooNewError:
    return DataFormatTooNewError(
        f"Data directory {data_dir} is in data format version {found}, but this engine "
        f"(kalam {__version__}) reads versions up to {FORMAT_VERSION}. Open it with a newer "
        "Kalam; nothing in the directory was changed",
        data_dir=str(data_dir),
        found=found,
        supported=FORMAT_VERSION,
    )


def _no_crash(step: str) -> None:
    pass


def settle(
    store: HotStore,
    data_dir: Path,
    file_version: int | None,
    *,
    crash: Callable[[str], None] = _no_crash,
) -> DataFormat:
    """Check the hot store's record against ``file_version`` (from
    ``check_before_open``) and record ``FORMAT_VERSION`` where it is missing
    or older: the file first, then the key. Idempotent, and a crash between
    any two steps leaves a directory the next open settles the same way
    (``crash(step)`` is called after each step, for tests)."""
    key_version = keys.decode_int(store.get(keys.FORMAT_KEY), what="data format version") or None
    recorded = max((v for v in (file_version, key_version) if v is not None), default=None)
    if recorded is not None and recorded > FORMAT_VERSION:
        raise too_new(data_dir, recorded)
    found = recorded if recorded is not None else (UNVERSIONED if _has_catalog(store) else None)
    actions: list[str] = []
    if file_version != FORMAT_VERSION:
        _write_file(data_dir, crash)
        crash("file_written")
    if key_version != FORMAT_VERSION:
        batch = Batch()
        batch.put(keys.FORMAT_KEY, keys.encode_int(FORMAT_VERSION))
        store.commit(batch, sync=True)
        crash("key_committed")
    if found is not None and found < FORMAT_VERSION:
        actions.append(
            f"Upgraded data directory {data_dir} from data format {found}"
            f"{' (no version recorded)' if recorded is None else ''} to {FORMAT_VERSION}: "
            "recorded the version; no file was rewritten (each part is written in the new "
            "format by its next change)"
        )
    elif found is not None and (file_version, key_version) != (FORMAT_VERSION, FORMAT_VERSION):
        where = FORMAT_FILE if file_version != FORMAT_VERSION else "the hot store"
        actions.append(f"Recorded data format {FORMAT_VERSION} again in {where}")
    for action in actions:
        _log.info("%s", action)
    return DataFormat(FORMAT_VERSION, found, tuple(actions))


def _has_catalog(store: HotStore) -> bool:
    """Whether the store holds a catalog (every opened directory has at least
    its ``default`` namespace): an unversioned one is format 1, not new."""
    for _ in store.scan(b"N"):  # the scan is closed (and its iterator freed) on return
        return True
    return False


def _write_file(data_dir: Path, crash: Callable[[str], None]) -> None:
    """Write the file atomically (temp, fsync, replace, fsync the directory),
    removing temp files an earlier crash left behind."""
    path = data_dir / FORMAT_FILE
    for stale in data_dir.glob(f".{FORMAT_FILE}.*{TEMP_SUFFIX}"):
        stale.unlink(missing_ok=True)
    data = orjson.dumps(
        {"format_version": FORMAT_VERSION, "written_by": f"kalam {__version__}"},
        option=orjson.OPT_INDENT_2,
    )
    tmp = temp_path_for(path)
    with open(tmp, "xb") as f:
        f.write(data + b"\n")
        f.flush()
        os.fsync(f.fileno())
    crash("file_temp_written")
    os.replace(tmp, path)
    fsync_directory(data_dir)
