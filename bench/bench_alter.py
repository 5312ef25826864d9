"""ALTER TABLE ADD / RENAME / DROP COLUMN on a 1M-row table in 20 segments (issue 5).

Schema changes are metadata only: column ids keep old segments readable, so
no segment may be rewritten. Each sample is one statement; the three kinds
take turns (ADD c_n, RENAME c_n TO d_n, DROP d_n) so the table's width stays
constant. DuckDB runs the same statements on a same-sized table in the same
process run, for reference. After timing, every segment file must still have
its checksum from before the ALTERs.

Target: each kind's median ≤ 50 ms.
"""

from __future__ import annotations

import hashlib
import itertools
import time
from pathlib import Path
from typing import Any

from bench.fixtures import duckdb_connect, needs, open_engine, segment_files, work_dir
from bench.harness import BenchConfig, BenchReport, Case, Target, interleave, log, rows_from_samples

NAME = "alter"
DDL = "(id BIGINT PRIMARY KEY, name TEXT, value DOUBLE)"


def _digest(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def run(cfg: BenchConfig) -> list[BenchReport]:
    n_rows = cfg.pick(20_000, 1_000_000)
    n_segments = 20
    rounds = cfg.pick(2, cfg.rounds)
    per_round = cfg.pick(3, 10)
    report = BenchReport(
        NAME,
        "ALTER TABLE ADD / RENAME / DROP COLUMN (issue 5)",
        scale=f"{n_rows:,} rows in {n_segments} segments; {rounds} rounds × {per_round} per case",
    )
    with work_dir(cfg, NAME) as wd:
        engine = open_engine(wd / "engine")
        try:
            with needs("CREATE TABLE / INSERT ... SELECT / FLUSH"):
                engine.execute(f"CREATE TABLE wide {DDL}")
                step = n_rows // n_segments
                log(f"{NAME}: building {n_rows:,} rows in {n_segments} segments")
                for i in range(n_segments):
                    engine.execute(
                        "INSERT INTO wide SELECT value, 'n' || value, value * 0.5 "
                        f"FROM range({i * step}, {(i + 1) * step})"
                    )
                    engine.execute("FLUSH TABLE wide WAIT")
            files = segment_files(wd / "engine", "default", "wide")
            before = {f: _digest(f) for f in files}
            dk = duckdb_connect()
            dk.execute(f"CREATE TABLE wide {DDL.replace('TEXT', 'VARCHAR')}")
            dk.execute(
                f"INSERT INTO wide SELECT range, 'n' || range, range * 0.5 FROM range({n_rows})"
            )
            seq = {"engine": itertools.count(1), "duckdb": itertools.count(1)}
            added: dict[str, list[int]] = {"engine": [], "duckdb": []}
            renamed: dict[str, list[int]] = {"engine": [], "duckdb": []}

            def cycle(run_sql: Any, who: str, kind: str) -> Any:
                """A self-timed sample: untimed set-up makes sure the column the
                timed statement needs exists, whatever order the cases run in."""

                def add() -> str:
                    n = next(seq[who])
                    added[who].append(n)
                    return f"ALTER TABLE wide ADD COLUMN c{n} INT"

                def rename() -> str:
                    if not added[who]:
                        run_sql(add())
                    n = added[who].pop()
                    renamed[who].append(n)
                    return f"ALTER TABLE wide RENAME COLUMN c{n} TO d{n}"

                def drop() -> str:
                    if not renamed[who]:
                        run_sql(rename())
                    return f"ALTER TABLE wide DROP COLUMN d{renamed[who].pop()}"

                make = {"add": add, "rename": rename, "drop": drop}[kind]

                def f() -> float:
                    sql = make()
                    start = time.perf_counter()
                    run_sql(sql)
                    return time.perf_counter() - start

                return f

            # One case per (system, kind); a round runs add, rename, drop in order,
            # so every sample finds the column it needs.
            cases = []
            for kind in ("add", "rename", "drop"):
                cases.append(
                    Case(f"engine {kind}", cycle(engine.execute, "engine", kind), self_timed=True)
                )
                cases.append(
                    Case(f"duckdb {kind}", cycle(dk.execute, "duckdb", kind), self_timed=True)
                )
            samples = interleave(cases, rounds=rounds, per_round=per_round, warmup=0, block=1)
            report.rows += rows_from_samples(
                samples,
                peers={f"engine {k}": (f"duckdb {k}",) for k in ("add", "rename", "drop")},
                targets={f"engine {k}": Target(max_value=0.050) for k in ("add", "rename", "drop")},
            )
            after = {f: _digest(f) for f in segment_files(wd / "engine", "default", "wide")}
            rewritten = [f for f in before if after.get(f) != before[f]]
            report.notes.append(
                f"segments before/after: {len(before)}/{len(after)}; rewritten: {len(rewritten)}"
            )
            if rewritten or set(after) != set(before):
                report.notes.append("CHECK FAILED: an ALTER rewrote or added segment files")
            count = engine.execute("SELECT count(*) FROM wide").scalar()
            if count != n_rows:
                report.notes.append(f"CHECK FAILED: {count} rows after the ALTERs, not {n_rows}")
        finally:
            engine.close()
    return [report]
