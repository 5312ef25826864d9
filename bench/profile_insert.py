"""Profile the single-row INSERT path with cProfile and print the top costs.

Usage: ``.venv/bin/python bench/profile_insert.py [--rows N] [--literals] [--sort tottime]``.
Not a benchmark (profiling inflates every call); it says *where* the time of
``bench_insert`` goes, as ``file:line(function)`` rows.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.fixtures import open_engine  # noqa: E402
from bench.harness import WORK_DIR  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=2000)
    ap.add_argument("--literals", action="store_true", help="SQL text differs every row")
    ap.add_argument("--durability", default="sync", choices=("sync", "async"))
    ap.add_argument("--sort", default="tottime", choices=("tottime", "cumulative"))
    ap.add_argument("--top", type=int, default=30)
    args = ap.parse_args(argv)

    WORK_DIR.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=WORK_DIR) as tmp:
        engine = open_engine(Path(tmp) / "engine", durability=args.durability)
        try:
            engine.execute("CREATE TABLE p (id BIGINT PRIMARY KEY, name TEXT, value DOUBLE)")

            def one(i: int) -> None:
                if args.literals:
                    engine.execute(
                        f"INSERT INTO p (id, name, value) VALUES ({i}, 'row-{i}', {i * 0.5})"
                    )
                else:
                    engine.execute(
                        "INSERT INTO p (id, name, value) VALUES (?, ?, ?)",
                        (i, f"row-{i}", i * 0.5),
                    )

            for i in range(100):  # warm the parse cache and lazy setup
                one(-1 - i)
            t0 = time.perf_counter()
            prof = cProfile.Profile()
            prof.enable()
            for i in range(args.rows):
                one(i)
            prof.disable()
            took = time.perf_counter() - t0
        finally:
            engine.close()
    print(f"{args.rows} inserts, {took / args.rows * 1e6:.0f} µs each under the profiler")
    stats = pstats.Stats(prof)
    stats.sort_stats(args.sort).print_stats(args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
