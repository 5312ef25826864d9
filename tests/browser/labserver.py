"""The JupyterLab server of the browser suite and helpers shared by its tests.

One JupyterLab per test session: bound to 127.0.0.1 on a free port, with a
random token and temporary Jupyter data / config / runtime directories that
hold the "Python 3 (Kalam)" kernel spec and two settings (no windowing, so
every cell is in the DOM; no news pop-up). Its root is a temporary copy of
``notebooks/`` with outputs cleared and the Kalam kernel chosen, so nothing in
the repository is touched. Readiness is polled with a deadline; the server
and every kernel are stopped at the end.

Where the time goes (measured): loading the JupyterLab page costs 7-15 s
under load and a kernel takes seconds to import the engine, so the suite
loads the page once (the app is exposed as ``window.jupyterapp`` and opens
each notebook itself) and ``KernelPool`` starts the kernels of the next
notebooks while the current one runs, and stops finished ones in the
background.

The browser is Debian's ``chromium`` (``make browser-deps`` installs it)
driven by Playwright; Playwright's own browser download is never used.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
import urllib.error
import urllib.request
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# tests/browser/ -> the repository root
REPO = Path(__file__).resolve().parent.parent.parent
NOTEBOOKS = REPO / "notebooks"
KERNEL = "kalam"
START_DEADLINE_S = 90

# Every document in the main area closed without a save prompt (the copies
# in the lab root are throw-away), so the next notebook opens alone.
CLOSE_ALL = """() => {
  const app = window.jupyterapp;
  for (const w of Array.from(app.shell.widgets('main'))) {
    if (w.context && w.context.model) { w.context.model.dirty = false; }
    w.dispose();
  }
  return document.querySelectorAll('.jp-NotebookPanel').length === 0;
}"""


def chromium_path() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def prepare_notebook(source: Path, target: Path) -> None:
    """A copy of ``source`` with its outputs cleared, set to open on the Kalam kernel."""
    nb = json.loads(source.read_text())
    nb["metadata"]["kernelspec"] = {
        "name": KERNEL,
        "display_name": "Python 3 (Kalam)",
        "language": "python",
    }
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
    target.write_text(json.dumps(nb))


@dataclass
class Lab:
    url: str
    token: str
    root: Path
    process: subprocess.Popen[bytes]

    def api(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        req = urllib.request.Request(
            f"{self.url}/api/{path}",
            method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=30) as resp:
            raw = resp.read()
        return json.loads(raw) if raw else None

    def app_url(self) -> str:
        # ?reset: a fresh workspace, so no tabs of an earlier run are restored.
        return f"{self.url}/lab?reset&token={self.token}"


class KernelPool:
    """The notebooks' kernels, started ahead of need and stopped behind it.

    ``order`` is the sequence in which the tests open notebooks (paths under
    the lab root). ``ready(path)`` makes sure ``path`` has its session and
    starts those of the next ``ahead`` notebooks, so their kernels import the
    engine while the current notebook runs; ``stop(path)`` shuts a session
    down without waiting for the kernel to exit. Each notebook still gets a
    fresh kernel of its own."""

    def __init__(self, lab: Lab, order: Sequence[str], *, ahead: int = 2) -> None:
        self.lab = lab
        self.order = list(order)
        self.ahead = ahead
        self._sessions: dict[str, Future[str]] = {}
        self._stopping: list[Future[None]] = []
        self._lock = threading.Lock()
        self._workers = ThreadPoolExecutor(max_workers=4, thread_name_prefix="kernels")

    def __repr__(self) -> str:
        return f"<KernelPool {len(self._sessions)} started of {len(self.order)}>"

    def _start(self, path: str) -> Future[str]:
        with self._lock:
            if path not in self._sessions:
                self._sessions[path] = self._workers.submit(self._create, path)
            return self._sessions[path]

    def _create(self, path: str) -> str:
        # A kernel's working directory is its notebook's: it must exist first.
        (self.lab.root / path).parent.mkdir(parents=True, exist_ok=True)
        body = {"path": path, "type": "notebook", "name": path, "kernel": {"name": KERNEL}}
        return str(self.lab.api("POST", "sessions", body)["id"])

    def warm(self, path: str) -> None:
        """Start ``path``'s kernel now, without waiting for it."""
        self._start(path)

    def ready(self, path: str) -> None:
        """``path``'s session exists (the page attaches to it, so no kernel-choice
        dialog) and the next notebooks' kernels are starting."""
        started = self._start(path)
        if path in self.order:
            at = self.order.index(path)
            for following in self.order[at + 1 : at + 1 + self.ahead]:
                self._start(following)
        started.result(timeout=START_DEADLINE_S)

    def stop(self, path: str) -> None:
        with self._lock:
            started = self._sessions.pop(path, None)
        if started is not None:
            self._stopping.append(self._workers.submit(self._delete, started))

    def _delete(self, started: Future[str]) -> None:
        try:
            session_id = started.result()
        except Exception:  # it never started; its test reported why
            return
        _quietly(self.lab.api, "DELETE", f"sessions/{session_id}")

    def close(self) -> None:
        for path in list(self._sessions):
            self.stop(path)
        for stopping in self._stopping:
            stopping.result(timeout=60)
        self._workers.shutdown(wait=True)


def _write_settings(config: Path) -> None:
    settings = config / "lab" / "user-settings" / "@jupyterlab"
    (settings / "notebook-extension").mkdir(parents=True)
    (settings / "notebook-extension" / "tracker.jupyterlab-settings").write_text(
        json.dumps({"windowingMode": "none"})
    )
    (settings / "apputils-extension").mkdir(parents=True)
    (settings / "apputils-extension" / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False})
    )


def shoot_quietly(pg: Any, path: Path) -> None:
    try:
        pg.screenshot(path=str(path), full_page=True)
        print(f"screenshot of the failure: {path}")
    except Exception as exc:  # the failure itself is what the report is about
        print(f"no screenshot of the failure: {exc}")


def _quietly(fn: Any, *args: Any) -> Any:
    try:
        return fn(*args)
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None
