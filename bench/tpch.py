"""TPC-H through the engine vs raw DataFusion, DuckDB and polars (issue 15).

Data: ``tpchgen-cli`` (PyPI) writes the eight tables as Parquet, offline.
They are loaded through the engine's bulk path (``insert_arrow``) with the
types TPC-H defines (money and quantities DECIMAL(15,2), kept as decimal128
in the segments and by every peer) and flushed. Then all 22
queries run, interleaved, through

- the engine;
- raw DataFusion over the very same segment files (a view renames columns as needed);
- DuckDB over the same files, and DuckDB's own tables (loaded from the same
  Arrow data);
- polars (``SQLContext`` over lazy scans of the same files; a query polars
  cannot run is reported as such).

Every engine answer is checked against DuckDB's (same files): exactly for
DECIMAL, integer, text and date values; DOUBLE results to 1e-9 relative; a
DECIMAL result next to the other system's DOUBLE (DuckDB's ``avg`` of a
DECIMAL is a DOUBLE, DataFusion's a DECIMAL of scale s+4) to within one unit
of the DECIMAL's last digit. Usage: ``bench/tpch.py [--sf 0.1] [--rounds 5] [--updated]``;
``make bench`` runs it at SF 0.1 (``run_all --only tpch``), ``--full`` at SF 1.
``--updated`` also times the queries with 1% of every table's rows updated
after the flush (hot versions over cold). The engine reads the segment files
there (its warm cache off); ``run_warm`` (``--warm-only``; skipped with
``--no-warm``) then times it with the warm cache of decoded segments on, next
to the same engine with the cache off and the peers.
"""

from __future__ import annotations

import argparse
import decimal
import math
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from bench.fixtures import open_engine, segment_files, work_dir  # noqa: E402
from bench.harness import (  # noqa: E402
    BenchConfig,
    BenchReport,
    NotAvailable,
    Row,
    log,
)
from bench.tpch_queries import QUERIES  # noqa: E402

NAME = "tpch"
TABLES = ("region", "nation", "supplier", "customer", "part", "partsupp", "orders", "lineitem")
KEYS = {
    "region": "r_regionkey",
    "nation": "n_nationkey",
    "supplier": "s_suppkey",
    "customer": "c_custkey",
    "part": "p_partkey",
    "orders": "o_orderkey",
}  # lineitem and partsupp get a row_id key (composite keys in TPC-H)
SYSTEMS = ("engine", "datafusion files", "duckdb files", "duckdb tables", "polars")


def generate(sf: float, out: Path) -> Path:
    exe = shutil.which("tpchgen-cli") or str(Path(sys.executable).parent / "tpchgen-cli")
    if not Path(exe).exists():
        raise NotAvailable("tpchgen-cli is not installed (pip install tpchgen-cli)")
    out.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [exe, "parquet", "-s", str(sf), "--output-dir", str(out)], check=True, capture_output=True
    )
    return out


def _plain(table: pa.Table) -> pa.Table:
    """string_view -> string, no field metadata; DECIMAL stays DECIMAL, and
    NOT NULL stays NOT NULL (TPC-H declares every column so)."""
    fields, arrays = [], []
    for f, c in zip(table.schema, table.columns, strict=True):
        t = f.type
        if pa.types.is_string_view(t):
            t = pa.string()
        fields.append(pa.field(f.name, t, nullable=f.nullable))
        arrays.append(c.cast(t))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def _sql_type(t: pa.DataType, types: dict[pa.DataType, str]) -> str:
    if pa.types.is_decimal(t):
        return f"DECIMAL({t.precision},{t.scale})"
    return types[t]


def load(engine: Any, data: dict[str, pa.Table]) -> dict[str, float]:
    """Bulk-load and flush every table; rows/s per table."""
    rates = {}
    types = {pa.int64(): "BIGINT", pa.int32(): "INT", pa.float64(): "DOUBLE"}
    types |= {pa.string(): "TEXT", pa.date32(): "DATE"}
    for name in TABLES:
        t = data[name]
        if name not in KEYS:  # the engine needs a primary key: a row number
            t = t.append_column("row_id", pa.array(range(t.num_rows), pa.int64()))
        cols = ", ".join(
            f"{f.name} {_sql_type(f.type, types)}"
            f"{' NOT NULL' if not f.nullable else ''}"
            f"{' PRIMARY KEY' if KEYS.get(name, 'row_id') == f.name else ''}"
            for f in t.schema
        )
        engine.execute(f"CREATE TABLE {name} ({cols})")
        start = time.perf_counter()
        engine.insert_arrow(name, t)
        engine.flush(name)
        rates[name] = t.num_rows / (time.perf_counter() - start)
    return rates


def _renames(engine: Any, name: str, files: list[str]) -> list[tuple[str, str]]:
    """(name in the segment files, logical) column names of ``name``'s segments
    (segments carry logical names; older ones ``c<id>``)."""
    import pyarrow.parquet as pq

    in_file = set(pq.read_schema(files[0]).names)
    desc = engine.execute(f"DESCRIBE {name}").to_pylist()
    return [
        (
            r["column_name"] if r["column_name"] in in_file else f"c{r['column_id']}",
            r["column_name"],
        )
        for r in desc
    ]


class Peers:
    """DataFusion, DuckDB and polars over the engine's own segment files."""

    def __init__(self, engine: Any, data_dir: Path, data: dict[str, pa.Table]) -> None:
        import duckdb
        import polars as pl
        from datafusion import SessionContext

        self.df = SessionContext()
        self.dk_files = duckdb.connect()
        self.dk_tables = duckdb.connect()
        self.pl = pl.SQLContext()
        for name in TABLES:
            files = segment_files(data_dir, "default", name)
            cols = _renames(engine, name, files)
            select = ", ".join(f"{p} AS {c}" for p, c in cols)
            self.df.register_parquet(f"seg_{name}", str(Path(files[0]).parent))
            self.df.sql(f"CREATE VIEW {name} AS SELECT {select} FROM seg_{name}")
            listing = ", ".join(f"'{f}'" for f in files)
            self.dk_files.execute(
                f"CREATE VIEW {name} AS SELECT {select} FROM read_parquet([{listing}])"
            )
            self.dk_tables.register(f"arrow_{name}", data[name])
            self.dk_tables.execute(f"CREATE TABLE {name} AS SELECT * FROM arrow_{name}")
            frame = pl.scan_parquet(files).select([pl.col(p).alias(c) for p, c in cols])
            self.pl.register(name, frame)

    def run(self, system: str, sql: str) -> list[tuple[Any, ...]]:
        if system == "datafusion files":
            return [tuple(r.values()) for r in self.df.sql(sql).to_arrow_table().to_pylist()]
        if system == "duckdb files":
            return self.dk_files.execute(sql).fetchall()
        if system == "duckdb tables":
            return self.dk_tables.execute(sql).fetchall()
        if system == "polars":
            return self.pl.execute(sql).collect().rows()
        raise ValueError(system)


def same_value(x: Any, y: Any) -> bool:
    """Exact for DECIMAL, integers, text and dates; DOUBLE to 1e-9 relative;
    a DECIMAL next to a DOUBLE to one unit of the DECIMAL's last digit (it
    is the exact value rounded to its scale)."""
    if x is None or y is None:
        return x is None and y is None
    if isinstance(x, float) or isinstance(y, float):
        ulp = 0.0
        for v in (x, y):
            if isinstance(v, decimal.Decimal):
                ulp = max(ulp, float(decimal.Decimal(1).scaleb(v.as_tuple().exponent)))
        fx, fy = float(x), float(y)
        return abs(fx - fy) <= ulp or math.isclose(fx, fy, rel_tol=1e-9, abs_tol=1e-12)
    return bool(x == y) or str(x) == str(y)


def same(a: list[tuple[Any, ...]], b: list[tuple[Any, ...]]) -> bool:
    if len(a) != len(b):
        return False
    for ra, rb in zip(a, b, strict=True):
        if len(ra) != len(rb):
            return False
        if not all(same_value(x, y) for x, y in zip(ra, rb, strict=True)):
            return False
    return True


def time_queries(
    engine: Any,
    peers: Peers,
    rounds: int,
    label: str,
    cpu: dict[tuple[int, str], float] | None = None,
) -> tuple[dict[tuple[int, str], float], list[str]]:
    """Median seconds per (query, system), interleaved; and the problems found.
    ``cpu`` receives the median CPU seconds of the process (every thread:
    ``time.process_time``) per (query, system): on a shared machine wall
    time moves 2-4x with the load, CPU time ~10%."""
    problems: list[str] = []
    runners = {"engine": lambda sql: engine.execute(sql).rows()}
    for s in SYSTEMS[1:]:
        runners[s] = lambda sql, s=s: peers.run(s, sql)
    available: dict[int, list[str]] = {}
    wants: dict[int, list[tuple[Any, ...]]] = {}
    for q, sql in QUERIES.items():
        want = wants[q] = peers.run("duckdb files", sql)
        available[q] = []
        for system, fn in runners.items():
            try:
                got = fn(sql)
            except Exception as exc:  # a peer that cannot run the query is reported
                problems.append(f"{label}Q{q} {system}: cannot run ({type(exc).__name__})")
                continue
            if system == "engine" and not same(got, want):
                problems.append(f"{label}Q{q}: CHECK FAILED, engine answer differs from DuckDB's")
            available[q].append(system)
    samples: dict[tuple[int, str], list[float]] = {}
    cpu_samples: dict[tuple[int, str], list[float]] = {}
    for r in range(rounds):
        for q, sql in QUERIES.items():
            order = available[q][r % len(available[q]) :] + available[q][: r % len(available[q])]
            for system in order:
                start, start_cpu = time.perf_counter(), time.process_time()
                got = runners[system](sql)
                samples.setdefault((q, system), []).append(time.perf_counter() - start)
                cpu_samples.setdefault((q, system), []).append(time.process_time() - start_cpu)
                # Every timed engine answer is checked too (outside the timing):
                # a wrong answer that comes and goes (Q15 over DOUBLE sums) shows.
                if system == "engine" and not same(got, wants[q]):
                    problems.append(f"{label}Q{q} round {r + 1}: CHECK FAILED, engine differs")
    checked = rounds * sum("engine" in available[q] for q in QUERIES)
    bad = sum("round" in p and "CHECK" in p for p in problems)
    problems.append(
        f"{label}engine answers checked against DuckDB: {checked - bad}/{checked} equal"
    )
    if cpu is not None:
        cpu.update({k: statistics.median(v) for k, v in cpu_samples.items()})
    return {k: statistics.median(v) for k, v in samples.items()}, problems


def geomean(xs: list[float]) -> float:
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else float("nan")


def report_for(
    medians: dict[tuple[int, str], float],
    label: str,
    report: BenchReport,
    cpu: dict[tuple[int, str], float] | None = None,
) -> dict[str, float]:
    ratios: dict[str, float] = {}
    for system in SYSTEMS[1:]:
        qs = [q for q in QUERIES if (q, system) in medians and (q, "engine") in medians]
        rs = [medians[(q, "engine")] / medians[(q, system)] for q in qs]
        if rs:
            ratios[system] = geomean(rs)
            worst = max(zip(rs, qs, strict=True))
            note = (
                f"{label}engine / {system}: geometric mean {ratios[system]:.2f}x over "
                f"{len(qs)} queries; worst Q{worst[1]} {worst[0]:.2f}x"
            )
            if cpu and all(cpu.get((q, system)) and (q, "engine") in cpu for q in qs):
                crs = [cpu[(q, "engine")] / cpu[(q, system)] for q in qs]
                cworst = max(zip(crs, qs, strict=True))
                over = sum(r > 1.3 for r in rs)
                note += (
                    f"; CPU {geomean(crs):.2f}x, worst Q{cworst[1]} {cworst[0]:.2f}x"
                    f"; {over} quer{'y' if over == 1 else 'ies'} above 1.3x (wall)"
                )
                if system in ("datafusion files", "duckdb files"):
                    note += "; CPU per query: " + ", ".join(
                        f"Q{q:02d} {r:.2f}" for q, r in zip(qs, crs, strict=True)
                    )
            report.notes.append(note)
    for q in QUERIES:
        for system in SYSTEMS:
            if (q, system) in medians:
                report.rows.append(Row(f"{label}Q{q:02d} {system}", [medians[(q, system)]]))
    return ratios


# (table, column set to itself, key column): same values, new versions.
UPDATES = (
    ("supplier", "s_acctbal", "s_suppkey"),
    ("customer", "c_acctbal", "c_custkey"),
    ("part", "p_size", "p_partkey"),
    ("partsupp", "ps_availqty", "ps_partkey"),
    ("orders", "o_totalprice", "o_orderkey"),
    ("lineitem", "l_tax", "row_id"),
)


def update_one_percent(engine: Any) -> None:
    """A new version of 1% of each big table's rows (hot over cold), with the
    same values, so the answers stay checkable against DuckDB's."""
    for name, column, key in UPDATES:
        engine.execute(f"UPDATE {name} SET {column} = {column} WHERE {key} % 100 = 7")


def run(
    cfg: BenchConfig,
    *,
    sf: float | None = None,
    updated: bool | None = None,
    warm: bool | None = None,
) -> list[BenchReport]:
    sf = sf if sf is not None else cfg.pick(0.01, 0.1, 1.0)
    updated = not cfg.quick if updated is None else updated  # the smoke run stays short
    rounds = max(cfg.pick(2, cfg.rounds), 2 if cfg.quick else 5)
    report = BenchReport(NAME, "TPC-H, 22 queries (issue 15)", scale=f"SF {sf}; {rounds} rounds")
    with work_dir(cfg, NAME) as wd:
        log(f"{NAME}: generating SF {sf}")
        raw = generate(sf, wd / "raw")
        data = {t: _plain(pq.read_table(raw / f"{t}.parquet")) for t in TABLES}
        # The warm cache off: these figures compare reading the same files
        # (``run_warm`` measures the engine with the cache on).
        engine = open_engine(wd / "engine", durability="async", segment_cache_mb=0)
        try:
            log(f"{NAME}: loading through insert_arrow + FLUSH")
            for t, rate in load(engine, data).items():
                report.notes.append(f"load {t}: {data[t].num_rows:,} rows at {rate:,.0f} rows/s")
            peers = Peers(engine, wd / "engine", data)
            log(f"{NAME}: timing")
            cpu: dict[tuple[int, str], float] = {}
            medians, problems = time_queries(engine, peers, rounds, "", cpu)
            report.notes += problems
            clean = report_for(medians, "", report, cpu)
            if updated:
                update_one_percent(engine)
                log(f"{NAME}: timing with 1% updated")
                hot_cpu: dict[tuple[int, str], float] = {}
                hot, problems = time_queries(engine, peers, rounds, "+1% ", hot_cpu)
                report.notes += [p for p in problems if "engine" in p or "CHECK" in p]
                engine_only = [
                    hot[(q, "engine")] / medians[(q, "engine")]
                    for q in QUERIES
                    if (q, "engine") in hot and (q, "engine") in medians
                ]
                engine_cpu = [
                    hot_cpu[(q, "engine")] / cpu[(q, "engine")]
                    for q in QUERIES
                    if hot_cpu.get((q, "engine")) and cpu.get((q, "engine"))
                ]
                report.notes.append(
                    f"+1% updated / clean (engine): geometric mean {geomean(engine_only):.2f}x"
                    f" (CPU {geomean(engine_cpu):.2f}x)"
                )
                report_for(hot, "+1% ", report, hot_cpu)
            report.notes.append(
                "summary: " + ", ".join(f"vs {k} {v:.2f}x" for k, v in clean.items())
            )
        finally:
            engine.close()
    if warm if warm is not None else not cfg.quick:  # the warm cache: a run of its own
        return [report, run_warm(cfg, sf=sf)]
    return [report]


WARM_SYSTEMS = ("engine warm", "engine cold", "datafusion files", "duckdb files", "duckdb tables")


def run_warm(cfg: BenchConfig, *, sf: float | None = None) -> BenchReport:
    """The engine with its warm cache of decoded segments on (after one
    untimed run of every query, which fills it) next to the same engine with
    the cache off (a copy of the data directory opened with
    ``segment_cache_mb=0``) and the peers, interleaved in one process."""
    sf = sf if sf is not None else cfg.pick(0.01, 0.1, 1.0)
    rounds = max(cfg.pick(2, cfg.rounds), 2 if cfg.quick else 5)
    report = BenchReport(
        f"{NAME}_warm", "TPC-H with the warm segment cache (issue 15)", f"SF {sf}; {rounds} rounds"
    )
    with work_dir(cfg, f"{NAME}_warm") as wd:
        log(f"{NAME} warm: generating SF {sf}")
        raw = generate(sf, wd / "raw")
        data = {t: _plain(pq.read_table(raw / f"{t}.parquet")) for t in TABLES}
        loader = open_engine(wd / "warm", durability="async", segment_cache_mb=0)
        try:
            load(loader, data)
        finally:
            loader.close()
        shutil.copytree(wd / "warm", wd / "cold")
        warm = open_engine(wd / "warm", durability="async")  # the default budget
        cold = open_engine(wd / "cold", durability="async", segment_cache_mb=0)
        try:
            peers = Peers(warm, wd / "warm", data)
            runners = {
                "engine warm": lambda sql: warm.execute(sql).rows(),
                "engine cold": lambda sql: cold.execute(sql).rows(),
            }
            for system in WARM_SYSTEMS[2:]:
                runners[system] = lambda sql, s=system: peers.run(s, sql)
            # First runs (the warm engine's fills the cache), then a second
            # run from the cache; every answer checked against DuckDB's.
            first = {"engine warm": 0.0, "engine cold": 0.0}
            for q, sql in QUERIES.items():
                want = peers.run("duckdb files", sql)
                for system in ("engine warm", "engine cold"):
                    start = time.perf_counter()
                    got = runners[system](sql)
                    first[system] += time.perf_counter() - start
                    if not same(got, want):
                        report.notes.append(f"Q{q} {system}: CHECK FAILED, differs from DuckDB")
            # The segments the first runs admitted are decoded in the background.
            start = time.perf_counter()
            warm.db.segment_cache.wait_idle()
            settle = time.perf_counter() - start
            for q, sql in QUERIES.items():
                if not same(runners["engine warm"](sql), peers.run("duckdb files", sql)):
                    report.notes.append(f"Q{q} engine warm (cached): CHECK FAILED")
            for system in WARM_SYSTEMS[2:]:
                for sql in QUERIES.values():
                    peers.run(system, sql)
            cache = warm.db.segment_cache
            arrow_bytes = sum(t.get_total_buffer_size() for t in data.values())
            report.notes.append(
                f"first run of the 22 queries (untimed warm-up): cache on {first['engine warm']:.2f} s "
                f"(segments decoded on a background thread meanwhile; {settle:.2f} s more "
                f"until it finished), cache off {first['engine cold']:.2f} s"
            )
            report.notes.append(
                f"cache after the warm-up: {cache.used / 2**20:,.1f} MB in {len(cache)} segments "
                f"(the data as Arrow tables: {arrow_bytes / 2**20:,.1f} MB); budget "
                f"{cache.budget / 2**20:,.0f} MB"
            )
            # Wall time and CPU time (all threads of the process): on a shared
            # machine wall-clock medians swing with the load, CPU much less.
            samples: dict[tuple[int, str], list[float]] = {}
            cpu: dict[tuple[int, str], list[float]] = {}
            for r in range(rounds):
                for q, sql in QUERIES.items():
                    order = WARM_SYSTEMS[r % 5 :] + WARM_SYSTEMS[: r % 5]
                    for system in order:
                        start, start_cpu = time.perf_counter(), time.process_time()
                        runners[system](sql)
                        samples.setdefault((q, system), []).append(time.perf_counter() - start)
                        cpu.setdefault((q, system), []).append(time.process_time() - start_cpu)
            medians = {k: statistics.median(v) for k, v in samples.items()}
            cpu_medians = {k: statistics.median(v) for k, v in cpu.items()}
            for engine_case in ("engine warm", "engine cold"):
                for peer in WARM_SYSTEMS:
                    if peer == engine_case or peer == "engine warm":
                        continue
                    rs = [medians[(q, engine_case)] / medians[(q, peer)] for q in QUERIES]
                    cs = [cpu_medians[(q, engine_case)] / cpu_medians[(q, peer)] for q in QUERIES]
                    worst = max(zip(rs, QUERIES, strict=True))
                    worst_cpu = max(zip(cs, QUERIES, strict=True))
                    report.notes.append(
                        f"{engine_case} / {peer}: geometric mean {geomean(rs):.2f}x "
                        f"(CPU {geomean(cs):.2f}x); worst Q{worst[1]} {worst[0]:.2f}x "
                        f"(CPU: Q{worst_cpu[1]} {worst_cpu[0]:.2f}x)"
                    )
            report.notes.append(f"cache hits {cache.hits}, misses {cache.misses}")
            for q in QUERIES:
                for system in WARM_SYSTEMS:
                    report.rows.append(Row(f"warm Q{q:02d} {system}", [medians[(q, system)]]))
        finally:
            warm.close()
            cold.close()
    return report


def main() -> None:
    from bench.harness import format_report

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sf", type=float, default=0.1)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--no-updated", action="store_true")
    ap.add_argument("--no-warm", action="store_true", help="skip the warm segment cache run")
    ap.add_argument("--warm-only", action="store_true", help="only time the warm segment cache")
    args = ap.parse_args()
    cfg = BenchConfig(rounds=args.rounds)
    if args.warm_only:
        print(format_report(run_warm(cfg, sf=args.sf)))
        return
    for report in run(cfg, sf=args.sf, updated=not args.no_updated, warm=not args.no_warm):
        print(format_report(report))


if __name__ == "__main__":
    main()
