"""SELECT and EXPLAIN: resolve table references for the session user and run
the query in DataFusion."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlglot import exp

from engine.catalog.views import find_view
from engine.errors import KalamError, TableNotFoundError
from engine.exec.query import QueryRunner, ScanSource, hidden_columns_used
from engine.providers.base import ScanOptions, build_arrow
from engine.result import Result
from engine.sql import statements as st
from engine.sql import views
from engine.sql.mapping import ident
from engine.sql.point import conjuncts, live_version, point_key
from engine.sql.retry import RewritingRunner
from engine.types import check_decimal_results

if TYPE_CHECKING:
    from engine.core import Database


def scan_source(
    engine: Database,
    user: str,
    namespace: str | None,
    name: str,
    hidden: bool,
    deleted: bool,
    *,
    default_ns: str | None = None,
    expanding: tuple[str, ...] = (),
) -> ScanSource:
    ns = namespace or default_ns or engine.namespace
    if ns == "information_schema":
        raise TableNotFoundError(
            f"information_schema.{name} is not available: query system.tables, "
            "system.columns or system.namespaces instead"
        )
    if ns == "system":
        from engine.system import system_table

        data = system_table(engine, name, user, engine.users.get(user).role)
        return ScanSource(
            "system", name, data.schema, lambda ctx, scans: (data, {}), base_table=False
        )
    table = engine.catalog.find_table(ns, name)
    if table is None:
        view = find_view(engine.store, ns, name)
        if view is not None:

            def run(tree: Any, sql: str, view_ns: str, inner: tuple[str, ...]) -> Any:
                return run_view_query(engine, user, tree, sql, view_ns, inner)

            return views.expand(engine, view, expanding, run)
        table = engine.catalog.get_table(ns, name)  # raises the usual not-found error
    prov = engine.provider(table)
    options = ScanOptions(hidden=hidden, include_deleted=deleted, now_ms=engine.clock_ms())

    def build(ctx: Any, scans: Any) -> tuple[Any, dict[str, int]]:
        return prov.merged(ctx, user, options, scans)

    return ScanSource(
        ns,
        name,
        table.arrow_schema(hidden=hidden),
        build,
        needs_filters=prov.can_prune(user),
        aggregates=lambda wanted, ctx: prov.aggregates_from_metadata(user, options, wanted, ctx),
        head=lambda ctx, n: prov.first_rows(ctx, user, options, n),
    )


def runner_for(
    engine: Database,
    user: str,
    *,
    default_ns: str | None = None,
    expanding: tuple[str, ...] = (),
) -> RewritingRunner:
    """The runner of a statement's queries as ``user``; ``default_ns`` and
    ``expanding`` are set while a view's query runs (its namespace, the views
    being expanded)."""

    def resolve(ns: str | None, name: str, hidden: bool, deleted: bool) -> ScanSource:
        return scan_source(
            engine, user, ns, name, hidden, deleted, default_ns=default_ns, expanding=expanding
        )

    def is_base(ns: str | None, name: str) -> bool:
        ns = ns or default_ns or engine.namespace
        return ns != "system" and engine.catalog.find_table(ns, name) is not None

    def columns_of(ns: str | None, name: str) -> list[str] | None:
        try:
            return list(resolve(ns, name, False, False).schema.names)
        except KalamError:
            return None

    def schema_of(ns: str | None, name: str) -> Any:
        try:
            return resolve(ns, name, False, False).schema
        except KalamError:
            return None

    return RewritingRunner(
        QueryRunner(resolve, is_base, engine.live.collect, engine.queries), columns_of, schema_of
    )


def run_view_query(
    engine: Database,
    user: str,
    tree: Any,
    sql: str,
    namespace: str,
    expanding: tuple[str, ...],
) -> Any:
    """A view's query, run as ``user`` with its names resolved in ``namespace``."""
    runner = runner_for(engine, user, default_ns=namespace, expanding=expanding)
    table, _ = runner.run(tree, sql, {}, namespace=namespace)
    return table


def _point_lookup(
    engine: Database, tree: Any, params: dict[str, Any], user: str
) -> dict[str, tuple[Any, dict[str, int]]] | None:
    """For ``SELECT ... FROM t WHERE pk = v [AND ...]`` over one Kalam table:
    that key's live version as the table's only row, found without a scan.
    The query itself still runs in DataFusion over that row."""
    if not isinstance(tree, exp.Select) or any(
        tree.args.get(k) for k in ("with_", "joins", "laterals")
    ):
        return None
    where = tree.args.get("where")
    tables = list(tree.find_all(exp.Table))
    from_ = tree.args.get("from_")
    if where is None or len(tables) != 1 or from_ is None or from_.this is not tables[0]:
        return None
    ref = tables[0]
    if not isinstance(ref.this, exp.Identifier) or hidden_columns_used(tree)[0]:
        return None
    ns = ident(ref.args["db"]) if ref.args.get("db") else engine.namespace
    table = engine.catalog.find_table(ns, ident(ref.this)) if ns != "system" else None
    if table is None or not table.key_columns:
        return None
    found, key = point_key(table, where.this, params, names=(ref.alias_or_name,))
    prov = engine.provider(table)
    scopes = prov.read_scopes(user)
    if not found or len(scopes) != 1:
        return None
    version, segment = live_version(prov, table, scopes[0], key, engine.clock_ms())
    rows = [(version[0], False, version[1])] if version is not None else []
    manifest = prov.cold.manifest(scopes[0])
    total = len(manifest.segments) if manifest is not None else 0
    read = 1 if segment is not None else 0
    figures = {
        "segments_total": total,
        "segments_scanned": read,
        "segments_pruned": total - read,
        "hot_rows": len(rows) - read,
        "cold_rows_scanned": segment.row_count if segment is not None else 0,
    }
    return {f"{ns}.{table.name}": (build_arrow(table, rows, hidden=False), figures)}


def _only_the_key(engine: Database, tree: Any, qualified: str) -> bool:
    """Whether a query ``_point_lookup`` answered is ``SELECT * FROM t WHERE
    <the key equalities>`` and nothing else. Its result is then the looked-up
    row as it is, with no DataFusion plan (~0.7 ms of the 1-2 ms a point
    query takes): ``point_key`` found every key column pinned, and with no
    more terms than key columns, no term is left to filter on."""
    if {k for k, v in tree.args.items() if v} - {"expressions", "from_", "where"}:
        return False
    if len(tree.expressions) != 1 or not isinstance(tree.expressions[0], exp.Star):
        return False
    ns, _, name = qualified.partition(".")
    table = engine.catalog.find_table(ns, name)
    return table is not None and len(conjuncts(tree.args["where"].this)) == len(table.key_columns)


def run_select(engine: Database, s: st.Query, params: dict[str, Any], user: str) -> Result:
    found = None if s.explain else _point_lookup(engine, s.tree, params, user)
    if found is not None:
        ((qualified, (data, figures)),) = found.items()
        if _only_the_key(engine, s.tree, qualified):
            return Result(table=data, is_query=True, stats={qualified: figures})
    table, stats = runner_for(engine, user).run(
        s.tree,
        s.explain_sql,
        params,
        namespace=engine.namespace,
        stmt_line=s.line,
        stmt_column=s.column,
        # EXPLAIN shows the plan of a real scan, so it never takes the lookup shortcut.
        overrides=found,
        metadata=not s.explain,
        explain=s.explain,
    )
    if s.explain:
        table = _explain_with_stats(table, stats)
    else:
        check_decimal_results(table)  # DataFusion's decimal overflows that did not raise
    return Result(table=table, is_query=True, stats=stats)


def _explain_with_stats(table: Any, stats: dict[str, dict[str, int]]) -> Any:
    import pyarrow as pa

    rows = table.to_pylist()
    for name, figures in sorted(stats.items()):
        text = ", ".join(f"{k}={v}" for k, v in figures.items())
        rows.append({"plan_type": "kalam_scan", "plan": f"{name}: {text}"})
    return pa.Table.from_pylist(
        rows, schema=pa.schema([("plan_type", pa.string()), ("plan", pa.string())])
    )
