"""One registry from statement type to handler."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from engine.errors import ReadOnlyError, UnsupportedStatementError
from engine.live import subscribe
from engine.result import Result
from engine.security import authorize
from engine.sql import (
    alter,
    ddl,
    dml,
    export,
    mutate,
    select,
    storage_cmds,
    storage_defs,
    unique,
    users_cmds,
    view_cmds,
    views,
)
from engine.sql import statements as st

if TYPE_CHECKING:
    from engine.core import Database

Handler = Callable[["Database", Any, dict[str, Any], str], Result]

HANDLERS: dict[type[st.Statement], Handler] = {
    st.CreateNamespace: ddl.create_namespace,
    st.DropNamespace: ddl.drop_namespace,
    st.ShowNamespaces: ddl.show_namespaces,
    st.UseNamespace: ddl.use_namespace,
    st.CreateTable: ddl.create_table,
    st.DropTable: ddl.drop_table,
    st.ShowTables: ddl.show_tables,
    st.DescribeTable: ddl.describe_table,
    st.CreateIndex: ddl.create_index,
    st.Insert: dml.insert,
    st.Query: select.run_select,
    st.Update: mutate.update,
    st.Delete: mutate.delete,
    st.FlushTable: storage_cmds.flush,
    st.CompactTable: storage_cmds.compact,
    st.ExportTable: export.export_table,
    st.AlterTable: alter.alter_table,
    st.Subscribe: subscribe.run_subscribe,
    st.CreateView: view_cmds.create_view,
    st.CreateUniqueIndex: unique.create_unique_index,
    st.DropView: view_cmds.drop_view,
    st.ShowViews: view_cmds.show_views,
    st.CreateStorage: storage_defs.create_storage,
    st.DropStorage: storage_defs.drop_storage,
    st.ShowStorages: storage_defs.show_storages,
}


def unsupported(engine: Database, s: st.Statement, params: dict[str, Any], user: str) -> Result:
    words = s.sql.split()
    head = " ".join(words[:3]).upper()
    raise UnsupportedStatementError(f"Statement not supported yet: {head} ...")


# Kalam commands parsed from tokens, keyed by their leading keywords.
COMMANDS: dict[tuple[str, ...], Handler] = {
    ("SHOW", "MANIFEST"): storage_cmds.show_manifest,
    ("SHOW", "DELTA"): storage_cmds.show_delta,
    ("REPAIR",): storage_cmds.repair,
    ("CREATE", "USER"): users_cmds.user_command,
    ("ALTER", "USER"): users_cmds.user_command,
    ("DROP", "USER"): users_cmds.user_command,
    ("KILL", "LIVE"): subscribe.kill_live_query,
    ("KILL",): users_cmds.kill_query,
}


def _refuse_system_writes(s: st.Statement) -> None:
    table = getattr(s, "table", None)
    if (
        isinstance(table, st.TableRef)
        and table.namespace == "system"
        and not isinstance(s, (st.Query, st.Subscribe))
    ):
        raise ReadOnlyError(
            f"system.{table.name} is a read-only system table: only SELECT may use it"
        )


def run_statement(engine: Database, stmt: st.Statement, bound: dict[str, Any], who: str) -> Result:
    """Authorise and run one parsed statement as ``who`` (tracked as live)."""
    role = engine.users.ensure(who, engine.now_us()).role
    authorize(engine, stmt, role)
    with (
        engine.readers.reading(),
        engine.live.track(who, stmt.sql, _kind(stmt), engine.now_us()),
    ):
        result = dispatch(engine, stmt, bound, who)
    engine.metrics["statements"] += 1
    if result.is_query:
        engine.metrics["queries"] += 1
    for figures in result.stats.values():
        engine.metrics["segments_pruned"] += figures.get("segments_pruned", 0)
    return result


def _kind(stmt: st.Statement) -> str:
    if isinstance(stmt, st.Query):
        return "query"
    if isinstance(stmt, st.Subscribe):
        return "subscribe"
    if isinstance(stmt, (st.Insert, st.Update, st.Delete)):
        return "dml"
    return "command"


def dispatch(engine: Database, s: st.Statement, params: dict[str, Any], user: str) -> Result:
    _refuse_system_writes(s)
    views.refuse_view_target(engine, s)
    if isinstance(s, st.ExecuteAs):
        return run_statement(engine, s.inner, params, users_cmds.execute_as_user(engine, s, user))
    if isinstance(s, st.KalamCommand):
        words = tuple(w.upper() for w in s.words)
        for prefix, handler in COMMANDS.items():
            if words[: len(prefix)] == prefix:
                return handler(engine, s, params, user)
    handler = HANDLERS.get(type(s), unsupported)
    return handler(engine, s, params, user)
