"""EXPORT TABLE t TO 'path' [FORMAT parquet|delta]: a consistent snapshot
(hot and cold rows, as one SELECT sees them) with logical column names, for
a one-off hand-off to another tool.

A USER table exports the caller's own rows (the snapshot is a SELECT in the
caller's scope, so isolation holds). The destination must not exist yet and
must lie outside the data directory; it appears whole or not at all (written
under a temporary name in the same directory, then renamed).

A destination ``s3://<bucket>/<key>`` writes into the bucket of a storage made
with CREATE STORAGE (its endpoint, region and credentials are used): Parquet
as one PUT, which is atomic; Delta through ``deltalake``, whose first commit
makes the table appear.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

from engine.errors import InvalidOptionError, ObjectStorageError
from engine.result import Result
from engine.sql import statements as st
from engine.sql.tokens import StatementText
from engine.storage.fs import ObjectPath, publish_bytes, reader_options, table_uri

if TYPE_CHECKING:
    from engine.core import Database


def export_table(db: Database, s: st.ExportTable, params: dict[str, Any], user: str) -> Result:
    table = db.resolve(s.table)
    if s.path.strip().lower().startswith("s3://"):
        remote = _bucket_destination(db, s.path.strip())
        data = _snapshot(db, table, params, user)
        if s.format == "delta":
            _write_delta_to_bucket(remote, data)
        else:
            sink = pa.BufferOutputStream()
            pq.write_table(data, sink, compression="zstd")
            publish_bytes(remote, sink.getvalue())
        return Result(
            message=f"Exported {data.num_rows:,} row(s) of {table.qualified_name} to {remote} "
            f"({s.format})",
            rows_affected=data.num_rows,
        )
    dest = _destination(db, s.path)
    data = _snapshot(db, table, params, user)
    temp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        if s.format == "delta":
            _write_delta(temp, data)
        else:
            pq.write_table(data, temp, compression="zstd")
        os.replace(temp, dest)
    finally:
        if temp.is_dir():
            shutil.rmtree(temp, ignore_errors=True)
        else:
            temp.unlink(missing_ok=True)
    return Result(
        message=f"Exported {data.num_rows:,} row(s) of {table.qualified_name} to {dest} ({s.format})",
        rows_affected=data.num_rows,
    )


def _snapshot(db: Database, table: Any, params: dict[str, Any], user: str) -> pa.Table:
    from engine.sql.parser import parse_one
    from engine.sql.select import run_select

    query = parse_one(StatementText(f"SELECT * FROM {table.namespace}.{table.name}", 1, 1, 0))
    assert isinstance(query, st.Query)
    data = run_select(db, query, params, user).table
    assert data is not None
    return data


def _bucket_destination(db: Database, uri: str) -> ObjectPath:
    """``s3://bucket/key`` in the bucket of a registered storage; must not exist."""
    bucket, _, key = uri[len("s3://") :].partition("/")
    key = key.strip("/")
    if not key or any(part in ("", ".", "..") for part in key.split("/")):
        raise InvalidOptionError(f"Cannot export to {uri}: give a key inside the bucket")
    storage = next((d for d in db.storages.all() if d.bucket == bucket), None)
    if storage is None:
        raise InvalidOptionError(
            f"Cannot export to {uri}: no storage uses bucket '{bucket}' "
            "(CREATE STORAGE ... WITH (bucket = ...) first; its endpoint and credentials are used)"
        )
    options = reader_options(endpoint=storage.endpoint, region=storage.region)
    dest = ObjectPath(
        db.storages.filesystem(storage.name), f"{bucket}/{key}", store=storage.name, options=options
    )
    if dest.exists():
        raise InvalidOptionError(f"Cannot export to {dest}: it already exists")
    return dest


def _write_delta_to_bucket(dest: ObjectPath, data: pa.Table) -> None:
    from deltalake import write_deltalake

    uri, options = table_uri(dest)
    try:
        write_deltalake(uri, data, mode="error", storage_options=options)
    except OSError as exc:
        raise ObjectStorageError(f"Export to {dest} failed: {exc}", object=str(dest)) from exc


def _destination(db: Database, path: str) -> Path:
    if not path.strip():
        raise InvalidOptionError("EXPORT TABLE needs a destination path")
    dest = Path(path).expanduser().resolve()
    if dest == db.data_dir or db.data_dir in dest.parents:
        raise InvalidOptionError(
            f"Cannot export into the data directory {db.data_dir}: pick a path outside it"
        )
    if dest.exists():
        raise InvalidOptionError(f"Cannot export to {dest}: it already exists")
    if not dest.parent.is_dir():
        raise InvalidOptionError(f"Cannot export to {dest}: directory {dest.parent} does not exist")
    return dest


def _write_delta(directory: Path, data: pa.Table) -> None:
    from deltalake import write_deltalake

    write_deltalake(str(directory), data, mode="error")
