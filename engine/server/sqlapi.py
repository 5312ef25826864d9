"""``POST /v1/api/sql`` without the HTTP: run a request's statements on a
connection and turn the outcome into KalamDB's response documents.

Success: ``{"status": "success", "results": [...], "took": ms}``, one result
per statement: ``schema`` (name, data_type, index, flags), ``rows`` (queries
only; Int64 values as JSON strings, timestamps as microseconds since the
epoch), ``row_count``, ``message`` (statements that are not queries) and
``as_user``. Error: ``{"status": "error", "results": [], "took": ms,
"error": {"code", "message", "details"}}`` with the HTTP status of
``ERROR_STATUS``. ``details`` carries the engine's own error code (and the
line/column when known) so clients can raise the same ``KalamError``.

Everything here blocks; the HTTP layer calls it from a worker thread.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import orjson
import pyarrow as pa
import pyarrow.compute as pc

import engine.errors as errors
from engine.names import check_namespace
from engine.result import Result
from engine.sql import parser
from engine.sql import statements as st

if TYPE_CHECKING:
    from engine.api import Connection

ARROW_STREAM = "application/vnd.apache.arrow.stream"

# KalamDB's error codes for the engine's errors (anything else keeps its own).
_CODES: dict[type[errors.KalamError], str] = {
    errors.SqlParseError: "INVALID_SQL",
    errors.UnsupportedStatementError: "INVALID_SQL",
    errors.StatementTooComplexError: "INVALID_SQL",
    errors.TableNotFoundError: "TABLE_NOT_FOUND",
    errors.NamespaceNotFoundError: "NAMESPACE_NOT_FOUND",
    errors.PermissionDeniedError: "PERMISSION_DENIED",
    errors.ReadOnlyError: "PERMISSION_DENIED",
    errors.ParameterError: "INVALID_PARAMETER",
    errors.InvalidNameError: "INVALID_PARAMETER",
    errors.AuthenticationError: "AUTHENTICATION_FAILED",
    errors.EngineClosedError: "SERVICE_UNAVAILABLE",
    errors.InternalError: "INTERNAL_ERROR",
}

ERROR_STATUS: dict[str, int] = {
    "EMPTY_SQL": 400,
    "INVALID_SQL": 400,
    "PARAMS_WITH_BATCH": 400,
    "INVALID_PARAMETER": 400,
    "SQL_EXECUTION_ERROR": 400,
    "AUTHENTICATION_FAILED": 401,
    "PERMISSION_DENIED": 403,
    "TABLE_NOT_FOUND": 404,
    "NAMESPACE_NOT_FOUND": 404,
    "NOT_ACCEPTABLE": 406,
    "SERVICE_UNAVAILABLE": 503,
    "INTERNAL_ERROR": 500,
}


@dataclass
class ApiError(Exception):
    """An error response: KalamDB code, message, details."""

    code: str
    message: str
    details: dict[str, Any] | None = None

    @property
    def status(self) -> int:
        return ERROR_STATUS.get(self.code, 400)

    @classmethod
    def from_kalam(cls, exc: errors.KalamError) -> ApiError:
        code = next(
            (c for kind, c in _CODES.items() if isinstance(exc, kind)), "SQL_EXECUTION_ERROR"
        )
        details: dict[str, Any] = {"kalam_code": exc.code}
        if exc.line is not None:
            details.update(line=exc.line, column=exc.column)
        return cls(code, str(exc), details)

    def document(self, took_ms: float) -> dict[str, Any]:
        return {
            "status": "error",
            "results": [],
            "took": round(took_ms, 3),
            "error": {"code": self.code, "message": self.message, "details": self.details},
        }


@dataclass
class SqlRequest:
    """A validated request body."""

    sql: str
    params: list[Any] | dict[str, Any] | None = None
    namespace_id: str | None = None
    statements: list[st.Statement] = field(default_factory=list)


def parse_request(body: Any) -> SqlRequest:
    """Validate the JSON body and parse its SQL (``ApiError`` on bad input)."""
    if not isinstance(body, dict):
        raise ApiError("INVALID_PARAMETER", 'The body must be a JSON object {"sql": ...}')
    sql = body.get("sql")
    if sql is None or (isinstance(sql, str) and not sql.strip()):
        raise ApiError("EMPTY_SQL", "The request has no SQL to run")
    if not isinstance(sql, str):
        raise ApiError("INVALID_PARAMETER", '"sql" must be a string')
    params = body.get("params")
    if params is not None and not isinstance(params, list | dict):
        raise ApiError("INVALID_PARAMETER", '"params" must be a JSON array (or object)')
    ns = body.get("namespace_id")
    if ns is not None:
        if not isinstance(ns, str):
            raise ApiError("INVALID_PARAMETER", '"namespace_id" must be a string')
        try:
            check_namespace(ns)
        except errors.KalamError as exc:
            raise ApiError("INVALID_PARAMETER", str(exc), {"kalam_code": exc.code}) from None
    try:
        statements = parser.parse(sql)
    except errors.KalamError as exc:
        raise ApiError.from_kalam(exc) from None
    if not statements:
        raise ApiError("EMPTY_SQL", "The request has no SQL to run (only comments or ';')")
    if any(isinstance(s, st.Subscribe) for s in statements):
        raise ApiError(
            "INVALID_SQL",
            "SUBSCRIBE starts a live query: send it over the WebSocket at /v1/ws",
        )
    if params and len(statements) > 1:
        raise ApiError(
            "PARAMS_WITH_BATCH",
            f"params bind one statement; this request has {len(statements)}. "
            "Send each statement with its own params",
        )
    return SqlRequest(sql, params, ns, statements)


def run_request(conn: Connection, req: SqlRequest) -> list[tuple[Result, str]]:
    """Run the request's statements in order on ``conn`` (stopping at the first
    error, which is raised); each result with the user it ran as."""
    try:
        if len(req.statements) == 1:
            results = [conn.execute(req.sql, req.params)]
        else:
            results = conn.execute_script(req.sql)
    except errors.KalamError as exc:
        raise ApiError.from_kalam(exc) from None
    return [(r, _as_user(s, conn.user)) for r, s in zip(results, req.statements, strict=True)]


def _as_user(stmt: st.Statement, user: str) -> str:
    while isinstance(stmt, st.ExecuteAs):
        user, stmt = stmt.user, stmt.inner
    return user


# ------------------------------------------------------------------ JSON
_INT_NAMES = {8: "SmallInt", 16: "SmallInt", 32: "Int", 64: "BigInt"}


def data_type(t: pa.DataType) -> str:
    """KalamDB's name for an Arrow type."""
    if pa.types.is_boolean(t):
        return "Boolean"
    if pa.types.is_integer(t):
        # An unsigned type needs the next wider signed one.
        width = t.bit_width * (2 if pa.types.is_unsigned_integer(t) else 1)
        return _INT_NAMES.get(min(width, 64), "BigInt")
    if pa.types.is_floating(t):
        return "Double" if t.bit_width == 64 else "Float"
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return "Text"
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t):
        return "Bytes"
    if pa.types.is_timestamp(t):
        return "Timestamp"
    if pa.types.is_date(t):
        return "Date"
    if pa.types.is_time(t):
        return "Time"
    if pa.types.is_decimal(t):
        return f"Decimal({t.precision}, {t.scale})"
    return str(t)


def json_column(col: pa.ChunkedArray) -> list[Any]:
    """One column as JSON-ready Python values."""
    t = col.type
    if pa.types.is_integer(t) and t.bit_width == 64:
        # JavaScript numbers lose 64-bit integers: KalamDB sends them as text.
        return pc.cast(col, pa.string()).to_pylist()  # type: ignore[no-any-return]
    if pa.types.is_timestamp(t):
        micros = pc.cast(col, pa.timestamp("us", tz=t.tz))
        return pc.cast(micros, pa.int64()).to_pylist()  # type: ignore[no-any-return]
    if pa.types.is_decimal(t) or pa.types.is_date(t) or pa.types.is_time(t):
        return pc.cast(col, pa.string()).to_pylist()  # type: ignore[no-any-return]
    if pa.types.is_floating(t) and pc.any(pc.invert(pc.is_finite(col))).as_py():
        # JSON has no NaN or Infinity: a JSON encoder writes them as null,
        # which a client cannot tell from SQL NULL. Spelled as JavaScript's
        # Number() and Python's float() read them back (the CLI does the same).
        return [nonfinite_json(v) for v in col.to_pylist()]
    return col.to_pylist()  # type: ignore[no-any-return]


def nonfinite_json(value: float | None) -> float | str | None:
    """``value``, or ``"NaN"`` / ``"Infinity"`` / ``"-Infinity"``."""
    if value is None or math.isfinite(value):
        return value
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


def json_default(value: Any) -> Any:
    if isinstance(value, bytes | bytearray | memoryview):
        return "\\x" + bytes(value).hex()
    return str(value)


def schema_json(schema: pa.Schema) -> list[dict[str, Any]]:
    return [
        {
            "name": f.name,
            "data_type": data_type(f.type),
            "index": i,
            "flags": [] if f.nullable else ["nn"],
        }
        for i, f in enumerate(schema)
    ]


def result_json(result: Result, as_user: str) -> dict[str, Any]:
    if not result.is_query:
        return {
            "schema": [],
            "row_count": result.rows_affected or 0,
            "message": result.message,
            "as_user": as_user,
        }
    table = result.table
    columns = [json_column(c) for c in table.columns]
    return {
        "schema": schema_json(table.schema),
        "rows": list(zip(*columns, strict=True))
        if columns
        else [[] for _ in range(table.num_rows)],
        "row_count": table.num_rows,
        "as_user": as_user,
    }


def success_body(results: Sequence[tuple[Result, str]], took_ms: float) -> bytes:
    doc = {
        "status": "success",
        "results": [result_json(r, u) for r, u in results],
        "took": round(took_ms, 3),
    }
    return orjson.dumps(doc, default=json_default)


def error_body(err: ApiError, took_ms: float) -> bytes:
    return orjson.dumps(err.document(took_ms), default=json_default)


# ------------------------------------------------------------------ Arrow
def header_text(text: str) -> str:
    """A header-safe form of ``text``: printable ASCII as is, everything else
    (and ``%``) percent-encoded UTF-8; clients decode with ``unquote``."""
    return quote(text, safe="".join(chr(c) for c in range(32, 127) if chr(c) != "%"))


def arrow_body(result: Result) -> memoryview:
    """The result as an Arrow IPC stream (no columns for a non-query): one
    Arrow buffer the response sends as it is (``bytes`` would copy a large
    result once more, into freshly faulted pages)."""
    sink = pa.BufferOutputStream()
    table = result.table
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return memoryview(sink.getvalue())


def arrow_headers(result: Result, as_user: str, took_ms: float) -> dict[str, str]:
    rows = result.table.num_rows if result.is_query else (result.rows_affected or 0)
    return {
        "X-Kalam-Message": header_text(result.message),
        "X-Kalam-Row-Count": str(rows),
        "X-Kalam-As-User": as_user,
        "X-Kalam-Is-Query": "1" if result.is_query else "0",
        "X-Kalam-Took": f"{took_ms:.3f}",
    }


def took_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000
