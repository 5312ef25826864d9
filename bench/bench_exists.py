"""Uncorrelated EXISTS: a constant per query, not a nested loop per row.

Two tables of N rows (1M by default, 20k with ``--quick``), flushed to
segments, in the engine and in DuckDB. Each query filters the outer table
by an uncorrelated ``EXISTS (SELECT ... FROM u WHERE ...)`` (true, false,
under NOT, under OR, next to another condition). Rows: the engine's CPU and
wall time per query next to DuckDB's, medians of interleaved samples; and,
with a few samples only, the engine running the query as written
(``constant_exists`` switched off), i.e. before the rewrite: DataFusion's
keyless semi join, a nested loop (seconds at 1M x 1M rows).

A second report times row-valued ``(a, b) [NOT] IN (SELECT ...)``
(``engine/sql/row_values.py``) over the same tables next to DuckDB, and a
one-column ``a NOT IN (SELECT ...)``, which the same module spells as a row
of one (DataFusion's null-aware anti join took 28.9 s at 1M x 1M rows).

Standalone::

    PYTHONPATH=$PWD .venv/bin/python bench/bench_exists.py [rows]
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


from bench.fixtures import id_a_b_table, open_engine, work_dir  # noqa: E402
from bench.harness import (  # noqa: E402
    BenchConfig,
    BenchReport,
    Case,
    Row,
    cpu_timed,
    format_report,
    interleave,
    log,
)

NAME = "exists"
QUERIES = {
    "true": "SELECT count(*) FROM t WHERE EXISTS (SELECT 1 FROM u WHERE u.a = 5)",
    "false": "SELECT count(*) FROM t WHERE EXISTS (SELECT 1 FROM u WHERE u.a = -1)",
    "not": "SELECT count(*) FROM t WHERE NOT EXISTS (SELECT 1 FROM u WHERE u.a = 5)",
    "or": "SELECT count(*) FROM t WHERE t.b > 50 OR EXISTS (SELECT 1 FROM u WHERE u.a = -1)",
    "and": "SELECT count(*) FROM t WHERE t.b > 50 AND EXISTS (SELECT 1 FROM u WHERE u.b = 7)",
    "no exists (floor)": "SELECT count(*) FROM t WHERE t.b > 50",
}
ROW_QUERIES = {
    "row in": "SELECT count(*) FROM t WHERE (a, b) IN (SELECT a, b FROM u)",
    "row not in": "SELECT count(*) FROM t WHERE (a, b) NOT IN (SELECT a, b FROM u)",
    "not in (one column)": "SELECT count(*) FROM t WHERE a NOT IN (SELECT a FROM u)",
    "row not in, as a value": (
        "SELECT count(*) FROM t WHERE ((a, b) NOT IN (SELECT a, b FROM u)) IS NOT FALSE"
    ),
}


@contextmanager
def _as_written() -> Iterator[None]:
    """The engine without the rewrite: uncorrelated EXISTS reaches DataFusion."""
    from engine.sql import constant_exists

    kept = constant_exists.computed_once
    constant_exists.computed_once = lambda sql, columns_of: None
    try:
        yield
    finally:
        constant_exists.computed_once = kept


def _compare(
    cfg: BenchConfig, report: BenchReport, label: str, sql: str, engine: Any, duck: Any
) -> None:
    """CPU and wall rows of ``sql`` in the engine next to DuckDB (answers checked)."""
    got = engine.execute(sql).rows()
    want = duck.execute(sql).fetchall()
    if [tuple(r) for r in got] != [tuple(r) for r in want]:
        raise AssertionError(f"{sql}: engine {got} != duckdb {want}")
    eng_fn = lambda: engine.execute(sql).rows()  # noqa: E731
    duck_fn = lambda: duck.execute(sql).fetchall()  # noqa: E731
    samples = interleave(
        [
            Case(f"{label}: engine cpu", cpu_timed(eng_fn), self_timed=True),
            Case(f"{label}: duckdb cpu", cpu_timed(duck_fn), self_timed=True),
            Case(f"{label}: engine wall", eng_fn),
            Case(f"{label}: duckdb wall", duck_fn),
        ],
        rounds=cfg.rounds,
        per_round=cfg.pick(3, 7),
        warmup=1,
        block=1,
    )
    for kind in ("cpu", "wall"):
        report.rows.append(
            Row(
                f"{label}: engine {kind}",
                samples[f"{label}: engine {kind}"],
                peers=(f"{label}: duckdb {kind}",),
            )
        )
        report.rows.append(Row(f"{label}: duckdb {kind}", samples[f"{label}: duckdb {kind}"]))


def run(cfg: BenchConfig) -> Iterator[BenchReport]:
    import duckdb

    n = cfg.pick(20_000, 1_000_000, 1_000_000)
    t, u = id_a_b_table(n, 0), id_a_b_table(n, 1)
    with (
        work_dir(cfg, NAME) as path,
        open_engine(path, background_jobs=False, durability="async") as engine,
    ):
        engine.insert_arrow("t", t, primary_key="id")
        engine.insert_arrow("u", u, primary_key="id")
        engine.execute("FLUSH TABLE t WAIT")
        engine.execute("FLUSH TABLE u WAIT")
        duck = duckdb.connect()
        duck.register("t_in", t)
        duck.register("u_in", u)
        duck.execute("CREATE TABLE t AS SELECT * FROM t_in")
        duck.execute("CREATE TABLE u AS SELECT * FROM u_in")
        report = BenchReport(NAME, "Uncorrelated EXISTS", scale=f"{n:,} x {n:,} rows, cold")
        for label, sql in QUERIES.items():
            _compare(cfg, report, label, sql, engine, duck)
            if label in ("true", "not"):
                eng_fn = lambda sql=sql: engine.execute(sql).rows()  # noqa: E731
                with _as_written():
                    before = interleave(
                        [
                            Case(
                                f"{label}: engine as written cpu",
                                cpu_timed(eng_fn),
                                self_timed=True,
                            )
                        ],
                        rounds=1,
                        per_round=cfg.pick(1, 3),
                        warmup=0,
                    )
                report.rows.append(
                    Row(
                        f"{label}: engine as written cpu",
                        before[f"{label}: engine as written cpu"],
                        peers=(f"{label}: engine cpu",),
                        note="before the rewrite: DataFusion's nested-loop semi join",
                    )
                )
            log(f"exists {label} done")
        rows = BenchReport(NAME, "Row-valued IN", scale=f"{n:,} x {n:,} rows, cold")
        for label, sql in ROW_QUERIES.items():
            _compare(cfg, rows, label, sql, engine, duck)
            log(f"exists {label} done")
        duck.close()
    yield report
    yield rows


if __name__ == "__main__":
    size = int(sys.argv[1]) if len(sys.argv) > 1 else None
    config = BenchConfig(quick=size is not None and size < 100_000)
    for rep in run(config):
        print(format_report(rep))
