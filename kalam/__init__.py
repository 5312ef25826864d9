"""Kalam, the public face: a PEP 249 (DB-API 2.0) module and the engine.

    import kalam

    con = kalam.connect("kalam-data")                  # embedded, this process
    con = kalam.connect("grpc://127.0.0.1:8081", user="alice", password="...")  # Flight SQL
    con = kalam.connect("http://127.0.0.1:8080", user="alice", password="...")  # HTTP API
    con = kalam.connect("kalam://alice:...@127.0.0.1:8081?namespace=shop")  # Flight SQL

    cur = con.cursor()
    cur.execute("SELECT * FROM app.t WHERE id = ?", [1])
    cur.fetchall(); cur.fetch_arrow_table(); cur.fetch_df()

Module globals (PEP 249): ``apilevel = "2.0"``; ``threadsafety = 1``
(threads may share the module, not a connection); ``paramstyle = "qmark"``
— and ``$1`` (numeric, with a sequence) and ``:name`` (named, with a
mapping) placeholders work as well, the style is read from the statement.

``kalam.Engine`` is the embedded engine itself; the engine's error classes
(``kalam.TableNotFoundError``, ...) and the PEP 249 ones (``kalam.Error``,
``kalam.ProgrammingError``, ...) are both exported, and every error a
connection raises is an instance of one of each. The engine's own
``InternalError`` is ``kalam.EngineInternalError`` here, since PEP 249 owns
the name.
"""

from __future__ import annotations

import os
from typing import Any

from engine import Engine, KalamError, Result, __version__
from kalam import errors as _errors
from kalam.backends import Backend, EmbeddedBackend, FlightBackend
from kalam.dbapi import Connection, Cursor
from kalam.errors import (
    DatabaseError,
    DataError,
    Error,
    IntegrityError,
    InterfaceError,
    InternalError,
    NotSupportedError,
    OperationalError,
    ProgrammingError,
    Warning,  # noqa: A004 - PEP 249 name
)
from kalam.types import (
    BINARY,
    DATETIME,
    NUMBER,
    ROWID,
    STRING,
    Binary,
    Date,
    DateFromTicks,
    Time,
    TimeFromTicks,
    Timestamp,
    TimestampFromTicks,
)

apilevel = "2.0"
threadsafety = 1
paramstyle = "qmark"

FLIGHT_SCHEMES = ("grpc://", "grpc+tcp://")
HTTP_SCHEMES = ("http://", "https://")
KALAM_SCHEME = "kalam://"


def connect(
    target: str | os.PathLike[str] | Engine,
    *,
    user: str | None = None,
    password: str | None = None,
    token: str | None = None,
    timeout: float | None = None,
    **engine_options: Any,
) -> Connection:
    """A PEP 249 connection to Kalam.

    ``target`` is a data directory (opened embedded in this process; closing
    the connection closes it), an open ``Engine`` (shared, left open), a
    Flight SQL URL ``grpc://host:port`` or an HTTP URL ``http://host:port``
    of a ``kalam serve`` server. ``user`` is who runs the statements (USER
    tables show that user's rows); remote servers also need ``password``
    (or a bearer ``token``). ``engine_options`` go to ``Engine.open``.

    A ``kalam://user:password@host:port?namespace=NS&tls=false`` URI (the
    one polars' ``read_database_uri`` takes) is a Flight SQL server too; its
    user and password win over the keywords, which fill in what it leaves out."""
    backend: Backend
    if isinstance(target, str) and target[: len(KALAM_SCHEME)].lower() == KALAM_SCHEME:
        backend = _kalam_uri_backend(target, user, password, token, timeout)
    elif isinstance(target, Engine):
        backend = EmbeddedBackend(target, user=user, owned=False)
    elif isinstance(target, str) and target.startswith(FLIGHT_SCHEMES):
        backend = FlightBackend(target, user=user, password=password, token=token, timeout=timeout)
    elif isinstance(target, str) and target.startswith(HTTP_SCHEMES):
        from kalam.http import HttpBackend

        backend = HttpBackend(target, user=user, password=password, token=token, timeout=timeout)
    elif isinstance(target, str | os.PathLike):
        if password is not None or token is not None:
            raise _errors.interface_error(
                "An embedded connection takes no password: the data directory is opened "
                "by this process"
            )
        try:
            engine = Engine.open(target, **engine_options)
        except KalamError as exc:
            raise _errors.from_kalam(exc) from None
        backend = EmbeddedBackend(engine, user=user, owned=True)
    else:
        raise _errors.interface_error(
            f"Cannot connect to {target!r}: give a data directory, an Engine, "
            "grpc://host:port or http://host:port"
        )
    return Connection(backend)


def _kalam_uri_backend(
    uri: str, user: str | None, password: str | None, token: str | None, timeout: float | None
) -> Backend:
    # The parser is the ADBC driver's (installed with this package), so both
    # read a kalam:// URI the same way; it imports only the standard library.
    from adbc_driver_kalam.uri import InvalidUriError, parse_uri

    try:
        target = parse_uri(uri, environ={})
    except InvalidUriError as exc:
        raise _errors.interface_error(str(exc)) from None
    if user is not None and target.user is not None and user != target.user:
        raise _errors.interface_error(
            f"The URI names user {target.user!r} and user= says {user!r}: give one"
        )
    return FlightBackend(
        target.flight_url,
        user=target.user or user or os.environ.get("KALAM_USER"),
        password=next(
            (p for p in (target.password, password, os.environ.get("KALAM_PASSWORD")) if p),
            None,
        ),
        token=token,
        timeout=timeout,
        namespace=target.namespace,
    )


# The engine's error classes under their own names (PEP 249 keeps InternalError).
globals().update({k: v for k, v in _errors.ENGINE_ERRORS.items() if k != "InternalError"})
EngineInternalError = _errors.ENGINE_ERRORS["InternalError"]

__all__ = [
    "BINARY",
    "DATETIME",
    "NUMBER",
    "ROWID",
    "STRING",
    "Binary",
    "Connection",
    "Cursor",
    "DataError",
    "DatabaseError",
    "Date",
    "DateFromTicks",
    "Engine",
    "EngineInternalError",
    "Error",
    "IntegrityError",
    "InterfaceError",
    "InternalError",
    "KalamError",
    "NotSupportedError",
    "OperationalError",
    "ProgrammingError",
    "Result",
    "Time",
    "TimeFromTicks",
    "Timestamp",
    "TimestampFromTicks",
    "Warning",
    "__version__",
    "apilevel",
    "connect",
    "paramstyle",
    "threadsafety",
    *sorted(k for k in _errors.ENGINE_ERRORS if k != "InternalError"),
]
