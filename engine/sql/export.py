"""EXPORT TABLE t TO 'path' [FORMAT parquet|delta]: a consistent snapshot
(hot and cold rows, as one SELECT sees them) with logical column names, for
a one-off hand-off to another tool.

A USER table exports the caller's own rows (the snapshot is a SELECT in the
caller's scope, so isolation holds). The destination must not exist yet and
must lie outside the data directory; it appears whole or not at all (written
under a temporary name in the same directory, then renamed).
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

from engine.errors import InvalidOptionError
from engine.result import Result
from engine.sql import statements as st
from engine.sql.tokens import StatementText

if TYPE_CHECKING:
    from engine.core import Database


def export_table(db: Database, s: st.ExportTable, params: dict[str, Any], user: str) -> Result:
    from engine.sql.parser import parse_one
    from engine.sql.select import run_select

    table = db.resolve(s.table)
    dest = _destination(db, s.path)
    query = parse_one(StatementText(f"SELECT * FROM {table.namespace}.{table.name}", 1, 1, 0))
    assert isinstance(query, st.Query)
    data = run_select(db, query, params, user).table
    assert data is not None
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
        message=f"Exported {data.num_rows} row(s) of {table.qualified_name} to {dest} ({s.format})",
        rows_affected=data.num_rows,
    )


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
