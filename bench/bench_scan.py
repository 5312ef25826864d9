"""Query speed at notebook scale (issue 15): segment counts, big tables, fixed cost.

- ``count(*)`` and a full scan (``sum``) at 1 / 20 / 200 / 2,000 segments of
  the same rows (growth at most linear; ``count(*)`` at 2,000 segments
  ≤ 50 ms), with the same files read by DuckDB alongside;
- a point lookup by primary key with 2,000 segments (≤ 3 ms);
- ``SELECT * LIMIT 20`` and ``count(*)`` on a big cold table vs DuckDB over the
  same files (≤ 1.5×; 10M rows with ``--full``), the same with 1% of the rows
  updated after the flush (hot versions over cold ones);
- the per-query fixed cost (``SELECT 1``, a 3-row hot table; ≤ 2 ms).

Tables are built with ``insert_arrow`` + ``FLUSH`` once per segment.
"""

from __future__ import annotations

import random
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from bench.fixtures import duckdb_connect, needs, open_engine, segment_files, work_dir
from bench.harness import (
    BenchConfig,
    BenchReport,
    Case,
    Target,
    interleave,
    log,
    rows_from_samples,
    time_once,
)

NAME = "scan"
NS = "default"


def _chunk(lo: int, hi: int) -> pa.Table:
    ids = pa.array(range(lo, hi), pa.int64())
    return pa.table(
        {
            "id": ids,
            "name": pc.binary_join_element_wise("row-", pc.cast(ids, pa.string()), ""),
            "value": pc.multiply(pc.cast(ids, pa.float64()), 0.5),
        }
    )


def build(engine: Any, table: str, n_rows: int, n_segments: int) -> float:
    """``table`` with ``n_rows`` rows in ``n_segments`` segments; seconds taken."""

    def go() -> None:
        # COMPACT_POLICY 'none': the scheduler would otherwise merge the
        # segments in the background (past 64) while they are being measured.
        engine.execute(
            f"CREATE TABLE {table} (id BIGINT PRIMARY KEY, name TEXT, value DOUBLE) "
            "WITH (COMPACT_POLICY = 'none')"
        )
        per = n_rows // n_segments
        for s in range(n_segments):
            hi = n_rows if s == n_segments - 1 else (s + 1) * per
            engine.insert_arrow(table, _chunk(s * per, hi))
            engine.flush(table)

    with needs("insert_arrow / FLUSH"):
        return time_once(go)


def _duck_view(dk: Any, name: str, files: list[str]) -> None:
    listing = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
    dk.execute(f"CREATE OR REPLACE VIEW {name} AS SELECT * FROM read_parquet([{listing}])")


def run(cfg: BenchConfig) -> list[BenchReport]:
    seg_rows = cfg.pick(2_000, 1_000_000)
    seg_counts = cfg.pick((1, 10, 50), (1, 20, 200, 2_000))
    n_big = cfg.pick(100_000, 1_000_000, 10_000_000)
    rounds = cfg.pick(3, cfg.rounds)
    report = BenchReport(
        NAME,
        "Query speed at notebook scale: segments, big tables, fixed cost (issue 15)",
        scale=(
            f"{seg_rows:,} rows in {', '.join(map(str, seg_counts))} segments; big table "
            f"{n_big:,} rows{' (acceptance: 10M, use --full)' if n_big < 10_000_000 else ''}"
        ),
    )
    with work_dir(cfg, NAME) as wd:
        engine = open_engine(wd / "engine")
        dk = duckdb_connect()
        try:
            _fixed_cost(cfg, engine, rounds, report)
            _segments(cfg, engine, dk, wd, seg_rows, seg_counts, rounds, report)
            _big(cfg, engine, dk, wd, n_big, rounds, report)
        finally:
            dk.close()
            engine.close()
    return [report]


def _fixed_cost(cfg: BenchConfig, engine: Any, rounds: int, report: BenchReport) -> None:
    engine.execute("CREATE TABLE tiny (id BIGINT PRIMARY KEY, v TEXT)")
    engine.execute("INSERT INTO tiny VALUES (1, 'a'), (2, 'b'), (3, 'c')")
    samples = interleave(
        [
            Case("SELECT 1", lambda: engine.execute("SELECT 1")),
            Case("SELECT * FROM 3-row hot table", lambda: engine.execute("SELECT * FROM tiny")),
        ],
        rounds=rounds,
        per_round=cfg.pick(20, 100),
    )
    report.rows += rows_from_samples(
        samples, targets={"SELECT * FROM 3-row hot table": Target(max_value=2e-3)}
    )


def _segments(
    cfg: BenchConfig,
    engine: Any,
    dk: Any,
    wd: Any,
    seg_rows: int,
    seg_counts: tuple[int, ...],
    rounds: int,
    report: BenchReport,
) -> None:
    cases: list[Case] = []
    targets: dict[str, Target] = {}
    peers: dict[str, tuple[str, ...]] = {}
    rng = random.Random(7)
    for n in seg_counts:
        table = f"s{n}"
        log(f"{NAME}: building {seg_rows:,} rows in {n} segment(s)")
        took = build(engine, table, seg_rows, n)
        report.notes.append(f"{table}: built in {took:.1f} s ({n} flushes)")
        files = segment_files(wd / "engine", NS, table)
        _duck_view(dk, f"d{n}", files)
        expected = engine.execute(f"SELECT count(*) FROM {table}").rows()[0][0]
        assert expected == seg_rows, (table, expected)

        def count(t: str = table) -> None:
            assert engine.execute(f"SELECT count(*) FROM {t}").rows()[0][0] == seg_rows

        def total(t: str = table) -> None:
            engine.execute(f"SELECT sum(value) FROM {t}")

        def duck_total(v: str = f"d{n}") -> None:
            dk.execute(f"SELECT sum(value) FROM {v}").fetchall()

        cases += [
            Case(f"count(*) {n} seg", count),
            Case(f"sum(value) {n} seg", total),
            Case(f"duckdb sum {n} seg", duck_total),
        ]
        peers[f"sum(value) {n} seg"] = (f"duckdb sum {n} seg",)
        if n == max(seg_counts):
            # Warm: the keys' segments have had their key index read once (the
            # first lookup in a segment reads its key column: a cold figure).
            keys = rng.sample(range(seg_rows), 50)
            sql = f"SELECT * FROM {table} WHERE id = $1"
            cold = [time_once(lambda k=k, q=sql: engine.execute(q, [k])) for k in keys]
            report.notes.append(
                f"first point lookup in a segment of {table}: median "
                f"{sorted(cold)[len(cold) // 2] * 1e3:.2f} ms over {len(cold)} keys"
            )

            def point(sql: str = sql, keys: list[int] = keys) -> None:
                assert len(engine.execute(sql, [rng.choice(keys)])) == 1

            cases.append(Case(f"point lookup {n} seg (warm)", point))
            targets[f"point lookup {n} seg (warm)"] = Target(max_value=3e-3)
            if n >= 2_000:
                targets[f"count(*) {n} seg"] = Target(max_value=50e-3)
    log(f"{NAME}: timing segment counts")
    samples = interleave(cases, rounds=rounds, per_round=cfg.pick(3, 5), warmup=1, block=1)
    report.rows += rows_from_samples(samples, peers=peers, targets=targets)
    first, last = min(seg_counts), max(seg_counts)
    for what in ("count(*)", "sum(value)"):
        growth = report.ratio(f"{what} {last} seg", f"{what} {first} seg")
        report.notes.append(
            f"{what}: {last} segments take {growth:.1f}x {first} segment(s) "
            f"({last // first}x the segments; linear or better: {growth <= last / first})"
        )


def _big(
    cfg: BenchConfig, engine: Any, dk: Any, wd: Any, n_rows: int, rounds: int, report: BenchReport
) -> None:
    segments = max(1, n_rows // 1_000_000)
    log(f"{NAME}: building {n_rows:,} rows in {segments} segment(s)")
    build(engine, "big", n_rows, segments)
    files = segment_files(wd / "engine", NS, "big")
    _duck_view(dk, "dbig", files)
    # DuckDB's own table of the same rows, for the warm-cache comparison.
    dk.execute("CREATE TABLE own AS SELECT * FROM dbig")

    def phase(label: str) -> None:
        cases = [
            Case(f"engine LIMIT 20{label}", lambda: engine.execute("SELECT * FROM big LIMIT 20")),
            Case(f"engine count(*){label}", lambda: engine.execute("SELECT count(*) FROM big")),
            Case(f"engine sum(value){label}", lambda: engine.execute("SELECT sum(value) FROM big")),
            Case(
                f"duckdb LIMIT 20{label}",
                lambda: dk.execute("SELECT * FROM dbig LIMIT 20").fetchall(),
            ),
            Case(
                f"duckdb count(*){label}",
                lambda: dk.execute("SELECT count(*) FROM dbig").fetchall(),
            ),
            Case(
                f"duckdb sum{label}", lambda: dk.execute("SELECT sum(value) FROM dbig").fetchall()
            ),
            Case(
                f"duckdb own table sum{label}",
                lambda: dk.execute("SELECT sum(value) FROM own").fetchall(),
            ),
        ]
        samples = interleave(cases, rounds=rounds, per_round=cfg.pick(3, 10), warmup=2, block=2)
        report.rows += rows_from_samples(
            samples,
            peers={
                f"engine LIMIT 20{label}": (f"duckdb LIMIT 20{label}",),
                f"engine count(*){label}": (f"duckdb count(*){label}",),
                f"engine sum(value){label}": (
                    f"duckdb sum{label}",
                    f"duckdb own table sum{label}",
                ),
            },
            targets={
                f"engine LIMIT 20{label}": Target(max_ratio=((f"duckdb LIMIT 20{label}", 1.5),)),
                f"engine count(*){label}": Target(max_ratio=((f"duckdb count(*){label}", 1.5),)),
            },
        )

    log(f"{NAME}: big table, clean")
    phase("")
    # 1% of the rows updated after the flush: hot versions over cold ones.
    step = 100
    engine.execute(f"UPDATE big SET value = value + 1 WHERE id % {step} = 0")
    log(f"{NAME}: big table, 1% updated")
    phase(" +1% hot")
    want = n_rows * (n_rows - 1) / 4 + n_rows // step
    got = engine.execute("SELECT sum(value) FROM big").rows()[0][0]
    if abs(got - want) > 1e-6 * want:
        report.notes.append(f"CHECK FAILED: sum(value) after the update is {got}, not {want}")
    ((counted,),) = engine.execute("SELECT count(*) FROM big").rows()
    if counted != n_rows:
        report.notes.append(f"CHECK FAILED: count(*) after the update is {counted}, not {n_rows}")
    _after_a_write(cfg, engine, n_rows, step, rounds, report)


def _after_a_write(
    cfg: BenchConfig, engine: Any, n_rows: int, step: int, rounds: int, report: BenchReport
) -> None:
    """``count(*)`` with hot rows over cold ones caches how many cold rows
    the hot keys hide per hot version: the first count after a write pays
    for the match (a binary search of every hot key). Timed as a one-row
    UPDATE alone and followed by a count; the difference is that cost.
    Likewise ``sum(value)`` after a write: the deletion masks of cached
    segments (``engine.providers.live_masks``) add the written key's row."""
    keys = iter(range(1, n_rows, step))
    written = [0]

    def write() -> None:
        engine.execute(f"UPDATE big SET value = value + 1 WHERE id = {next(keys)}")
        written[0] += 1

    def write_count() -> None:
        write()
        engine.execute("SELECT count(*) FROM big")

    def write_sum() -> None:
        write()
        engine.execute("SELECT sum(value) FROM big")

    samples = interleave(
        [
            Case("engine 1-row UPDATE +1% hot", write),
            Case("engine 1-row UPDATE, then count(*) +1% hot", write_count),
            Case("engine 1-row UPDATE, then sum(value) +1% hot", write_sum),
        ],
        rounds=rounds,
        per_round=cfg.pick(3, 10),
        warmup=2,
        block=2,
    )
    report.rows += rows_from_samples(
        samples,
        peers={
            "engine 1-row UPDATE, then count(*) +1% hot": ("engine 1-row UPDATE +1% hot",),
            "engine 1-row UPDATE, then sum(value) +1% hot": ("engine 1-row UPDATE +1% hot",),
        },
    )
    want = n_rows * (n_rows - 1) / 4 + n_rows // step + written[0]
    got = engine.execute("SELECT sum(value) FROM big").rows()[0][0]
    if abs(got - want) > 1e-6 * want:
        report.notes.append(
            f"CHECK FAILED: sum(value) after the 1-row updates is {got}, not {want}"
        )
