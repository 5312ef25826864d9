"""Who holds a data directory, for the "data directory in use" message.

RocksDB lets one process open a data directory. An embedded ``Engine`` records
itself in ``<data_dir>/owner.json`` (pid, command line, when it opened) and
removes the record when it closes; a second process that finds the directory
locked reads the record and ``/proc`` to say which process holds it and how
to share the directory instead (a ``kalam serve`` that every notebook
connects to). The record is advice for that message only: the lock itself is
the truth, so a stale record (its process gone) is never believed.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
from pathlib import Path
from typing import Any

OWNER_FILE = "owner.json"
#: Characters of a holder's command line quoted in the message.
_CMDLINE_CHARS = 200


def process_cmdline(pid: int) -> str | None:
    """The command line of a running process (Linux ``/proc``), or ``None``."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    parts = [p.decode("utf-8", "replace") for p in raw.split(b"\0") if p]
    return " ".join(parts) or None


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists (a zombie counts as gone)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    # "pid (comm) S ...": the state letter follows the last ')'.
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


def write_owner(data_dir: Path) -> None:
    """Record this process as the holder of ``data_dir`` (atomic replace)."""
    record = {
        "pid": os.getpid(),
        "cmdline": process_cmdline(os.getpid()) or " ".join([sys.executable, *sys.argv]),
        "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    tmp = data_dir / f".{OWNER_FILE}.{os.getpid()}.tmp"
    try:
        tmp.write_text(json.dumps(record))
        os.replace(tmp, data_dir / OWNER_FILE)
    except OSError:
        # Only the in-use message reads it; a read-only directory must still open.
        tmp.unlink(missing_ok=True)


def read_owner(data_dir: Path) -> dict[str, Any] | None:
    try:
        record = json.loads((data_dir / OWNER_FILE).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def remove_owner(data_dir: Path) -> None:
    """Remove the record if it is ours (a later holder's record stays)."""
    record = read_owner(data_dir)
    if record is not None and record.get("pid") == os.getpid():
        (data_dir / OWNER_FILE).unlink(missing_ok=True)


def _shorten(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _CMDLINE_CHARS else text[: _CMDLINE_CHARS - 1] + "…"


def holder(data_dir: Path, lock_pid: int | None) -> tuple[int | None, str | None, str | None]:
    """(pid, command line, opened at) of the process holding ``data_dir``.

    The pid from the lock table wins; the record fills in what ``/proc`` cannot
    tell (another pid namespace) and when the directory was opened.
    """
    record = read_owner(data_dir) or {}
    rec_pid = record.get("pid") if isinstance(record.get("pid"), int) else None
    pid = lock_pid if lock_pid is not None else rec_pid
    if pid is None:
        return None, None, None
    same = rec_pid == pid
    cmdline = process_cmdline(pid) or (record.get("cmdline") if same else None)
    started = record.get("started") if same else None
    return pid, cmdline, started if isinstance(started, str) else None


def is_server_cmdline(cmdline: str | None) -> bool:
    """Whether a command line is a ``kalam serve`` (``kalam serve`` or ``-m engine.cli serve``)."""
    if not cmdline:
        return False
    words = cmdline.split()
    return "serve" in words and any(w.endswith(("kalam", "engine.cli")) for w in words)


def in_use_message(data_dir: Path, lock_pid: int | None) -> tuple[str, dict[str, Any]]:
    """The message (and fields) of ``DataDirInUseError`` for a directory held elsewhere."""
    pid, cmdline, started = holder(data_dir, lock_pid)
    who = ""
    if pid is not None:
        who = f" (process {pid})"
        if cmdline:
            who += f", running `{_shorten(cmdline)}`"
        if started:
            who += f", open since {started.replace('T', ' ').replace('+00:00', ' UTC')}"
    if is_server_cmdline(cmdline):
        advice = (
            "That is a Kalam server: open the directory as its client (Engine.open without "
            "embedded=True, `kalam sql` without --embedded); if it is still starting, its "
            f"{data_dir / 'server.json'} appears once it answers"
        )
    else:
        advice = (
            "Only one process can open a data directory. To share it, start "
            f"`kalam serve --data-dir {data_dir}` (or `make lab`) and every notebook "
            "connects to it; or close it in the other process"
        )
    message = f"Data directory {data_dir} is in use by another process{who}. {advice}"
    return message, {"pid": pid, "command": cmdline, "path": str(data_dir)}
