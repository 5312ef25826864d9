"""Passwords, logins and tokens for one data directory.

* Passwords are hashed with argon2 (``argon2-cffi``); only the hash is kept,
  in the user's record (``engine.users``). A user without a hash cannot log
  in with a password (local clients use the server's secret instead).
* ``verify_password`` counts failed logins in the user's record: after
  ``MAX_FAILED_LOGINS`` in a row the account is locked for
  ``LOCKOUT_SECONDS`` (``system.users`` shows ``failed_login_attempts`` and
  ``locked_until``); a successful login resets the count.
* ``CredentialCache`` spares a server the argon2 check (tens of ms) on every
  HTTP Basic request: a credential that verified is remembered, keyed by an
  HMAC under a per-process random key (never the password itself), and
  counts only while the user's stored hash is still the one it verified
  against and the account is not locked.
* Tokens are JWTs (HS256, PyJWT) signed with a secret kept in the data
  directory (``auth.secret``, mode 0600, created on first use). A token names
  the user and when that account was created and which password it had, so
  it stops working when the user is dropped (even if a user of the same name
  is created later) or changes password. Expiry is checked against the
  database's clock, so tests drive it without waiting.

Nothing here logs, and no message names a password.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import threading
from collections import OrderedDict
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from engine.errors import AuthenticationError, InvalidOptionError
from engine.users import User

if TYPE_CHECKING:
    from engine.core import Database

__all__ = [
    "CredentialCache",
    "DEFAULT_TOKEN_TTL",
    "LOCKOUT_SECONDS",
    "MAX_FAILED_LOGINS",
    "hash_password",
    "issue_token",
    "check_new_password",
    "verify_password",
    "verify_token",
]

MAX_FAILED_LOGINS = 5
LOCKOUT_SECONDS = 300
DEFAULT_TOKEN_TTL = 24 * 3600
MAX_PASSWORD_LENGTH = 1024
SECRET_FILE = "auth.secret"
_ALGORITHM = "HS256"
_ISSUER = "kalam"
_BAD_LOGIN = "Invalid user name or password"

_hasher = PasswordHasher()  # argon2id with the library's recommended parameters
# Verifying against this when the user does not exist costs the same as a real
# check, so response times do not tell which user names exist.
_DUMMY_HASH = _hasher.hash(secrets.token_hex(16))


def check_new_password(password: str) -> str:
    if not isinstance(password, str) or not password:
        raise InvalidOptionError("A password must not be empty")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InvalidOptionError(f"A password must be at most {MAX_PASSWORD_LENGTH} characters")
    return password


def hash_password(password: str) -> str:
    """The argon2id hash to store for ``password``."""
    return _hasher.hash(check_new_password(password))


def _matches(stored: str, password: str) -> bool:
    try:
        return _hasher.verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def verify_password(
    db: Database,
    user: str,
    password: str,
    *,
    max_failures: int = MAX_FAILED_LOGINS,
    lockout_seconds: int = LOCKOUT_SECONDS,
) -> str:
    """The user id when ``password`` is ``user``'s; otherwise raise
    ``AuthenticationError`` and count the failure (locking the account after
    ``max_failures`` in a row). A locked account refuses even the right
    password until ``locked_until``."""
    db.check_open()
    found = db.users.find(user) if isinstance(user, str) else None
    if found is None or found.password_hash is None or not isinstance(password, str):
        _matches(_DUMMY_HASH, password if isinstance(password, str) else "")
        raise AuthenticationError(_BAD_LOGIN)
    now = db.now_us()
    if found.locked_until is not None and found.locked_until > now:
        raise AuthenticationError(
            f"Account {user} is locked after {found.failed_login_attempts} failed logins; "
            f"try again in {(found.locked_until - now) // 1_000_000 + 1} s"
        )
    # The hash check is the slow part (tens of ms): done without the engine lock.
    ok = _matches(found.password_hash, password)
    with db.lock:
        current = db.users.find(user)
        if current is None or current.password_hash != found.password_hash:
            raise AuthenticationError(_BAD_LOGIN)  # dropped or re-passworded meanwhile
        if ok:
            if current.failed_login_attempts or current.locked_until is not None:
                _store(db, replace(current, failed_login_attempts=0, locked_until=None))
            return current.user
        failures = current.failed_login_attempts + 1
        locked = now + lockout_seconds * 1_000_000 if failures >= max_failures else None
        _store(db, replace(current, failed_login_attempts=failures, locked_until=locked))
    if locked is not None:
        raise AuthenticationError(
            f"Account {user} is locked for {lockout_seconds} s after {failures} failed logins"
        )
    raise AuthenticationError(_BAD_LOGIN)


class CredentialCache:
    """Basic-auth credentials that verified recently (see the module docstring)."""

    def __init__(self, capacity: int = 1024) -> None:
        self.capacity = capacity
        self._key = secrets.token_bytes(32)
        self._lock = threading.Lock()
        self._verified: OrderedDict[bytes, str] = OrderedDict()  # digest -> stored hash

    def _digest(self, user: str, password: str) -> bytes:
        return hmac.digest(self._key, f"{user}\0{password}".encode(), "sha256")

    def check(self, db: Database, user: str, password: str) -> str | None:
        """The user id if this exact credential verified before and still holds;
        ``None`` means: verify it with ``verify_password`` (then ``remember``)."""
        digest = self._digest(user, password)
        with self._lock:
            stored = self._verified.get(digest)
            if stored is not None:
                self._verified.move_to_end(digest)
        if stored is None:
            return None
        found = db.users.find(user)
        locked = found is not None and found.locked_until is not None
        if found is None or found.password_hash != stored or locked:
            with self._lock:
                self._verified.pop(digest, None)
            return None
        return found.user

    def remember(self, db: Database, user: str, password: str) -> None:
        found = db.users.find(user)
        if found is None or found.password_hash is None:
            return
        with self._lock:
            self._verified[self._digest(user, password)] = found.password_hash
            while len(self._verified) > self.capacity:
                self._verified.popitem(last=False)


def _store(db: Database, user: User) -> None:
    txn = db.begin()
    db.users.put(txn, user)
    txn.commit()


# ------------------------------------------------------------------ tokens
def _secret(db: Database) -> bytes:
    """The data directory's signing secret, created (mode 0600) on first use.

    Read on every call: a few microseconds, and replacing the file revokes
    every token at once without a restart."""
    path = Path(db.data_dir) / SECRET_FILE
    try:
        return bytes.fromhex(path.read_text().strip())
    except FileNotFoundError:
        pass
    except ValueError as exc:
        raise AuthenticationError(f"The token secret {path} is damaged") from exc
    value = secrets.token_hex(32)
    tmp = path.with_name(f".{SECRET_FILE}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, value.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)  # never replaces a secret another process created first
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    return bytes.fromhex(path.read_text().strip())


def _password_version(user: User) -> str:
    """Changes whenever the password does; reveals nothing about it."""
    return hashlib.sha256((user.password_hash or "").encode()).hexdigest()[:16]


def issue_token(db: Database, user: str, *, ttl_seconds: int | None = None) -> str:
    """A bearer token for ``user`` (who must exist), valid ``ttl_seconds``."""
    db.check_open()
    ttl = DEFAULT_TOKEN_TTL if ttl_seconds is None else ttl_seconds
    if type(ttl) is not int or ttl <= 0:
        raise InvalidOptionError(f"A token lifetime must be a positive number of seconds: {ttl!r}")
    found = db.users.get(user)
    now_s = db.now_us() // 1_000_000
    claims: dict[str, Any] = {
        "iss": _ISSUER,
        "sub": found.user,
        "iat": now_s,
        "exp": now_s + ttl,
        "ucr": found.created_at,
        "pwv": _password_version(found),
    }
    return jwt.encode(claims, _secret(db), algorithm=_ALGORITHM)


def verify_token(db: Database, token: str) -> str:
    """The user id a token was issued to, or ``AuthenticationError`` (bad
    signature, expired, user dropped or recreated, password changed)."""
    db.check_open()
    try:
        claims = jwt.decode(
            token,
            _secret(db),
            algorithms=[_ALGORITHM],
            issuer=_ISSUER,
            # Expiry is checked below against the database clock.
            options={"verify_exp": False, "verify_iat": False, "require": ["sub", "exp", "iss"]},
        )
    except jwt.PyJWTError as exc:
        raise AuthenticationError(f"Invalid token: {exc}") from None
    exp = claims.get("exp")
    if type(exp) is not int or exp * 1_000_000 <= db.now_us():
        raise AuthenticationError("The token has expired; log in again")
    found = db.users.find(str(claims["sub"]))
    if found is None or claims.get("ucr") != found.created_at:
        raise AuthenticationError("The token's user no longer exists")
    if claims.get("pwv") != _password_version(found):
        raise AuthenticationError("The password changed since this token was issued; log in again")
    return found.user
