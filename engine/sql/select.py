"""SELECT and EXPLAIN: resolve table references for the session user and run
the query in DataFusion."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from engine.exec.query import QueryRunner, ScanSource
from engine.providers.base import ScanOptions
from engine.result import Result
from engine.sql import statements as st

if TYPE_CHECKING:
    from engine.api import Engine


def scan_source(
    engine: Engine, user: str, namespace: str | None, name: str, hidden: bool, deleted: bool
) -> ScanSource:
    ns = namespace or engine.namespace
    if ns == "system":
        from engine.system import system_table

        data = system_table(engine, name, user, engine.users.get(user).role)
        return ScanSource(
            "system", name, data.schema, lambda ctx, scans: (data, {}), base_table=False
        )
    table = engine.catalog.get_table(ns, name)
    prov = engine.provider(table)
    options = ScanOptions(hidden=hidden, include_deleted=deleted, now_ms=engine.clock_ms())

    def build(ctx: Any, scans: Any) -> tuple[Any, dict[str, int]]:
        return prov.merged(ctx, user, options, scans)

    return ScanSource(
        ns,
        name,
        table.arrow_schema(hidden=hidden),
        build,
        needs_filters=prov.has_cold(user),
    )


def runner_for(engine: Engine, user: str) -> QueryRunner:
    def resolve(ns: str | None, name: str, hidden: bool, deleted: bool) -> ScanSource:
        return scan_source(engine, user, ns, name, hidden, deleted)

    def is_base(ns: str | None, name: str) -> bool:
        ns = ns or engine.namespace
        return ns != "system" and engine.catalog.find_table(ns, name) is not None

    return QueryRunner(resolve, is_base, engine.live.collect)


def run_select(engine: Engine, s: st.Query, params: dict[str, Any], user: str) -> Result:
    table, stats = runner_for(engine, user).run(
        s.tree,
        s.explain_sql,
        params,
        namespace=engine.namespace,
        stmt_line=s.line,
        stmt_column=s.column,
    )
    if s.explain:
        table = _explain_with_stats(table, stats)
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
