"""The benchmarks still run: every benchmark at smoke size, with its results
written. Nothing here is timed; speed is judged by `make bench` ratios."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_benchmark_runs_at_smoke_size_and_writes_its_results(tmp_path):
    proc = subprocess.run(
        [sys.executable, "bench/run_all.py", "--quick", "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    results = (tmp_path / "results.md").read_text()
    for section in (
        "INSERT",
        "UPDATE / DELETE",
        "Cold tier",
        "ALTER TABLE",
        "catalog",
        "%kalam",
        "Compaction",
        "Delta Lake publishing",
    ):
        assert section in results, f"{section!r} missing from results.md"
    assert "Not available yet" not in results
    assert "CHECK FAILED" not in results
    assert (tmp_path / "results.png").stat().st_size > 0
