"""Run the benchmarks and write ``bench/results.md`` and ``bench/results.png``.

Usage (from the repository root)::

    .venv/bin/python bench/run_all.py                 # default scale, a few minutes
    .venv/bin/python bench/run_all.py --quick         # CI smoke scale, < 60 s
    .venv/bin/python bench/run_all.py --full          # acceptance scale (10M cold rows)
    .venv/bin/python bench/run_all.py --only insert   # one benchmark (repeatable / comma list)

A benchmark module exposes ``NAME`` and ``run(cfg: BenchConfig) -> list[BenchReport]``
and raises ``NotAvailable`` (or lets the engine's "unsupported" errors escape
through ``fixtures.needs``) when the engine cannot do what it measures yet; it
is then listed as skipped with the reason. Other exceptions are reported as
errors and make the exit status 1; missed targets do so only with ``--strict``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    # Run as a script the directory on sys.path is bench/; the engine and the
    # ``bench`` package live at the repository root.
    sys.path.insert(0, str(ROOT))

from bench.harness import (  # noqa: E402
    BENCH_DIR,
    BenchConfig,
    BenchReport,
    NotAvailable,
    format_report,
    log,
    write_chart,
    write_markdown,
)

# name -> module, in run order. ``magic`` is owned by the kalam_magic benchmark helper.
BENCHMARKS = {
    "insert": "bench.bench_insert",
    "dml": "bench.bench_dml",
    "cold": "bench.bench_cold",
    "alter": "bench.bench_alter",
    "catalog": "bench.bench_catalog",
    "compact": "bench.bench_compact",
    "s3": "bench.bench_s3",
    "delta": "bench.bench_delta",
    "scan": "bench.bench_scan",
    "hot": "bench.bench_hot",
    "tpch": "bench.tpch",
    "magic": "bench.bench_magic",
    "fetch": "bench.bench_fetch",
    "manifest": "bench.bench_manifest",
    "exists": "bench.bench_exists",
    "theta": "bench.bench_theta",
}


def _selected(only: list[str] | None) -> list[str]:
    if not only:
        return list(BENCHMARKS)
    names = [n.strip() for item in only for n in item.split(",") if n.strip()]
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        raise SystemExit(f"unknown benchmark(s) {unknown}; choose from {list(BENCHMARKS)}")
    return names


def run_one(name: str, cfg: BenchConfig) -> tuple[list[BenchReport], bool]:
    """Reports of one benchmark and whether it errored."""
    module_name = BENCHMARKS[name]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:
            return [BenchReport(name, name, skipped=f"{module_name} does not exist")], False
        raise
    if not hasattr(module, "run"):
        return [BenchReport(name, name, skipped=f"{module_name} has no run(cfg)")], False
    title = (module.__doc__ or name).strip().splitlines()[0].rstrip(".")
    try:
        return list(module.run(cfg)), False
    except NotAvailable as exc:
        return [BenchReport(name, title, skipped=str(exc))], False
    except Exception as exc:
        traceback.print_exc()
        return [BenchReport(name, title, skipped=f"ERROR {type(exc).__name__}: {exc}")], True


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    size = ap.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="CI smoke scale (< 60 s)")
    size.add_argument("--full", action="store_true", help="acceptance scale (slow)")
    ap.add_argument("--only", action="append", help="benchmark name(s) to run")
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    ap.add_argument("--out", type=Path, default=BENCH_DIR, help="where results.md/png go")
    ap.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = ap.parse_args(argv)

    cfg = BenchConfig(quick=args.quick, full=args.full, rounds=max(1, args.rounds))
    reports: list[BenchReport] = []
    errored = False
    started = time.perf_counter()
    for name in _selected(args.only):
        log(f"{name}: start")
        t0 = time.perf_counter()
        got, err = run_one(name, cfg)
        errored |= err
        for report in got:
            print(format_report(report), flush=True)
            print(flush=True)
        log(f"{name}: done in {time.perf_counter() - t0:.1f} s")
        reports.extend(got)

    args.out.mkdir(parents=True, exist_ok=True)
    write_markdown(reports, args.out / "results.md", argv=argv)
    charted = write_chart(reports, args.out / "results.png")
    log(
        f"wrote {args.out / 'results.md'}"
        + (f" and {args.out / 'results.png'}" if charted else " (no chart: nothing measured)")
        + f"; total {time.perf_counter() - started:.1f} s"
    )
    missed = [(r.name, row.case) for r in reports for row in r.rows if r.verdict(row) is False]
    if missed:
        log(f"targets missed: {missed}")
    return 1 if errored or (args.strict and missed) else 0


if __name__ == "__main__":
    sys.exit(main())
