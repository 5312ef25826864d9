"""A Delta Lake transaction log over files the engine already wrote.

The engine's manifest stays the only truth about cold data; this module
publishes the same set of files as a Delta table so that other engines can
read a scope directory. It writes the log itself (the Delta protocol's JSON
commit files under ``_delta_log/``), because the commit must carry schema
changes and name our own Parquet files with our statistics.

* A commit is ``_delta_log/<version, 20 digits>.json``, created with
  put-if-absent semantics (a hard link of a fully written temp file): two
  writers can never both create version N, and a reader never sees a torn
  commit.
* Each commit records ``kalam.manifest_version`` in its ``commitInfo``, so
  ``DeltaLog.state()`` tells which manifest version the Delta table matches.
* The schema is the table's logical schema; files may hold extra columns
  (``_seq``, ``_deleted``) that Delta readers never project.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from engine.errors import StorageCorruptionError
from engine.storage.cold import fsync_directory

if TYPE_CHECKING:
    from engine.catalog.model import TableDef

LOG_DIR = "_delta_log"

# Our column types as Delta primitive types.
_DELTA_TYPES = {
    "BOOLEAN": "boolean",
    "SMALLINT": "short",
    "INT": "integer",
    "BIGINT": "long",
    "FLOAT": "float",
    "DOUBLE": "double",
    "TEXT": "string",
    "TIMESTAMP": "timestamp_ntz",
    "DATE": "date",
    "BYTES": "binary",
}


def _delta_type(type_name: str) -> str:
    found = _DELTA_TYPES.get(type_name)
    if found is not None:
        return found
    if type_name.startswith("DECIMAL"):
        return type_name.lower().replace(" ", "")  # decimal(p,s)
    raise ValueError(f"no Delta type for {type_name}")


def delta_schema(table: TableDef) -> dict[str, Any]:
    """The table's logical schema as a Delta ``schemaString`` object."""
    return {
        "type": "struct",
        "fields": [
            {
                "name": c.name,
                "type": _delta_type(c.type),
                "nullable": bool(c.nullable),
                "metadata": {},
            }
            for c in table.columns
        ],
    }


def _protocol(schema: dict[str, Any]) -> dict[str, Any]:
    if any(f["type"] == "timestamp_ntz" for f in schema["fields"]):
        return {
            "minReaderVersion": 3,
            "minWriterVersion": 7,
            "readerFeatures": ["timestampNtz"],
            "writerFeatures": ["timestampNtz"],
        }
    return {"minReaderVersion": 1, "minWriterVersion": 2}


@dataclass(frozen=True)
class DeltaFile:
    """One data file as the Delta log names it."""

    path: str  # relative to the table directory
    size: int
    rows: int
    modification_time: int  # ms since epoch
    stats: dict[str, Any] = field(default_factory=dict)  # minValues / maxValues / nullCount


@dataclass
class DeltaState:
    version: int = -1  # -1: no log yet
    files: dict[str, DeltaFile] = field(default_factory=dict)
    schema: dict[str, Any] | None = None
    protocol: dict[str, Any] | None = None
    table_id: str | None = None
    manifest_version: int | None = None


class DeltaLog:
    """The ``_delta_log`` of one scope directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.log_dir = directory / LOG_DIR

    def __repr__(self) -> str:
        return f"<DeltaLog {str(self.log_dir)!r}>"

    def commit_path(self, version: int) -> Path:
        return self.log_dir / f"{version:020d}.json"

    def versions(self) -> list[int]:
        if not self.log_dir.is_dir():
            return []
        out = []
        for p in self.log_dir.iterdir():
            stem, dot, ext = p.name.partition(".")
            if ext == "json" and dot and stem.isdigit() and len(stem) == 20:
                out.append(int(stem))
        return sorted(out)

    def state(self) -> DeltaState:
        """Replay the log (we never write checkpoints, so JSON commits are complete)."""
        st = DeltaState()
        for version in self.versions():
            path = self.commit_path(version)
            try:
                lines = path.read_bytes().splitlines()
                actions = [orjson.loads(line) for line in lines if line.strip()]
            except (OSError, orjson.JSONDecodeError) as exc:
                raise StorageCorruptionError(
                    f"Delta log file {path} is damaged: {exc}", file=str(path)
                ) from None
            for action in actions:
                _apply(st, action, path)
            st.version = version
        return st

    def commit(
        self,
        table: TableDef,
        files: list[DeltaFile],
        *,
        manifest_version: int,
        operation: str,
        now_ms: int,
    ) -> int | None:
        """Publish ``files`` as the table's whole content; returns the new
        version, or ``None`` when the log already says exactly that."""
        st = self.state()
        schema = delta_schema(table)
        wanted = {f.path: f for f in files}
        adds = [f for p, f in sorted(wanted.items()) if p not in st.files]
        removes = [p for p in sorted(st.files) if p not in wanted]
        schema_changed = st.schema != schema
        if not adds and not removes and not schema_changed:
            return None
        actions: list[dict[str, Any]] = [
            {
                "commitInfo": {
                    "timestamp": now_ms,
                    "operation": operation,
                    "operationParameters": {},
                    "engineInfo": "kalam",
                    "kalam.manifest_version": manifest_version,
                    "kalam.table_id": table.table_id,
                }
            }
        ]
        protocol = _protocol(schema)
        if st.protocol is None or _newer(protocol, st.protocol):
            actions.append({"protocol": protocol})
        if schema_changed:
            actions.append(
                {
                    "metaData": {
                        "id": st.table_id or str(uuid.uuid4()),
                        "name": table.name,
                        "format": {"provider": "parquet", "options": {}},
                        "schemaString": orjson.dumps(schema).decode(),
                        "partitionColumns": [],
                        "configuration": {},
                        "createdTime": now_ms,
                    }
                }
            )
        for p in removes:
            actions.append(
                {
                    "remove": {
                        "path": p,
                        "deletionTimestamp": now_ms,
                        "dataChange": True,
                        "extendedFileMetadata": True,
                        "partitionValues": {},
                        "size": st.files[p].size,
                    }
                }
            )
        for f in adds:
            stats = {"numRecords": f.rows, **f.stats}
            actions.append(
                {
                    "add": {
                        "path": f.path,
                        "partitionValues": {},
                        "size": f.size,
                        "modificationTime": f.modification_time,
                        "dataChange": True,
                        "stats": orjson.dumps(stats).decode(),
                    }
                }
            )
        version = st.version + 1
        self._put_if_absent(version, b"\n".join(orjson.dumps(a) for a in actions) + b"\n")
        return version

    def _put_if_absent(self, version: int, body: bytes) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        final = self.commit_path(version)
        temp = self.log_dir / f".{final.name}.{uuid.uuid4().hex[:12]}.tmp"
        with open(temp, "wb") as fh:
            fh.write(body)
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(temp, final)  # fails if the version exists: never overwritten
        except FileExistsError:
            raise StorageCorruptionError(
                f"Delta log version {version} already exists in {self.log_dir}: "
                "another writer committed to this table",
                file=str(final),
            ) from None
        finally:
            temp.unlink(missing_ok=True)
        fsync_directory(self.log_dir)


def _newer(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return (a["minReaderVersion"], a["minWriterVersion"]) > (
        b["minReaderVersion"],
        b["minWriterVersion"],
    )


def _apply(st: DeltaState, action: dict[str, Any], path: Path) -> None:
    try:
        if "add" in action:
            a = action["add"]
            stats = orjson.loads(a["stats"]) if a.get("stats") else {}
            st.files[a["path"]] = DeltaFile(
                a["path"],
                int(a["size"]),
                int(stats.get("numRecords", 0)),
                int(a.get("modificationTime", 0)),
                {k: v for k, v in stats.items() if k != "numRecords"},
            )
        elif "remove" in action:
            st.files.pop(action["remove"]["path"], None)
        elif "metaData" in action:
            st.schema = orjson.loads(action["metaData"]["schemaString"])
            st.table_id = action["metaData"]["id"]
        elif "protocol" in action:
            st.protocol = action["protocol"]
        elif "commitInfo" in action:
            mv = action["commitInfo"].get("kalam.manifest_version")
            st.manifest_version = int(mv) if mv is not None else st.manifest_version
    except (KeyError, TypeError, ValueError, orjson.JSONDecodeError) as exc:
        raise StorageCorruptionError(
            f"Delta log file {path} holds a damaged action: {exc}", file=str(path)
        ) from None
