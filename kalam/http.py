"""``HttpBackend``: a ``kalam`` connection to a Kalam HTTP server.

Speaks the server's KalamDB-compatible API (``/v1/api/auth/login``,
``/v1/api/sql``) and asks for results as an Arrow IPC stream
(``Accept: application/vnd.apache.arrow.stream``), so rows stay columnar
end to end. Uses only the standard library (one kept-alive connection).
Parameters travel as JSON: numbers, strings, booleans and None as they
are; dates and times as ISO 8601 text; bytes are refused.
"""

from __future__ import annotations

import datetime as dt
import decimal
import http.client
import json
import threading
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import unquote, urlsplit

import pyarrow as pa

from kalam import errors
from kalam.backends import Backend, Outcome, TableInfo

ARROW_STREAM = "application/vnd.apache.arrow.stream"


def _json_param(value: Any) -> Any:
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        raise errors.make(
            "PARAMETER_ERROR", "The HTTP API cannot carry bytes parameters; use Flight SQL"
        )
    return value


class HttpBackend(Backend):
    """A Kalam server's HTTP API; logs in once and sends the bearer token."""

    def __init__(
        self,
        url: str,
        *,
        user: str | None,
        password: str | None,
        token: str | None = None,
        timeout: float | None = None,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise errors.interface_error(f"Not an HTTP URL: {url!r}")
        self.url = f"{parts.scheme}://{parts.netloc}"
        self.user = user
        self._https = parts.scheme == "https"
        self._host, self._port = parts.hostname, parts.port
        self._timeout = timeout or 300.0
        self._conn: http.client.HTTPConnection | None = None
        self._lock = threading.Lock()
        self._namespace: str | None = None
        if token is None:
            if user is None:
                raise errors.make(
                    "AUTHENTICATION_FAILED",
                    "An HTTP connection needs user= and password= (or token=)",
                )
            doc = self._post_json("/v1/api/auth/login", {"user": user, "password": password or ""})
            token = doc["access_token"]
        self._auth = f"Bearer {token}"

    def __repr__(self) -> str:
        return f"<HttpBackend {self.url} user={self.user!r}>"

    # ------------------------------------------------------------- transport
    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
            self._conn = cls(self._host, self._port, timeout=self._timeout)
        return self._conn

    def _request(
        self, path: str, body: dict[str, Any], headers: dict[str, str]
    ) -> tuple[int, dict[str, str], bytes]:
        payload = json.dumps(body, default=_json_param).encode()
        headers = {"Content-Type": "application/json", **headers}
        with self._lock:
            for attempt in (1, 2):
                conn = self._connection()
                try:
                    conn.request("POST", path, payload, headers)
                    resp = conn.getresponse()
                    data = resp.read()
                    return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
                except (ConnectionError, http.client.HTTPException, OSError) as exc:
                    conn.close()
                    self._conn = None
                    # A kept-alive connection the server closed: retry once on a new one.
                    if attempt == 2 or not isinstance(
                        exc, ConnectionResetError | http.client.RemoteDisconnected | BrokenPipeError
                    ):
                        raise errors.make(
                            "CONNECTION_FAILED",
                            f"Cannot reach the Kalam server at {self.url}: {exc}",
                        ) from None
        raise AssertionError("unreachable")

    def _post_json(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        status, headers, data = self._request(path, body, {})
        doc = _json_doc(data)
        if status != 200:
            raise _http_error(doc, status)
        return doc

    # ------------------------------------------------------------- backend
    def execute(self, sql: str, params: Sequence[Any] | Mapping[str, Any] | None) -> Outcome:
        body: dict[str, Any] = {"sql": sql}
        if params:
            body["params"] = dict(params) if isinstance(params, Mapping) else list(params)
        if self._namespace is not None:
            body["namespace_id"] = self._namespace
        status, headers, data = self._request(
            "/v1/api/sql", body, {"Authorization": self._auth, "Accept": ARROW_STREAM}
        )
        if status != 200 or not headers.get("content-type", "").startswith(ARROW_STREAM):
            raise _http_error(_json_doc(data), status)
        table = pa.ipc.open_stream(data).read_all()
        rows = int(headers.get("x-kalam-row-count", "-1"))
        message = unquote(headers.get("x-kalam-message", ""))
        if headers.get("x-kalam-is-query", "1") == "0":
            return Outcome(None, rowcount=rows, message=message)
        return Outcome(table.schema, iter(table.to_batches()), table.num_rows, message)

    def _query(self, sql: str) -> pa.Table:
        outcome = self.execute(sql, None)
        assert outcome.schema is not None
        return pa.Table.from_batches(list(outcome.batches), schema=outcome.schema)

    def namespaces(self) -> list[str]:
        table = self._query("SHOW NAMESPACES")
        return sorted(str(n) for n in table.column(0).to_pylist())

    def tables(self) -> list[TableInfo]:
        out = []
        listing = self._query("SHOW TABLES").to_pylist()
        for row in listing:
            ns, name = row.get("namespace"), row.get("table_name") or row.get("name")
            if ns is None or name is None:
                continue
            schema = self._query(f'SELECT * FROM "{ns}"."{name}" LIMIT 0').schema
            out.append(TableInfo(str(ns), str(name), "TABLE", schema))
        return out

    @property
    def current_namespace(self) -> str:
        return self._namespace or "default"

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


def _json_doc(data: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(data)
    except ValueError:
        doc = None
    return doc if isinstance(doc, dict) else {}


def _http_error(doc: dict[str, Any], status: int) -> errors.Error:
    err = doc.get("error") or {}
    details = err.get("details") or {}
    code = (details.get("kalam_code") if isinstance(details, dict) else None) or err.get("code")
    return errors.make(code or "CONNECTION_FAILED", err.get("message") or f"HTTP status {status}")


__all__ = ["HttpBackend"]
