"""Server URLs with credentials in them (``grpc://alice:pw@host:port``)."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import unquote, urlsplit, urlunsplit


def split_credentials(
    target: str, default_user: str, environ: Mapping[str, str]
) -> tuple[str, str, str | None]:
    """(URL without credentials, user, password) for ``target``."""
    parts = urlsplit(target)
    if parts.username is not None:
        host = parts.hostname or ""
        netloc = f"{host}:{parts.port}" if parts.port else host
        clean = urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
        password = unquote(parts.password) if parts.password is not None else None
        return clean, unquote(parts.username), password or environ.get("KALAM_PASSWORD")
    return target, environ.get("KALAM_USER", default_user), environ.get("KALAM_PASSWORD")
