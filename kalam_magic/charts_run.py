"""Running a chart's aggregate in the engine, in place of the cell's last query.

``chart_executor`` is a statement executor for ``session.run_sql``: every
statement runs as usual except the last, which, when the chart is computed
by the engine (hist, box, a bar of counts) and the statement is a query, is
wrapped by :func:`kalam_magic.charts.aggregate_sql` and only the aggregate
comes back. An error inside the query keeps pointing at what the user wrote:
the generated lines above it are subtracted from its line.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pyarrow as pa

from engine import KalamError, Result, is_query
from kalam_magic import charts
from kalam_magic.progress import ProgressBar
from kalam_magic.session import AnyEngine, Executor, execute


def _moved_back(err: KalamError, lines_above: int, statement_lines: int) -> KalamError:
    """``err`` positioned in the statement rather than in the generated SQL."""
    if isinstance(err.line, int):
        line = err.line - lines_above
        if 1 <= line <= statement_lines:
            err.line = line
        else:
            err.line, err.column = None, None  # in the generated part: the statement start
    return err


def _run_wrapped(
    engine: AnyEngine,
    sql: str,
    params: dict[str, Any] | None,
    user: str,
    progress: ProgressBar,
    wrapped: str,
    lines_above: int,
) -> Result:
    try:
        return execute(engine, wrapped, params, user, progress)
    except KalamError as err:
        raise _moved_back(err, lines_above, sql.count("\n") + 1) from None


def _hist(
    engine: AnyEngine,
    spec: charts.ChartSpec,
    sql: str,
    params: dict[str, Any] | None,
    user: str,
    progress: ProgressBar,
) -> Result:
    """Two scans: the range of ``--x``, then the count per bin (range bound as parameters)."""
    ranged, above = charts.hist_range_sql(spec, sql)
    lo, hi = _run_wrapped(engine, sql, params, user, progress, ranged, above).rows()[0]
    if lo is None:  # no value to count: no bins
        empty = {"bin": pa.array([], pa.int64())}
        if spec.color:
            empty["_c"] = pa.array([], pa.string())
        empty |= {k: pa.array([], pa.int64()) for k in ("n",)}
        empty |= {k: pa.array([], pa.float64()) for k in ("lo", "hi")}
        return Result(table=pa.table(empty), is_query=True)
    binned, above = charts.aggregate_sql(spec, sql)
    bound = {**(params or {}), **charts.hist_params(lo, hi)}
    result = _run_wrapped(engine, sql, bound, user, progress, binned, above)
    n = result.table.num_rows
    table = result.table.append_column("lo", pa.array([lo] * n, pa.float64())).append_column(
        "hi", pa.array([hi] * n, pa.float64())
    )
    return replace(result, table=table)


def chart_executor(spec: charts.ChartSpec, statement_count: int) -> Executor:
    """An executor that replaces the last query by the chart's aggregate when needed."""
    calls = 0

    def run(
        engine: AnyEngine, sql: str, params: dict[str, Any] | None, user: str, progress: ProgressBar
    ) -> Result:
        nonlocal calls
        calls += 1
        if calls < statement_count or not spec.aggregated or not is_query(sql):
            return execute(engine, sql, params, user, progress)
        # The columns first (planning only, no rows), so a wrong --x is a clear message.
        probe = f"SELECT * FROM (\n{sql}\n) AS _kalam_query LIMIT 0"
        schema = _run_wrapped(engine, sql, params, user, progress, probe, 1).table.schema
        charts.check_columns(spec, schema)
        if spec.kind == "hist":
            return _hist(engine, spec, sql, params, user, progress)
        wrapped, lines_above = charts.aggregate_sql(spec, sql)
        return _run_wrapped(engine, sql, params, user, progress, wrapped, lines_above)

    return run
