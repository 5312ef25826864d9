"""A client of a running ``kalam serve``: the ``Engine`` surface over HTTP.

``Engine.open(dir)`` returns a ``RemoteEngine`` when ``<dir>/server.json``
names a live server (its pid runs and ``/health`` answers): the server owns
the data directory, and every notebook, terminal and script that opens the
directory shares it through the server. Reading ``server.json`` (mode 0600)
proves the caller may act as any user of that directory, exactly as an
embedded opener could, so the client trades the file's secret for a token
per user at ``POST /v1/api/auth/local``.

Statements go one per request to ``POST /v1/api/sql`` and ask for an Arrow
IPC stream, so results stay columnar and come back as the same ``Result``
objects; an error document becomes the same ``KalamError`` subclass, with
the same message and position, as the embedded engine would have raised.
The client keeps each user's (and each connection's) current namespace and
sends it as ``namespace_id`` with every request, so ``USE`` behaves as it does
embedded.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pyarrow as pa

import engine.errors as kerr
from engine.discovery import ServerInfo, find_server, read_server_file
from engine.errors import (
    KalamError,
    MultipleStatementsError,
    ServerUnavailableError,
    UnsupportedStatementError,
)
from engine.remote_wire import ARROW_STREAM, error_of, json_params, result_from_response
from engine.result import Result
from engine.sql import parser
from engine.sql import statements as st
from engine.sql.tokens import tokenize

if TYPE_CHECKING:
    from engine.remote_live import RemoteSubscription

DEFAULT_NAMESPACE = "default"
#: How long cancelling an interrupted statement may take.
CANCEL_TIMEOUT_S = 15.0

__all__ = ["RemoteConnection", "RemoteEngine", "ServerInfo", "find_server", "read_server_file"]


# ---------------------------------------------------------------- the client


class RemoteEngine:
    """A data directory owned by a running Kalam server; the ``Engine`` surface.

    Thread-safe (httpx's client is); use as a context manager. ``close()`` ends
    the client only: the server and the data directory stay up."""

    def __init__(self, server: ServerInfo, *, user: str = "root", timeout: float | None = None):
        from engine.names import check_user

        self.server = server
        self._user = check_user(user)
        self._timeout = timeout
        self._http = self._client(server)
        self._tokens: dict[str, str] = {}
        # Each user's current namespace for plain execute(..., user=...) calls.
        self._namespaces: dict[str, str] = {}
        self._closed = False
        self._lost = False

    def _client(self, server: ServerInfo) -> httpx.Client:
        # Statements may run long; only connecting has a deadline.
        timeout = httpx.Timeout(self._timeout, connect=10.0)
        # httpx writes headers and body separately; without TCP_NODELAY the body
        # waits for the server's delayed ACK (~40 ms per statement, measured).
        nodelay = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]
        transport = httpx.HTTPTransport(socket_options=nodelay)
        return httpx.Client(base_url=server.url, timeout=timeout, transport=transport)

    def __enter__(self) -> RemoteEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else self.server.url
        return f"<RemoteEngine {self.data_dir.name!r} user={self._user!r} {state}>"

    @property
    def data_dir(self) -> Path:
        return self.server.data_dir

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def user(self) -> str:
        return self._user

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def lost(self) -> bool:
        """The server could not be reached (and no restarted one was found)."""
        return self._lost

    @property
    def namespace(self) -> str:
        """The default user's current namespace."""
        return self._namespaces.get(self._user, DEFAULT_NAMESPACE)

    def subscribe(self, sql: str, *, user: str | None = None) -> RemoteSubscription:
        """A live query over the server's WebSocket (see ``Engine.subscribe``):
        ``initial`` rows, then ``get()`` changes in commit order; close it when done."""
        self._check_open()
        return self._subscribe(sql, user or self._user)

    def _subscribe(self, sql: str, user: str) -> RemoteSubscription:
        from engine.remote_live import RemoteSubscription

        _check_one_statement(sql)
        try:
            return RemoteSubscription(self, sql, user)
        except (ConnectionError, TimeoutError):
            raise self._unreachable() from None

    def namespace_of(self, user: str | None = None) -> str:
        """The current namespace (``USE``) of ``user``'s ``execute`` session."""
        return self._namespaces.get(user or self._user, DEFAULT_NAMESPACE)

    def running(self, user: str | None = None) -> list[dict[str, Any]]:
        """The statements running on the server now (of ``user`` if given), as
        ``Engine.running`` lists them; the server does not report rows collected
        so far, so ``rows`` is 0."""
        result = self.execute(
            "SELECT query_id, user, sql, kind, duration_ms FROM system.live_queries",
            user=user,
        )
        return [
            {**row, "rows": 0} for row in result.to_pylist() if user is None or row["user"] == user
        ]

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._http.close()

    def connect(self, *, user: str | None = None) -> RemoteConnection:
        """A connection with a session of its own (its own ``USE``), as ``user``."""
        from engine.names import check_user

        self._check_open()
        return RemoteConnection(self, check_user(user) if user is not None else self._user)

    def _check_open(self) -> None:
        if self._closed:
            raise kerr.EngineClosedError("The engine is closed; open the data directory again")

    # ------------------------------------------------------------ statements

    def execute(
        self,
        sql: str,
        params: Sequence[Any] | Mapping[str, Any] | None = None,
        *,
        user: str | None = None,
        progress: Any = None,
    ) -> Result:
        """Run exactly one statement on the server (``progress`` is not reported remotely)."""
        who = user or self._user
        ns = self._namespaces.get(who, DEFAULT_NAMESPACE)
        _check_one_statement(sql)
        result, new_ns = self._statement(sql, params, who, ns)
        if new_ns is not None:
            self._namespaces[who] = new_ns
        return result

    def execute_script(self, sql: str, *, user: str | None = None) -> list[Result]:
        """Run a ``;``-separated batch in order, stopping at the first error."""
        who = user or self._user
        results, ns = self._script(sql, who, self._namespaces.get(who, DEFAULT_NAMESPACE))
        self._namespaces[who] = ns
        return results

    def explain(
        self,
        sql: str,
        params: Sequence[Any] | Mapping[str, Any] | None = None,
        *,
        user: str | None = None,
    ) -> Result:
        """``EXPLAIN`` of one query, with the scan and pruning figures."""
        statements = parser.parse(sql)
        if len(statements) != 1 or not isinstance(statements[0], st.Query):
            raise UnsupportedStatementError("explain() takes exactly one query (SELECT ...)")
        if statements[0].explain:
            return self.execute(sql, params, user=user)
        prefix = "EXPLAIN "
        try:
            return self.execute(prefix + sql, params, user=user)
        except KalamError as err:
            if err.line == 1 and isinstance(err.column, int):
                err.column = max(1, err.column - len(prefix))
            raise

    def flush(
        self,
        table: str,
        *,
        wait: bool = True,
        progress: Any = None,
        user: str | None = None,
    ) -> Result:
        """``FLUSH TABLE table`` on the server; with ``wait`` block until done."""
        ref = _table_ref(table)
        return self.execute(f"FLUSH TABLE {ref}{' WAIT' if wait else ''}", user=user)

    def insert_arrow(
        self,
        table: str,
        data: Any,
        *,
        user: str | None = None,
        primary_key: str | None = None,
        table_type: str = "SHARED",
    ) -> Result:
        """Append an Arrow table to ``table`` through parameterised INSERTs, creating
        the table first when missing (the same columns and key the embedded engine picks).

        Each INSERT is atomic; a failure after the first chunk says how many rows went in."""
        from engine.remote_bulk import insert_arrow

        started = time.perf_counter()
        if not isinstance(data, pa.Table):
            data = pa.table(data)
        who = user or self._user
        result = insert_arrow(
            self,
            _table_ref(table, self._namespaces.get(who, DEFAULT_NAMESPACE)),
            data,
            user=who,
            primary_key=primary_key,
            table_type=table_type,
        )
        result.elapsed_ms = (time.perf_counter() - started) * 1000
        return result

    # ------------------------------------------------------------ transport

    def _script(self, sql: str, user: str, ns: str) -> tuple[list[Result], str]:
        # Parsed here first, as the embedded engine does: a syntax error
        # anywhere runs nothing, and its position is relative to the whole text.
        statements = parser.parse(sql)
        pieces = parser.split_statements(sql)
        if len(pieces) != len(statements):  # defensive: both come from one tokenizer
            pieces = [parser.StatementText(s.sql, 1, 1, 0) for s in statements]
        results = []
        for piece, stmt in zip(pieces, statements, strict=True):
            try:
                result, new_ns = self._statement(piece.sql, None, user, ns)
            except KalamError as err:
                _shift(err, piece)
                raise
            if new_ns is not None or isinstance(stmt, st.UseNamespace):
                ns = new_ns or ns
            results.append(result)
        return results, ns

    def _statement(self, sql: str, params: Any, user: str, ns: str) -> tuple[Result, str | None]:
        """Run one statement; also return the namespace a ``USE`` switched to."""
        self._check_open()
        started = time.perf_counter()
        if _starts_with(sql, "SUBSCRIBE"):
            # A live query needs the WebSocket; the result carries it as embedded.
            sub = self._subscribe(sql, user)
            result = Result(
                table=sub.initial,
                message=f"Subscribed: live query {sub.id}",
                is_query=True,
                elapsed_ms=(time.perf_counter() - started) * 1000,
                statement=sql,
                subscription=sub,
            )
            return result, None
        body = {"sql": sql, "params": json_params(params), "namespace_id": ns}
        try:
            response = self._post(user, body)
        except KeyboardInterrupt:
            # A kernel interrupt stops waiting here; the statement must stop too.
            self._cancel(sql, user)
            raise
        result = result_from_response(response)
        result.elapsed_ms = (time.perf_counter() - started) * 1000
        result.statement = sql
        return result, _used_namespace(sql)

    def _cancel(self, sql: str, user: str) -> None:
        """``KILL QUERY`` the running statements of ``user`` whose text is ``sql``
        (the request that was interrupted has no id the client knows). Best
        effort and bounded in time: the interrupt is reported either way."""
        try:
            with httpx.Client(base_url=self.server.url, timeout=CANCEL_TIMEOUT_S) as http:
                headers = {"Authorization": f"Bearer {self._tokens[user]}"}
                find = {
                    "sql": "SELECT query_id FROM system.live_queries "
                    "WHERE user = :u AND sql = :sql AND kind = 'query'",
                    "params": {"u": user, "sql": sql},
                }
                found = http.post("/v1/api/sql", json=find, headers=headers).json()
                for (query_id,) in found["results"][0].get("rows") or []:
                    kill = {"sql": f"KILL QUERY '{_checked_id(query_id)}'"}
                    http.post("/v1/api/sql", json=kill, headers=headers)
        except (httpx.HTTPError, KeyError, IndexError, TypeError, ValueError):
            pass

    def _token(self, user: str, *, renew: bool = False) -> str:
        token = self._tokens.get(user)
        if token is None or renew:
            response = self._send(
                "POST", "/v1/api/auth/local", json={"secret": self.server.secret, "user": user}
            )
            if response.status_code != 200:
                raise error_of(response)
            token = self._tokens[user] = str(response.json()["access_token"])
        return token

    def _post(self, user: str, body: dict[str, Any]) -> httpx.Response:
        for attempt in (0, 1):
            headers = {
                "Authorization": f"Bearer {self._token(user, renew=attempt > 0)}",
                "Accept": ARROW_STREAM,
            }
            response = self._send("POST", "/v1/api/sql", json=body, headers=headers)
            # A token expires or the server restarted with a new secret: renew once.
            if response.status_code != 401 or attempt:
                break
        if response.status_code >= 400:
            raise error_of(response)
        return response

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return self._http.request(method, path, **kwargs)
        except httpx.ConnectError:
            # Nothing reached a server, so trying again cannot run a statement
            # twice: follow a restarted server to its new address.
            if not self._rediscover():
                raise self._unreachable() from None
            try:
                return self._http.request(method, path, **kwargs)
            except httpx.HTTPError:
                raise self._unreachable() from None
        except httpx.HTTPError:
            raise self._unreachable() from None

    def _rediscover(self) -> bool:
        info = find_server(self.data_dir)
        if info is None or (info.url, info.secret) == (self.server.url, self.server.secret):
            return False
        self._http.close()
        self.server, self._http, self._tokens = info, self._client(info), {}
        return True

    def _unreachable(self) -> ServerUnavailableError:
        self._lost = True
        return ServerUnavailableError(
            f"The Kalam server at {self.server.url} for data directory {self.data_dir} "
            "cannot be reached (it may have stopped). Start it again with "
            f"`kalam serve --data-dir {self.data_dir}` (or `make lab`)",
            url=self.server.url,
        )


class RemoteConnection:
    """A session on a ``RemoteEngine``: its own current namespace, one user."""

    def __init__(self, engine: RemoteEngine, user: str) -> None:
        self._engine = engine
        self._user = user
        self._namespace = DEFAULT_NAMESPACE

    def __repr__(self) -> str:
        return f"<RemoteConnection user={self._user!r} namespace={self._namespace!r}>"

    def __enter__(self) -> RemoteConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    @property
    def user(self) -> str:
        return self._user

    @property
    def namespace(self) -> str:
        return self._namespace

    def execute(self, sql: str, params: Sequence[Any] | Mapping[str, Any] | None = None) -> Result:
        """Run exactly one statement in this connection's session."""
        _check_one_statement(sql)
        result, new_ns = self._engine._statement(sql, params, self._user, self._namespace)
        if new_ns is not None:
            self._namespace = new_ns
        return result

    def subscribe(self, sql: str) -> RemoteSubscription:
        """A live query as this connection's user (see ``RemoteEngine.subscribe``)."""
        return self._engine._subscribe(sql, self._user)

    def execute_script(self, sql: str) -> list[Result]:
        results, self._namespace = self._engine._script(sql, self._user, self._namespace)
        return results


# ---------------------------------------------------------------- helpers


def _table_ref(table: str, default_ns: str | None = None) -> str:
    """``ns.t`` checked against the name allowlist (it is written into SQL text)."""
    from engine.names import check_name

    ns, _, name = table.rpartition(".")
    name = check_name(name, "table")
    if ns:
        return f"{check_name(ns, 'namespace')}.{name}"
    return f"{default_ns}.{name}" if default_ns else name


def _checked_id(query_id: Any) -> str:
    """A query id from the server, safe to quote in ``KILL QUERY '...'``."""
    text = str(query_id)
    if not text or not all(c.isalnum() or c in "-_" for c in text):
        raise ValueError(f"unexpected query id {text!r}")
    return text


def _check_one_statement(sql: str) -> None:
    """Refuse what ``Engine.execute`` refuses before running anything (same errors).

    Several statements need a ``;``, and SQL that is empty once comments go
    is blank or has a comment, so a plain statement skips the tokenizer here
    (the server tokenizes it anyway)."""
    if ";" not in sql and sql.strip() and "--" not in sql and "/*" not in sql:
        return
    count = len(parser.split_statements(sql))
    if count == 0:
        raise MultipleStatementsError("No statement to execute: the SQL is empty")
    if count > 1:
        raise MultipleStatementsError(
            f"execute() runs one statement, got {count}; "
            "use execute_script() for a ';'-separated batch"
        )


def _starts_with(sql: str, keyword: str) -> bool:
    """Whether the statement's first token is ``keyword``. A statement that does
    not even contain the word is not tokenized again on the client."""
    if keyword.casefold() not in sql.casefold():
        return False
    try:
        tokens = tokenize(sql)
    except KalamError:
        return False
    return bool(tokens) and tokens[0].text.upper() == keyword


def _used_namespace(sql: str) -> str | None:
    """The namespace a successful ``USE`` statement switched to (``None``: not a USE).

    Only the first token decides; a USE is parsed by the engine's parser to
    read the name exactly as the server did."""
    if not _starts_with(sql, "USE"):
        return None
    statements = parser.parse(sql)
    if len(statements) == 1 and isinstance(statements[0], st.UseNamespace):
        return statements[0].name
    return None


def _shift(err: KalamError, piece: parser.StatementText) -> None:
    """Move a position relative to one statement of a script to the whole script."""
    if not isinstance(err.line, int) or not isinstance(err.column, int):
        return
    if err.line == 1:
        err.column = piece.column - 1 + err.column
    err.line = piece.line + err.line - 1
