"""Views: CREATE [OR REPLACE] VIEW, DROP VIEW, SHOW VIEWS, and how a query
reads one.

A view is stored as the query its author wrote (``engine/catalog/views.py``)
and expanded when a query names it: the view's query runs through the same
runner as the querying statement, *as the querying user*, so a view over a
USER table shows each user only their own rows and a view over a system
table needs the reader's own right to read it. A view is never a way around
isolation. Its result is handed to the outer query as a table. A view whose
table was dropped or whose column was renamed fails with an error naming the
view. Views are read-only: INSERT / UPDATE / DELETE on one are refused.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson
import pyarrow as pa
import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from engine.catalog.views import ViewDef, find_view, list_views
from engine.errors import (
    KalamError,
    QueryError,
    SqlParseError,
    UnsupportedStatementError,
)
from engine.sql import statements as st
from engine.sql.tokens import dialect_for

if TYPE_CHECKING:
    from engine.core import Database
    from engine.exec.query import ScanSource

# Views naming views naming views ...: deeper than this is surely a cycle.
MAX_DEPTH = 32


def parse_view_query(sql: str) -> exp.Expr:
    try:
        tree = sqlglot.parse_one(sql, read=dialect_for(sql))
    except SqlglotError as exc:
        raise SqlParseError(f"Syntax error in the view's query: {exc}") from None
    if not isinstance(tree, exp.Query):
        raise UnsupportedStatementError("A view is defined by a query (SELECT ...)")
    return tree


def expand(
    engine: Database,
    view: ViewDef,
    expanding: tuple[str, ...],
    run: Callable[[exp.Expr, str, str, tuple[str, ...]], pa.Table],
) -> ScanSource:
    """The view as a table of the querying statement: its query's result.
    ``run(tree, sql, namespace, expanding)`` runs a query as the querying user."""
    from engine.exec.query import ScanSource

    name = view.qualified_name
    if name in expanding or len(expanding) >= MAX_DEPTH:
        raise QueryError(f"View '{name}' refers to itself (through {' -> '.join(expanding)})")
    try:
        data = run(parse_view_query(view.sql), view.sql, view.namespace, (*expanding, name))
    except KalamError as exc:
        if exc.message.startswith("View '"):
            raise  # an inner view already named itself as the cause
        message = f"View '{name}' cannot be read: {exc.message}"
        try:  # keep the cause's class (a permission error stays one)
            wrapped: KalamError = type(exc)(message, **exc.fields)
        except TypeError:
            wrapped = QueryError(message)
        raise wrapped from None
    data = named_columns(data, view)
    return ScanSource(
        view.namespace, view.name, data.schema, lambda ctx, scans: (data, {}), base_table=False
    )


def named_columns(data: pa.Table, view: ViewDef | st.CreateView) -> pa.Table:
    columns = list(view.columns)
    if columns:
        if len(columns) != data.num_columns:
            raise QueryError(
                f"The view names {len(columns)} column(s) but its query returns {data.num_columns}"
            )
        data = data.rename_columns(columns)
    names = data.column_names
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise QueryError(
            f"A view's columns need distinct names; {', '.join(dupes)} repeats: alias them (AS ...)"
        )
    return data


def view_rows(engine: Database) -> list[dict[str, Any]]:
    """system.tables rows for views (table_type VIEW, the query in options)."""
    return [
        {
            "namespace": v.namespace,
            "table_name": v.name,
            "table_type": "VIEW",
            "created_at": v.created_at_us,
            "updated_at": v.created_at_us,
            "schema_version": 1,
            "options": orjson.dumps({"table_type": "VIEW", "view_sql": v.sql}).decode(),
        }
        for v in list_views(engine.store)
    ]


def refuse_view_target(engine: Database, s: st.Statement) -> None:
    """INSERT / UPDATE / DELETE / ALTER / DROP TABLE naming a view: a clear refusal."""
    if isinstance(s, st.Query | st.CreateView | st.DropView | st.ShowViews):
        return
    table = getattr(s, "table", None)
    if not isinstance(table, st.TableRef) or not table.name:
        return
    ns = table.namespace or engine.namespace
    if ns == "system" or engine.catalog.find_table(ns, table.name) is not None:
        return
    if find_view(engine.store, ns, table.name) is not None:
        verb = s.sql.split(None, 1)[0].upper() if s.sql.strip() else "This statement"
        raise UnsupportedStatementError(
            f"'{ns}.{table.name}' is a view: {verb} works on tables only "
            "(views are read-only; change the tables it reads)"
        )
