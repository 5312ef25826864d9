"""Cold-tier figures (issue 3): point query, full scan, hot merge, flush, open.

A SHARED table is built by ``INSERT ... SELECT FROM range(...)`` + ``FLUSH TABLE
t WAIT`` repeated once per segment. The peers read exactly the segment files
the table's ``manifest.json`` lists:

- point query by primary key vs DuckDB ``read_parquet([...])`` (target ≤ 3 ms
  and ≤ 0.5× DuckDB);
- ``COUNT(*)``/``SUM`` over the cold rows vs DataFusion scanning the same files
  directly (target ≤ 1.3×);
- the same scan after inserting hot rows, normalised by the direct DataFusion
  scan timed alongside it, against the cold-only ratio (target ≤ 1.3×, i.e.
  the merge adds ≤ 30%);
- flush throughput (target ≥ 200k rows/s);
- ``Engine.open`` on a data dir whose tables hold 1,000 segments (≤ 1 s).

Acceptance scale (10M scanned rows) needs ``--full``; the default runs every
figure at 1M rows and prints the scale.
"""

from __future__ import annotations

import os
import random
import time
from pathlib import Path
from typing import Any

from bench.bench_dml import load_engine
from bench.fixtures import (
    duckdb_connect,
    needs,
    open_engine,
    physical_column,
    segment_files,
    work_dir,
)
from bench.harness import (
    BenchConfig,
    BenchReport,
    Case,
    Row,
    Target,
    interleave,
    log,
    median,
    rows_from_samples,
    time_once,
)

NAME = "cold"
DDL = "(id BIGINT PRIMARY KEY, name TEXT, value DOUBLE)"
NS = "default"


def build_table(engine: Any, table: str, n_rows: int, n_segments: int) -> list[float]:
    """Create ``table`` with ``n_rows`` rows in ``n_segments`` flushes; flush rates in rows/s."""
    engine.execute(f"CREATE TABLE {table} {DDL}")
    per = n_rows // n_segments
    rates = []
    for s in range(n_segments):
        lo, hi = s * per, (n_rows if s == n_segments - 1 else (s + 1) * per)
        load_engine(engine, table, lo, hi)
        with needs("FLUSH TABLE"):
            took = time_once(lambda: engine.execute(f"FLUSH TABLE {table} WAIT"))
        rates.append((hi - lo) / took)
    return rates


def link_dir(files: list[str], dest: Path) -> Path:
    """A directory holding exactly ``files`` (hard links), for DataFusion's listing scan.

    DataFusion's Python ``read_parquet`` takes one path, not a list; a directory
    of links to precisely the manifest's files is the same multi-file scan.
    """
    dest.mkdir(parents=True)
    for i, f in enumerate(files):
        target = dest / f"{i:05d}-{Path(f).name}"
        try:
            os.link(f, target)
        except OSError:
            target.symlink_to(f)
    return dest


def run(cfg: BenchConfig) -> list[BenchReport]:
    n_point = cfg.pick(40_000, 1_000_000)
    seg_point = 20
    n_scan = cfg.pick(n_point, n_point, 10_000_000)
    seg_scan = cfg.pick(seg_point, seg_point, 40)
    n_hot = cfg.pick(1_000, 10_000)
    n_tables, segs_per_table = cfg.pick((2, 10), (10, 100))
    rounds = cfg.pick(3, cfg.rounds)
    report = BenchReport(
        NAME,
        "Cold tier: point query, scan, hot merge, flush, open (issue 3)",
        scale=(
            f"point query over {n_point:,} rows in {seg_point} segments; scan over "
            f"{n_scan:,} rows in {seg_scan} segments"
            f"{' (acceptance: 10M, use --full)' if n_scan < 10_000_000 else ''}; "
            f"{n_hot:,} hot rows; open with {n_tables * segs_per_table:,} segments"
            f"{' (acceptance: 1,000)' if n_tables * segs_per_table < 1000 else ''}"
        ),
    )
    with work_dir(cfg, NAME) as wd:
        engine = open_engine(wd / "engine")
        try:
            with needs("CREATE TABLE / INSERT ... SELECT"):
                log(f"{NAME}: building {n_point:,} rows in {seg_point} segments")
                rates = build_table(engine, "pts", n_point, seg_point)
            scan_table = "pts"
            if n_scan != n_point:
                log(f"{NAME}: building {n_scan:,} rows in {seg_scan} segments")
                rates += build_table(engine, "big", n_scan, seg_scan)
                scan_table = "big"
            report.rows.append(
                Row(
                    "flush throughput",
                    rates,
                    unit="rate",
                    target=Target(min_value=200_000),
                    note=f"{n_point // seg_point:,}+ rows per flush",
                )
            )
            data_dir = wd / "engine"
            _point_query(cfg, engine, data_dir, n_point, rounds, report)
            _scan(cfg, engine, data_dir, scan_table, n_scan, n_hot, rounds, report, wd)
        finally:
            engine.close()
        _open_many(cfg, wd / "many", n_tables, segs_per_table, rounds, report)
    return [report]


def _point_query(
    cfg: BenchConfig, engine: Any, data_dir: Path, n_rows: int, rounds: int, report: BenchReport
) -> None:
    files = segment_files(data_dir, NS, "pts")
    report.notes.append(f"pts: manifest lists {len(files)} segments")
    id_col = physical_column(files, "id", engine=engine, table="pts")
    dk = duckdb_connect()
    listing = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
    dk.execute(f"CREATE VIEW seg AS SELECT * FROM read_parquet([{listing}])")
    rng = random.Random(3)
    misses = {"engine": 0, "duckdb": 0}

    def engine_point() -> None:
        if len(engine.execute("SELECT * FROM pts WHERE id = ?", (rng.randrange(n_rows),))) != 1:
            misses["engine"] += 1

    def duckdb_point() -> None:
        i = rng.randrange(n_rows)
        if len(dk.execute(f'SELECT * FROM seg WHERE "{id_col}" = ?', (i,)).fetchall()) != 1:
            misses["duckdb"] += 1

    probe = engine.execute("SELECT * FROM pts WHERE id = ?", (n_rows // 2,))
    stats = probe.stats.get(f"{NS}.pts")
    if stats:
        report.notes.append(
            f"point query scanned {stats.get('segments_scanned', '?')} of "
            f"{stats.get('segments_total', '?')} segments "
            f"(pruned {stats.get('segments_pruned', '?')})"
        )
    log(f"{NAME}: point queries")
    samples = interleave(
        [Case("engine point query", engine_point), Case("duckdb read_parquet point", duckdb_point)],
        rounds=rounds,
        per_round=cfg.pick(10, 40),
    )
    report.rows += rows_from_samples(
        samples,
        peers={"engine point query": ("duckdb read_parquet point",)},
        targets={
            "engine point query": Target(
                max_value=3e-3, max_ratio=(("duckdb read_parquet point", 0.5),)
            )
        },
    )
    for who, n in misses.items():
        if n:
            report.notes.append(f"CHECK FAILED: {who} point query returned ≠ 1 row {n} times")
    dk.close()


def _scan(
    cfg: BenchConfig,
    engine: Any,
    data_dir: Path,
    table: str,
    n_rows: int,
    n_hot: int,
    rounds: int,
    report: BenchReport,
    wd: Path,
) -> None:
    from datafusion import SessionContext, col, lit
    from datafusion import functions as F

    files = segment_files(data_dir, NS, table)
    value_col = physical_column(files, "value", engine=engine, table=table)
    ctx = SessionContext()
    direct = ctx.read_parquet(str(link_dir(files, wd / f"links-{table}"))).aggregate(
        [], [F.count(lit(1)).alias("n"), F.sum(col(value_col)).alias("s")]
    )
    sql = f"SELECT COUNT(*) AS n, SUM(value) AS s FROM {table}"
    per_round = cfg.pick(2, 3)

    def check(label: str, expect_n: int) -> None:
        got = engine.execute(sql).rows()[0]
        ref = direct.to_arrow_table().to_pylist()[0]
        if got[0] != expect_n or ref["n"] != n_rows:
            report.notes.append(
                f"CHECK FAILED ({label}): engine n={got[0]}, expected {expect_n}; "
                f"direct n={ref['n']}, expected {n_rows}"
            )

    check("cold", n_rows)
    log(f"{NAME}: scans over {n_rows:,} cold rows")
    cold = interleave(
        [
            Case(f"engine count/sum {table}", lambda: engine.execute(sql)),
            Case("datafusion direct count/sum", lambda: direct.collect()),
        ],
        rounds=rounds,
        per_round=per_round,
        warmup=2,
    )
    engine_case = f"engine count/sum {table}"
    # The 1.3x target is stated for 10M cold rows (--full). At smaller scales the
    # engine's per-query planning (a fresh context that reads every segment's
    # footer) weighs against a DataFrame planned once and re-collected.
    report.rows += rows_from_samples(
        cold,
        peers={engine_case: ("datafusion direct count/sum",)},
        targets={engine_case: Target(max_ratio=(("datafusion direct count/sum", 1.3),))}
        if cfg.full
        else {},
    )
    if not cfg.full:
        report.notes.append("count/sum target (≤ 1.3×) applies at 10M rows: run with --full")

    with needs("INSERT ... SELECT into a flushed table"):
        load_engine(engine, table, n_rows, n_rows + n_hot)
    check("cold+hot", n_rows + n_hot)
    log(f"{NAME}: scans with {n_hot:,} hot rows")
    hot = interleave(
        [
            Case(f"engine count/sum {table} +{n_hot} hot", lambda: engine.execute(sql)),
            Case("datafusion direct count/sum (2nd phase)", lambda: direct.collect()),
        ],
        rounds=rounds,
        per_round=per_round,
        warmup=2,
    )
    hot_case = f"engine count/sum {table} +{n_hot} hot"
    report.rows += rows_from_samples(
        hot, peers={hot_case: ("datafusion direct count/sum (2nd phase)",)}
    )
    # Cold-only and with-hot scans ran in two phases; dividing each by the
    # direct scan timed alongside it cancels drift between the phases.
    cold_ratio = median(cold[engine_case]) / median(cold["datafusion direct count/sum"])
    hot_ratio = median(hot[hot_case]) / median(hot["datafusion direct count/sum (2nd phase)"])
    report.rows.append(
        Row(
            "hot-merge cost",
            [hot_ratio / cold_ratio],
            unit="x",
            target=Target(max_value=1.3),
            note="scan ratio with hot / without, each vs direct DataFusion",
        )
    )


def _open_many(
    cfg: BenchConfig,
    data_dir: Path,
    n_tables: int,
    segs_per_table: int,
    rounds: int,
    report: BenchReport,
) -> None:
    log(f"{NAME}: building {n_tables} tables × {segs_per_table} segments")
    engine = open_engine(data_dir)
    try:
        for t in range(n_tables):
            engine.execute(f"CREATE TABLE seg{t} {DDL}")
            for s in range(segs_per_table):
                lo = s * 100
                load_engine(engine, f"seg{t}", lo, lo + 100)
                engine.execute(f"FLUSH TABLE seg{t} WAIT")
    finally:
        engine.close()
    found = sum(len(segment_files(data_dir, NS, f"seg{t}")) for t in range(n_tables))
    report.notes.append(f"open: {n_tables} tables hold {found:,} segments")

    def open_only() -> float:
        t0 = time.perf_counter()
        e = open_engine(data_dir)
        took = time.perf_counter() - t0
        e.close()
        return took

    def open_and_count() -> float:
        t0 = time.perf_counter()
        e = open_engine(data_dir)
        for t in range(n_tables):
            e.execute(f"SELECT COUNT(*) FROM seg{t}")
        took = time.perf_counter() - t0
        e.close()
        return took

    log(f"{NAME}: timing open")
    samples = interleave(
        [
            Case("open engine", open_only, self_timed=True),
            Case("open + COUNT(*) every table", open_and_count, self_timed=True),
        ],
        rounds=rounds,
        per_round=1,
        warmup=1,
    )
    report.rows += rows_from_samples(samples, targets={"open engine": Target(max_value=1.0)})
