"""Who is calling: the Flight basic-auth handshake and bearer tokens.

A client's first call (ADBC sends a ``Handshake``) carries
``authorization: Basic <user:password>``; the server checks the password with
the ``authenticate`` function it was given and answers with
``authorization: Bearer <token>`` in the response headers. Later calls carry
that bearer token. Every call without valid credentials is refused with
``UNAUTHENTICATED``; the identity of a call is only ever what the token or
password proved, never anything in a request body.

Tokens come from ``issue_token`` / ``verify_token`` (the engine's auth module
when the server wires it); without them ``TokenStore`` keeps random opaque
tokens in memory for the server's lifetime.
"""

from __future__ import annotations

import base64
import binascii
import secrets
import threading
import time
from collections.abc import Callable

import pyarrow.flight as flight

from engine.errors import KalamError

Authenticate = Callable[[str, str], str]
IssueToken = Callable[[str], str]
VerifyToken = Callable[[str], str]

# A call header naming the namespace of the call's statements (unqualified
# table names resolve there), as the HTTP API's ``namespace_id`` does.
NAMESPACE_HEADER = "x-kalam-namespace"


class TokenStore:
    """Opaque bearer tokens held in memory (random, 256 bits, expiring)."""

    def __init__(self, ttl_seconds: float = 3600.0) -> None:
        self.ttl_seconds = ttl_seconds
        self._tokens: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<TokenStore {len(self._tokens)} token(s), ttl={self.ttl_seconds}s>"

    def issue(self, user: str) -> str:
        token = secrets.token_urlsafe(32)
        now = time.monotonic()
        with self._lock:
            # Forget expired tokens as new ones are made, so the map stays small.
            self._tokens = {k: v for k, v in self._tokens.items() if v[1] > now}
            self._tokens[token] = (user, now + self.ttl_seconds)
        return token

    def verify(self, token: str) -> str:
        with self._lock:
            found = self._tokens.get(token)
        if found is None or found[1] <= time.monotonic():
            raise flight.FlightUnauthenticatedError("Invalid or expired bearer token")
        return found[0]


class HandshakeHandler(flight.ServerAuthHandler):
    """Accepts the ``Handshake`` call itself: the credentials travel in its
    headers and ``AuthMiddlewareFactory`` checks them (and every other call)."""

    def authenticate(
        self, outgoing: flight.ServerAuthSender, incoming: flight.ServerAuthReader
    ) -> None:
        return None

    def is_valid(self, token: bytes) -> str:
        return ""


class CallerMiddleware(flight.ServerMiddleware):
    """The authenticated user of one call (and the token to send back), and
    the namespace the call asked for (``x-kalam-namespace``), if any."""

    def __init__(self, user: str, token: str | None, namespace: str | None = None) -> None:
        self.user = user
        self._token = token
        self.namespace = namespace

    def __repr__(self) -> str:
        return f"<CallerMiddleware user={self.user!r}>"

    def sending_headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self._token}"} if self._token else {}


class AuthMiddlewareFactory(flight.ServerMiddlewareFactory):
    def __init__(
        self, authenticate: Authenticate, issue_token: IssueToken, verify_token: VerifyToken
    ) -> None:
        self._authenticate = authenticate
        self._issue = issue_token
        self._verify = verify_token

    def start_call(self, info: flight.CallInfo, headers: dict[str, list[str]]) -> CallerMiddleware:
        values = headers.get("authorization") or headers.get("Authorization") or []
        if not values:
            raise flight.FlightUnauthenticatedError(
                "AUTHENTICATION_FAILED: credentials required (basic auth or a bearer token)"
            )
        scheme, _, credential = values[0].partition(" ")
        # Checked (allowlist) where a statement runs, so a bad name is a
        # statement error with our code rather than a refused login.
        named = headers.get(NAMESPACE_HEADER)
        namespace = named[0] if named else None
        try:
            if scheme.lower() == "basic":
                user, password = _basic(credential)
                who = self._authenticate(user, password)
                return CallerMiddleware(who, self._issue(who), namespace)
            if scheme.lower() == "bearer":
                return CallerMiddleware(self._verify(credential.strip()), None, namespace)
        except KalamError as exc:
            raise flight.FlightUnauthenticatedError(f"{exc.code}: {exc.message}") from None
        raise flight.FlightUnauthenticatedError(
            f"AUTHENTICATION_FAILED: unsupported authorization scheme {scheme!r}"
        )


def _basic(credential: str) -> tuple[str, str]:
    try:
        # Some clients (the Go Flight client) send base64 without its padding.
        raw = credential.strip()
        text = base64.b64decode(raw + "=" * (-len(raw) % 4), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise flight.FlightUnauthenticatedError(
            "AUTHENTICATION_FAILED: malformed basic credentials"
        ) from None
    user, sep, password = text.partition(":")
    if not sep:
        raise flight.FlightUnauthenticatedError(
            "AUTHENTICATION_FAILED: malformed basic credentials"
        )
    return user, password
