"""``GET /v1/ws``: live queries over KalamDB's WebSocket protocol, on top of
the engine's ``Connection.subscribe``.

Client → server (JSON text frames):

* ``{"type": "authenticate", "method": "jwt", "token": ...}`` (or
  ``"method": "basic", "username", "password"``), first, within
  ``AUTH_TIMEOUT`` seconds → ``{"type": "auth_success", "user_id", "role"}``
  or ``{"type": "auth_error", "message"}`` and the socket closes;
* ``{"type": "subscribe", "subscription": {"id", "sql", "options"}}`` →
  ``subscription_ack`` (schema, total_rows, ``live_query_id`` for KILL LIVE
  QUERY) → one ``initial_data_batch`` (the current rows) → ``change``
  messages ``{"subscription_id", "change_type", "rows", "old_values", "seq"}``
  in commit order (a delete carries the deleted rows in both);
* ``{"type": "unsubscribe", "subscription_id"}``.

Errors are ``{"type": "error", "subscription_id", "code", "message"}``; a
subscription ended by the server (KILL LIVE QUERY, its table dropped, the
subscriber too far behind) ends with one, code ``LIVE_QUERY_CLOSED``. Rows
are JSON objects with the same value encoding as ``/v1/api/sql`` (Int64 as
strings, timestamps in microseconds). Closing the socket ends its
subscriptions.

Delivery applies back-pressure: each subscription's callback thread waits
until its message is written, so a slow client makes the engine-side queue
grow, and the engine closes a subscription that falls too far behind rather
than dropping changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

import orjson
import pyarrow as pa
from starlette.websockets import WebSocket, WebSocketDisconnect

import engine.auth as auth
from engine.errors import AuthenticationError, KalamError
from engine.server.sqlapi import ApiError, _default, _json_column, schema_json

if TYPE_CHECKING:
    from engine.live import Change, Subscription
    from engine.server.app import ServerState

AUTH_TIMEOUT = 10.0
SEND_TIMEOUT = 60.0
MAX_SUBSCRIPTIONS = 100  # per connection

log = logging.getLogger("kalam.server")


def rows_json(table: pa.Table) -> list[dict[str, Any]]:
    names = table.column_names
    columns = [_json_column(c) for c in table.columns]
    return [dict(zip(names, values, strict=True)) for values in zip(*columns, strict=True)]


class _Session:
    """One WebSocket connection: its user and its subscriptions."""

    def __init__(self, state: ServerState, ws: WebSocket) -> None:
        self.state = state
        self.ws = ws
        self.user = ""
        self.subs: dict[str, Subscription] = {}
        self._send_lock = asyncio.Lock()
        self._loop = asyncio.get_running_loop()

    async def send(self, doc: dict[str, Any]) -> None:
        async with self._send_lock:
            await self.ws.send_text(orjson.dumps(doc, default=_default).decode())

    async def error(self, sub_id: Any, code: str, message: str) -> None:
        await self.send(
            {"type": "error", "subscription_id": sub_id, "code": code, "message": message}
        )

    # ------------------------------------------------------------ auth
    async def authenticate(self) -> bool:
        try:
            raw = await asyncio.wait_for(self.ws.receive_text(), AUTH_TIMEOUT)
            msg = orjson.loads(raw)
        except TimeoutError:
            await self.send({"type": "auth_error", "message": "No authenticate message in time"})
            return False
        except orjson.JSONDecodeError:
            msg = None
        if not isinstance(msg, dict) or msg.get("type") != "authenticate":
            await self.send(
                {"type": "auth_error", "message": "The first message must be 'authenticate'"}
            )
            return False
        db = self.state.engine.db
        try:
            method = str(msg.get("method", "jwt")).lower()
            if method == "jwt" and isinstance(msg.get("token"), str):
                self.user = auth.verify_token(db, msg["token"])
            elif method == "basic":
                user, password = msg.get("username", msg.get("user")), msg.get("password")
                if not isinstance(user, str) or not isinstance(password, str):
                    raise AuthenticationError("Basic authentication needs username and password")
                self.user = await self.state.call(auth.verify_password, db, user, password)
            else:
                raise AuthenticationError("Unknown authentication method; use jwt or basic")
        except AuthenticationError as exc:
            await self.send({"type": "auth_error", "message": str(exc)})
            return False
        role = db.users.get(self.user).role
        await self.send({"type": "auth_success", "user_id": self.user, "role": role})
        return True

    # ------------------------------------------------------------ subscriptions
    async def subscribe(self, msg: dict[str, Any]) -> None:
        spec = msg.get("subscription")
        if not isinstance(spec, dict):
            spec = msg  # tolerate {"type": "subscribe", "id", "sql"}
        sub_id, sql = spec.get("id"), spec.get("sql")
        if not isinstance(sub_id, str) or not sub_id or sub_id in self.subs:
            await self.error(
                sub_id,
                "INVALID_SUBSCRIPTION_ID",
                "A subscription needs an id not already used on this connection",
            )
            return
        if not isinstance(sql, str) or not sql.strip():
            await self.error(sub_id, "INVALID_SQL", "A subscription needs its SELECT in 'sql'")
            return
        if len(self.subs) >= MAX_SUBSCRIPTIONS:
            await self.error(
                sub_id, "SUBSCRIPTION_LIMIT_EXCEEDED", f"At most {MAX_SUBSCRIPTIONS} per connection"
            )
            return
        conn = self.state.engine.connect(user=self.user)
        try:
            sub = await self.state.call(conn.subscribe, sql)
        except KalamError as exc:
            err = ApiError.from_kalam(exc)
            await self.error(sub_id, err.code, err.message)
            return
        self.subs[sub_id] = sub
        initial = sub.initial
        await self.send(
            {
                "type": "subscription_ack",
                "subscription_id": sub_id,
                "live_query_id": sub.id,
                "total_rows": initial.num_rows,
                "batch_control": _batch_control(),
                "schema": schema_json(sub.schema),
            }
        )
        await self.send(
            {
                "type": "initial_data_batch",
                "subscription_id": sub_id,
                "rows": rows_json(initial),
                "batch_control": _batch_control(),
            }
        )
        # Changes committed meanwhile wait in the subscription, in order.
        sub.on_change(
            lambda change: self._deliver(sub_id, change),
            on_close=lambda reason: self._closed(sub_id, sub, reason),
        )

    def _deliver(self, sub_id: str, change: Change) -> None:
        """On the subscription's thread: send one change, waiting until written."""
        rows = rows_json(change.rows)
        old = rows_json(change.old_values) if change.old_values is not None else None
        if change.change_type == "delete":
            old = rows
        doc = {
            "type": "change",
            "subscription_id": sub_id,
            "change_type": change.change_type,
            "rows": rows,
            "old_values": old,
            "seq": change.seq,
        }
        asyncio.run_coroutine_threadsafe(self.send(doc), self._loop).result(SEND_TIMEOUT)

    def _closed(self, sub_id: str, sub: Subscription, reason: str) -> None:
        """On the subscription's thread: tell the client, unless it asked."""
        if self.subs.get(sub_id) is not sub:
            return  # unsubscribed or the socket is gone
        self.subs.pop(sub_id, None)
        with contextlib.suppress(Exception):  # the socket may be closing too
            asyncio.run_coroutine_threadsafe(
                self.error(sub_id, "LIVE_QUERY_CLOSED", f"The live query ended: {reason}"),
                self._loop,
            ).result(SEND_TIMEOUT)

    async def unsubscribe(self, msg: dict[str, Any]) -> None:
        sub_id = msg.get("subscription_id")
        sub = self.subs.pop(sub_id, None) if isinstance(sub_id, str) else None
        if sub is None:
            await self.error(sub_id, "NOT_FOUND", f"No subscription {sub_id!r} on this connection")
            return
        await self.state.call(sub.close)

    async def close_all(self) -> None:
        subs, self.subs = list(self.subs.values()), {}
        for sub in subs:
            await self.state.call(sub.close)


def _batch_control() -> dict[str, Any]:
    # The whole initial result goes in one batch.
    return {"batch_num": 0, "has_more": False, "status": "ready"}


async def websocket_endpoint(ws: WebSocket) -> None:
    state: ServerState = ws.app.state.kalam
    await ws.accept()
    session = _Session(state, ws)
    try:
        if not await session.authenticate():
            await ws.close(code=1008)
            return
        log.info("%s WS /v1/ws open user=%s", (ws.client or ("-",))[0], session.user)
        while True:
            raw = await ws.receive_text()
            try:
                msg = orjson.loads(raw)
            except orjson.JSONDecodeError:
                msg = None
            kind = msg.get("type") if isinstance(msg, dict) else None
            if kind == "subscribe":
                await session.subscribe(msg)  # type: ignore[arg-type]
            elif kind == "unsubscribe":
                await session.unsubscribe(msg)  # type: ignore[arg-type]
            else:
                await session.error(None, "INVALID_MESSAGE", f"Unknown message type {kind!r}")
    except WebSocketDisconnect:
        pass
    finally:
        await session.close_all()
        if session.user:
            log.info("%s WS /v1/ws closed user=%s", (ws.client or ("-",))[0], session.user)
