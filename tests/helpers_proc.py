"""Child Python processes for the storage tests: start one running a small
script, read its stdout line by line with a timeout (never sleep), talk to it
through stdin, kill it."""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TIMEOUT = 60.0

# Holds the data dir open until a line arrives on stdin.
HOLDER = """
import sys
from engine import Engine
eng = Engine.open(sys.argv[1])
print("ready", flush=True)
sys.stdin.readline()
eng.close()
print("closed", flush=True)
"""

# Tries to open the data dir and reports what happened as one line.
OPENER = """
import sys
from engine import Engine, KalamError
try:
    Engine.open(sys.argv[1]).close()
except KalamError as exc:
    print(f"{type(exc).__name__}|{exc.code}|{exc.message}", flush=True)
else:
    print("opened", flush=True)
"""

# Inserts rows one statement at a time, printing each id once execute() returned.
WRITER = """
import sys
from engine import Engine
data_dir, table_type, durability, user = sys.argv[1:5]
eng = Engine.open(data_dir, durability=durability)
ttl = " WITH (TTL_SECONDS = 86400)" if table_type == "STREAM" else ""
eng.execute(f"CREATE {table_type} TABLE acks (id BIGINT PRIMARY KEY, payload TEXT){ttl}")
print("ready", flush=True)
i = 0
while True:
    eng.execute("INSERT INTO acks VALUES (?, ?)", [i, f"row-{i}"], user=user)
    print(i, flush=True)
    i += 1
"""


class Child:
    """A ``python -c script args...`` child with a line queue over its stdout."""

    def __init__(self, script: str, *args: str) -> None:
        env = {k: v for k, v in os.environ.items() if k != "KALAM_DATA_DIR"}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        self.proc = subprocess.Popen(
            [sys.executable, "-c", script, *args],
            cwd=REPO,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)  # end of output

    def line(self, timeout: float = TIMEOUT) -> str:
        """The next stdout line; fails with the child's stderr if it ended instead."""
        try:
            got = self._lines.get(timeout=timeout)
        except queue.Empty:
            self.kill()
            raise AssertionError(f"child printed nothing for {timeout}s") from None
        if got is None:
            self.proc.wait(timeout=TIMEOUT)
            err = self.proc.stderr.read() if self.proc.stderr else ""
            raise AssertionError(f"child exited ({self.proc.returncode}) early:\n{err}")
        return got

    def send(self, text: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text + "\n")
        self.proc.stdin.flush()

    def kill(self) -> int:
        """SIGKILL the child and reap it; returns its exit status."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        return self.proc.wait(timeout=TIMEOUT)

    def wait(self) -> int:
        return self.proc.wait(timeout=TIMEOUT)

    def close(self) -> None:
        self.kill()
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
