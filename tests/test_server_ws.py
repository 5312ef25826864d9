"""Live queries over KalamDB's WebSocket protocol (``/v1/ws``) against a real
``kalam serve``: authenticate, subscription_ack with the schema, the initial
batch, insert/update/delete changes in commit order (only matching rows,
only the subscriber's own rows of a USER table), KILL LIVE QUERY, unsubscribe
and cleanup on disconnect."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from websockets.sync.client import ClientConnection, connect

pytest.register_assert_rewrite("server_fixtures")
from server_fixtures import RunningServer  # noqa: E402

pytest_plugins = ["server_fixtures"]

TIMEOUT = 30.0
PASSWORD = "Ws-Password-123"


@pytest.fixture(scope="module", autouse=True)
def _schema(server: RunningServer) -> None:
    server.ok(
        "CREATE NAMESPACE live; "
        "CREATE TABLE live.items (id BIGINT PRIMARY KEY, qty INT, name TEXT) "
        "WITH (TYPE = 'SHARED'); "
        "CREATE TABLE live.mine (id INT PRIMARY KEY, body TEXT) WITH (TYPE = 'USER')"
    )


def ws_url(server: RunningServer) -> str:
    return server.url.replace("http://", "ws://") + "/v1/ws"


def recv(ws: ClientConnection) -> dict[str, Any]:
    return json.loads(ws.recv(timeout=TIMEOUT))  # type: ignore[no-any-return]


@contextmanager
def live(server: RunningServer, user: str = "root") -> Iterator[ClientConnection]:
    with connect(ws_url(server), open_timeout=TIMEOUT) as ws:
        ws.send(json.dumps({"type": "authenticate", "method": "jwt", "token": server.token(user)}))
        msg = recv(ws)
        assert msg["type"] == "auth_success" and msg["user_id"] == user, msg
        yield ws


def subscribe(ws: ClientConnection, sub_id: str, sql: str) -> tuple[dict[str, Any], dict[str, Any]]:
    ws.send(json.dumps({"type": "subscribe", "subscription": {"id": sub_id, "sql": sql}}))
    ack = recv(ws)
    assert ack["type"] == "subscription_ack", ack
    batch = recv(ws)
    assert batch["type"] == "initial_data_batch", batch
    return ack, batch


def live_queries(server: RunningServer) -> list[str]:
    rows = server.rows("SELECT query_id FROM system.live_queries WHERE kind = 'subscription'")
    return [r[0] for r in rows]


def wait_until_gone(server: RunningServer, live_id: str) -> None:
    deadline = time.monotonic() + TIMEOUT
    while live_id in live_queries(server):
        assert time.monotonic() < deadline, f"{live_id} still listed"
        time.sleep(0.05)  # polling interval, bounded by the deadline


def test_a_bad_token_gets_auth_error_and_the_socket_closes(server: RunningServer) -> None:
    with connect(ws_url(server), open_timeout=TIMEOUT) as ws:
        ws.send(json.dumps({"type": "authenticate", "method": "jwt", "token": "bogus"}))
        msg = recv(ws)
        assert msg["type"] == "auth_error" and msg["message"]
        with pytest.raises(Exception, match="1008|close"):
            ws.recv(timeout=TIMEOUT)


def test_basic_authentication_reports_user_and_role(server: RunningServer) -> None:
    server.ok(f"CREATE USER wsb WITH PASSWORD '{PASSWORD}' ROLE service")
    with connect(ws_url(server), open_timeout=TIMEOUT) as ws:
        ws.send(
            json.dumps(
                {"type": "authenticate", "method": "basic", "username": "wsb", "password": PASSWORD}
            )
        )
        assert recv(ws) == {"type": "auth_success", "user_id": "wsb", "role": "service"}


def test_subscription_flow_ack_initial_then_changes_in_commit_order(server: RunningServer) -> None:
    server.ok("INSERT INTO live.items VALUES (1, 10, 'a'), (2, 20, 'b'), (500, 1, 'big')")
    with live(server) as ws:
        ack, batch = subscribe(ws, "s1", "SELECT id, qty FROM live.items WHERE id < 100")
        assert ack["subscription_id"] == "s1" and ack["total_rows"] == 2
        assert ack["schema"] == [
            {"name": "id", "data_type": "BigInt", "index": 0, "flags": ["nn"]},
            {"name": "qty", "data_type": "Int", "index": 1, "flags": []},
        ]
        assert sorted(batch["rows"], key=lambda r: r["id"]) == [
            {"id": "1", "qty": 10},
            {"id": "2", "qty": 20},
        ]
        server.ok("INSERT INTO live.items VALUES (3, 30, 'c')")
        server.ok("INSERT INTO live.items VALUES (600, 6, 'ignored')")  # does not match
        server.ok("UPDATE live.items SET qty = 31 WHERE id = 3")
        server.ok("DELETE FROM live.items WHERE id = 1")
        got = [recv(ws) for _ in range(3)]
        assert [(m["type"], m["subscription_id"], m["change_type"]) for m in got] == [
            ("change", "s1", "insert"),
            ("change", "s1", "update"),
            ("change", "s1", "delete"),
        ]
        assert got[0]["rows"] == [{"id": "3", "qty": 30}] and got[0]["old_values"] is None
        assert got[1]["rows"] == [{"id": "3", "qty": 31}]
        assert got[1]["old_values"] == [{"id": "3", "qty": 30}]
        assert got[2]["old_values"] == [{"id": "1", "qty": 10}]
        assert got[0]["seq"] < got[1]["seq"] < got[2]["seq"]
        ws.send(json.dumps({"type": "unsubscribe", "subscription_id": "s1"}))
        wait_until_gone(server, ack["live_query_id"])


def test_kill_live_query_ends_the_subscription_with_an_error_message(
    server: RunningServer,
) -> None:
    with live(server) as ws:
        ack, _ = subscribe(ws, "k1", "SELECT * FROM live.items")
        live_id = ack["live_query_id"]
        assert live_id in live_queries(server)
        server.ok(f"KILL LIVE QUERY '{live_id}'")
        msg = recv(ws)
        assert msg["type"] == "error" and msg["subscription_id"] == "k1"
        assert msg["code"] == "LIVE_QUERY_CLOSED"
        assert live_id not in live_queries(server)
        # The connection stays usable for new subscriptions.
        subscribe(ws, "k2", "SELECT * FROM live.items")


def test_closing_the_socket_ends_its_subscriptions(server: RunningServer) -> None:
    with live(server) as ws:
        ack1, _ = subscribe(ws, "d1", "SELECT * FROM live.items")
        ack2, _ = subscribe(ws, "d2", "SELECT id FROM live.items WHERE qty > 5")
        ids = {ack1["live_query_id"], ack2["live_query_id"]}
        assert ids <= set(live_queries(server))
    for live_id in ids:
        wait_until_gone(server, live_id)


def test_user_table_subscribers_see_only_their_own_changes(server: RunningServer) -> None:
    with live(server, "wsa") as ws:
        _, batch = subscribe(ws, "m", "SELECT id, body FROM live.mine")
        assert batch["rows"] == []
        server.ok("INSERT INTO live.mine VALUES (1, 'from wsz')", user="wsz")
        server.ok("INSERT INTO live.mine VALUES (2, 'from wsa')", user="wsa")
        msg = recv(ws)
        assert msg["change_type"] == "insert"
        assert msg["rows"] == [{"id": 2, "body": "from wsa"}]


def test_bad_subscriptions_get_error_messages(server: RunningServer) -> None:
    with live(server) as ws:
        ws.send(
            json.dumps(
                {"type": "subscribe", "subscription": {"id": "e1", "sql": "SELECT * FROM live.no"}}
            )
        )
        msg = recv(ws)
        assert (msg["type"], msg["subscription_id"], msg["code"]) == (
            "error",
            "e1",
            "TABLE_NOT_FOUND",
        )
        ws.send(json.dumps({"type": "subscribe", "subscription": {"id": "", "sql": "SELECT 1"}}))
        assert recv(ws)["code"] == "INVALID_SUBSCRIPTION_ID"
        ws.send("not json")
        assert recv(ws)["code"] == "INVALID_MESSAGE"


def test_subscribe_over_the_sql_endpoint_points_to_the_websocket(server: RunningServer) -> None:
    r = server.post_sql("SUBSCRIBE TO SELECT * FROM live.items")
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "INVALID_SQL" and "/v1/ws" in r.text
