"""``RemoteEngine.subscribe``: a live query on a served data directory.

Speaks the server's WebSocket protocol at ``/v1/ws`` (KalamDB's:
authenticate, subscribe, ``subscription_ack`` with the schema, one
``initial_data_batch``, then ``change`` messages in commit order) and hands
back a ``RemoteSubscription`` with the surface of the embedded
``Subscription``: ``id``, ``schema``, ``initial``, ``get(timeout)``,
``on_change``, ``close``, ``closed``. Rows travel as JSON (Int64 as text,
timestamps as microseconds); they are rebuilt into Arrow tables of the
schema the acknowledgement names, so a change looks as it does embedded.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import decimal
import json
import threading
from typing import TYPE_CHECKING, Any

import pyarrow as pa
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from engine.errors import AuthenticationError, KalamError
from engine.live import Change
from engine.live.queue import ChangeQueue

if TYPE_CHECKING:
    from engine.remote import RemoteEngine

#: How long the handshake (connect, authenticate, ack, initial rows) may take.
HANDSHAKE_TIMEOUT_S = 30.0

_SIMPLE: dict[str, pa.DataType] = {
    "Boolean": pa.bool_(),
    "SmallInt": pa.int16(),
    "Int": pa.int32(),
    "BigInt": pa.int64(),
    "Float": pa.float32(),
    "Double": pa.float64(),
    "Text": pa.string(),
    "Bytes": pa.binary(),
    "Timestamp": pa.timestamp("us"),
    "Date": pa.date32(),
    "Time": pa.time64("us"),
}


def arrow_type(name: str) -> pa.DataType:
    """The Arrow type of a KalamDB ``data_type`` name (``Decimal(p, s)`` included)."""
    if name in _SIMPLE:
        return _SIMPLE[name]
    if name.startswith("Decimal(") and name.endswith(")"):
        precision, scale = (int(p) for p in name[8:-1].split(","))
        return pa.decimal128(precision, scale)
    return pa.string()


def schema_of(columns: list[dict[str, Any]]) -> pa.Schema:
    ordered = sorted(columns, key=lambda c: int(c.get("index", 0)))
    return pa.schema(
        pa.field(c["name"], arrow_type(str(c["data_type"])), "nn" not in (c.get("flags") or []))
        for c in ordered
    )


def _value(value: Any, t: pa.DataType) -> Any:
    """A JSON value back in the Python form Arrow takes for ``t``."""
    if value is None:
        return None
    if pa.types.is_integer(t):
        return int(value)  # Int64 arrives as text
    if pa.types.is_timestamp(t):
        return dt.datetime(1970, 1, 1) + dt.timedelta(microseconds=int(value))
    if pa.types.is_date(t):
        return dt.date.fromisoformat(value)
    if pa.types.is_time(t):
        return dt.time.fromisoformat(value)
    if pa.types.is_decimal(t):
        return decimal.Decimal(value)
    if pa.types.is_binary(t) and isinstance(value, str):
        return bytes.fromhex(value.removeprefix("\\x"))
    return value


def table_of(rows: list[dict[str, Any]] | None, schema: pa.Schema) -> pa.Table:
    rows = rows or []
    return pa.table(
        {f.name: pa.array([_value(r.get(f.name), f.type) for r in rows], f.type) for f in schema},
        schema=schema,
    )


class RemoteSubscription(ChangeQueue):
    """A live query served over the WebSocket; thread-safe; close it when done."""

    def __init__(self, engine: RemoteEngine, sql: str, user: str) -> None:
        super().__init__()
        self.sql = sql
        self.user = user
        url = engine.url.replace("http://", "ws://", 1).replace("https://", "wss://", 1)
        # The socket lives as long as the subscription, so its context is held open here.
        self._stack = contextlib.ExitStack()
        self._ws: ClientConnection = self._stack.enter_context(
            connect(f"{url}/v1/ws", open_timeout=HANDSHAKE_TIMEOUT_S)
        )
        try:
            self._handshake(engine._token(user), sql)
        except BaseException:
            self._stack.close()
            raise
        self._reader = threading.Thread(target=self._read, name="kalam-remote-live", daemon=True)
        self._reader.start()

    def _recv(self) -> dict[str, Any]:
        msg = json.loads(self._ws.recv(timeout=HANDSHAKE_TIMEOUT_S))
        if not isinstance(msg, dict):
            raise KalamError(f"Unexpected WebSocket message from the server: {msg!r}")
        return msg

    def _handshake(self, token: str, sql: str) -> None:
        from engine.remote_wire import error_from_document

        self._ws.send(json.dumps({"type": "authenticate", "method": "jwt", "token": token}))
        msg = self._recv()
        if msg.get("type") != "auth_success":
            raise AuthenticationError(str(msg.get("message") or "WebSocket authentication failed"))
        self._ws.send(json.dumps({"type": "subscribe", "subscription": {"id": "s1", "sql": sql}}))
        ack = self._recv()
        if ack.get("type") == "error":
            raise error_from_document({"error": ack}, 400)
        self.id = str(ack["live_query_id"])
        self.schema = schema_of(ack["schema"])
        first = self._recv()
        self.initial = table_of(first.get("rows"), self.schema)

    def __repr__(self) -> str:
        state = f"closed: {self._reason}" if self._reason else f"{len(self._pending)} pending"
        return f"<RemoteSubscription {self.id} {state}>"

    # ------------------------------------------------------------ reading
    def _read(self) -> None:
        reason = "the server closed the connection"
        try:
            for raw in self._ws:
                msg = json.loads(raw)
                kind = msg.get("type")
                if kind == "change":
                    old = msg.get("old_values")
                    change = Change(
                        str(msg["change_type"]),
                        table_of(msg.get("rows"), self.schema),
                        None
                        if old is None or msg["change_type"] == "delete"
                        else table_of(old, self.schema),
                        int(msg.get("seq") or 0),
                    )
                    with self._cond:
                        self._pending.append(change)
                        self._cond.notify_all()
                elif kind == "error":
                    reason = str(msg.get("message") or msg.get("code"))
                    break
        except (ConnectionClosed, OSError, ValueError):
            pass
        self.end(reason)

    def _callback_failed(self, reason: str) -> None:
        self.end(reason)
        self._stack.close()

    def close(self) -> None:
        """End the subscription (idempotent); queued changes are discarded.
        Closing the socket ends it on the server."""
        self.end("closed by the subscriber")
        self._stack.close()
        self._discard_pending()
        self._join_threads(self._reader)
