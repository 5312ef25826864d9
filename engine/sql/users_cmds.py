"""CREATE / ALTER / DROP USER (with passwords), KILL QUERY and EXECUTE AS USER."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from engine.auth import check_new_password, hash_password
from engine.errors import InvalidOptionError, PermissionDeniedError, SqlParseError
from engine.names import check_user
from engine.result import Result
from engine.security import may_act_as
from engine.sql import statements as st
from engine.sql.parser import PASSWORD_MASK
from engine.users import ROLES, ROOT, User, UserExistsError

if TYPE_CHECKING:
    from engine.core import Database


def _unquote(word: str) -> str:
    """Quoted names keep their case (and must then pass the allowlist as written)."""
    return word[1:-1] if word[:1] in "'\"" and word[-1:] == word[:1] else word.lower()


def _role(word: str) -> str:
    role = _unquote(word)
    if role not in ROLES:
        raise InvalidOptionError(f"Unknown role '{role}'. Roles: {', '.join(ROLES)}")
    return role


@dataclass(frozen=True)
class _UserCommand:
    verb: str
    name: str
    role: str | None = None
    password: str | None = field(default=None, repr=False)


_FORMS = {
    "CREATE": "CREATE USER name [WITH PASSWORD '...'] [ROLE role]",
    "ALTER": "ALTER USER name [SET] ROLE role | ALTER USER name SET PASSWORD '...'",
    "DROP": "DROP USER name",
}


def _parse_user_command(s: st.KalamCommand) -> _UserCommand:
    """The parts of CREATE USER n [WITH PASSWORD '...'] [ROLE r] / ALTER USER n
    [SET] ROLE r / ALTER USER n SET PASSWORD '...' / DROP USER n; anything
    else is a syntax error. The password comes from ``s.secret`` (the parser
    masked it in the words)."""
    words = list(s.words)
    verb = words[0].upper()
    upper = [w.upper() for w in words[3:]]
    syntax = SqlParseError(f"Syntax error: expected {_FORMS[verb]}")
    if len(words) < 3:
        raise syntax
    name = check_user(_unquote(words[2]))
    role: str | None = None
    password: str | None = None
    i = 0
    if verb == "ALTER" and upper[:1] == ["SET"]:
        i = 1
    while i < len(upper):
        if upper[i] == "ROLE" and i + 1 < len(upper) and role is None and verb != "DROP":
            role = _role(words[3 + i + 1])
            i += 2
        elif upper[i : i + 2] == ["WITH", "PASSWORD"] and verb == "CREATE" and password is None:
            password = _password(s, upper, i + 2)
            i += 3
        elif upper[i] == "PASSWORD" and verb == "ALTER" and i == 1 and password is None:
            password = _password(s, upper, i + 1)
            i += 2
        else:
            raise syntax
    if verb == "ALTER" and (role is None) == (password is None):
        raise syntax
    return _UserCommand(verb, name, role, password)


def _password(s: st.KalamCommand, upper: list[str], at: int) -> str:
    if at >= len(upper) or upper[at] != PASSWORD_MASK or s.secret is None:
        raise SqlParseError("Syntax error: a password is a string literal: PASSWORD '...'")
    return check_new_password(s.secret)


def user_command(engine: Database, s: st.KalamCommand, params: dict[str, Any], user: str) -> Result:
    cmd = _parse_user_command(s)
    name, role = cmd.name, cmd.role
    actor = engine.users.get(user)
    if cmd.verb == "DROP":
        current = engine.users.get(name)
        if name == ROOT:
            raise PermissionDeniedError("root cannot be dropped")
        _check_grant(actor.role, current.role)
        return _drop_user(engine, name)
    # Hashing is slow (tens of ms): done before the engine lock is taken.
    hashed = hash_password(cmd.password) if cmd.password is not None else None
    with engine.lock:
        txn = engine.begin()
        if cmd.verb == "CREATE":
            role = role or "user"
            if engine.users.find(name) is not None:
                raise UserExistsError(f"User '{name}' already exists")
            _check_grant(actor.role, role)
            engine.users.put(txn, User(name, role, engine.now_us(), password_hash=hashed))
            msg = f"User {name} created with role {role}"
        elif role is not None:
            current = engine.users.get(name)
            if name == ROOT:
                raise PermissionDeniedError("The role of root cannot be changed")
            _check_grant(actor.role, role)
            _check_grant(actor.role, current.role)
            engine.users.put(txn, replace(current, role=role))
            msg = f"User {name} now has role {role}"
        else:
            current = engine.users.get(name)
            _check_grant(actor.role, current.role)
            # A new password also lifts a lockout.
            engine.users.put(
                txn,
                replace(current, password_hash=hashed, failed_login_attempts=0, locked_until=None),
            )
            msg = f"Password of user {name} changed"
        txn.commit()
    return Result(message=msg, rows_affected=0)


def _drop_user(engine: Database, name: str) -> Result:
    """DROP USER removes the user's rows of every USER table with the account,
    in one batch, so a later user of the same name (created explicitly or on
    first use) starts empty and never inherits them."""
    tables = [t for t in engine.catalog.tables() if t.table_type == "USER"]
    with engine.changing(*tables) as current:
        txn = engine.begin()
        rows, removals = 0, []
        for table in current:
            rows += engine.provider(table).drop_scope(txn, name)
            removals.append(engine.stage_scope_removal(txn, table, name))
        engine.users.delete(txn, name)
        txn.commit()
        for remove in removals:
            remove()
    return Result(
        message=f"User {name} dropped with {rows:,} row(s) of their own in USER tables",
        rows_affected=rows,
    )


def _check_grant(actor_role: str, role: str) -> None:
    if role == "system" and actor_role != "system":
        raise PermissionDeniedError("Only a system user may grant or change the system role")


def kill_query(engine: Database, s: st.KalamCommand, params: dict[str, Any], user: str) -> Result:
    words = list(s.words)
    if len(words) != 3 or words[1].upper() != "QUERY":
        raise SqlParseError("Syntax error: expected KILL QUERY '<query_id>'")
    query_id = words[2].strip("'\"")
    target = next((q for q in engine.live.snapshot() if q.query_id == query_id), None)
    role = engine.users.get(user).role
    if target is not None and target.user != user and role not in ("dba", "system"):
        raise PermissionDeniedError("Permission denied: you may only kill your own queries")
    engine.live.kill(query_id)
    return Result(message=f"Query {query_id} is being cancelled", rows_affected=1)


def execute_as_user(engine: Database, s: st.ExecuteAs, user: str) -> str:
    """Whom ``EXECUTE AS USER`` runs its statement as, once ``user`` may."""
    actor = engine.users.get(user)
    name = check_user(s.user)
    existing = engine.users.find(name)
    role = existing.role if existing is not None else "user"  # what first use would create
    if not may_act_as(actor.role, role, actor.user, name):
        raise PermissionDeniedError(
            f"Permission denied: {actor.user} ({actor.role}) may not execute as {name} ({role})"
        )
    return name
