"""The Kalam server's HTTP application (Starlette): KalamDB's HTTP API over
one open ``Engine``.

Routes: ``GET /health``, ``POST /v1/api/auth/login``, ``POST
/v1/api/auth/local`` (a token for a process that can read ``server.json``),
``POST /v1/api/sql`` (Bearer or Basic) and the ``/v1/ws`` WebSocket of
live queries (``engine.server.ws``). Who a request runs as comes only from its
credentials; every statement goes through a fresh ``Connection`` of that
user, so the embedded role checks and USER-table isolation apply unchanged.
Engine calls block, so they run in worker threads and the event loop stays
free for other clients. One log line per request, with its duration.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import functools
import hmac
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, WebSocketRoute

import engine.auth as auth
from engine.errors import AuthenticationError, KalamError
from engine.names import check_user
from engine.server.sqlapi import (
    ARROW_STREAM,
    ApiError,
    arrow_body,
    arrow_headers,
    error_body,
    parse_request,
    run_request,
    success_body,
    took_since,
)
from engine.server.ws import websocket_endpoint
from engine.version import __version__

if TYPE_CHECKING:
    from engine.api import Engine

log = logging.getLogger("kalam.server")
WORKERS = 64  # threads running statements (concurrent requests beyond this queue)
_T = TypeVar("_T")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
ASGIApp = Callable[
    [Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]
]


@dataclass
class ServerState:
    """What the routes share: the engine and the server's settings."""

    engine: Engine
    local_secret: str
    token_ttl: int = auth.DEFAULT_TOKEN_TTL
    # Engine calls block: they run here. A plain executor, because anyio's
    # to_thread hop measured ~1.8 ms per call against ~0.1 ms for this.
    executor: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(WORKERS, thread_name_prefix="kalam-http")
    )

    async def call(self, fn: Callable[..., _T], *args: Any) -> _T:
        """``fn(*args)`` on a worker thread, awaited."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, functools.partial(fn, *args))

    credentials: auth.CredentialCache = field(default_factory=auth.CredentialCache)

    def __repr__(self) -> str:  # the secret stays out of reprs
        return f"<ServerState {self.engine!r} token_ttl={self.token_ttl}>"


def _json(doc: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(doc), status, headers, media_type="application/json")


def _error(err: ApiError, started: float) -> Response:
    headers = {"WWW-Authenticate": 'Bearer realm="kalam"'} if err.status == 401 else None
    return Response(error_body(err, took_since(started)), err.status, headers, "application/json")


def _set_user(request: Request, user: str) -> None:
    request.scope.setdefault("state", {})["kalam_user"] = user


async def _body(request: Request) -> Any:
    try:
        return orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        raise ApiError("INVALID_PARAMETER", "The body is not valid JSON") from None


async def authenticate(state: ServerState, request: Request) -> str:
    """The user a request's ``Authorization`` header proves (Bearer or Basic)."""
    header = request.headers.get("authorization", "")
    scheme, _, credentials = header.partition(" ")
    db = state.engine.db
    try:
        if scheme.lower() == "bearer" and credentials.strip():
            return auth.verify_token(db, credentials.strip())
        if scheme.lower() == "basic" and credentials.strip():
            try:
                decoded = base64.b64decode(credentials.strip(), validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                raise ApiError("AUTHENTICATION_FAILED", "Malformed Basic credentials") from None
            name, sep, password = decoded.partition(":")
            if not sep:
                raise ApiError("AUTHENTICATION_FAILED", "Malformed Basic credentials")
            cached = state.credentials.check(db, name, password)
            if cached is not None:
                return cached
            # argon2 takes tens of milliseconds: off the event loop.
            who = await state.call(auth.verify_password, db, name, password)
            state.credentials.remember(db, name, password)
            return who
    except AuthenticationError as exc:
        raise ApiError.from_kalam(exc) from None
    raise ApiError(
        "AUTHENTICATION_FAILED",
        "Missing credentials: send 'Authorization: Bearer <token>' "
        "(from POST /v1/api/auth/login) or HTTP Basic",
    )


# ------------------------------------------------------------------ routes
async def health(request: Request) -> Response:
    return _json({"status": "ok", "version": __version__})


async def login(request: Request) -> Response:
    state: ServerState = request.app.state.kalam
    started = time.perf_counter()
    try:
        body = await _body(request)
        if not isinstance(body, dict):
            raise ApiError("INVALID_PARAMETER", 'Expected {"user": ..., "password": ...}')
        user = body.get("user", body.get("username"))
        password = body.get("password")
        if not isinstance(user, str) or not isinstance(password, str):
            raise ApiError("INVALID_PARAMETER", 'Expected {"user": ..., "password": ...}')
        _set_user(request, user if user.isidentifier() else "?")
        db = state.engine.db
        try:
            who = await state.call(auth.verify_password, db, user, password)
        except AuthenticationError as exc:
            raise ApiError.from_kalam(exc) from None
        token = auth.issue_token(db, who, ttl_seconds=state.token_ttl)
    except ApiError as err:
        return _error(err, started)
    return _json(
        {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": state.token_ttl,
            "user": who,
        }
    )


async def local_login(request: Request) -> Response:
    """A token for ``user`` to a caller that proved it can read server.json
    (as trusted as an embedded process on this data directory: a user named
    for the first time is created with role ``user``, as embedded)."""
    state: ServerState = request.app.state.kalam
    started = time.perf_counter()
    try:
        body = await _body(request)
        secret = body.get("secret") if isinstance(body, dict) else None
        user = body.get("user", "root") if isinstance(body, dict) else None
        if not isinstance(secret, str) or not hmac.compare_digest(
            secret.encode(), state.local_secret.encode()
        ):
            return _error(ApiError("PERMISSION_DENIED", "Wrong local secret"), started)
        if not isinstance(user, str):
            raise ApiError("INVALID_PARAMETER", '"user" must be a string')
        db = state.engine.db

        def local_token(name: str) -> str:
            check_user(name)
            db.users.ensure(name, db.now_us())  # a synced write on first use: off the loop
            return auth.issue_token(db, name, ttl_seconds=state.token_ttl)

        try:
            token = await state.call(local_token, user)
            _set_user(request, user)
        except KalamError as exc:
            raise ApiError.from_kalam(exc) from None
    except ApiError as err:
        return _error(err, started)
    return _json({"access_token": token, "token_type": "Bearer", "expires_in": state.token_ttl})


async def sql(request: Request) -> Response:
    state: ServerState = request.app.state.kalam
    started = time.perf_counter()
    try:
        user = await authenticate(state, request)
        _set_user(request, user)
        req = parse_request(await _body(request))
        arrow = ARROW_STREAM in request.headers.get("accept", "")
        if arrow and len(req.statements) != 1:
            raise ApiError(
                "INVALID_PARAMETER",
                "An Arrow response carries one statement's result; send a batch as JSON "
                "or one statement per request",
            )
        conn = state.engine.connect(user=user)
        if req.namespace_id is not None:
            conn.session.namespace = req.namespace_id
        results = await state.call(run_request, conn, req)
    except ApiError as err:
        return _error(err, started)
    except KalamError as exc:
        return _error(ApiError.from_kalam(exc), started)
    took = took_since(started)
    if arrow:
        result, as_user = results[0]
        return Response(
            arrow_body(result),
            200,
            arrow_headers(result, as_user, took),
            media_type=ARROW_STREAM,
        )
    return Response(success_body(results, took), 200, media_type="application/json")


# ------------------------------------------------------------------ app
class RequestLog:
    """One log line per HTTP request: client, method, path, status, user, ms."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            client = scope.get("client") or ("-", 0)
            user = (scope.get("state") or {}).get("kalam_user", "-")
            log.info(
                "%s %s %s %d user=%s %.3f ms",
                client[0],
                scope["method"],
                scope["path"],
                status,
                user,
                took_since(started),
            )


def create_app(
    engine: Engine,
    *,
    local_secret: str,
    token_ttl: int | None = None,
    executor: ThreadPoolExecutor | None = None,
) -> ASGIApp:
    """The ASGI application serving ``engine`` (statements run on ``executor``)."""
    app = Starlette(
        routes=[
            Route("/health", health, methods=["GET"]),
            Route("/v1/api/healthcheck", health, methods=["GET"]),
            Route("/v1/api/auth/login", login, methods=["POST"]),
            Route("/v1/api/auth/local", local_login, methods=["POST"]),
            Route("/v1/api/sql", sql, methods=["POST"]),
            WebSocketRoute("/v1/ws", websocket_endpoint),
        ]
    )
    state = ServerState(
        engine, local_secret, auth.DEFAULT_TOKEN_TTL if token_ttl is None else token_ttl
    )
    if executor is not None:
        state.executor = executor
    app.state.kalam = state
    return RequestLog(app)
