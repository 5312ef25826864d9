"""``%kalam --connect grpc://host:port`` / ``http://host:port``: the magic as
a client of a Kalam server, with the same rendering, ``-o`` and completion.

``ServerEngine`` gives a ``kalam`` connection (Flight SQL or HTTP, see
``kalam.connect``) the small ``Engine`` surface the magic uses
(``execute(sql, params, user=...) -> Result``), so the rest of the magic does
not know whether statements run in this kernel or on a server.

Credentials: ``grpc://alice:$pw@host:port`` (the magic expands ``$pw`` from
the notebook, so the password need not be typed into the cell), else the
``KALAM_USER`` / ``KALAM_PASSWORD`` environment variables, else the
``Kalam.user`` setting with ``KALAM_PASSWORD``. The server decides who the
statements run as (the login); ``--user`` cannot switch to another user on a
server connection.
"""

from __future__ import annotations

import contextlib
import os
import time
from typing import Any

from engine import KalamError, Result
from engine.errors import PermissionDeniedError, UnsupportedStatementError
from kalam.urls import split_credentials

REMOTE_PREFIXES = ("grpc://", "grpc+tcp://", "http://", "https://")


def is_remote(target: str) -> bool:
    return target.startswith(REMOTE_PREFIXES)


class ServerEngine:
    """A Kalam server seen through the ``Engine`` surface the magic uses."""

    def __init__(self, url: str, *, user: str, password: str | None) -> None:
        import kalam

        self.url = url
        self.user = user
        self.connection = kalam.connect(url, user=user, password=password)

    def __repr__(self) -> str:
        return f"<ServerEngine {self.url} user={self.user!r}>"

    @property
    def data_dir(self) -> str:
        return self.url

    def execute(
        self,
        sql: str,
        params: Any = None,
        *,
        user: str | None = None,
        progress: Any = None,
    ) -> Result:
        if user is not None and user != self.user:
            raise PermissionDeniedError(
                f"This notebook is connected to {self.url} as {user!r}'s login "
                f"{self.user!r}; reconnect with {user}'s credentials to run as {user}"
            )
        started = time.perf_counter()
        cur = self.connection.cursor()
        try:
            cur.execute(sql, params)
            if cur.description is None:
                result = Result(
                    message=cur.message or _affected_message(cur.rowcount),
                    rows_affected=cur.rowcount if cur.rowcount >= 0 else None,
                )
            else:
                result = Result(table=cur.fetch_arrow_table(), is_query=True, message=cur.message)
        finally:
            cur.close()
        result.elapsed_ms = (time.perf_counter() - started) * 1000
        result.statement = sql
        return result

    def insert_arrow(self, table: str, data: Any, **kwargs: Any) -> Result:
        raise UnsupportedStatementError(
            "--persist writes through an embedded engine; on a server connection use "
            "INSERT ... VALUES with parameters"
        )

    @property
    def closed(self) -> bool:
        return bool(self.connection.closed)

    def close(self) -> None:
        self.connection.close()


def _affected_message(count: int) -> str:
    return f"{count:,} row(s) affected" if count >= 0 else "OK"


def connect_remote(target: str, *, default_user: str) -> ServerEngine:
    """Log in to the server at ``target`` (raises ``KalamError`` on failure)."""
    url, user, password = split_credentials(target, default_user, os.environ)
    return ServerEngine(url, user=user, password=password)


def close(remote: ServerEngine | None) -> None:
    if remote is not None:
        with contextlib.suppress(KalamError):
            remote.close()
