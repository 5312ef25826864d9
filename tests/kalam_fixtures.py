"""Fixtures for tests of ``import kalam`` against every kind of target.

``kalam_server`` (one per test module) prepares a data directory with users
that have passwords (``PASSWORDS``) and runs a real ``kalam serve`` with HTTP
and Flight SQL on free ports, stopped at teardown. ``connect_to(kind, user)``
opens a ``kalam`` connection to it (``"flight"`` / ``"http"``) or to an
embedded engine on another directory (``"embedded"``).

Test modules load these with ``pytest_plugins = ["server_fixtures", "kalam_fixtures"]``.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

import kalam
from engine import Engine

PASSWORDS = {"dana": "dana-pw", "alice": "alice-pw", "bob": "bob-pw"}
ROLES = {"dana": "dba", "alice": "user", "bob": "user"}
KINDS = ("embedded", "flight", "http")


@dataclass
class KalamServer:
    running: Any  # server_fixtures.RunningServer
    http_url: str
    flight_url: str


def prepare_users(eng: Engine) -> None:
    for user, password in PASSWORDS.items():
        eng.execute(f"CREATE USER {user} WITH PASSWORD '{password}' ROLE {ROLES[user]}")


@pytest.fixture(scope="module")
def kalam_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KalamServer]:
    from server_fixtures import start_server

    data = tmp_path_factory.mktemp("kalam-srv") / "data"
    with Engine.open(data, background_jobs=False) as eng:
        prepare_users(eng)
    srv = start_server(data, extra=["--flight-port", "0"])
    info = json.loads((data / "server.json").read_text())
    yield KalamServer(srv, info["url"], info["flight_url"])
    assert srv.stop() == 0


@pytest.fixture(scope="module")
def embedded_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    eng = Engine.open(tmp_path_factory.mktemp("kalam-emb") / "data", background_jobs=False)
    prepare_users(eng)
    yield eng
    eng.close()


@pytest.fixture(scope="module")
def connect_to(
    kalam_server: KalamServer, embedded_engine: Engine
) -> Iterator[Callable[..., kalam.Connection]]:
    opened: list[kalam.Connection] = []

    def connect(kind: str, user: str = "dana", **kw: Any) -> kalam.Connection:
        if kind == "embedded":
            con = kalam.connect(embedded_engine, user=user)
        else:
            url = kalam_server.flight_url if kind == "flight" else kalam_server.http_url
            con = kalam.connect(url, user=user, password=kw.pop("password", PASSWORDS[user]), **kw)
        opened.append(con)
        return con

    yield connect
    for con in opened:
        con.close()


def unique_table(request: pytest.FixtureRequest) -> str:
    """A table name of this test (and backend) alone, for module-shared servers."""
    name = request.node.name.lower()
    slug = "".join(c if c.isalnum() else "_" for c in name)[:45]
    return f"t_{slug}_{zlib.crc32(name.encode()) % 100_000}"
