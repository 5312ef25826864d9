"""``RemoteEngine.insert_arrow``: an Arrow table into a served data directory.

The HTTP API has no bulk endpoint, so the data travels as parameterised
INSERTs of a bounded number of values each (values are never written into
the SQL text). A missing table is created first with the columns, types and
primary key the embedded ``insert_arrow`` would pick. Each INSERT is atomic;
a later chunk that fails leaves the earlier ones written, and the error says
how many rows went in.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pyarrow as pa

from engine.errors import KalamError, SchemaError
from engine.names import check_column
from engine.result import Result
from engine.sql.bulk import _guess_pk
from engine.types import canonical_from_arrow

if TYPE_CHECKING:
    from engine.remote import RemoteEngine

#: Values (rows x columns) per INSERT statement.
CHUNK_VALUES = 20_000


def insert_arrow(
    engine: RemoteEngine,
    target: str,
    data: pa.Table,
    *,
    user: str,
    primary_key: str | None,
    table_type: str,
) -> Result:
    ns, _, name = target.rpartition(".")
    found = engine.execute(
        "SELECT count(*) FROM system.tables WHERE namespace = :ns AND table_name = :t",
        {"ns": ns, "t": name},
        user=user,
    ).scalar()
    created = not found
    if created:
        engine.execute(_create_sql(target, data, primary_key, table_type), user=user)
    columns = [check_column(c) for c in data.column_names]
    total = data.num_rows
    per_chunk = max(1, CHUNK_VALUES // max(1, len(columns)))
    written = 0
    for offset in range(0, total, per_chunk):
        chunk = data.slice(offset, per_chunk)
        row = "(" + ", ".join("?" for _ in columns) + ")"
        sql = f"INSERT INTO {target} ({', '.join(columns)}) VALUES " + ", ".join(
            row for _ in range(chunk.num_rows)
        )
        values = [v for r in zip(*(c.to_pylist() for c in chunk.columns), strict=True) for v in r]
        try:
            engine.execute(sql, values, user=user)
        except KalamError as err:
            if not written:
                raise
            note = f" ({written} of {total} rows were written by earlier INSERTs)"
            raise type(err)(
                err.message + note, line=err.line, column=err.column, **err.fields
            ) from err
        written += chunk.num_rows
    message = f"Inserted {total:,} row(s)" + (f" into new table {target}" if created else "")
    return Result(message=message, rows_affected=total)


def _create_sql(target: str, data: pa.Table, primary_key: str | None, table_type: str) -> str:
    pk = primary_key or _guess_pk(data)
    if pk is None and table_type != "STREAM":
        raise SchemaError(
            f"Cannot create {target} from this data: no primary key. Pass primary_key=... "
            "(or add an 'id' column, or create the table first)"
        )
    if pk is not None and pk not in data.column_names:
        raise SchemaError(f"primary_key '{pk}' is not a column of the data")
    cols: list[str] = []
    for field in data.schema:
        ctype = canonical_from_arrow(field.type)
        cols.append(
            f"{check_column(field.name)} {ctype}" + (" PRIMARY KEY" if field.name == pk else "")
        )
    kind = _checked_type(table_type)
    return f"CREATE TABLE {target} ({', '.join(cols)}) WITH (TYPE = '{kind}')"


def _checked_type(table_type: Any) -> str:
    kind = str(table_type).upper()
    if kind not in ("USER", "SHARED", "STREAM"):
        raise SchemaError(f"table_type must be USER, SHARED or STREAM, not {table_type!r}")
    return kind
