"""The hot tier and the bulk write paths (issue 15), each next to DuckDB.

- memory and open time with N hot rows (1M; 5M with ``--full``): each figure
  comes from a fresh child process that opens the data directory, answers a
  point query and ``count(*)``, and reports its RSS growth; DuckDB's child
  loads the same Arrow table into a table with a primary key. Target: RSS
  growth ≤ 2× the Arrow size of the rows + 100 MB, open ≤ 100 ms;
- throughput (rows/s) of ``insert_arrow`` vs DuckDB inserting the same Arrow
  table into a table with a primary key, ``INSERT ... SELECT`` from a flushed
  table vs DuckDB's, ``FLUSH`` vs DuckDB writing the same rows to Parquet, and
  set-based ``UPDATE`` and ``DELETE`` of 10% of the rows (hot, and flushed)
  vs DuckDB's, and of every row of the table with ``--full``; their rates
  count the rows changed per second.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from bench.fixtures import duckdb_connect, needs, open_engine, work_dir
from bench.harness import BenchConfig, BenchReport, Case, Row, Target, interleave, log

NAME = "hot"
ROOT = Path(__file__).resolve().parent.parent


def rows(lo: int, hi: int) -> pa.Table:
    """Five columns: a BIGINT key, text, a double, an int and a bool."""
    ids = pa.array(range(lo, hi), pa.int64())
    return pa.table(
        {
            "id": ids,
            "name": pc.binary_join_element_wise("row-", pc.cast(ids, pa.string()), ""),
            "value": pc.multiply(pc.cast(ids, pa.float64()), 0.5),
            "qty": pc.cast(pc.bit_wise_and(ids, 1023), pa.int32()),
            "flag": pc.equal(pc.bit_wise_and(ids, 1), 0),
        }
    )


DDL = "CREATE TABLE {t} (id BIGINT PRIMARY KEY, name TEXT, value DOUBLE, qty INT, flag BOOLEAN)"
# The engine's tables hold their rows hot on purpose: the default flush
# policy (1M rows or 64 MB) would flush them while they are measured.
HOT_DDL = DDL + " WITH (FLUSH_POLICY = 'none')"
CHUNK = 500_000


# ---------------------------------------------------------------- child side


def _rss() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def _child(kind: str, path: str, n: int) -> dict[str, Any]:
    """Run in a fresh process: the RSS growth of holding ``n`` hot rows."""
    import gc

    if kind == "engine-build":
        from engine import Engine

        e = Engine.open(path)
        e.execute(HOT_DDL.format(t="h"))
        for lo in range(0, n, CHUNK):
            e.insert_arrow("h", rows(lo, min(n, lo + CHUNK)))
        e.close()
        return {}
    # Imports first: the figures are what holding the rows costs, not the libraries.
    import duckdb  # noqa: F401

    from engine import Engine

    gc.collect()
    base = _rss()
    start = time.perf_counter()
    cpu = time.process_time()  # every thread's: a loaded VM stretches wall time only
    if kind == "engine":
        e = Engine.open(path)
        opened = time.perf_counter() - start
        cpu = time.process_time() - cpu
        rss_open = _rss() - base  # an open must not read the hot rows
        e.execute(f"SELECT * FROM h WHERE id = {n // 2}").rows()
        first = time.perf_counter() - start
        count = e.execute("SELECT count(*) FROM h").rows()[0][0]
        assert count == n, count
    else:
        con = duckdb_connect()
        con.execute(DDL.format(t="h"))
        for lo in range(0, n, CHUNK):
            con.register("chunk", rows(lo, min(n, lo + CHUNK)))
            con.execute("INSERT INTO h SELECT * FROM chunk")
            con.unregister("chunk")
        opened = time.perf_counter() - start
        cpu = time.process_time() - cpu
        rss_open = _rss() - base
        con.execute(f"SELECT * FROM h WHERE id = {n // 2}").fetchall()
        first = time.perf_counter() - start
        assert con.execute("SELECT count(*) FROM h").fetchone()[0] == n
    gc.collect()
    return {
        "rss": _rss() - base,
        "rss_open": rss_open,
        "open": opened,
        "open_cpu": cpu,
        "first": first,
    }


def _in_child(kind: str, path: Path, n: int) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-m", "bench.bench_hot", kind, str(path), str(n)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"bench_hot child {kind} failed:\n{proc.stderr[-3000:]}")
    out: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return out


# ---------------------------------------------------------------- parent side


def run(cfg: BenchConfig) -> list[BenchReport]:
    sizes = cfg.pick((20_000,), (1_000_000,), (1_000_000, 5_000_000))
    n_bulk = cfg.pick(10_000, 500_000, 1_000_000)
    rounds = cfg.pick(1, 3)
    report = BenchReport(
        NAME,
        "Hot tier memory and bulk write paths vs DuckDB (issue 15)",
        scale=f"{', '.join(f'{n:,}' for n in sizes)} hot rows; bulk paths on {n_bulk:,} rows",
    )
    with work_dir(cfg, NAME) as wd:
        _memory(wd, sizes, rounds, report)
        _bulk(wd, n_bulk, rounds, report)
        _mutations(wd, n_bulk, rounds, report, whole=cfg.pick(False, False, True))
    return [report]


def _memory(wd: Path, sizes: tuple[int, ...], rounds: int, report: BenchReport) -> None:
    for n in sizes:
        path = wd / f"mem{n}"
        log(f"{NAME}: building {n:,} hot rows")
        with needs("insert_arrow"):
            _in_child("engine-build", path, n)
        arrow_mb = rows(0, n).nbytes / 2**20
        samples: dict[str, list[dict[str, Any]]] = {"engine": [], "duckdb": []}
        for _ in range(rounds):
            for kind in samples:
                samples[kind].append(_in_child(kind, path, n))
        limit = (2 * arrow_mb + 100) / arrow_mb
        label = f"{n / 1e6:g}M hot rows"
        mb = {k: sorted(s["rss"] / 2**20 for s in v) for k, v in samples.items()}
        report.rows += [
            Row(
                f"RSS growth / Arrow size, {label}",
                [s["rss"] / 2**20 / arrow_mb for s in samples["engine"]],
                unit="x",
                peers=(f"duckdb RSS growth / Arrow size, {label}",),
                target=Target(max_value=limit),
                note=(
                    f"Arrow {arrow_mb:.0f} MB; engine +{mb['engine'][len(mb['engine']) // 2]:.0f} MB, "
                    f"DuckDB +{mb['duckdb'][len(mb['duckdb']) // 2]:.0f} MB; "
                    f"budget 2x + 100 MB = {2 * arrow_mb + 100:.0f} MB"
                ),
            ),
            Row(
                f"duckdb RSS growth / Arrow size, {label}",
                [s["rss"] / 2**20 / arrow_mb for s in samples["duckdb"]],
                unit="x",
            ),
            Row(
                f"open, {label}",
                [s["open"] for s in samples["engine"]],
                target=Target(max_value=0.1),
            ),
            Row(
                f"open CPU time (all threads), {label}", [s["open_cpu"] for s in samples["engine"]]
            ),
            Row(f"open + point query, {label}", [s["first"] for s in samples["engine"]]),
            Row(f"duckdb load + point query, {label}", [s["first"] for s in samples["duckdb"]]),
        ]


def _bulk(wd: Path, n: int, rounds: int, report: BenchReport) -> None:
    data = rows(0, n)
    engine = open_engine(wd / "bulk")
    dk = duckdb_connect()
    seq = iter(range(10**6))
    try:
        engine.execute(HOT_DDL.format(t="src"))
        engine.insert_arrow("src", data)
        engine.flush("src")
        dk.register("data", data)
        dk.execute(DDL.format(t="src"))
        dk.execute("INSERT INTO src SELECT * FROM data")

        def fresh_engine(load: bool = False) -> str:
            t = f"t{next(seq)}"
            engine.execute(HOT_DDL.format(t=t))
            if load:
                engine.insert_arrow(t, data)
            return t

        def fresh_duck(load: bool = False) -> str:
            t = f"t{next(seq)}"
            dk.execute(DDL.format(t=t))
            if load:
                dk.execute(f"INSERT INTO {t} SELECT * FROM data")
            return t

        def timed(setup: Any, fn: Any, cleanup: Any) -> float:
            t = setup()
            start = time.perf_counter()
            fn(t)
            took = time.perf_counter() - start
            cleanup(t)
            return n / took  # rows per second

        def e_drop(t: str) -> None:
            engine.execute(f"DROP TABLE {t}")

        def d_drop(t: str) -> None:
            dk.execute(f"DROP TABLE {t}")

        parquet = wd / "duck.parquet"
        cases = [
            Case(
                "insert_arrow",
                lambda: timed(fresh_engine, lambda t: engine.insert_arrow(t, data), e_drop),
                self_timed=True,
            ),
            Case(
                "duckdb INSERT from Arrow (PK)",
                lambda: timed(
                    fresh_duck, lambda t: dk.execute(f"INSERT INTO {t} SELECT * FROM data"), d_drop
                ),
                self_timed=True,
            ),
            Case(
                "INSERT ... SELECT (from flushed)",
                lambda: timed(
                    fresh_engine,
                    lambda t: engine.execute(f"INSERT INTO {t} SELECT * FROM src"),
                    e_drop,
                ),
                self_timed=True,
            ),
            Case(
                "duckdb INSERT ... SELECT",
                lambda: timed(
                    fresh_duck, lambda t: dk.execute(f"INSERT INTO {t} SELECT * FROM src"), d_drop
                ),
                self_timed=True,
            ),
            Case(
                "FLUSH",
                lambda: timed(lambda: fresh_engine(True), lambda t: engine.flush(t), e_drop),
                self_timed=True,
            ),
            Case(
                "duckdb COPY TO parquet",
                lambda: timed(
                    lambda: fresh_duck(True),
                    lambda t: dk.execute(f"COPY {t} TO '{parquet}' (FORMAT parquet)"),
                    d_drop,
                ),
                self_timed=True,
            ),
        ]
        log(f"{NAME}: bulk paths on {n:,} rows")
        samples = interleave(cases, rounds=rounds, per_round=1, warmup=0)
    finally:
        dk.close()
        engine.close()
    peer = {
        "insert_arrow": "duckdb INSERT from Arrow (PK)",
        "INSERT ... SELECT (from flushed)": "duckdb INSERT ... SELECT",
        "FLUSH": "duckdb COPY TO parquet",
    }
    floors = {
        "insert_arrow": 1e6,
        "INSERT ... SELECT (from flushed)": 1e6,
        "FLUSH": 1e6,
    }
    for name, xs in samples.items():
        report.rows.append(
            Row(
                name,
                xs,
                unit="rate",
                peers=(peer[name],) if name in peer else (),
                target=Target(min_value=floors[name]) if name in floors else None,
            )
        )


# 10% of the rows: qty < 100 of 0..1023 (qty = id & 1023).
TENTH = "qty < 100"


def _mutations(wd: Path, n: int, rounds: int, report: BenchReport, *, whole: bool) -> None:
    """Set-based UPDATE / DELETE, rows changed per second, next to DuckDB."""
    data = rows(0, n)
    engine = open_engine(wd / "mutate")
    dk = duckdb_connect()
    dk.register("data", data)
    seq = iter(range(10**6))
    tenth = sum(1 for i in range(n) if (i & 1023) < 100)
    try:

        def case(name: str, sql: str, changed: int, *, peer: bool, cold: bool = False) -> Case:
            def run() -> float:
                t = f"m{next(seq)}"
                if peer:
                    dk.execute(DDL.format(t=t))
                    dk.execute(f"INSERT INTO {t} SELECT * FROM data")
                    con: Any = dk
                else:
                    engine.execute(DDL.format(t=t))
                    engine.insert_arrow(t, data)
                    if cold:
                        engine.flush(t)
                    con = engine
                start = time.perf_counter()
                con.execute(sql.format(t=t))
                took = time.perf_counter() - start
                con.execute(f"DROP TABLE {t}")
                return changed / took

            return Case(name, run, self_timed=True)

        update = "UPDATE {t} SET value = value + 1 WHERE " + TENTH
        delete = "DELETE FROM {t} WHERE " + TENTH
        cases = [
            case("UPDATE 10%", update, tenth, peer=False),
            case("duckdb UPDATE 10%", update, tenth, peer=True),
            case("DELETE 10%", delete, tenth, peer=False),
            case("duckdb DELETE 10%", delete, tenth, peer=True),
            case("UPDATE 10% of flushed rows", update, tenth, peer=False, cold=True),
            case("DELETE 10% of flushed rows", delete, tenth, peer=False, cold=True),
        ]
        if whole:
            every = "UPDATE {t} SET value = value + 1, qty = qty + 1"
            cases += [
                case("UPDATE 100%", every, n, peer=False),
                case("duckdb UPDATE 100%", every, n, peer=True),
                case("DELETE 100%", "DELETE FROM {t} WHERE id >= 0", n, peer=False),
                case("duckdb DELETE 100%", "DELETE FROM {t} WHERE id >= 0", n, peer=True),
            ]
        log(f"{NAME}: set-based UPDATE / DELETE on {n:,} rows")
        samples = interleave(cases, rounds=rounds, per_round=1, warmup=0)
    finally:
        dk.close()
        engine.close()
    peer = {
        "UPDATE 10%": "duckdb UPDATE 10%",
        "DELETE 10%": "duckdb DELETE 10%",
        "UPDATE 10% of flushed rows": "duckdb UPDATE 10%",
        "DELETE 10% of flushed rows": "duckdb DELETE 10%",
        "UPDATE 100%": "duckdb UPDATE 100%",
        "DELETE 100%": "duckdb DELETE 100%",
    }
    for name, xs in samples.items():
        report.rows.append(
            Row(
                f"{name} (rows changed/s)",
                xs,
                unit="rate",
                peers=(f"{peer[name]} (rows changed/s)",) if name in peer else (),
                target=Target(min_value=2e5) if name.startswith("UPDATE") else None,
            )
        )


if __name__ == "__main__":
    print(json.dumps(_child(sys.argv[1], sys.argv[2], int(sys.argv[3]))))
