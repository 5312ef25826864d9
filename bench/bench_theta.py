"""Joins without an equality key (DataFusion's nested-loop join).

Two tables of N rows (10k by default, 1k with ``--quick``, 20k with
``--full``) in the engine (hot rows), in DuckDB, and as raw DataFusion
in-memory tables with DataFusion's default batch size. Each query joins
them on non-equalities only, with integer arithmetic the engine checks for
overflow (``engine/sql/checked_ints.py``). Rows: CPU per query, medians of
interleaved samples, next to raw DataFusion and DuckDB; and the engine at
a fixed 64-row batch (how every such join ran before the batch followed
the build side's size, ``engine.exec.query.nested_loop_batch``).

Standalone::

    PYTHONPATH=$PWD .venv/bin/python bench/bench_theta.py [rows]
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

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

NAME = "theta"
QUERIES = {
    "cross join, arithmetic filter": ("SELECT count(*) FROM t CROSS JOIN u WHERE t.a + u.a > 1000"),
    "range join": "SELECT count(*), sum(u.b) FROM t JOIN u ON u.a >= t.a AND u.a < t.a + 3",
}


@contextmanager
def _fixed_batch() -> Iterator[None]:
    """The engine with every nested-loop join at the smallest batch."""
    from engine.exec import query

    kept = query.nested_loop_batch
    query.nested_loop_batch = lambda rows: query.NESTED_LOOP_BATCH
    try:
        yield
    finally:
        query.nested_loop_batch = kept


def run(cfg: BenchConfig) -> Iterator[BenchReport]:
    import datafusion
    import duckdb

    n = cfg.pick(1_000, 10_000, 20_000)
    t, u = id_a_b_table(n, 0), id_a_b_table(n, 1)
    raw = datafusion.SessionContext(datafusion.SessionConfig().with_target_partitions(2))
    raw.register_record_batches("t", [t.to_batches()])
    raw.register_record_batches("u", [u.to_batches()])
    duck = duckdb.connect()
    duck.register("t", t)
    duck.register("u", u)
    report = BenchReport(NAME, "Joins without an equality key", scale=f"{n:,} x {n:,} rows, hot")
    with (
        work_dir(cfg, NAME) as path,
        open_engine(path, background_jobs=False, durability="async") as engine,
    ):
        engine.insert_arrow("t", t, primary_key="id")
        engine.insert_arrow("u", u, primary_key="id")
        for label, sql in QUERIES.items():
            got = [tuple(r) for r in engine.execute(sql).rows()]
            want = [tuple(r) for r in duck.execute(sql).fetchall()]
            if got != want:
                raise AssertionError(f"{sql}: engine {got} != duckdb {want}")
            samples = interleave(
                [
                    Case(
                        f"{label}: engine",
                        cpu_timed(lambda s=sql: engine.execute(s)),
                        self_timed=True,
                    ),
                    Case(
                        f"{label}: raw datafusion",
                        cpu_timed(lambda s=sql: raw.sql(s).collect()),
                        self_timed=True,
                    ),
                    Case(
                        f"{label}: duckdb",
                        cpu_timed(lambda s=sql: duck.execute(s).fetchall()),
                        self_timed=True,
                    ),
                ],
                rounds=cfg.rounds,
                per_round=cfg.pick(2, 3),
                warmup=1,
                block=1,
            )
            report.rows.append(
                Row(
                    f"{label}: engine cpu",
                    samples[f"{label}: engine"],
                    peers=(f"{label}: raw datafusion", f"{label}: duckdb"),
                )
            )
            for peer in ("raw datafusion", "duckdb"):
                report.rows.append(Row(f"{label}: {peer}", samples[f"{label}: {peer}"]))
            with _fixed_batch():
                before = interleave(
                    [
                        Case(
                            f"{label}: engine at 64 rows a batch",
                            cpu_timed(lambda s=sql: engine.execute(s)),
                            self_timed=True,
                        )
                    ],
                    rounds=1,
                    per_round=cfg.pick(1, 2),
                    warmup=0,
                )
            report.rows.append(
                Row(
                    f"{label}: engine at 64 rows a batch",
                    before[f"{label}: engine at 64 rows a batch"],
                    peers=(f"{label}: engine cpu",),
                    note="before: every nested-loop join at the smallest batch",
                )
            )
            log(f"theta {label} done")
    duck.close()
    yield report


if __name__ == "__main__":
    size = int(sys.argv[1]) if len(sys.argv) > 1 else None
    config = BenchConfig(quick=size is not None and size < 5_000)
    for rep in run(config):
        print(format_report(rep))
