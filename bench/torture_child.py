"""The process that ``bench/torture.py`` kills: it executes statements it is sent
and acknowledges each one only after ``execute()`` returned.

Usage: ``python torture_child.py DATA_DIR [--period S] [--delete-chunk N]
[--crash-step STEP --crash-nth N] [--crash-commit N]``

It opens ``DATA_DIR`` with durability ``sync`` and runs the flush scheduler in
the background every ``--period`` seconds, so flushes overlap the statements.
Protocol, one JSON object per line:

* stdin: ``{"n": 7, "sql": ..., "params": [...], "user": ..., "what": ...}``
  runs one statement; ``{"close": true}`` closes the engine and exits.
* stdout: ``{"ready": pid}`` once open; ``{"ack": n, "rows_affected": r, "what": ...}``
  after statement ``n`` returned (``what`` echoes the writes it made);
  ``{"error": n, "type": ..., "code": ..., "message": ...}`` if it raised;
  ``{"crash": step, "nth": k}`` just before the process SIGKILLs itself at the
  k-th time any flush reaches ``step`` (``--crash-step``), or ``{"crash":
  "commit", "nth": k}`` right after its k-th durable commit (``--crash-commit``);
  ``{"job_failed": ...}``
  for a background job that failed; ``{"closed": true}``.

Every line is written with one ``write`` and flushed under a lock, so the
parent never sees two threads' lines interleaved.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import inspect
import json
import os
import signal
import sys
import threading
from typing import Any

_out_lock = threading.Lock()


def emit(event: dict[str, Any]) -> None:
    line = json.dumps(event, default=str) + "\n"
    with _out_lock:
        sys.stdout.write(line)
        sys.stdout.flush()


def install_crash_hook(step: str, nth: int) -> None:
    """Make every flush (FLUSH TABLE jobs and scheduler flushes alike) call a
    hook that announces itself and SIGKILLs this process the ``nth`` time a
    flush reaches ``step``. ``flush_table`` is wrapped wherever the engine
    imported it, so the hook needs no engine-side switch."""
    flush_module = importlib.import_module("engine.jobs.flush")
    original = flush_module.flush_table
    if "crash" not in inspect.signature(original).parameters:
        raise SystemExit("engine.jobs.flush.flush_table takes no crash hook any more")
    for name in ("engine.jobs.scheduler", "engine.sql.storage_cmds", "engine.sql.dispatch"):
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
    reached = 0
    count_lock = threading.Lock()

    def hook(at: str) -> None:
        nonlocal reached
        if at != step:
            return
        with count_lock:
            reached += 1
            if reached != nth:
                return
            emit({"crash": step, "nth": nth})
            os.kill(os.getpid(), signal.SIGKILL)

    def flush_table(engine: Any, table: Any, **kwargs: Any) -> Any:
        inner = kwargs.pop("crash", None)

        def crash(at: str) -> None:
            hook(at)
            if inner is not None:
                inner(at)

        return original(engine, table, crash=crash, **kwargs)

    patched = 0
    for module in list(sys.modules.values()):
        if getattr(module, "__name__", "").startswith("engine") and (
            getattr(module, "flush_table", None) is original
        ):
            module.flush_table = flush_table  # type: ignore[attr-defined]
            patched += 1
    if patched < 2:  # the scheduler and FLUSH TABLE must both be covered
        raise SystemExit(f"crash hook reached only {patched} flush_table import(s)")


def install_commit_crash(nth: int) -> None:
    """SIGKILL this process right after its ``nth`` durable commit (any
    statement's or job's WriteBatch): a crash point between the steps of
    multi-commit work (RENAME TO's catalog commit and its directory move, a
    flush's manifest commit and its removal batches) that needs no timing luck."""
    txn_module = importlib.import_module("engine.txn")
    original = txn_module.Txn.commit
    done = 0
    count_lock = threading.Lock()

    def commit(self: Any) -> None:
        nonlocal done
        original(self)
        with count_lock:
            done += 1
            if done == nth:
                emit({"crash": "commit", "nth": nth})
                os.kill(os.getpid(), signal.SIGKILL)

    txn_module.Txn.commit = commit


def failed_jobs(eng: Any, seen: set[str]) -> list[dict[str, Any]]:
    """Background jobs that failed since the last call (their errors are
    otherwise only visible in system.jobs)."""
    out = []
    for job in list(getattr(eng.jobs, "jobs", {}).values()):
        if job.status == "failed" and job.job_id not in seen:
            seen.add(job.job_id)
            out.append({"job": job.job_id, "type": job.job_type, "error": job.error})
    return out


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("data_dir")
    parser.add_argument("--period", type=float, default=0.02)
    parser.add_argument("--delete-chunk", type=int, default=0)
    parser.add_argument("--crash-step", default=None)
    parser.add_argument("--crash-nth", type=int, default=1)
    parser.add_argument("--crash-commit", type=int, default=0)
    args = parser.parse_args(argv)

    from engine import Engine
    from engine.jobs.scheduler import Scheduler

    if args.delete_chunk:
        # Small removal chunks: a flush removes its hot rows in several
        # batches, so there is a crash window between them.
        flush_module = importlib.import_module("engine.jobs.flush")
        if hasattr(flush_module, "DELETE_CHUNK"):
            flush_module.DELETE_CHUNK = args.delete_chunk
    if args.crash_step:
        install_crash_hook(args.crash_step, args.crash_nth)

    eng = Engine.open(args.data_dir, durability="sync", background_jobs=False)
    # The scheduler drives the low-level state object where the engine has one.
    eng.scheduler = Scheduler(getattr(eng, "db", eng), period=args.period)
    eng.scheduler.start()
    if args.crash_commit:  # counted from here: opening the engine commits too
        install_commit_crash(args.crash_commit)
    emit({"ready": os.getpid()})
    seen_jobs: set[str] = set()
    for raw in sys.stdin:
        cmd = json.loads(raw)
        if cmd.get("close"):
            eng.close()
            emit({"closed": True})
            return 0
        n = cmd["n"]
        try:
            result = eng.execute(cmd["sql"], cmd["params"] or None, user=cmd["user"])
        except Exception as exc:  # noqa: BLE001 - every failure is reported to the parent
            emit(
                {
                    "error": n,
                    "type": type(exc).__name__,
                    "code": getattr(exc, "code", None),
                    "message": str(exc)[:2000],
                }
            )
        else:
            emit({"ack": n, "rows_affected": result.rows_affected, "what": cmd.get("what")})
        for job in failed_jobs(eng, seen_jobs):
            emit({"job_failed": job})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
