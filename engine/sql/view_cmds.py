"""CREATE [OR REPLACE] VIEW, DROP VIEW and SHOW VIEWS (how a query reads a
view lives in ``engine/sql/views.py``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pyarrow as pa

from engine.catalog.views import ViewDef, delete_view, find_view, list_views, put_view
from engine.errors import TableExistsError, TableNotFoundError, UnsupportedStatementError
from engine.names import check_name
from engine.result import Result
from engine.security import require
from engine.sql import statements as st
from engine.sql.select import run_view_query
from engine.sql.views import named_columns, parse_view_query

if TYPE_CHECKING:
    from engine.core import Database


def create_view(engine: Database, s: st.CreateView, params: dict[str, Any], user: str) -> Result:
    require(engine.users.get(user).role, "service", "CREATE VIEW")
    if s.params.style is not None or params:
        raise UnsupportedStatementError("A view's query cannot use parameters")
    ns = s.table.namespace or engine.namespace
    name = check_name(s.table.name, "view")
    engine.catalog.get_namespace(ns)
    if ns == "system":
        raise UnsupportedStatementError("Views cannot be created in the system namespace")
    if engine.catalog.find_table(ns, name) is not None:
        raise TableExistsError(f"A table named '{ns}.{name}' already exists")
    for column in s.columns:
        check_name(column, "column")
    tree = parse_view_query(s.query_sql)
    qualified = f"{ns}.{name}"
    # The query must run now, as its author: a view that cannot be read is refused.
    data = run_view_query(engine, user, tree, s.query_sql, ns, (qualified,))
    named_columns(data, s)
    view = ViewDef(ns, name, s.query_sql, user, engine.now_us(), s.columns)
    with engine.changing():
        existing = find_view(engine.store, ns, name)
        if existing is not None and not s.or_replace:
            raise TableExistsError(
                f"View '{qualified}' already exists (use CREATE OR REPLACE VIEW)"
            )
        txn = engine.begin()
        put_view(txn, view)
        txn.commit()
    return Result(message=f"View {qualified} created", rows_affected=0)


def drop_view(engine: Database, s: st.DropView, params: dict[str, Any], user: str) -> Result:
    require(engine.users.get(user).role, "service", "DROP VIEW")
    ns = s.table.namespace or engine.namespace
    qualified = f"{ns}.{s.table.name}"
    with engine.changing():
        view = find_view(engine.store, ns, s.table.name)
        if view is None:
            if s.if_exists:
                return Result(message=f"View {qualified} does not exist", rows_affected=0)
            if engine.catalog.find_table(ns, s.table.name) is not None:
                raise UnsupportedStatementError(
                    f"'{qualified}' is a table, not a view: use DROP TABLE"
                )
            raise TableNotFoundError(
                f"View '{qualified}' does not exist", namespace=ns, table=s.table.name
            )
        txn = engine.begin()
        delete_view(txn, view)
        txn.commit()
    return Result(message=f"View {qualified} dropped", rows_affected=0)


def show_views(engine: Database, s: st.ShowViews, params: dict[str, Any], user: str) -> Result:
    if s.namespace is not None:
        engine.catalog.get_namespace(s.namespace)
    rows = [
        {"namespace": v.namespace, "view_name": v.name, "sql": v.sql}
        for v in list_views(engine.store, s.namespace)
    ]
    schema = pa.schema(
        [("namespace", pa.string()), ("view_name", pa.string()), ("sql", pa.string())]
    )
    return Result(table=pa.Table.from_pylist(rows, schema=schema), is_query=True)
