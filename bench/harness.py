"""The shared benchmark harness: timing, statistics, targets and reports.

A benchmark module builds its fixtures, hands a set of named ``Case``s to
``interleave`` (which times the engine and its peers in alternating rounds so
machine noise hits all of them alike), turns the samples into ``Row``s with
optional ``Target``s, and returns ``BenchReport``s. ``run_all`` collects the
reports and calls ``write_markdown`` / ``write_chart`` / ``format_report``.

Benchmarks are comparisons made in one process run, not timed tests: a figure
means something only next to its peers' figures from the same run.
"""

from __future__ import annotations

import gc
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
WORK_DIR = BENCH_DIR / "_work"


class NotAvailable(Exception):
    """The engine does not support what a benchmark needs yet; the benchmark is skipped."""


@dataclass(frozen=True)
class BenchConfig:
    """Size knobs shared by every benchmark."""

    quick: bool = False  # CI-size smoke run: every figure, tiny scale
    full: bool = False  # acceptance scale (e.g. 10M cold rows); slower
    rounds: int = 5  # interleaved rounds per comparison
    work_dir: Path = WORK_DIR

    def pick(self, quick: Any, default: Any, full: Any = None) -> Any:
        """The value for the current size: ``quick``, ``default`` or ``full``."""
        if self.quick:
            return quick
        if self.full and full is not None:
            return full
        return default


@dataclass
class Case:
    """One named thing to time.

    ``fn`` is called once per sample. When ``self_timed`` is set, ``fn`` returns
    its own elapsed seconds (for cases whose untimed setup/teardown must run
    around every sample, e.g. closing an engine before re-opening it).
    """

    name: str
    fn: Callable[[], Any]
    self_timed: bool = False


def _sample(case: Case) -> float:
    if case.self_timed:
        return float(case.fn())
    start = time.perf_counter()
    case.fn()
    return time.perf_counter() - start


def interleave(
    cases: Sequence[Case],
    *,
    rounds: int,
    per_round: int,
    warmup: int = 3,
    block: int = 10,
) -> dict[str, list[float]]:
    """Time every case ``rounds * per_round`` times, alternating between cases.

    Within a round the cases take turns in blocks of ``block`` samples until
    each has ``per_round``; the starting case rotates every round. On a shared
    VM the noise comes in bursts of a few hundred milliseconds, so short turns
    spread a burst over all cases instead of landing on one. Returns the
    samples in seconds per case name.
    """
    for case in cases:
        for _ in range(warmup):
            _sample(case)
    samples: dict[str, list[float]] = {c.name: [] for c in cases}
    order = list(cases)
    block = max(1, block)
    for r in range(rounds):
        rotated = order[r % len(order) :] + order[: r % len(order)]
        # Collect between rounds, not inside them, so the collector's pauses
        # are not charged to whichever case happens to trigger them.
        gc.collect()
        for start in range(0, per_round, block):
            n = min(block, per_round - start)
            for case in rotated:
                out = samples[case.name]
                for _ in range(n):
                    out.append(_sample(case))
    return samples


def time_once(fn: Callable[[], Any]) -> float:
    """Seconds taken by one call of ``fn``."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def cpu_timed(fn: Callable[[], Any]) -> Callable[[], float]:
    """A self-timed ``Case`` function: the CPU-seconds (this process, every
    thread) one call of ``fn`` takes."""

    def timed() -> float:
        start = time.process_time()
        fn()
        return time.process_time() - start

    return timed


def median(xs: Sequence[float]) -> float:
    return statistics.median(xs)


def p90(xs: Sequence[float]) -> float:
    """90th percentile (nearest rank)."""
    ordered = sorted(xs)
    rank = max(1, math.ceil(0.9 * len(ordered)))
    return ordered[rank - 1]


@dataclass(frozen=True)
class Target:
    """What a row must achieve; every field that is set must hold."""

    max_value: float | None = None  # median at most this (in the row's unit)
    min_value: float | None = None  # median at least this (in the row's unit)
    max_ratio: tuple[tuple[str, float], ...] = ()  # (peer case, max median ratio)

    def describe(self, unit: str) -> str:
        parts = []
        if self.max_value is not None:
            parts.append(f"≤ {fmt_value(unit, self.max_value)}")
        if self.min_value is not None:
            parts.append(f"≥ {fmt_value(unit, self.min_value)}")
        for peer, ratio in self.max_ratio:
            parts.append(f"≤ {ratio:g}× {peer}")
        return ", ".join(parts)


@dataclass
class Row:
    """One measured case of a report.

    ``samples`` are seconds per operation (``unit="s"``), rates where higher
    is better (``unit="rate"``, rows/s), or derived ratios (``unit="x"``).
    """

    case: str
    samples: list[float]
    unit: str = "s"  # "s", "rate" or "x"
    peers: tuple[str, ...] = ()  # cases to show a median ratio against
    target: Target | None = None
    note: str = ""

    @property
    def median(self) -> float:
        return median(self.samples)

    @property
    def p90(self) -> float:
        # For rates the bad tail is the low end.
        if self.unit == "rate":
            return -p90([-x for x in self.samples])
        return p90(self.samples)


@dataclass
class BenchReport:
    """The rows of one benchmark (or the reason it was skipped)."""

    name: str
    title: str
    scale: str = ""
    rows: list[Row] = field(default_factory=list)
    skipped: str | None = None
    notes: list[str] = field(default_factory=list)

    def row(self, case: str) -> Row:
        for r in self.rows:
            if r.case == case:
                return r
        raise KeyError(f"{self.name}: no row {case!r}")

    def ratio(self, case: str, peer: str) -> float:
        """Median of ``case`` divided by median of ``peer``."""
        return self.row(case).median / self.row(peer).median

    def verdict(self, row: Row) -> bool | None:
        """True/False against the row's target; None if it has none."""
        t = row.target
        if t is None:
            return None
        ok = True
        if t.max_value is not None:
            ok &= row.median <= t.max_value
        if t.min_value is not None:
            ok &= row.median >= t.min_value
        for peer, limit in t.max_ratio:
            ok &= self.ratio(row.case, peer) <= limit
        return ok


def rows_from_samples(
    samples: dict[str, list[float]],
    *,
    peers: dict[str, Iterable[str]] | None = None,
    targets: dict[str, Target] | None = None,
    notes: dict[str, str] | None = None,
) -> list[Row]:
    """Rows in case order, with peers/targets/notes looked up by case name."""
    peers = peers or {}
    targets = targets or {}
    notes = notes or {}
    return [
        Row(
            case=name,
            samples=xs,
            peers=tuple(peers.get(name, ())),
            target=targets.get(name),
            note=notes.get(name, ""),
        )
        for name, xs in samples.items()
    ]


# ---------------------------------------------------------------- formatting


def fmt_seconds(s: float) -> str:
    if s < 1e-3:
        return f"{s * 1e6:.0f} µs"
    if s < 1.0:
        return f"{s * 1e3:.2f} ms"
    return f"{s:.2f} s"


def fmt_rate(x: float) -> str:
    if x >= 1e6:
        return f"{x / 1e6:.2f}M rows/s"
    if x >= 1e3:
        return f"{x / 1e3:.0f}k rows/s"
    return f"{x:.0f} rows/s"


def fmt_value(unit: str, value: float) -> str:
    if unit == "rate":
        return fmt_rate(value)
    if unit == "x":
        return f"{value:.2f}×"
    return fmt_seconds(value)


def _verdict_text(v: bool | None) -> str:
    return "" if v is None else ("pass" if v else "FAIL")


_HEADER = ("case", "median", "p90", "n", "ratio vs peer", "target", "result")


def report_table(report: BenchReport) -> list[tuple[str, ...]]:
    """The report as table rows of strings (header first)."""
    table: list[tuple[str, ...]] = [_HEADER]
    for row in report.rows:
        ratios = ", ".join(f"{report.ratio(row.case, p):.2f}× {p}" for p in row.peers)
        case = f"{row.case} ({row.note})" if row.note else row.case
        table.append(
            (
                case,
                fmt_value(row.unit, row.median),
                fmt_value(row.unit, row.p90),
                str(len(row.samples)),
                ratios,
                row.target.describe(row.unit) if row.target else "",
                _verdict_text(report.verdict(row)),
            )
        )
    return table


def format_report(report: BenchReport) -> str:
    """Plain-text rendering for stdout."""
    lines = [f"== {report.title} [{report.name}]"]
    if report.skipped is not None:
        lines.append(f"   not available yet: {report.skipped}")
        return "\n".join(lines)
    if report.scale:
        lines.append(f"   scale: {report.scale}")
    table = report_table(report)
    widths = [max(len(r[i]) for r in table) for i in range(len(_HEADER))]
    for r in table:
        lines.append("   " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))
    lines.extend(f"   note: {n}" for n in report.notes)
    return "\n".join(lines)


def machine_line() -> str:
    return (
        f"Python {platform.python_version()}, {platform.system()} {platform.machine()}, "
        f"{os.cpu_count()} CPUs"
    )


def write_markdown(reports: Sequence[BenchReport], path: Path, *, argv: Sequence[str]) -> None:
    """Write every report as a markdown table."""
    out = [
        "# Benchmark results",
        "",
        f"Generated {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')} by "
        f"`{' '.join(['bench/run_all.py', *argv])}` on {machine_line()}.",
        "Engine and peers ran interleaved in the same process run; ratios are of medians.",
        "",
    ]
    for report in reports:
        out.append(f"## {report.title}")
        out.append("")
        if report.skipped is not None:
            out.extend([f"Not available yet: {report.skipped}", ""])
            continue
        if report.scale:
            out.extend([f"Scale: {report.scale}", ""])
        table = report_table(report)
        out.append("| " + " | ".join(table[0]) + " |")
        out.append("|" + "|".join(" --- " for _ in table[0]) + "|")
        out.extend("| " + " | ".join(r) + " |" for r in table[1:])
        out.append("")
        out.extend(f"- {n}" for n in report.notes)
        if report.notes:
            out.append("")
    path.write_text("\n".join(out), encoding="utf-8")


def write_chart(reports: Sequence[BenchReport], path: Path) -> bool:
    """One horizontal bar panel per report (latency rows); False if nothing to plot."""
    panels = [(r, [row for row in r.rows if row.unit == "s"]) for r in reports if r.skipped is None]
    panels = [(r, rows) for r, rows in panels if rows]
    if not panels:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    height = sum(0.45 * len(rows) + 0.9 for _, rows in panels)
    fig, axes = plt.subplots(
        len(panels),
        1,
        figsize=(9, max(2.5, height)),
        squeeze=False,
        gridspec_kw={"height_ratios": [len(rows) + 1 for _, rows in panels]},
    )
    for ax, (report, rows) in zip(axes[:, 0], panels, strict=True):
        names = [row.case for row in rows][::-1]
        med = [row.median * 1e3 for row in rows][::-1]
        hi = [(row.p90 - row.median) * 1e3 for row in rows][::-1]
        colors = []
        for row in rows[::-1]:
            v = report.verdict(row)
            colors.append("tab:gray" if v is None else ("tab:green" if v else "tab:red"))
        ax.barh(names, med, xerr=[[0] * len(hi), hi], color=colors, capsize=3)
        if max(med) / max(min(med), 1e-9) > 50:
            ax.set_xscale("log")
        ax.set_title(report.title, fontsize=10, loc="left")
        ax.set_xlabel("median ms (whisker: p90; green pass, red fail, grey no target)")
        ax.tick_params(axis="y", labelsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def log(msg: str) -> None:
    """Progress line on stderr so stdout stays the result tables."""
    print(f"[bench] {msg}", file=sys.stderr, flush=True)
