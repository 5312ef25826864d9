"""``adbc_driver_kalam``: Kalam's name among ADBC drivers.

Tools that pick an ADBC driver from a URI's scheme (polars'
``read_database_uri(..., engine="adbc")`` imports ``adbc_driver_<scheme>``)
reach a ``kalam serve`` Flight SQL port with a ``kalam://`` URI::

    kalam://alice:secret@127.0.0.1:8081?namespace=shop&tls=false

This package only translates such a URI (see ``adbc_driver_kalam.uri``) into
options of the Apache Arrow ADBC Flight SQL driver, which does the talking:
``adbc_driver_kalam.dbapi.connect(uri)`` is its DB-API connection.

Its source lives in ``kalam/_drivers/`` (the repository's top level is
fixed); the distribution installs it as a top-level package of its own.
"""

from __future__ import annotations

from adbc_driver_kalam.uri import SCHEME, InvalidUriError, KalamUri, parse_uri

__version__ = "0.1.0"

__all__ = ["SCHEME", "InvalidUriError", "KalamUri", "__version__", "parse_uri"]
