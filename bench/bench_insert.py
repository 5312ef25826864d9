"""Single-row INSERT latency (issue 2, acceptance 6).

Cases, interleaved in rounds in one run:

- ``engine params``: ``Engine.execute`` with bound parameters, same SQL text
  every time (parse cache hit), default durability (WAL synced per statement);
- ``engine literals``: the SQL text formatted with literal values, different
  every row (parse cache miss);
- ``sqlite``: file database, WAL, ``synchronous=FULL``, prepared single-row
  INSERT (``sqlite3`` caches the prepared statement) and a commit per row;
- ``duckdb``: file database, parameterised INSERT in autocommit mode. DuckDB's
  Python API has no reusable prepared-statement handle; ``execute(sql, params)``
  is its fastest single-row form (SQL-level ``PREPARE``/``EXECUTE`` with
  literals measured slower).

Targets: engine params median ≤ 0.5 ms and no slower than DuckDB; engine
literals ≤ 1 ms.
"""

from __future__ import annotations

import itertools

from bench.fixtures import duckdb_connect, needs, open_engine, sqlite_connect, work_dir
from bench.harness import BenchConfig, BenchReport, Case, Target, interleave, log, rows_from_samples

NAME = "insert"
DDL = "(id BIGINT PRIMARY KEY, name TEXT, value DOUBLE)"


def run(cfg: BenchConfig) -> list[BenchReport]:
    rounds = cfg.pick(3, cfg.rounds)
    per_round = cfg.pick(30, 300)
    report = BenchReport(
        NAME,
        "Single-row INSERT latency (issue 2)",
        scale=f"{rounds} rounds × {per_round} inserts per case, fresh tables",
    )
    with work_dir(cfg, NAME) as wd:
        engine = open_engine(wd / "engine")
        try:
            with needs("CREATE TABLE"):
                engine.execute(f"CREATE TABLE ins_params {DDL}")
                engine.execute(f"CREATE TABLE ins_literals {DDL}")
            sq = sqlite_connect(wd / "peer.sqlite")
            sq.execute(f"CREATE TABLE ins {DDL.replace('BIGINT', 'INTEGER')}")
            sq.commit()
            dk = duckdb_connect(wd / "peer.duckdb")
            dk.execute(f"CREATE TABLE ins {DDL.replace('TEXT', 'VARCHAR')}")

            ids = {k: itertools.count(1) for k in ("params", "literals", "sqlite", "duckdb")}

            def engine_params() -> None:
                i = next(ids["params"])
                engine.execute(
                    "INSERT INTO ins_params (id, name, value) VALUES (?, ?, ?)",
                    (i, f"row-{i}", i * 0.5),
                )

            def engine_literals() -> None:
                i = next(ids["literals"])
                engine.execute(
                    f"INSERT INTO ins_literals (id, name, value) VALUES ({i}, 'row-{i}', {i * 0.5})"
                )

            def sqlite_insert() -> None:
                i = next(ids["sqlite"])
                sq.execute(
                    "INSERT INTO ins (id, name, value) VALUES (?, ?, ?)", (i, f"row-{i}", i * 0.5)
                )
                sq.commit()

            def duckdb_insert() -> None:
                i = next(ids["duckdb"])
                dk.execute(
                    "INSERT INTO ins (id, name, value) VALUES (?, ?, ?)", (i, f"row-{i}", i * 0.5)
                )

            # The first engine INSERT may take a different path (e.g. lazy setup):
            # surface "not supported" before timing anything.
            with needs("INSERT with parameters"):
                engine_params()
            with needs("INSERT with literals"):
                engine_literals()

            log(f"{NAME}: timing {rounds} rounds × {per_round}")
            samples = interleave(
                [
                    Case("engine params", engine_params),
                    Case("engine literals", engine_literals),
                    Case("sqlite", sqlite_insert),
                    Case("duckdb", duckdb_insert),
                ],
                rounds=rounds,
                per_round=per_round,
            )
            report.rows = rows_from_samples(
                samples,
                peers={
                    "engine params": ("sqlite", "duckdb"),
                    "engine literals": ("sqlite", "duckdb"),
                },
                targets={
                    "engine params": Target(max_value=0.5e-3, max_ratio=(("duckdb", 1.0),)),
                    "engine literals": Target(max_value=1e-3),
                },
            )
            report.notes.extend(_check_counts(engine, ids))
            sq.close()
            dk.close()
        finally:
            engine.close()
    return [report]


def _check_counts(engine: object, ids: dict[str, itertools.count[int]]) -> list[str]:
    """Every timed INSERT must have landed; a short count means the figures lie."""
    notes = []
    for table, key in (("ins_params", "params"), ("ins_literals", "literals")):
        expected = next(ids[key]) - 1
        got = engine.execute(f"SELECT COUNT(*) FROM {table}").scalar()  # type: ignore[attr-defined]
        if got != expected:
            notes.append(f"CHECK FAILED: {table} holds {got} rows, expected {expected}")
    return notes
