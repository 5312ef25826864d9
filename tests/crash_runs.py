"""Running a crash child (tests/*_child.py) to its SIGKILL and reading back
what it acknowledged.

A child prints one JSON event per acknowledged write (``upsert`` with
``rows`` [[id, v], ...], ``delete`` with ``ids``, each with its ``user``),
then ``{"op": "crash", "step": ...}`` and kills itself at that step. The
model it returns is what recovery must show: ``{user: {id: v}}``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


def child_events(child: Path, data_dir: Path, step: str, *args: str) -> list[dict[str, Any]]:
    """Run ``child data_dir step *args``; assert it died by SIGKILL at ``step``;
    the events it printed (its acknowledged writes, then the crash)."""
    proc = subprocess.run(
        [sys.executable, str(child), str(data_dir), step, *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
        check=False,
    )
    events = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    assert proc.returncode == -signal.SIGKILL, (proc.returncode, proc.stderr[-3000:])
    assert events and events[-1] == {"op": "crash", "step": step}, events[-3:]
    return events


def model_of(events: list[dict[str, Any]]) -> dict[str, dict[int, int]]:
    """{user: {id: v}} of every acknowledged write among ``events``."""
    model: dict[str, dict[int, int]] = {}
    for e in events:
        rows = model.setdefault(e.get("user", ""), {})
        if e["op"] == "upsert":
            rows.update({i: v for i, v in e["rows"]})
        elif e["op"] == "delete":
            for i in e["ids"]:
                rows.pop(i)
    model.pop("", None)
    return model


def run_to_death(child: Path, data_dir: Path, step: str, *args: str) -> dict[str, dict[int, int]]:
    """The rows ``child`` acknowledged before it died at ``step``, per user."""
    return model_of(child_events(child, data_dir, step, *args))


def repo_env() -> dict[str, str]:
    """The environment for a child that imports this checkout's ``engine``."""
    return {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}


@contextmanager
def killed_after(proc: subprocess.Popen[str], *, guard_s: float) -> Iterator[None]:
    """Run the body (it reads what the child acknowledged), then SIGKILL the
    child and reap it. A hung child must not hang the suite: it is killed
    after ``guard_s`` seconds whatever the body is doing, and reaped even
    when the body fails."""
    guard = threading.Timer(guard_s, proc.kill)
    guard.start()
    try:
        yield
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        guard.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
