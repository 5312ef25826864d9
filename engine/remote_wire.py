"""What travels between ``RemoteEngine`` and the server: parameters as JSON,
results as Arrow IPC streams with ``X-Kalam-*`` headers, errors as KalamDB's
error document whose ``details`` carry the engine's own code and position.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import unquote

import httpx
import pyarrow as pa

import engine.errors as kerr
from engine.errors import (
    KalamError,
    MultipleStatementsError,
    ParameterError,
    ServerUnavailableError,
)
from engine.result import Result

ARROW_STREAM = "application/vnd.apache.arrow.stream"


# KalamDB's codes for errors the server has no finer code for.
_KALAMDB_CODES: dict[str, type[KalamError]] = {
    "INVALID_SQL": kerr.SqlParseError,
    "EMPTY_SQL": MultipleStatementsError,
    "PARAMS_WITH_BATCH": ParameterError,
    "INVALID_PARAMETER": ParameterError,
    "SQL_EXECUTION_ERROR": kerr.QueryError,
    "TABLE_NOT_FOUND": kerr.TableNotFoundError,
    "PERMISSION_DENIED": kerr.PermissionDeniedError,
}


def _error_classes() -> dict[str, type[KalamError]]:
    found: dict[str, type[KalamError]] = {}
    todo: list[type[KalamError]] = [KalamError]
    while todo:
        cls = todo.pop()
        found.setdefault(cls.code, cls)
        todo.extend(cls.__subclasses__())
    return found


def _position_suffix(line: Any, column: Any) -> str:
    return f" (line {line}, column {column})"


def error_from_document(doc: Any, status: int) -> KalamError:
    """The ``KalamError`` an error document stands for.

    The server's ``details`` carry the engine's own code, position and fields
    when it has them; otherwise KalamDB's code picks the class."""
    body = doc.get("error") if isinstance(doc, dict) else None
    if not isinstance(body, dict):
        return ServerUnavailableError(
            f"The Kalam server answered HTTP {status} without an error document"
        )
    code = str(body.get("code") or "")
    message = str(body.get("message") or code or f"HTTP {status}")
    details = body.get("details") if isinstance(body.get("details"), dict) else {}
    assert isinstance(details, dict)
    classes = _error_classes()
    engine_code = details.get("kalam_code") or details.get("engine_code")
    cls = (
        classes.get(str(engine_code)) or classes.get(code) or _KALAMDB_CODES.get(code) or KalamError
    )
    line = details.get("line") if isinstance(details.get("line"), int) else None
    column = details.get("column") if isinstance(details.get("column"), int) else None
    fields = details.get("fields") if isinstance(details.get("fields"), dict) else {}
    assert isinstance(fields, dict)
    # str(error) carries the position; the message field does not.
    suffix = _position_suffix(line, column)
    if line is not None and message.endswith(suffix):
        message = message[: -len(suffix)]
    return cls(message, line=line, column=column, **fields)


# ---------------------------------------------------------------- values


def _json_value(value: Any, name: str) -> Any:
    """A parameter value as JSON; kinds JSON cannot hold exactly are refused by name."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, list | tuple):
        return [_json_value(v, name) for v in value]
    if isinstance(value, dict):
        return {str(k): _json_value(v, name) for k, v in value.items()}
    item = getattr(value, "item", None)  # numpy / pandas scalars
    if callable(item):
        return _json_value(item(), name)
    raise ParameterError(
        f"Parameter {name} is a {type(value).__name__}, which cannot be sent to a Kalam "
        "server; pass a number, text, boolean, date/time or None"
    )


def json_params(params: Sequence[Any] | Mapping[str, Any] | None) -> Any:
    if params is None:
        return None
    if isinstance(params, Mapping):
        return {str(k): _json_value(v, f":{k}") for k, v in params.items()}
    if isinstance(params, str | bytes):
        raise ParameterError("Positional placeholders need a sequence of parameters")
    return [_json_value(v, f"${i}") for i, v in enumerate(params, start=1)]


def error_of(response: httpx.Response) -> KalamError:
    try:
        doc = response.json()
    except ValueError:
        doc = None
    return error_from_document(doc, response.status_code)


def _header_int(response: httpx.Response, name: str) -> int | None:
    raw = response.headers.get(name)
    try:
        return int(raw) if raw not in (None, "") else None
    except ValueError:
        return None


def result_from_response(response: httpx.Response) -> Result:
    """A ``Result`` from an Arrow IPC response (headers carry the status fields)."""
    if response.headers.get("content-type", "").startswith(ARROW_STREAM):
        content = response.content
        table = pa.ipc.open_stream(content).read_all() if content else pa.table({})
        # The server percent-encodes what a header cannot carry as is.
        message = unquote(response.headers.get("X-Kalam-Message", ""))
        flag = response.headers.get("X-Kalam-Is-Query")
        is_query = flag == "1" if flag is not None else not message
        count = _header_int(response, "X-Kalam-Row-Count")
        stats_raw = response.headers.get("X-Kalam-Stats")
        return Result(
            table=table if is_query else pa.table({}),
            message=message,
            rows_affected=None if is_query else count,
            is_query=is_query,
            stats=json.loads(unquote(stats_raw)) if stats_raw else {},
            job_id=response.headers.get("X-Kalam-Job-Id") or None,
        )
    raise ServerUnavailableError(
        f"The Kalam server answered with {response.headers.get('content-type')!r} instead of "
        "an Arrow IPC stream; is it a Kalam server of this version?"
    )
