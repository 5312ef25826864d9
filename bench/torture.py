"""SIGKILL torture: no acknowledged write is ever lost, duplicated or changed.

Usage (from the repository root)::

    .venv/bin/python bench/torture.py                 # 30 cycles
    .venv/bin/python bench/torture.py --cycles 300    # the acceptance run
    .venv/bin/python bench/torture.py --seed 1234 --keep --work-dir /tmp/t

Each cycle starts ``bench/torture_child.py`` on the same data directory
(durability ``sync``, the flush scheduler running in the background), sends it
seeded random INSERT / UPDATE / DELETE / ALTER TABLE / FLUSH TABLE / RENAME TO
statements over a SHARED and a USER table (two users), one at a time, and
applies a statement to the model (``torture_model``) only once the child
acknowledged it. The cycle ends with a SIGKILL at a random moment, or with the
child killing itself at a chosen flush step through the crash hook or right
after its n-th durable commit, or (rarely) with a clean close. The parent then reopens the data directory and checks every
acknowledged write: live rows present with the expected values in the current
schema, deleted rows absent, one copy per key, nothing else. The one statement
sent but not acknowledged may or may not have applied; both outcomes pass. The
next cycle continues from the recovered state.

Exit status 1 if any cycle failed; the transcript of every statement and ack is
in ``<work dir>/transcript.log`` (kept when a cycle failed or with ``--keep``).
To check another checkout's engine, put it first: ``PYTHONPATH=/path/to/it``
(one that does not change during the run: the run stops if it does).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import queue
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if not os.environ.get("PYTHONPATH") and str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # run as a script: test the engine next to it

try:
    from . import torture_model as tm
except ImportError:  # run as a script: bench/ is sys.path[0]
    import torture_model as tm  # type: ignore[no-redef]

CHILD = HERE / "torture_child.py"
STEPS = (
    "segment_written",
    "manifest_json_written",
    "hot_manifest_committed",
    "hot_rows_partly_removed",
)
TIMEOUT = 120.0  # a statement or a start that takes longer is reported as a hang
DATA_FAILURES = ("lost", "duplicated", "wrong_value", "resurrected", "unexpected")


@dataclass
class CycleResult:
    index: int
    seed: int
    mode: str  # kill / step:<step>#n / close
    sent: int = 0
    acked: int = 0
    acked_writes: int = 0  # row writes (puts and deletes) in acknowledged statements
    checked: int = 0  # row facts verified after the restart
    ended_by: str = ""  # kill / crash_hook / close / child_died / hang
    in_flight: str | None = None
    in_flight_applied: bool | None = None
    problems: list[tm.Problem] = field(default_factory=list)
    job_failures: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def failed(self) -> bool:
        return bool(self.problems)

    def line(self) -> str:
        status = "ok"
        if self.problems:
            counts = Counter(p.category for p in self.problems)
            status = "FAIL " + " ".join(f"{k}={v}" for k, v in sorted(counts.items()))
        flight = ""
        if self.in_flight is not None:
            flight = f" in-flight={'applied' if self.in_flight_applied else 'not applied'}"
        return (
            f"cycle {self.index:4d} seed={self.seed:<10d} {self.mode:32s} sent={self.sent:<4d} "
            f"acked={self.acked:<4d} writes={self.acked_writes:<4d} checked={self.checked:<6d} "
            f"end={self.ended_by}{flight} {self.seconds:5.1f}s {status}"
        )


@dataclass
class Report:
    seed: int
    work_dir: Path
    engine_path: str
    cycles: list[CycleResult] = field(default_factory=list)

    @property
    def failures(self) -> list[CycleResult]:
        return [c for c in self.cycles if c.failed]

    def totals(self) -> Counter[str]:
        out: Counter[str] = Counter()
        for c in self.cycles:
            out.update(p.category for p in c.problems)
        return out

    def summary(self, *, details: int = 5) -> str:
        totals = self.totals()
        lines = [
            f"torture: seed {self.seed}, engine {self.engine_path}, work dir {self.work_dir}",
            f"cycles {len(self.cycles)}, statements acknowledged "
            f"{sum(c.acked for c in self.cycles)}, acknowledged row writes "
            f"{sum(c.acked_writes for c in self.cycles)}, row facts checked "
            f"{sum(c.checked for c in self.cycles)}",
            "ended by: "
            + ", ".join(
                f"{k} {v}" for k, v in sorted(Counter(c.ended_by for c in self.cycles).items())
            ),
            "lost {lost}, duplicated {duplicated}, wrong values {wrong_value}, "
            "resurrected {resurrected}, unexpected {unexpected}".format(
                **{k: totals.get(k, 0) for k in DATA_FAILURES}
            ),
        ]
        others = {k: v for k, v in totals.items() if k not in DATA_FAILURES}
        if others:
            lines.append(
                "other problems: " + ", ".join(f"{k} {v}" for k, v in sorted(others.items()))
            )
        jobs = sum(len(c.job_failures) for c in self.cycles)
        if jobs:
            lines.append(f"background jobs that failed (not counted as failures): {jobs}")
        if self.failures:
            lines.append(
                "failing cycles (index:seed): "
                + ", ".join(f"{c.index}:{c.seed}" for c in self.failures)
            )
            for c in self.failures:
                lines.append(f"  {c.line()}")
                for p in c.problems[:details]:
                    lines.append(f"    {p.category}: {p.detail[:400]}")
                if len(c.problems) > details:
                    lines.append(f"    ... {len(c.problems) - details} more")
        else:
            lines.append("no failures")
        return "\n".join(lines)


# ---------------------------------------------------------------- the child


class ChildProcess:
    """``torture_child.py`` with its stdout lines on a queue (a line counts only
    once its newline arrived) and its stderr collected."""

    def __init__(self, data_dir: Path, args: list[str]) -> None:
        env = dict(os.environ)
        env.pop("KALAM_DATA_DIR", None)
        env["PYTHONPATH"] = os.environ.get("PYTHONPATH") or str(ROOT)
        self.proc = subprocess.Popen(
            [sys.executable, str(CHILD), str(data_dir), *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            env=env,
            cwd=ROOT,
        )
        self.lines: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.stderr: list[str] = []
        self.eof = False
        self._threads = [
            threading.Thread(target=self._read_stdout, daemon=True),
            threading.Thread(target=self._read_stderr, daemon=True),
        ]
        for t in self._threads:
            t.start()

    def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.endswith("\n"):  # a line cut short by the kill was never acknowledged
                try:
                    self.lines.put(json.loads(line))
                except json.JSONDecodeError:
                    self.lines.put({"noise": line.rstrip("\n")})
        self.lines.put(None)

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr.append(line)

    def send(self, obj: dict[str, Any]) -> bool:
        """False if the child is gone (its stdin is closed)."""
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(json.dumps(obj) + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError, ValueError):
            return False
        return True

    def get(self, timeout: float) -> dict[str, Any] | None | str:
        """The next event, ``None`` at (and after) the end of output,
        ``"timeout"`` if none came in time."""
        if self.eof:
            return None
        try:
            event = self.lines.get(timeout=max(0.0, timeout))
        except queue.Empty:
            return "timeout"
        self.eof = event is None
        return event

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=TIMEOUT)

    def close(self) -> None:
        self.kill()
        for t in self._threads:
            t.join(timeout=TIMEOUT)
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()

    def stderr_tail(self) -> str:
        return "".join(self.stderr)[-3000:]


# ---------------------------------------------------------------- reading back


def read_actual(data_dir: Path, models: list[tm.Model], rng: random.Random) -> tm.Actual:
    """Reopen ``data_dir`` (startup recovery runs) and read every table of the
    namespace, in every scope a model mentions, plus point lookups of sampled
    live and deleted keys (they go through segment pruning)."""
    from engine import Engine

    probes: dict[str, set[tuple[str, int]]] = {}
    base = models[0]
    for m in models:
        for t in m.tables.values():
            bt = base.tables[t.ident]
            want = probes.setdefault(t.name, set())
            for scope in t.read_scopes():
                live = sorted(bt.rows.get(scope, {}))
                gone = sorted(bt.deleted.get(scope, set()))
                for pk in rng.sample(live, min(3, len(live))) + rng.sample(gone, min(2, len(gone))):
                    want.add((scope, pk))
    with Engine.open(data_dir, background_jobs=False) as eng:
        tables = eng.execute(
            f"SELECT table_name, table_type FROM system.tables WHERE namespace = '{tm.NS}'"
        ).rows()
        columns = eng.execute(
            "SELECT table_name, column_name, data_type FROM system.columns "
            f"WHERE namespace = '{tm.NS}' ORDER BY table_name, ordinal"
        ).rows()
        out = tm.Actual(tables={})
        for name, kind in tables:
            schema = [(c, ty) for tn, c, ty in columns if tn == name]
            got = tm.ActualTable(name, kind, schema, rows={}, counts={})
            scopes = (tm.ADMIN,) if kind == "SHARED" else (*tm.USERS, tm.BYSTANDER)
            q = f"{tm.NS}.{name}"
            for scope in scopes:
                got.rows[scope] = eng.execute(f"SELECT * FROM {q}", user=scope).to_pylist()
                got.counts[scope] = eng.execute(f"SELECT COUNT(*) FROM {q}", user=scope).scalar()
            for scope, pk in sorted(probes.get(name, ())):
                if scope in scopes:
                    got.points[(scope, pk)] = eng.execute(
                        f"SELECT * FROM {q} WHERE {tm.PK} = ?", [pk], user=scope
                    ).to_pylist()
            out.tables[name] = got
    storage = data_dir / "storage" / tm.NS
    if storage.is_dir():
        out.stray_dirs = {
            p.name: f"no table owns it; holds {sorted(x.name for x in p.iterdir())[:6]}"
            for p in storage.iterdir()
            if p.is_dir() and p.name not in out.tables
        }
    return out


def setup(data_dir: Path, rng: random.Random) -> tm.Model:
    from engine import Engine

    model = tm.initial_model()
    with Engine.open(data_dir, background_jobs=False) as eng:
        for sql in tm.create_statements(model, rng):
            eng.execute(sql)
    return model


# ---------------------------------------------------------------- one cycle


class Torture:
    def __init__(
        self,
        work_dir: Path,
        seed: int,
        *,
        max_statements: int = 120,
        log: IO[str] | None = None,
        echo: bool = True,
        modes: tuple[str, ...] | None = None,
    ) -> None:
        self.work_dir = work_dir
        self.seed = seed
        self.rng = random.Random(seed)
        self.max_statements = max_statements
        self.log = log
        self.echo = echo
        self.modes = modes
        self.epoch = 0
        self.data_dir = work_dir / "data-0"
        self.model = setup(self.data_dir, random.Random(seed))

    def note(self, text: str) -> None:
        if self.log is not None:
            self.log.write(text + "\n")

    def pick_mode(self, rng: random.Random, budget: int) -> tuple[str, str | None, int]:
        """(mode, flush step, n): SIGKILL at a random moment; at the n-th time a
        flush reaches a step; right after the n-th durable commit; or close."""
        roll = rng.random()
        mode = (
            "kill" if roll < 0.5 else "step" if roll < 0.8 else "commit" if roll < 0.95 else "close"
        )
        if self.modes:
            mode = rng.choice(self.modes)
            if mode.startswith("step:"):
                return "step", mode.split(":", 1)[1], 1
        if mode == "step":
            return "step", rng.choice(STEPS), rng.choice((1, 1, 2, 3))
        if mode == "commit":
            return "commit", None, rng.randint(1, budget + 5)
        return mode, None, 0

    def run_cycle(self, index: int, seed: int) -> CycleResult:
        started = time.perf_counter()
        rng = random.Random(seed)
        budget = rng.randint(5, self.max_statements)
        mode, step, nth = self.pick_mode(rng, budget)
        label = {"step": f"step:{step}#{nth}", "commit": f"commit#{nth}"}.get(mode, mode)
        res = CycleResult(index, seed, label)
        kill_at = rng.randrange(budget)
        delay = rng.choice((0.0, rng.uniform(0, 0.002), rng.uniform(0, 0.03)))
        args = [
            "--period",
            f"{rng.uniform(0.005, 0.05):.3f}",
            "--delete-chunk",
            str(rng.randint(2, 9)),
        ]
        if step is not None:
            args += ["--crash-step", step, "--crash-nth", str(nth)]
        if mode == "commit":
            args += ["--crash-commit", str(nth)]
        self.note(f"=== cycle {index} seed {seed} mode {label} budget {budget} args {args}")
        child = ChildProcess(self.data_dir, args)
        gen = tm.Generator(rng, self.model)
        in_flight: tm.Stmt | None = None
        dead = False
        try:
            first = child.get(TIMEOUT)
            if not isinstance(first, dict) or "ready" not in first:
                res.ended_by = "child_died"
                res.problems.append(
                    tm.Problem(
                        "child_died", f"child did not start: {first!r}\n{child.stderr_tail()}"
                    )
                )
                dead = True
            n = 0
            while not dead:
                if n < budget:
                    stmt: tm.Stmt | None = gen.next()
                elif mode == "step" and n < budget + len(self.model.tables):
                    # Finale: flush every table, so the chosen step is reached.
                    t = sorted(self.model.tables.values(), key=lambda x: x.ident)[n - budget]
                    stmt = gen._flush_wait(t, tm.ADMIN)
                else:
                    break
                assert stmt is not None
                if not child.send(stmt.to_json(n)):
                    break  # died meanwhile (crash hook); its last lines are still queued
                in_flight = stmt
                res.sent += 1
                self.note(f"> {n} [{stmt.user}] {stmt.sql} {json.dumps(stmt.params, default=str)}")
                deadline = time.monotonic() + (
                    delay if mode == "kill" and n == kill_at else TIMEOUT
                )
                while in_flight is not None and not dead:
                    event = child.get(deadline - time.monotonic())
                    if event == "timeout":
                        if mode == "kill" and n == kill_at:
                            break
                        res.problems.append(tm.Problem("hang", f"no answer to {stmt.sql}"))
                        res.ended_by = "hang"
                        dead = True
                        break
                    if event is None:
                        dead = True
                        break
                    in_flight = self.handle(event, in_flight, n, res)
                if mode == "kill" and n == kill_at:
                    break
                n += 1
            if not dead and mode == "close" and in_flight is None:
                child.send({"close": True})
                res.ended_by = "close"
            elif not res.ended_by:
                res.ended_by = "kill"
            if mode != "close":
                child.kill()
            # Everything the child printed before it died still counts.
            while True:
                event = child.get(TIMEOUT)
                if event is None:
                    break
                if event == "timeout":
                    res.problems.append(tm.Problem("hang", "child output never ended"))
                    break
                in_flight = self.handle(event, in_flight, None, res)
            rc = child.proc.wait(timeout=TIMEOUT)
            if res.ended_by == "close" and rc != 0:
                res.problems.append(tm.Problem("child_died", f"exit {rc}\n{child.stderr_tail()}"))
            elif res.ended_by not in ("close", "hang") and rc != -signal.SIGKILL:
                res.ended_by = "child_died"
                res.problems.append(tm.Problem("child_died", f"exit {rc}\n{child.stderr_tail()}"))
        finally:
            child.close()
        self.check(res, in_flight, rng)
        res.seconds = time.perf_counter() - started
        return res

    def handle(
        self, event: Any, in_flight: tm.Stmt | None, n: int | None, res: CycleResult
    ) -> tm.Stmt | None:
        """Apply one child event; returns the statement still in flight."""
        self.note(f"< {json.dumps(event, default=str, ensure_ascii=False)[:3000]}")
        if not isinstance(event, dict):
            return in_flight
        if "ack" in event:
            assert in_flight is not None and (n is None or event["ack"] == n), (event, n)
            self.model.apply(in_flight.ops)
            res.acked += 1
            res.acked_writes += sum(op[0] in ("put", "del") for op in in_flight.ops)
            got = event.get("rows_affected")
            if in_flight.affected is not None:
                lo, hi = in_flight.affected
                if got is None or not lo <= got <= hi:
                    res.problems.append(
                        tm.Problem(
                            "rows_affected",
                            f"{in_flight.sql} {in_flight.params}: rows_affected {got}, "
                            f"expected {lo}..{hi} ({in_flight.what[:300]})",
                        )
                    )
            return None
        if "error" in event:
            assert in_flight is not None
            res.problems.append(
                tm.Problem(
                    "statement_error",
                    f"{in_flight.sql} {in_flight.params} as {in_flight.user}: "
                    f"{event.get('type')} {event.get('code')}: {event.get('message')}",
                )
            )
            return None  # a failed statement changes nothing (invariant 1)
        if "crash" in event:
            res.ended_by = "crash_hook"
        if "job_failed" in event:
            res.job_failures.append(json.dumps(event["job_failed"], default=str))
        if "noise" in event:
            res.problems.append(tm.Problem("child_output", event["noise"][:500]))
        return in_flight

    def check(self, res: CycleResult, in_flight: tm.Stmt | None, rng: random.Random) -> None:
        candidates = [self.model]
        if in_flight is not None:
            res.in_flight = in_flight.sql
            applied = self.model.copy()
            applied.apply(in_flight.ops)
            candidates.append(applied)
        try:
            actual = read_actual(self.data_dir, candidates, rng)
        except Exception as exc:  # noqa: BLE001 - any failure to reopen or read is a finding
            res.problems.append(tm.Problem("reopen_failed", f"{type(exc).__name__}: {exc}"))
            self.reset(res)
            return
        best, problems, checked = tm.judge(candidates, actual)
        res.checked = checked
        res.problems += problems
        if in_flight is not None:
            res.in_flight_applied = best == 1
        self.model = candidates[best]
        if problems:
            try:
                self.model = tm.resync(self.model, actual)
            except LookupError as exc:
                res.problems.append(tm.Problem("cannot_continue", str(exc)))
                self.reset(res)
        for p in res.problems:
            self.note(f"! {p.category}: {p.detail}")

    def reset(self, res: CycleResult) -> None:
        """Continue on a fresh data directory (the broken one is kept)."""
        self.epoch += 1
        self.note(f"!!! data dir {self.data_dir} abandoned; continuing in data-{self.epoch}")
        self.data_dir = self.work_dir / f"data-{self.epoch}"
        self.model = setup(self.data_dir, random.Random(res.seed))


def source_fingerprint(package_dir: Path) -> tuple[tuple[str, int, int], ...]:
    """Every engine source file's name, size and mtime: the parent and each
    child import the engine separately, so a checkout that changes mid-run
    would have them disagree (use a snapshot, e.g. ``git archive``)."""
    return tuple(
        (str(p.relative_to(package_dir)), p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(package_dir.rglob("*.py"))
    )


def run(
    cycles: int,
    seed: int,
    work_dir: Path,
    *,
    max_statements: int = 120,
    echo: bool = True,
    stop_on_failure: bool = False,
    modes: tuple[str, ...] | None = None,
) -> Report:
    import engine

    work_dir.mkdir(parents=True, exist_ok=True)
    for old in work_dir.glob("data-*"):  # a previous run's: every run starts empty
        shutil.rmtree(old)
    report = Report(seed, work_dir, str(Path(engine.__file__).parent))
    with open(work_dir / "transcript.log", "w", encoding="utf-8") as log:
        torture = Torture(
            work_dir, seed, max_statements=max_statements, log=log, echo=echo, modes=modes
        )
        seeds = random.Random(seed)
        package_dir = Path(engine.__file__).parent
        fingerprint = source_fingerprint(package_dir)
        for index in range(cycles):
            if source_fingerprint(package_dir) != fingerprint:
                raise SystemExit(
                    f"torture: the engine source under {package_dir} changed during the run "
                    f"(after cycle {index - 1}); run against a snapshot that stays put"
                )
            result = torture.run_cycle(index, seeds.getrandbits(32))
            report.cycles.append(result)
            log.flush()
            if echo:
                print(result.line(), flush=True)
            if result.failed and stop_on_failure:
                break
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cycles", type=int, default=30)
    parser.add_argument("--seed", type=int, default=None, help="default: random (printed)")
    parser.add_argument("--max-statements", type=int, default=120, help="per cycle")
    parser.add_argument("--work-dir", type=Path, default=None, help="default: a temp dir")
    parser.add_argument("--keep", action="store_true", help="keep the work dir even if all passed")
    parser.add_argument("--stop-on-failure", action="store_true")
    parser.add_argument(
        "--mode",
        action="append",
        default=None,
        help="kill, close, commit or step:<flush step> (repeatable; default: a random mix)",
    )
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**31)
    work_dir = args.work_dir or Path(tempfile.mkdtemp(prefix="kalam-torture-"))
    print(f"torture: seed {seed}, {args.cycles} cycles, work dir {work_dir}", flush=True)
    report = run(
        args.cycles,
        seed,
        work_dir,
        max_statements=args.max_statements,
        stop_on_failure=args.stop_on_failure,
        modes=tuple(args.mode) if args.mode else None,
    )
    print(report.summary(), flush=True)
    if not report.failures and not args.keep and args.work_dir is None:
        shutil.rmtree(work_dir, ignore_errors=True)
    return 1 if report.failures else 0


if __name__ == "__main__":
    sys.exit(main())
