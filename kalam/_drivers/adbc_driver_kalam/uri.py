"""``kalam://`` URIs: where a Kalam Flight SQL server is and who calls it.

``kalam://[USER[:PASSWORD]@]HOST:PORT[?namespace=NS][&tls=true|false]``

- ``USER`` / ``PASSWORD`` are percent-decoded; when absent they come from
  the ``KALAM_USER`` / ``KALAM_PASSWORD`` environment variables, so a
  notebook need not spell a password out.
- ``PORT`` is the server's Flight SQL port (``kalam serve --flight-port``);
  there is no default, since a server has one only when asked for it.
- ``namespace`` is where unqualified table names resolve (the default
  namespace otherwise); ``tls=true`` speaks ``grpc+tls`` (default plain
  ``grpc``, as ``kalam serve`` binds 127.0.0.1 without TLS).

Only the standard library is used here: ``kalam.connect`` and the ADBC
driver both parse with it, and neither should pay for the other's imports.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote, urlsplit

SCHEME = "kalam"
QUERY_KEYS = ("namespace", "tls")
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


class InvalidUriError(ValueError):
    """A ``kalam://`` URI that cannot be used (the message says why)."""


@dataclass(frozen=True)
class KalamUri:
    host: str
    port: int
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    namespace: str | None = None
    tls: bool = False

    @property
    def flight_url(self) -> str:
        """The Flight SQL location: ``grpc://host:port`` (``grpc+tls://`` with TLS)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'grpc+tls' if self.tls else 'grpc'}://{host}:{self.port}"


def parse_uri(uri: str, environ: Mapping[str, str] | None = None) -> KalamUri:
    """The parts of ``uri``; ``InvalidUriError`` names what is wrong."""
    env = os.environ if environ is None else environ
    parts = urlsplit(uri)
    if parts.scheme.lower() != SCHEME:
        raise InvalidUriError(f"Not a kalam:// URI: {_redacted(uri)!r}")
    if not parts.hostname:
        raise InvalidUriError(f"The URI {_redacted(uri)!r} names no host (kalam://user@host:port)")
    try:
        port = parts.port
    except ValueError:
        raise InvalidUriError(f"The URI {_redacted(uri)!r} has an invalid port") from None
    if port is None:
        raise InvalidUriError(
            f"The URI {_redacted(uri)!r} names no port: give the server's Flight SQL port "
            "(kalam serve --flight-port PORT)"
        )
    if parts.path not in ("", "/") or parts.fragment:
        raise InvalidUriError(
            f"The URI {_redacted(uri)!r} has a path or fragment; the namespace goes in "
            "?namespace=NAME"
        )
    options = _options(parts.query, uri)
    user = unquote(parts.username) if parts.username else env.get("KALAM_USER")
    password = unquote(parts.password) if parts.password is not None else env.get("KALAM_PASSWORD")
    return KalamUri(
        host=parts.hostname,
        port=port,
        user=user or None,
        password=password,
        namespace=options.get("namespace"),
        tls=_flag(options.get("tls", "false"), uri),
    )


def _options(query: str, uri: str) -> dict[str, str]:
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        raise InvalidUriError(f"The URI {_redacted(uri)!r} has a malformed query string") from None
    options: dict[str, str] = {}
    for key, value in pairs:
        if key not in QUERY_KEYS:
            raise InvalidUriError(
                f"Unknown option {key!r} in a kalam:// URI (known: {', '.join(QUERY_KEYS)})"
            )
        if key in options:
            raise InvalidUriError(f"The option {key!r} is given twice in a kalam:// URI")
        if not value:
            raise InvalidUriError(f"The option {key!r} in a kalam:// URI has no value")
        options[key] = value
    return options


def _flag(value: str, uri: str) -> bool:
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise InvalidUriError(f"tls={value!r} in a kalam:// URI: use true or false")


def _redacted(uri: str) -> str:
    """``uri`` with its password replaced, for error messages."""
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()
