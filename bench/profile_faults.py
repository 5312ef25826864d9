"""System time and page faults per TPC-H query through the engine (see
bench/README.md, "DataFusion's allocator").

``PYTHONPATH=$PWD .venv/bin/python -m bench.profile_faults --sf 1 --queries 18,7``

Generates TPC-H at ``--sf`` (tpchgen-cli), loads and flushes it, runs every
query once (the warm cache fills), then each chosen query ``--runs`` times,
printing wall, user and system time, minor faults and transparent huge page
faults of each run. Set ``MIMALLOC_PURGE_DELAY`` in the environment to
compare allocator settings (``engine/allocator.py`` keeps a value set there).
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq

import engine  # noqa: F401  (before DataFusion loads: engine/allocator.py)
from bench.fixtures import open_engine
from bench.tpch import TABLES, _plain, generate, load
from bench.tpch_queries import QUERIES


def _thp_faults() -> int:
    try:
        for line in Path("/proc/vmstat").read_text().splitlines():
            name, value = line.split()
            if name == "thp_fault_alloc":
                return int(value)
    except OSError:
        pass
    return 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sf", type=float, default=0.1)
    ap.add_argument("--queries", default="18,7")
    ap.add_argument("--runs", type=int, default=8)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        raw = generate(args.sf, Path(d) / "raw")
        data = {t: _plain(pq.read_table(raw / f"{t}.parquet")) for t in TABLES}
        eng = open_engine(Path(d) / "engine", durability="async")
        try:
            load(eng, data)
            for q in QUERIES:
                eng.execute(QUERIES[q]).rows()
            eng.db.segment_cache.wait_idle()
            for q in (int(x) for x in args.queries.split(",")):
                for _ in range(args.runs):
                    r0, thp0, t0 = (
                        resource.getrusage(resource.RUSAGE_SELF),
                        _thp_faults(),
                        time.perf_counter(),
                    )
                    eng.execute(QUERIES[q]).rows()
                    wall = time.perf_counter() - t0
                    r1, thp1 = resource.getrusage(resource.RUSAGE_SELF), _thp_faults()
                    print(
                        f"Q{q:02d} wall {wall * 1000:7.1f} ms  user {(r1.ru_utime - r0.ru_utime) * 1000:7.1f}"
                        f"  sys {(r1.ru_stime - r0.ru_stime) * 1000:7.1f}  faults {r1.ru_minflt - r0.ru_minflt:7d}"
                        f"  thp {thp1 - thp0:5d}",
                        flush=True,
                    )
        finally:
            eng.close()


if __name__ == "__main__":
    main()
