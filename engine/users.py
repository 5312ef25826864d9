"""The user registry: who exists and with which role, persisted in the hot
store (``U<name>`` records) and mirrored in memory. What each role may do
is decided in ``engine.security``.

A record may also hold an argon2 password hash (never the password) and the
failed-login bookkeeping that ``engine.auth`` maintains; records written
before passwords existed (three fields) still load."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import orjson

from engine.errors import KalamError, StorageCorruptionError
from engine.names import check_user
from engine.storage.hot import HotStore
from engine.txn import Txn

ROLES = ("user", "service", "dba", "system")
ROOT = "root"


class UserExistsError(KalamError, ValueError):
    code = "USER_EXISTS"


class UserNotFoundError(KalamError, LookupError):
    code = "USER_NOT_FOUND"


@dataclass(frozen=True)
class User:
    user: str
    role: str
    created_at: int
    # An argon2 hash (``engine.auth``); ``None``: the user cannot log in with a
    # password. Kept out of repr so it never reaches a log line.
    password_hash: str | None = field(default=None, repr=False)
    failed_login_attempts: int = 0
    locked_until: int | None = None  # µs since the epoch


_BASE_FIELDS = {"user", "role", "created_at"}
_AUTH_FIELDS = {"password_hash", "failed_login_attempts", "locked_until"}


def _key(name: str) -> bytes:
    return b"U" + name.encode()


def _decode_user(key: bytes, raw: bytes, store: HotStore) -> User:
    """A stored user record; damage raises ``StorageCorruptionError`` naming the user."""
    source = f"the user record {key[1:].decode(errors='replace')} in {store.path}"
    try:
        d = orjson.loads(raw)
    except orjson.JSONDecodeError:
        d = None
    if (
        not isinstance(d, dict)
        or not _BASE_FIELDS <= d.keys() <= _BASE_FIELDS | _AUTH_FIELDS
        or _key(str(d["user"])) != key
        or d["role"] not in ROLES
        or type(d["created_at"]) is not int
        or not isinstance(d.get("password_hash"), str | None)
        or type(d.get("failed_login_attempts", 0)) is not int
        or not (d.get("locked_until") is None or type(d["locked_until"]) is int)
    ):
        raise StorageCorruptionError(f"Corrupt user record: {source}", file=source)
    return User(
        d["user"],
        d["role"],
        d["created_at"],
        d.get("password_hash"),
        d.get("failed_login_attempts", 0),
        d.get("locked_until"),
    )


class Users:
    """The user registry, persisted in the hot store and mirrored in memory."""

    def __init__(self, store: HotStore, now_us: int) -> None:
        self._store = store
        self.users: dict[str, User] = {}
        for key, raw in store.scan(b"U"):
            u = _decode_user(key, raw, store)
            self.users[u.user] = u
        if ROOT not in self.users:
            txn = Txn(store)
            self.put(txn, User(ROOT, "system", now_us))
            txn.commit()

    def __repr__(self) -> str:
        return f"<Users {len(self.users)}>"

    def find(self, name: str) -> User | None:
        return self.users.get(name)

    def get(self, name: str) -> User:
        u = self.users.get(name)
        if u is None:
            raise UserNotFoundError(f"User '{name}' does not exist")
        return u

    def put(self, txn: Txn, user: User) -> None:
        txn.batch.put(_key(user.user), orjson.dumps(asdict(user)))
        txn.after_commit(lambda: self.users.__setitem__(user.user, user))

    def delete(self, txn: Txn, name: str) -> None:
        txn.batch.delete(_key(name))
        txn.after_commit(lambda: self.users.pop(name, None))

    def ensure(self, name: str, now_us: int) -> User:
        """The user, created with role ``user`` on first use."""
        u = self.users.get(name)
        if u is None:
            check_user(name)
            txn = Txn(self._store)
            u = User(name, "user", now_us)
            self.put(txn, u)
            txn.commit()
        return u
