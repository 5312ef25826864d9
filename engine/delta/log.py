"""The Delta Lake transaction log of one directory (``<dir>/_delta_log``).

Written by us, read by every Delta engine. A commit is one JSON-lines file
``_delta_log/<version, 20 digits>.json`` holding actions (``protocol``,
``metaData``, ``add``, ``remove``, ``commitInfo``). Publishing version N is
a put-if-absent of that file: two writers can never both own a version, and
a crash leaves the commit whole or absent (a temp file is written and
fsynced first, then hard-linked to the final name, which fails if it
exists). The protocol is reader 1 / writer 2: no column mapping, no
deletion vectors, nothing an older reader could misread.

Every file operation goes through ``LogFiles`` (list, read, put-if-absent),
so a different storage (an object store) plugs in by passing another
implementation; ``LocalLogFiles`` is the local-disk one.

``DeltaLog.snapshot()`` replays the log into a ``Snapshot``: the live files
(``add`` minus ``remove``), the schema, and the last ``commitInfo`` (ours
carry ``kalam.manifest_version``). A gap in the versions or a line that is
not JSON raises ``StorageCorruptionError`` naming the file.
"""

from __future__ import annotations

import os
import re
import secrets
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import orjson

from engine.errors import StorageCorruptionError
from engine.storage.fs import ColdPath

LOG_DIR = "_delta_log"
READER_VERSION = 1
WRITER_VERSION = 2
MANIFEST_VERSION_KEY = "kalam.manifest_version"
SCHEMA_VERSION_KEY = "kalam.schema_version"
TABLE_ID_KEY = "kalam.table_id"
_COMMIT = re.compile(r"([0-9]{20})\.json")


def commit_file_name(version: int) -> str:
    return f"{version:020d}.json"


class LogFiles(Protocol):
    """The file operations the log needs (local disk or an object store).

    Paths are ``Path`` for ``LocalLogFiles`` and ``engine.storage.fs.ObjectPath``
    for ``ObjectLogFiles``: typed ``Any`` here, each implementation takes its own."""

    def list_names(self, directory: Any) -> list[str]: ...

    def read(self, path: Any) -> bytes: ...

    def remove_temps(self, directory: Any) -> None: ...

    def put_if_absent(self, path: Any, data: bytes) -> bool:
        """Write ``data`` as ``path`` unless it exists; ``False`` if it did."""
        ...


class LocalLogFiles:
    """``LogFiles`` on local disk: durable, atomic put-if-absent via ``os.link``."""

    def __repr__(self) -> str:
        return "LocalLogFiles()"

    def list_names(self, directory: Path) -> list[str]:
        try:
            return os.listdir(directory)
        except FileNotFoundError:
            return []

    def read(self, path: Path) -> bytes:
        return path.read_bytes()

    def put_if_absent(self, path: Path, data: bytes) -> bool:
        path.parent.mkdir(parents=True, exist_ok=True)
        # A dot name no Delta reader parses as a commit; swept by the next commit.
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
        try:
            with open(tmp, "xb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            try:
                os.link(tmp, path)  # fails if the version exists: never overwritten
            except FileExistsError:
                return False
        finally:
            tmp.unlink(missing_ok=True)
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        return True

    def remove_temps(self, directory: Path) -> None:
        for name in self.list_names(directory):
            if name.startswith(".") and name.endswith(".tmp"):
                (directory / name).unlink(missing_ok=True)


@dataclass
class Snapshot:
    """The table a log describes as of ``version`` (-1: no commit yet)."""

    version: int = -1
    files: dict[str, dict[str, Any]] = field(default_factory=dict)  # path -> add action
    metadata: dict[str, Any] | None = None
    protocol: dict[str, Any] | None = None
    commit_info: dict[str, Any] | None = None  # of the last commit

    @property
    def manifest_version(self) -> int | None:
        value = (self.commit_info or {}).get(MANIFEST_VERSION_KEY)
        return value if isinstance(value, int) else None

    @property
    def schema_string(self) -> str | None:
        return None if self.metadata is None else self.metadata.get("schemaString")

    @property
    def rows(self) -> int:
        total = 0
        for add in self.files.values():
            stats = orjson.loads(add.get("stats") or "{}")
            total += int(stats.get("numRecords", 0))
        return total


class DeltaLog:
    """The log of one table directory; ``files`` does the I/O."""

    def __init__(self, directory: ColdPath, files: LogFiles | None = None) -> None:
        self.directory = directory
        self.log_dir = directory / LOG_DIR
        self.files: LogFiles = files or LocalLogFiles()
        self._cache: Snapshot | None = None

    def __repr__(self) -> str:
        return f"DeltaLog({str(self.directory)!r})"

    def forget(self) -> None:
        """Drop the cached snapshot (the log was removed or replaced)."""
        self._cache = None

    def versions(self) -> list[int]:
        found = []
        for name in self.files.list_names(self.log_dir):
            m = _COMMIT.fullmatch(name)
            if m:
                found.append(int(m.group(1)))
        return sorted(found)

    def snapshot(self) -> Snapshot:
        """Replay the log (from the cached snapshot when only newer commits exist)."""
        versions = self.versions()
        if versions and versions != list(range(versions[-1] + 1)):
            missing = sorted(set(range(versions[-1] + 1)) - set(versions))
            raise StorageCorruptionError(
                f"Delta log {self.log_dir} is missing commit(s) {missing[:5]}",
                file=str(self.log_dir),
            )
        snap = self._cache
        if snap is None or snap.version > (versions[-1] if versions else -1):
            snap = Snapshot()
        else:
            snap = Snapshot(
                snap.version, dict(snap.files), snap.metadata, snap.protocol, snap.commit_info
            )
        for version in versions[snap.version + 1 :]:
            self._apply(snap, version)
        self._cache = snap
        return Snapshot(
            snap.version, dict(snap.files), snap.metadata, snap.protocol, snap.commit_info
        )

    def _apply(self, snap: Snapshot, version: int) -> None:
        path = self.log_dir / commit_file_name(version)
        try:
            lines = self.files.read(path).splitlines()
            actions = [orjson.loads(line) for line in lines if line.strip()]
        except (OSError, orjson.JSONDecodeError) as exc:
            raise StorageCorruptionError(
                f"Delta commit {path} is unreadable: {exc}", file=str(path)
            ) from None
        snap.commit_info = None
        for action in actions:
            if "add" in action:
                snap.files[action["add"]["path"]] = action["add"]
            elif "remove" in action:
                snap.files.pop(action["remove"]["path"], None)
            elif "metaData" in action:
                snap.metadata = action["metaData"]
            elif "protocol" in action:
                snap.protocol = action["protocol"]
            elif "commitInfo" in action:
                snap.commit_info = action["commitInfo"]
        snap.version = version

    def commit(self, version: int, actions: list[dict[str, Any]]) -> None:
        """Publish ``actions`` as ``version``; refuses if that version exists."""
        data = b"".join(orjson.dumps(a) + b"\n" for a in actions)
        path = self.log_dir / commit_file_name(version)
        if not self.files.put_if_absent(path, data):
            raise StorageCorruptionError(
                f"Delta commit {path} already exists: another writer owns this table",
                file=str(path),
            )
        self.files.remove_temps(self.log_dir)  # of commits a crash interrupted


# --------------------------------------------------------------------------- actions


def protocol_action() -> dict[str, Any]:
    return {"protocol": {"minReaderVersion": READER_VERSION, "minWriterVersion": WRITER_VERSION}}


def metadata_action(
    schema: dict[str, Any], *, table_id: str | None, created_ms: int, name: str
) -> dict[str, Any]:
    return {
        "metaData": {
            "id": table_id or str(uuid.uuid4()),
            "name": name,
            "format": {"provider": "parquet", "options": {}},
            "schemaString": orjson.dumps(schema).decode(),
            "partitionColumns": [],
            "configuration": {},
            "createdTime": created_ms,
        }
    }


def add_action(path: str, *, size: int, modified_ms: int, stats: dict[str, Any]) -> dict[str, Any]:
    return {
        "add": {
            "path": path,
            "partitionValues": {},
            "size": size,
            "modificationTime": modified_ms,
            "dataChange": True,
            "stats": orjson.dumps(stats).decode(),
        }
    }


def remove_action(path: str, *, size: int | None, deleted_ms: int) -> dict[str, Any]:
    body: dict[str, Any] = {
        "path": path,
        "deletionTimestamp": deleted_ms,
        "dataChange": True,
        "extendedFileMetadata": True,
        "partitionValues": {},
    }
    if size is not None:
        body["size"] = size
    return {"remove": body}


def commit_info_action(
    operation: str,
    *,
    now_ms: int,
    manifest_version: int,
    schema_version: int,
    table_id: int | None = None,
) -> dict[str, Any]:
    return {
        "commitInfo": {
            "timestamp": now_ms,
            "operation": operation,
            "operationParameters": {},
            "engineInfo": "kalam",
            MANIFEST_VERSION_KEY: manifest_version,
            SCHEMA_VERSION_KEY: schema_version,
            **({TABLE_ID_KEY: table_id} if table_id is not None else {}),
        }
    }
