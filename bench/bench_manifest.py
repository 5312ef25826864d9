"""Flush cost against segment count (issue 15, "Metadata that scales").

A small flush (500 rows) into a SHARED table that already has 20 / 200 /
2,000 segments (``COMPACT_POLICY 'none'``), interleaved across the three
tables. Target: the 2,000-segment flush costs at most 1.5x the 20-segment one
(the manifest commit appends; it does not rewrite every segment's entry).

The tables are built with one FLUSH each, split into many small segments (the
flush job's segment size is lowered while building), so building 2,000
segments does not itself cost 2,000 flushes.

Profile one size (cProfile, top functions by cumulative time)::

    PYTHONPATH=$PWD .venv/bin/python bench/bench_manifest.py --profile 2000
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import pyarrow as pa  # noqa: E402

from bench.fixtures import needs, open_engine, work_dir  # noqa: E402
from bench.harness import (  # noqa: E402
    BenchConfig,
    BenchReport,
    Case,
    Target,
    interleave,
    log,
    rows_from_samples,
)

NAME = "manifest"
FLUSH_ROWS = 500


def _rows(lo: int, hi: int) -> pa.Table:
    ids = pa.array(range(lo, hi), pa.int64())
    return pa.table({"id": ids, "value": pa.array([float(i) for i in range(lo, hi)])})


class Scaled:
    """One table with ``segments`` segments and a counter for fresh keys."""

    def __init__(self, engine: Any, segments: int) -> None:
        import engine.jobs.flush as flush_job

        self.engine = engine
        self.name = f"m{segments}"
        engine.execute(
            f"CREATE TABLE {self.name} (id BIGINT PRIMARY KEY, value DOUBLE) "
            "WITH (COMPACT_POLICY = 'none')"
        )
        per = 10
        saved = flush_job.SEGMENT_ROWS
        flush_job.SEGMENT_ROWS = per  # one flush, many segments
        try:
            engine.insert_arrow(self.name, _rows(0, segments * per))
            engine.flush(self.name)
        finally:
            flush_job.SEGMENT_ROWS = saved
        self.next = segments * per

    def one_flush(self) -> float:
        """Insert ``FLUSH_ROWS`` new rows (untimed), then time the FLUSH."""
        self.engine.insert_arrow(self.name, _rows(self.next, self.next + FLUSH_ROWS))
        self.next += FLUSH_ROWS
        t0 = time.perf_counter()
        self.engine.flush(self.name)
        return time.perf_counter() - t0


def run(cfg: BenchConfig) -> list[BenchReport]:
    counts = cfg.pick([20, 200], [20, 200, 2000])
    per_round = cfg.pick(2, 6)
    report = BenchReport(
        NAME,
        "Flush cost against segment count (issue 15)",
        scale=f"{FLUSH_ROWS}-row FLUSH into tables of {', '.join(map(str, counts))} segments",
    )
    with work_dir(cfg, NAME) as wd, needs("insert_arrow / FLUSH"):
        engine = open_engine(wd / "data")
        try:
            tables = {n: Scaled(engine, n) for n in counts}
            log(f"{NAME}: built {counts} segments")
            cases = [
                Case(f"flush @ {n} segments", tables[n].one_flush, self_timed=True) for n in counts
            ]
            samples = interleave(cases, rounds=cfg.rounds, per_round=per_round, warmup=2, block=2)
        finally:
            engine.close()
    first, last = f"flush @ {counts[0]} segments", f"flush @ {counts[-1]} segments"
    report.rows = rows_from_samples(
        samples,
        peers={last: [first]},
        targets={last: Target(max_ratio=((first, 1.5),))},
    )
    return [report]


def profile(segments: int, flushes: int = 20) -> None:
    import cProfile
    import pstats
    import tempfile

    from engine.jobs.flush import flush_table

    with tempfile.TemporaryDirectory() as tmp:
        engine = open_engine(Path(tmp) / "data")
        try:
            t = Scaled(engine, segments)
            for _ in range(3):
                t.one_flush()
            prof = cProfile.Profile()
            times = []
            for _ in range(flushes):
                engine.insert_arrow(t.name, _rows(t.next, t.next + FLUSH_ROWS))
                t.next += FLUSH_ROWS
                table = engine.db.catalog.get_table("default", t.name)
                prof.enable()  # in this thread: the job runner's thread is not profiled
                t0 = time.perf_counter()
                flush_table(engine.db, table)
                times.append(time.perf_counter() - t0)
                prof.disable()
        finally:
            engine.close()
    times.sort()
    print(f"{segments} segments: median flush {times[len(times) // 2] * 1e3:.1f} ms")
    pstats.Stats(prof).sort_stats("cumulative").print_stats(45)


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "--profile":
        profile(int(sys.argv[2]))
    else:
        from bench.harness import format_report

        for r in run(BenchConfig(rounds=3)):
            print(format_report(r))
