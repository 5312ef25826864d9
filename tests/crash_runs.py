"""Running a crash child (tests/*_child.py) to its SIGKILL and reading back
what it acknowledged.

A child prints one JSON event per acknowledged write (``upsert`` with
``rows`` [[id, v], ...], ``delete`` with ``ids``, each with its ``user``),
then ``{"op": "crash", "step": ...}`` and kills itself at that step. The
model it returns is what recovery must show: ``{user: {id: v}}``.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
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
