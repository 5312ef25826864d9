"""Start, reuse and stop a background ``kalam serve`` for a data directory
(what ``make lab``, ``make serve`` and ``make stop-server`` run).

    python -m engine.serverctl start --data-dir DIR [--port 0]
    python -m engine.serverctl stop --data-dir DIR
    python -m engine.serverctl status --data-dir DIR

``start`` reuses the server ``<DIR>/server.json`` names when it answers;
otherwise it starts ``kalam serve`` detached from the terminal, with its pid
in ``<DIR>/kalam-serve.pid`` and its log in ``<DIR>/kalam-serve.log``, and
waits (with a deadline) until the server answers. Port 0 lets the server pick
a free port: clients find it through ``server.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from engine.discovery import find_server, read_server_file
from engine.owner import is_server_cmdline, pid_alive, process_cmdline

PID_FILE = "kalam-serve.pid"
LOG_FILE = "kalam-serve.log"
START_DEADLINE_S = 60.0
STOP_DEADLINE_S = 60.0


def _log_tail(data_dir: Path, lines: int = 15) -> str:
    try:
        text = (data_dir / LOG_FILE).read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def start(data_dir: Path, *, port: int = 0, host: str = "127.0.0.1") -> int:
    data_dir.mkdir(parents=True, exist_ok=True)
    running = find_server(data_dir)
    if running is not None:
        print(f"Kalam server for {data_dir} already running at {running.url} (pid {running.pid})")
        return 0
    command = [sys.executable, "-m", "engine.cli", "serve", "--data-dir", str(data_dir)]
    command += ["--host", host, "--port", str(port)]
    with open(data_dir / LOG_FILE, "ab") as log, open(os.devnull, "rb") as nothing:
        proc = subprocess.Popen(
            command, stdin=nothing, stdout=log, stderr=log, start_new_session=True
        )
    (data_dir / PID_FILE).write_text(f"{proc.pid}\n")
    deadline = time.monotonic() + START_DEADLINE_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            (data_dir / PID_FILE).unlink(missing_ok=True)
            print(
                f"kalam serve exited ({proc.returncode}):\n{_log_tail(data_dir)}", file=sys.stderr
            )
            return 1
        info = find_server(data_dir)
        if info is not None and info.pid == proc.pid:
            print(
                f"Kalam server for {data_dir} started at {info.url} (pid {proc.pid}); "
                f"log: {data_dir / LOG_FILE}"
            )
            return 0
        time.sleep(0.1)  # polling, bounded by the deadline
    print(
        f"kalam serve did not answer within {START_DEADLINE_S:.0f} s; see {data_dir / LOG_FILE}",
        file=sys.stderr,
    )
    return 1


def _server_pid(data_dir: Path) -> int | None:
    """The pid of this directory's running ``kalam serve``, if any."""
    candidates = []
    info = read_server_file(data_dir)
    if info is not None:
        candidates.append(info.pid)
    with contextlib.suppress(OSError, ValueError):
        candidates.append(int((data_dir / PID_FILE).read_text().strip()))
    for pid in candidates:
        # Only signal a process that is a Kalam server (a recycled pid is not).
        if pid_alive(pid) and is_server_cmdline(process_cmdline(pid)):
            return pid
    return None


def stop(data_dir: Path) -> int:
    pid = _server_pid(data_dir)
    if pid is None:
        (data_dir / PID_FILE).unlink(missing_ok=True)
        print(f"No Kalam server is running for {data_dir}")
        return 0
    os.kill(pid, signal.SIGTERM)  # in-flight statements finish, then it exits
    deadline = time.monotonic() + STOP_DEADLINE_S
    while pid_alive(pid):
        if time.monotonic() > deadline:
            print(
                f"Kalam server (pid {pid}) did not stop within {STOP_DEADLINE_S:.0f} s",
                file=sys.stderr,
            )
            return 1
        time.sleep(0.1)
    (data_dir / PID_FILE).unlink(missing_ok=True)
    print(f"Kalam server for {data_dir} (pid {pid}) stopped")
    return 0


def status(data_dir: Path) -> int:
    info = find_server(data_dir)
    if info is None:
        print(f"No Kalam server is running for {data_dir}")
        return 1
    print(f"Kalam server for {data_dir} at {info.url} (pid {info.pid})")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.serverctl", description=__doc__)
    parser.add_argument("action", choices=("start", "stop", "status"))
    parser.add_argument("--data-dir", required=True, metavar="DIR")
    parser.add_argument("--port", type=int, default=0, help="port for start (0: a free one)")
    parser.add_argument("--host", default="127.0.0.1", help="address for start")
    args = parser.parse_args(argv)
    data_dir = Path(args.data_dir).expanduser().resolve()
    if args.action == "start":
        return start(data_dir, port=args.port, host=args.host)
    if args.action == "stop":
        return stop(data_dir)
    return status(data_dir)


if __name__ == "__main__":
    sys.exit(main())
