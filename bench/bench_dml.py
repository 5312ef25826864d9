"""Single-row UPDATE / DELETE by primary key, hot row vs cold row (issue 4).

The engine table is loaded with ``INSERT ... SELECT FROM range(...)`` and
flushed (``FLUSH TABLE t WAIT``), so every loaded row lives in a cold segment;
a pool of rows inserted afterwards stays hot. Every cold sample touches a
different, never-touched row (once touched, a row has a hot version and would
no longer measure the cold path). SQLite (WAL, ``synchronous=FULL``, commit per
statement) and DuckDB (file database, autocommit) hold the same rows.

Targets: engine ≤ 1 ms on a hot row, ≤ 3 ms on a cold row.
"""

from __future__ import annotations

import itertools
import random
from typing import Any

from bench.fixtures import duckdb_connect, needs, open_engine, sqlite_connect, work_dir
from bench.harness import BenchConfig, BenchReport, Case, Target, interleave, log, rows_from_samples

NAME = "dml"
DDL = "(id BIGINT PRIMARY KEY, name TEXT, value DOUBLE)"
LOAD_CHUNK = 250_000  # rows per INSERT ... SELECT statement


def load_engine(engine: Any, table: str, start: int, stop: int) -> None:
    """Insert ids ``start..stop-1`` in chunks of one statement each."""
    for lo in range(start, stop, LOAD_CHUNK):
        hi = min(stop, lo + LOAD_CHUNK)
        engine.execute(
            f"INSERT INTO {table} (id, name, value) "
            f"SELECT value, concat('row-', CAST(value AS VARCHAR)), value * 0.5 "
            f"FROM range({lo}, {hi})"
        )


def run(cfg: BenchConfig) -> list[BenchReport]:
    n_rows = cfg.pick(20_000, 1_000_000)
    rounds = cfg.pick(3, cfg.rounds)
    per_round = cfg.pick(8, 60)
    warmup = 3
    n_samples = rounds * per_round + warmup
    report = BenchReport(
        NAME,
        "Single-row UPDATE / DELETE by primary key (issue 4)",
        scale=f"{n_rows:,} rows flushed to cold segments; {rounds} rounds × {per_round} per case",
    )
    rng = random.Random(4)
    # Disjoint cold ids for cold UPDATE and cold DELETE; the peers use the same ids.
    cold = rng.sample(range(n_rows), 2 * n_samples)
    cold_upd, cold_del = iter(cold[:n_samples]), iter(cold[n_samples:])
    hot_upd_ids = list(range(n_rows, n_rows + 100))
    hot_del_ids = range(n_rows + 100, n_rows + 100 + n_samples)
    hot_upd = itertools.cycle(hot_upd_ids)
    hot_del = iter(hot_del_ids)
    # The peers have no hot/cold tiers: one UPDATE and one DELETE stream each.
    peer_ids = rng.sample(range(n_rows), 2 * n_samples)

    with work_dir(cfg, NAME) as wd:
        engine = open_engine(wd / "engine")
        try:
            with needs("CREATE TABLE / INSERT ... SELECT"):
                engine.execute(f"CREATE TABLE dml {DDL}")
                log(f"{NAME}: loading {n_rows:,} rows")
                load_engine(engine, "dml", 0, n_rows)
            with needs("FLUSH TABLE"):
                engine.execute("FLUSH TABLE dml WAIT")
            probe_id = n_rows + 100 + n_samples  # one extra hot row for the DELETE probe
            load_engine(engine, "dml", n_rows, probe_id + 1)
            with needs("UPDATE"):
                engine.execute("UPDATE dml SET value = ? WHERE id = ?", (-1.0, hot_upd_ids[0]))
            with needs("DELETE"):
                engine.execute("DELETE FROM dml WHERE id = ?", (probe_id,))

            sq, dk = _load_peers(wd, n_rows)
            peer_upd, peer_del = iter(peer_ids[:n_samples]), iter(peer_ids[n_samples:])
            seen: dict[str, list[int]] = {"cold_upd": [], "cold_del": []}
            # A fresh (negative) value on every UPDATE: the hot ids are updated
            # again and again, and re-writing an unchanged value may be a no-op.
            tick = itertools.count(1)

            def eng_update(ids: Any, key: str | None = None) -> Any:
                def f() -> None:
                    i = next(ids)
                    if key:
                        seen[key].append(i)
                    engine.execute("UPDATE dml SET value = ? WHERE id = ?", (float(-next(tick)), i))

                return f

            def eng_delete(ids: Any, key: str | None = None) -> Any:
                def f() -> None:
                    i = next(ids)
                    if key:
                        seen[key].append(i)
                    engine.execute("DELETE FROM dml WHERE id = ?", (i,))

                return f

            def sq_update() -> None:
                i = next(peer_upd)
                sq.execute("UPDATE dml SET value = ? WHERE id = ?", (float(-next(tick)), i))
                sq.commit()

            def sq_delete() -> None:
                sq.execute("DELETE FROM dml WHERE id = ?", (next(peer_del),))
                sq.commit()

            # DuckDB gets its own id streams so the SQLite and DuckDB rows stay comparable.
            dk_upd, dk_del = iter(list(peer_ids[:n_samples])), iter(list(peer_ids[n_samples:]))

            def dk_update() -> None:
                i = next(dk_upd)
                dk.execute("UPDATE dml SET value = ? WHERE id = ?", (float(-next(tick)), i))

            def dk_delete() -> None:
                dk.execute("DELETE FROM dml WHERE id = ?", (next(dk_del),))

            log(f"{NAME}: timing {rounds} rounds × {per_round}")
            samples = interleave(
                [
                    Case("engine update hot", eng_update(hot_upd)),
                    Case("engine update cold", eng_update(cold_upd, "cold_upd")),
                    Case("engine delete hot", eng_delete(hot_del)),
                    Case("engine delete cold", eng_delete(cold_del, "cold_del")),
                    Case("sqlite update", sq_update),
                    Case("sqlite delete", sq_delete),
                    Case("duckdb update", dk_update),
                    Case("duckdb delete", dk_delete),
                ],
                rounds=rounds,
                per_round=per_round,
                warmup=warmup,
            )
            hot, cold_t = Target(max_value=1e-3), Target(max_value=3e-3)
            report.rows = rows_from_samples(
                samples,
                peers={
                    "engine update hot": ("sqlite update", "duckdb update"),
                    "engine update cold": ("sqlite update", "duckdb update"),
                    "engine delete hot": ("sqlite delete", "duckdb delete"),
                    "engine delete cold": ("sqlite delete", "duckdb delete"),
                },
                targets={
                    "engine update hot": hot,
                    "engine delete hot": hot,
                    "engine update cold": cold_t,
                    "engine delete cold": cold_t,
                },
            )
            report.notes.extend(_check(engine, seen))
            sq.close()
            dk.close()
        finally:
            engine.close()
    return [report]


def _load_peers(wd: Any, n_rows: int) -> tuple[Any, Any]:
    log(f"{NAME}: loading peers")
    sq = sqlite_connect(wd / "peer.sqlite")
    sq.execute(f"CREATE TABLE dml {DDL.replace('BIGINT', 'INTEGER')}")
    sq.executemany(
        "INSERT INTO dml VALUES (?, ?, ?)", ((i, f"row-{i}", i * 0.5) for i in range(n_rows))
    )
    sq.commit()
    dk = duckdb_connect(wd / "peer.duckdb")
    dk.execute(f"CREATE TABLE dml {DDL.replace('TEXT', 'VARCHAR')}")
    dk.execute(
        "INSERT INTO dml SELECT range, concat('row-', range), range * 0.5 FROM range(?)",
        (n_rows,),
    )
    dk.execute("CHECKPOINT")
    return sq, dk


def _check(engine: Any, seen: dict[str, list[int]]) -> list[str]:
    """Cold rows that were updated/deleted must read back that way."""
    notes = []
    upd, dele = seen["cold_upd"], seen["cold_del"]
    if dele:
        got = engine.execute(
            f"SELECT COUNT(*) FROM dml WHERE id IN ({', '.join(map(str, dele))})"
        ).scalar()
        if got != 0:
            notes.append(f"CHECK FAILED: {got} of {len(dele)} deleted cold rows still visible")
    if upd:
        got = engine.execute(
            f"SELECT COUNT(*) FROM dml WHERE id IN ({', '.join(map(str, upd))}) AND value < 0"
        ).scalar()
        if got != len(upd):
            notes.append(f"CHECK FAILED: {got} of {len(upd)} updated cold rows read back updated")
    return notes
