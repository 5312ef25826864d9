"""INSERT latency with 1 table vs 200 tables in the catalog (issue 6, acceptance 3).

Two engines on two data dirs, open side by side: one whose catalog holds only
the target table, one that also holds 199 other tables (spread over a few
namespaces, with differing column lists). Single-row parameterised INSERTs
into the target table alternate between them in rounds.

Target (taken as "catalog size does not show in the write path"): the
200-table median within 1.2× the 1-table median.
"""

from __future__ import annotations

import itertools
from typing import Any

from bench.fixtures import needs, open_engine, work_dir
from bench.harness import BenchConfig, BenchReport, Case, Target, interleave, log, rows_from_samples

NAME = "catalog"
DDL = "(id BIGINT PRIMARY KEY, name TEXT, value DOUBLE)"
N_TABLES = 200


def _fill_catalog(engine: Any, n_other: int) -> None:
    namespaces = [f"ns{i}" for i in range(4)]
    for ns in namespaces:
        engine.execute(f"CREATE NAMESPACE {ns}")
    for t in range(n_other):
        extra = ", ".join(f"c{k} TEXT" for k in range(t % 8))
        cols = "id BIGINT PRIMARY KEY" + (f", {extra}" if extra else "")
        engine.execute(f"CREATE TABLE {namespaces[t % 4]}.filler{t} ({cols})")


def run(cfg: BenchConfig) -> list[BenchReport]:
    rounds = cfg.pick(3, cfg.rounds)
    per_round = cfg.pick(30, 300)
    report = BenchReport(
        NAME,
        "INSERT latency vs catalog size (issue 6)",
        scale=f"1 vs {N_TABLES} tables; {rounds} rounds × {per_round} inserts per case",
    )
    with work_dir(cfg, NAME) as wd:
        small = open_engine(wd / "one")
        try:
            big = open_engine(wd / "many")
            try:
                with needs("CREATE TABLE"):
                    small.execute(f"CREATE TABLE target {DDL}")
                    big.execute(f"CREATE TABLE target {DDL}")
                with needs("CREATE NAMESPACE"):
                    log(f"{NAME}: creating {N_TABLES - 1} more tables")
                    _fill_catalog(big, N_TABLES - 1)
                ids = {"small": itertools.count(1), "big": itertools.count(1)}

                def insert(engine: Any, key: str) -> Any:
                    def f() -> None:
                        i = next(ids[key])
                        engine.execute(
                            "INSERT INTO target (id, name, value) VALUES (?, ?, ?)",
                            (i, f"row-{i}", i * 0.5),
                        )

                    return f

                log(f"{NAME}: timing {rounds} rounds × {per_round}")
                samples = interleave(
                    [
                        Case("insert, 1 table", insert(small, "small")),
                        Case(f"insert, {N_TABLES} tables", insert(big, "big")),
                    ],
                    rounds=rounds,
                    per_round=per_round,
                )
                report.rows = rows_from_samples(
                    samples,
                    peers={f"insert, {N_TABLES} tables": ("insert, 1 table",)},
                    targets={
                        f"insert, {N_TABLES} tables": Target(max_ratio=(("insert, 1 table", 1.2),))
                    },
                )
            finally:
                big.close()
        finally:
            small.close()
    return [report]
