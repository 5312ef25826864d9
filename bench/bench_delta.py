"""Delta Lake publishing: flush throughput with and without the Delta commit
(issue 12: the commit may add at most 15%), and the cost of a flush whose
updates make its Delta publish rewrite a segment.

Two tables of the same shape, one with ``DELTA = false``; each sample loads
the same number of new rows into a table (untimed) and times its FLUSH. The
cases alternate, so both see the same machine noise and the same growth in
segments and Delta versions.
"""

from __future__ import annotations

import itertools
import time
from typing import Any

import pyarrow as pa

from bench.fixtures import open_engine, work_dir
from bench.harness import BenchConfig, BenchReport, Case, Row, Target, interleave, log, median

NAME = "delta"
DDL = "(id BIGINT PRIMARY KEY, grp INT, value DOUBLE, label TEXT)"


def _rows(start: int, stop: int) -> pa.Table:
    ids = range(start, stop)
    return pa.table(
        {
            "id": pa.array(ids, type=pa.int64()),
            "grp": pa.array([i % 100 for i in ids], type=pa.int32()),
            "value": pa.array([i * 0.5 for i in ids], type=pa.float64()),
            "label": pa.array([f"row-{i}" for i in ids], type=pa.string()),
        }
    )


def run(cfg: BenchConfig) -> list[BenchReport]:
    batch = cfg.pick(1_000, 50_000, 200_000)
    rounds = cfg.pick(2, cfg.rounds)
    per_round = cfg.pick(1, 4)
    report = BenchReport(
        NAME,
        "Delta Lake publishing: FLUSH with and without the Delta commit (issue 12)",
        scale=f"{batch:,} new rows per flush, 4 columns",
    )
    with work_dir(cfg, NAME) as wd:
        engine = open_engine(wd / "engine", background_jobs=False)
        try:
            _run(engine, report, batch, rounds, per_round)
        finally:
            engine.close()
    return [report]


def _run(engine: Any, report: BenchReport, batch: int, rounds: int, per_round: int) -> None:
    engine.execute(f"CREATE TABLE pub {DDL} WITH (COMPACT_POLICY = 'none')")
    engine.execute(f"CREATE TABLE plain {DDL} WITH (COMPACT_POLICY = 'none', DELTA = false)")
    starts = {"pub": itertools.count(0, batch), "plain": itertools.count(0, batch)}

    def flush(table: str) -> float:
        start = next(starts[table])
        engine.insert_arrow(table, _rows(start, start + batch))
        t0 = time.perf_counter()
        engine.flush(table)
        return time.perf_counter() - t0

    def both(delta: str, plain: str, timed: Any) -> dict[str, list[float]]:
        """``timed(table)`` on the Delta table as ``delta`` and the plain one
        as ``plain``, interleaved."""
        return interleave(
            [
                Case(delta, lambda: timed("pub"), self_timed=True),
                Case(plain, lambda: timed("plain"), self_timed=True),
            ],
            rounds=rounds,
            per_round=per_round,
            warmup=1,
            block=1,
        )

    log(f"{NAME}: timing flushes of {batch:,} rows")
    samples = both("flush with Delta commit", "flush without Delta", flush)
    report.rows.append(
        Row(
            "flush with Delta commit",
            samples["flush with Delta commit"],
            peers=("flush without Delta",),
            target=Target(max_ratio=(("flush without Delta", 1.15),)),
        )
    )
    report.rows.append(Row("flush without Delta", samples["flush without Delta"]))
    for case in ("flush with Delta commit", "flush without Delta"):
        report.rows.append(
            Row(f"{case}: throughput", [batch / median(samples[case])], unit="rate", note="rows/s")
        )

    # An update of a few cold rows: the Delta publish rewrites the segments
    # holding their old versions (a plain table only records delete markers).
    def update_flush(table: str) -> float:
        probe = next(starts[table]) % batch
        engine.execute(f"UPDATE {table} SET value = value + 1 WHERE id = ?", [probe])
        t0 = time.perf_counter()
        engine.flush(table)
        return time.perf_counter() - t0

    upd = both("flush of one cold update, Delta", "flush of one cold update, plain", update_flush)
    report.rows.append(
        Row(
            "flush of one cold update, Delta",
            upd["flush of one cold update, Delta"],
            peers=("flush of one cold update, plain",),
            note="rewrites the segment holding the old version",
        )
    )
    report.rows.append(
        Row("flush of one cold update, plain", upd["flush of one cold update, plain"])
    )
    if (
        engine.execute("SELECT count(*) FROM pub").scalar()
        != engine.execute("SELECT count(*) FROM plain").scalar()
    ):
        report.notes.append("CHECK FAILED: the two tables hold different row counts")
