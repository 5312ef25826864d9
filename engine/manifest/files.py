"""The cold copy of a manifest (``<scope dir>/manifest.json``) and orphan files.

``write_manifest_json`` is the only writer and is atomic (temp file, fsync,
``os.replace``, fsync directory; in a bucket one PUT, atomic there): a crash
leaves the previous manifest or the new one, never a torn file. Every path
here is a cold location (``engine.storage.fs``): local disk or a bucket. ``read_manifest_json`` raises
``StorageCorruptionError`` naming the file when it is missing or damaged;
``find_manifest_json`` returns ``None`` for a scope that never flushed.

``find_orphans`` lists files in a scope directory the manifest does not
account for: temp files (``.<name>.<hex>.tmp``) and ``batch-*.parquet`` not
named by the manifest (left by a flush that crashed before its manifest
write). Readers never look at them; ``remove_orphans`` deletes them and must
run while no flush of that scope is in progress (a running flush's temp and
not-yet-published segment look exactly like orphans).
"""

from __future__ import annotations

from engine.errors import StorageCorruptionError
from engine.manifest.model import Manifest, decode, encode
from engine.storage.cold import TEMP_SUFFIX, parse_segment_file_name
from engine.storage.fs import ColdPath, publish_bytes

MANIFEST_FILE = "manifest.json"


def manifest_path(directory: ColdPath) -> ColdPath:
    return directory / MANIFEST_FILE


def write_manifest_json(directory: ColdPath, manifest: Manifest) -> ColdPath:
    """Atomically replace ``<directory>/manifest.json``; returns its path."""
    directory.mkdir(parents=True, exist_ok=True)
    path = manifest_path(directory)
    publish_bytes(path, encode(manifest, pretty=True))
    return path


def read_manifest_json(path: ColdPath) -> Manifest:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise StorageCorruptionError(f"Manifest file {path} is missing", file=str(path)) from None
    return decode(data, source=str(path))


def find_manifest_json(directory: ColdPath) -> Manifest | None:
    """The scope's cold manifest, or ``None`` if it has never been written."""
    path = manifest_path(directory)
    if not path.exists():
        return None
    return read_manifest_json(path)


def _is_temp(name: str) -> bool:
    return name.startswith(".") and name.endswith(TEMP_SUFFIX)


def find_orphans(directory: ColdPath, manifest: Manifest | None) -> list[ColdPath]:
    """Temp files and unnamed segment files in ``directory``, sorted by name."""
    if not directory.is_dir():
        return []
    named = {s.path for s in manifest.segments} if manifest else set()
    out: list[ColdPath] = []
    for p in directory.iterdir():
        if not p.is_file():
            continue
        if _is_temp(p.name) or (
            parse_segment_file_name(p.name) is not None and p.name not in named
        ):
            out.append(p)
    return sorted(out)


def remove_orphans(directory: ColdPath, manifest: Manifest | None) -> list[ColdPath]:
    """Delete ``find_orphans``; returns what was removed. Not concurrent with a flush."""
    removed = []
    for p in find_orphans(directory, manifest):
        p.unlink(missing_ok=True)
        removed.append(p)
    return removed
