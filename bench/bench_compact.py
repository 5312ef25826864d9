"""Compaction: query time over a table whose cold rows were all updated,
before and after ``COMPACT TABLE``, against a fresh table holding the same
live rows; and compaction throughput (issue 12).

The updated table holds its rows in ``segments`` load segments plus one
segment per update round, with every original version superseded (delete
markers). The fresh table holds the same final rows, loaded and flushed once.
"""

from __future__ import annotations

import time
from typing import Any

import pyarrow as pa

from bench.fixtures import needs, open_engine, work_dir
from bench.harness import BenchConfig, BenchReport, Case, Row, Target, interleave, log, median

NAME = "compact"
DDL = "(id BIGINT PRIMARY KEY, grp INT, value DOUBLE)"


def _rows(start: int, stop: int, bump: float) -> pa.Table:
    ids = pa.array(range(start, stop), type=pa.int64())
    return pa.table(
        {
            "id": ids,
            "grp": pa.array([i % 100 for i in range(start, stop)], type=pa.int32()),
            "value": pa.array([i * 0.5 + bump for i in range(start, stop)], type=pa.float64()),
        }
    )


def run(cfg: BenchConfig) -> list[BenchReport]:
    n = cfg.pick(20_000, 200_000, 1_000_000)
    segments = cfg.pick(4, 10, 20)
    update_rounds = cfg.pick(4, 10, 20)
    rounds = cfg.pick(3, cfg.rounds)
    report = BenchReport(
        NAME,
        "Compaction: query time after cold updates, before/after COMPACT TABLE (issue 12)",
        scale=(
            f"{n:,} rows in {segments} segments, then all {n:,} updated cold in "
            f"{update_rounds} flushed rounds"
        ),
    )
    with work_dir(cfg, NAME) as wd:
        engine = open_engine(wd / "engine", background_jobs=False)
        try:
            with needs("COMPACT TABLE"):
                _run(cfg, engine, report, n, segments, update_rounds, rounds)
        finally:
            engine.close()
    return [report]


def _run(
    cfg: BenchConfig,
    engine: Any,
    report: BenchReport,
    n: int,
    segments: int,
    update_rounds: int,
    rounds: int,
) -> None:
    log(f"{NAME}: loading {n:,} rows into 'upd' and 'fresh'")
    # No Delta log: its flushes would rewrite the updated segments themselves,
    # and this measures reads over piled-up delete markers.
    engine.execute(f"CREATE TABLE upd {DDL} WITH (COMPACT_POLICY = 'none', DELTA = false)")
    engine.execute(f"CREATE TABLE fresh {DDL} WITH (COMPACT_POLICY = 'none')")
    step = n // segments
    for s in range(segments):
        engine.insert_arrow("upd", _rows(s * step, (s + 1) * step, 0.0))
        engine.flush("upd")
    per = n // update_rounds
    log(f"{NAME}: updating all {n:,} cold rows in {update_rounds} rounds")
    for r in range(update_rounds):
        engine.execute(
            "UPDATE upd SET value = value + 1 WHERE id >= ? AND id < ?", [r * per, (r + 1) * per]
        )
        engine.flush("upd")
    engine.insert_arrow("fresh", _rows(0, n, 1.0))
    engine.flush("fresh")

    scan = "SELECT grp, count(*) AS n, sum(value) AS s FROM {} GROUP BY grp ORDER BY grp"
    point = "SELECT value FROM {} WHERE id = ?"
    want = engine.execute(scan.format("fresh")).rows()
    if engine.execute(scan.format("upd")).rows() != want:
        report.notes.append("CHECK FAILED: the updated table differs from the fresh one")
    probe = [n // 2]

    def cases(label: str) -> list[Case]:
        return [
            Case(f"scan {label}", lambda: engine.execute(scan.format("upd"))),
            Case(f"scan fresh ({label} phase)", lambda: engine.execute(scan.format("fresh"))),
            Case(f"point {label}", lambda: engine.execute(point.format("upd"), probe)),
            Case(
                f"point fresh ({label} phase)", lambda: engine.execute(point.format("fresh"), probe)
            ),
        ]

    per_round = cfg.pick(3, 5)
    before = interleave(cases("before"), rounds=rounds, per_round=per_round, warmup=2)
    log(f"{NAME}: compacting")
    start = time.perf_counter()
    result = engine.execute("COMPACT TABLE upd WAIT")
    took = time.perf_counter() - start
    if engine.execute(scan.format("upd")).rows() != want:
        report.notes.append("CHECK FAILED: the compacted table differs from the fresh one")
    report.notes.append(result.message)
    after = interleave(cases("after"), rounds=rounds, per_round=per_round, warmup=2)
    for phase, samples in (("before", before), ("after", after)):
        for kind in ("scan", "point"):
            case, peer = f"{kind} {phase}", f"{kind} fresh ({phase} phase)"
            target = (
                Target(max_ratio=((peer, 1.10),)) if phase == "after" and kind == "scan" else None
            )
            report.rows.append(Row(case, samples[case], peers=(peer,), target=target))
            report.rows.append(Row(peer, samples[peer]))
    report.rows.append(Row("compaction throughput", [n / took], unit="rate", note="live rows/s"))
    report.rows.append(
        Row(
            "scan speed-up from compaction",
            [median(before["scan before"]) / median(after["scan after"])],
            unit="x",
        )
    )
