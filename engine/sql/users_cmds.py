"""CREATE / ALTER / DROP USER, KILL QUERY and EXECUTE AS USER."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from engine.errors import InvalidOptionError, PermissionDeniedError, SqlParseError
from engine.names import check_user
from engine.result import Result
from engine.security import ROLES, ROOT, User, UserExistsError, may_act_as
from engine.sql import statements as st

if TYPE_CHECKING:
    from engine.api import Engine


def _unquote(word: str) -> str:
    return word.strip("'\"").lower() if word[:1] in "'\"" else word.lower()


def _role(word: str) -> str:
    role = _unquote(word)
    if role not in ROLES:
        raise InvalidOptionError(f"Unknown role '{role}'. Roles: {', '.join(ROLES)}")
    return role


def user_command(engine: Engine, s: st.KalamCommand, params: dict[str, Any], user: str) -> Result:
    words = list(s.words)
    verb = words[0].upper()
    if len(words) < 3:
        raise SqlParseError(f"Syntax error: expected {verb} USER name ...")
    name = check_user(_unquote(words[2]))
    actor = engine.users.get(user)
    rest = [w.upper() for w in words[3:]]
    with engine.lock:
        txn = engine.begin()
        if verb == "CREATE":
            role = _role(words[4]) if rest[:1] == ["ROLE"] and len(words) > 4 else "user"
            if engine.users.find(name) is not None:
                raise UserExistsError(f"User '{name}' already exists")
            _check_grant(actor.role, role)
            engine.users.put(txn, User(name, role, engine.now_us()))
            msg = f"User {name} created with role {role}"
        elif verb == "ALTER":
            if rest[:1] != ["ROLE"] or len(words) < 5:
                raise SqlParseError("Syntax error: expected ALTER USER name ROLE role")
            role = _role(words[4])
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
            engine.users.delete(txn, name)
            msg = f"User {name} dropped"
        txn.commit()
    return Result(message=msg, rows_affected=0)


def _check_grant(actor_role: str, role: str) -> None:
    if role == "system" and actor_role != "system":
        raise PermissionDeniedError("Only a system user may grant or change the system role")


def kill_query(engine: Engine, s: st.KalamCommand, params: dict[str, Any], user: str) -> Result:
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


def execute_as(engine: Engine, s: st.ExecuteAs, params: dict[str, Any], user: str) -> Result:
    actor = engine.users.get(user)
    target = engine.users.ensure(s.user, engine.now_us())
    if not may_act_as(actor.role, target.role, actor.user, target.user):
        raise PermissionDeniedError(
            f"Permission denied: {actor.user} ({actor.role}) may not execute as "
            f"{target.user} ({target.role})"
        )
    return engine.run_statement(s.inner, params, target.user)
