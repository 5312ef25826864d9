"""Users, roles and who may run what.

Roles, from least to most privileged:

* ``user``: create USER and STREAM tables; read and write its own rows of
  USER tables, rows of STREAM tables, and read SHARED tables;
* ``service``: also create SHARED tables, write SHARED tables and FLUSH;
* ``dba`` and ``system``: everything, including DROP / ALTER, namespaces,
  user management and the system tables.

A user id passed to ``Engine.execute(..., user=)`` that does not exist yet is
created with role ``user`` on first use (notebooks rely on this). ``root``
always exists with role ``system``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine.errors import PermissionDeniedError
from engine.sql import statements as st
from engine.users import ROLES

if TYPE_CHECKING:
    from engine.catalog.model import TableDef
    from engine.core import Database

_RANK = {r: i for i, r in enumerate(ROLES)}


def at_least(role: str, needed: str) -> bool:
    return _RANK[role] >= _RANK[needed]


def require(role: str, needed: str, what: str) -> None:
    if not at_least(role, needed):
        raise PermissionDeniedError(
            f"Permission denied: {what} needs role {needed} or higher (you are {role})"
        )


def may_act_as(actor: str, target: str, actor_name: str, target_name: str) -> bool:
    """EXECUTE AS USER: system as anyone, dba as dba/service/user, service as
    service/user, user only as itself."""
    if actor == "system":
        return True
    if actor == "user":
        return actor_name == target_name
    return _RANK[target] <= _RANK[actor]


def authorize(engine: Database, stmt: st.Statement, role: str) -> None:
    """Raise PermissionDeniedError when ``role`` may not run ``stmt`` (table
    checks that need the table's type happen here too; system-table reads are
    checked where tables are resolved, so every query shape is covered)."""
    if isinstance(stmt, (st.CreateNamespace, st.DropNamespace)):
        require(role, "dba", "Creating or dropping namespaces")
    elif isinstance(stmt, st.CreateTable):
        kind = _declared_type(stmt)
        require(role, "service" if kind == "SHARED" else "user", f"CREATE {kind} TABLE")
    elif isinstance(stmt, (st.DropTable, st.AlterTable)):
        require(role, "dba", "DROP / ALTER TABLE")
    elif isinstance(stmt, (st.CreateStorage, st.DropStorage, st.ShowStorages)):
        # SHOW too: like system.storages it names buckets and endpoints.
        require(role, "dba", "CREATE / DROP / SHOW STORAGE")
    elif isinstance(stmt, st.FlushTable):
        require(role, "service", "FLUSH")
    elif isinstance(stmt, st.CompactTable):
        require(role, "service", "COMPACT")
    elif isinstance(stmt, st.ExportTable):
        require(role, "service", "EXPORT TABLE (it writes files where the engine runs)")
    elif isinstance(stmt, (st.Insert, st.Update, st.Delete)):
        table = engine.catalog.find_table(stmt.table.namespace or engine.namespace, stmt.table.name)
        if table is not None:
            authorize_write(table, role, write_actions(stmt))
    elif isinstance(stmt, st.KalamCommand):
        head = tuple(w.upper() for w in stmt.words[:2])
        if head[:1] == ("REPAIR",):
            require(role, "dba", "REPAIR TABLE")
        elif head in (("CREATE", "USER"), ("ALTER", "USER"), ("DROP", "USER")):
            require(role, "dba", "Managing users")


def write_actions(stmt: st.Insert | st.Update | st.Delete) -> tuple[str, ...]:
    """The rights a DML statement needs on its table. An INSERT that may change
    existing rows (ON CONFLICT DO UPDATE, INSERT OR REPLACE) needs UPDATE too."""
    if isinstance(stmt, st.Update):
        return ("UPDATE",)
    if isinstance(stmt, st.Delete):
        return ("DELETE",)
    if stmt.on_conflict is not None and stmt.on_conflict.action in ("update", "replace"):
        return ("INSERT", "UPDATE")
    return ("INSERT",)


def may_write(role: str, table_type: str, action: str) -> bool:
    """Whether ``role`` may ``action`` (INSERT / UPDATE / DELETE) rows of a
    table of ``table_type``: SHARED tables need service; USER and STREAM
    tables are written in the writer's own scope."""
    return table_type != "SHARED" or at_least(role, "service")


def authorize_write(table: TableDef, role: str, actions: tuple[str, ...] = ("INSERT",)) -> None:
    """Whether ``role`` may do ``actions`` to rows of ``table`` (every write path
    asks this: INSERT / UPDATE / DELETE statements and ``Engine.insert_arrow``)."""
    for action in actions:
        if not may_write(role, table.table_type, action):
            raise PermissionDeniedError(
                f"Permission denied: {action} on the {table.table_type} table "
                f"{table.qualified_name} needs role service or higher (you are {role})"
            )


def _declared_type(stmt: st.CreateTable) -> str:
    if stmt.table_type:
        return stmt.table_type
    for key, value in stmt.options:
        if key == "TYPE":
            return str(value).upper()
    return "SHARED"
