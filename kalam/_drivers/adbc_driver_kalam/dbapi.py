"""DB-API 2.0 connections to Kalam from a ``kalam://`` URI, over ADBC.

``connect(uri)`` parses the URI (``adbc_driver_kalam.uri``) and opens the
Apache Arrow ADBC Flight SQL driver on the server's Flight SQL port with the
URI's credentials (basic auth, exchanged for a bearer token by the server)
and, for ``?namespace=``, the ``x-kalam-namespace`` header on every call.
What comes back is that driver's own ``Connection``: results arrive as Arrow
record batches, and polars / pandas take their Arrow paths.

Statements commit on their own (Kalam has no multi-statement transactions),
so connections are opened in autocommit mode unless the caller says
otherwise.
"""

from __future__ import annotations

from typing import Any

import adbc_driver_flightsql
import adbc_driver_flightsql.dbapi as _flightsql
import adbc_driver_manager
from adbc_driver_manager.dbapi import (  # noqa: F401 - the PEP 249 module surface
    BINARY,
    DATETIME,
    NUMBER,
    ROWID,
    STRING,
    Connection,
    Cursor,
    DatabaseError,
    DataError,
    Error,
    IntegrityError,
    InterfaceError,
    InternalError,
    NotSupportedError,
    OperationalError,
    ProgrammingError,
    Warning,
    apilevel,
    paramstyle,
    threadsafety,
)

from adbc_driver_kalam.uri import InvalidUriError, KalamUri, parse_uri

# The call header the Kalam Flight SQL server reads a call's namespace from.
NAMESPACE_HEADER = "x-kalam-namespace"


def db_options(target: KalamUri) -> dict[str, str]:
    """The ADBC Flight SQL database options for ``target``."""
    if target.user is None:
        raise ProgrammingError(
            "A kalam:// URI needs a user: kalam://USER:PASSWORD@host:port "
            "(or set KALAM_USER and KALAM_PASSWORD)",
            status_code=adbc_driver_manager.AdbcStatusCode.INVALID_ARGUMENT,
        )
    options = {
        adbc_driver_manager.DatabaseOptions.USERNAME.value: target.user,
        adbc_driver_manager.DatabaseOptions.PASSWORD.value: target.password or "",
    }
    if target.namespace is not None:
        prefix = adbc_driver_flightsql.DatabaseOptions.RPC_CALL_HEADER_PREFIX.value
        options[prefix + NAMESPACE_HEADER] = target.namespace
    return options


def connect(
    uri: str,
    db_kwargs: dict[str, str] | None = None,
    conn_kwargs: dict[str, str] | None = None,
    *,
    autocommit: bool = True,
    **kwargs: Any,
) -> Connection:
    """A DB-API connection to the Kalam server ``uri`` names. ``db_kwargs``
    and ``conn_kwargs`` add or override ADBC Flight SQL driver options."""
    try:
        target = parse_uri(uri)
    except InvalidUriError as exc:
        raise ProgrammingError(
            str(exc), status_code=adbc_driver_manager.AdbcStatusCode.INVALID_ARGUMENT
        ) from None
    options = {**db_options(target), **(db_kwargs or {})}
    return _flightsql.connect(
        target.flight_url,
        db_kwargs=options,
        conn_kwargs=conn_kwargs,
        autocommit=autocommit,
        **kwargs,
    )
