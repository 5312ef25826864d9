"""CREATE / ALTER / DROP USER, KILL QUERY and EXECUTE AS USER."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from engine.errors import InvalidOptionError, PermissionDeniedError, SqlParseError
from engine.names import check_user
from engine.result import Result
from engine.security import may_act_as
from engine.sql import statements as st
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


def _parse_user_command(words: list[str]) -> tuple[str, str, str | None]:
    """(verb, user name, role or None) of CREATE USER n [ROLE r] / ALTER USER n
    ROLE r / DROP USER n; anything else is a syntax error."""
    verb = words[0].upper()
    forms = {
        "CREATE": "CREATE USER name [ROLE role]",
        "ALTER": "ALTER USER name ROLE role",
        "DROP": "DROP USER name",
    }
    rest = words[3:]
    ok = len(words) >= 3 and (
        (verb == "DROP" and not rest)
        or (verb == "CREATE" and (not rest or (len(rest) == 2 and rest[0].upper() == "ROLE")))
        or (verb == "ALTER" and len(rest) == 2 and rest[0].upper() == "ROLE")
    )
    if not ok:
        raise SqlParseError(f"Syntax error: expected {forms[verb]}")
    role = _role(rest[1]) if rest else None
    return verb, check_user(_unquote(words[2])), role


def user_command(engine: Database, s: st.KalamCommand, params: dict[str, Any], user: str) -> Result:
    verb, name, role = _parse_user_command(list(s.words))
    actor = engine.users.get(user)
    with engine.lock:
        txn = engine.begin()
        if verb == "CREATE":
            role = role or "user"
            if engine.users.find(name) is not None:
                raise UserExistsError(f"User '{name}' already exists")
            _check_grant(actor.role, role)
            engine.users.put(txn, User(name, role, engine.now_us()))
            msg = f"User {name} created with role {role}"
        elif verb == "ALTER":
            assert role is not None
            current = engine.users.get(name)
            if name == ROOT:
                raise PermissionDeniedError("The role of root cannot be changed")
            _check_grant(actor.role, role)
            _check_grant(actor.role, current.role)
            engine.users.put(txn, User(name, role, current.created_at))
            msg = f"User {name} now has role {role}"
        else:
            current = engine.users.get(name)
            if name == ROOT:
                raise PermissionDeniedError("root cannot be dropped")
            _check_grant(actor.role, current.role)
            return _drop_user(engine, name)
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
        message=f"User {name} dropped with {rows} row(s) of their own in USER tables",
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
