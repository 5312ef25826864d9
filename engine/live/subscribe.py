"""SUBSCRIBE and KILL LIVE QUERY: start a live query, end one.

The initial rows are read by the ordinary query path (the session user's
scopes, hot rows merged with cold segments) while the engine lock is held:
the subscription registers, the table's snapshot is taken, then the lock is
released before DataFusion runs the scan. Every change published after the
registration is one the snapshot does not include.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pyarrow as pa

from engine.errors import (
    KalamError,
    PermissionDeniedError,
    SqlParseError,
    UnsupportedStatementError,
)
from engine.exec.query import QueryRunner
from engine.live.evaluate import Evaluator, overflow_error
from engine.live.subscription import DEFAULT_MAX_PENDING, Subscription
from engine.result import Result
from engine.sql import statements as st
from engine.sql.select import scan_source

if TYPE_CHECKING:
    from engine.core import Database


def subscribe(
    db: Database, s: st.Subscribe, user: str, *, max_pending: int = DEFAULT_MAX_PENDING
) -> Subscription:
    """Start the live query ``s`` for ``user``; returns it with its initial rows."""
    namespace = s.table.namespace or db.namespace
    if namespace == "system":
        raise UnsupportedStatementError(
            f"system.{s.table.name} is a system table: live queries follow Kalam tables only"
        )
    table = db.resolve(s.table)
    prov = db.provider(table)
    evaluator = Evaluator(s, db.namespace, table)
    sub = Subscription(
        db.subscriptions,
        db.subscriptions.new_id(),
        user=user,
        sql=s.sql,
        table=table,
        scopes=prov.read_scopes(user),
        evaluator=evaluator,
        created_us=db.now_us(),
        max_pending=max_pending,
    )
    held = [True]
    db.lock.acquire()

    def collect(df: Any) -> pa.Table:
        # The snapshot (hot rows, manifests) is taken: let writers go on.
        if held[0]:
            held[0] = False
            db.lock.release()
        return db.live.collect(df)

    try:
        if db.catalog.table_by_id(table.table_id) != table:
            raise UnsupportedStatementError(
                f"Table {table.qualified_name} changed while subscribing; try again"
            )
        db.subscriptions.register(sub)
        runner = QueryRunner(
            lambda ns, name, hidden, deleted: scan_source(db, user, ns, name, hidden, deleted),
            lambda ns, name: True,
            collect,
        )
        try:
            full, _ = runner.run(
                s.query.tree,
                evaluator.full_sql,
                {},
                namespace=db.namespace,
                hidden=evaluator.hidden,
            )
        except KalamError as exc:
            raise overflow_error(exc) or exc from None
        sub.take_initial(full)
    except BaseException:
        db.subscriptions.remove(sub, "subscribing failed")
        raise
    finally:
        if held[0]:
            held[0] = False
            db.lock.release()
    db.subscriptions.activate(sub)
    return sub


def run_subscribe(db: Database, s: st.Subscribe, params: dict[str, Any], user: str) -> Result:
    """The handler: a query result of the initial rows, carrying the subscription."""
    sub = subscribe(db, s, user)
    return Result(
        table=sub.initial,
        is_query=True,
        message=f"Subscribed: live query {sub.id}",
        subscription=sub,
    )


def kill_live_query(db: Database, s: st.KalamCommand, params: dict[str, Any], user: str) -> Result:
    """``KILL LIVE QUERY '<id>'``: own subscriptions, or any for dba / system."""
    words = list(s.words)
    if len(words) != 4 or [w.upper() for w in words[1:3]] != ["LIVE", "QUERY"]:
        raise SqlParseError("Syntax error: expected KILL LIVE QUERY '<subscription_id>'")
    sub_id = words[3].strip("'\"")
    target = db.subscriptions.find(sub_id)
    role = db.users.get(user).role
    if target is not None and target.user != user and role not in ("dba", "system"):
        raise PermissionDeniedError("Permission denied: you may only kill your own live queries")
    db.subscriptions.kill(sub_id, user)
    return Result(message=f"Live query {sub_id} was closed", rows_affected=1)
