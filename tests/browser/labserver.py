"""The JupyterLab server of the browser suite and helpers shared by its tests.

One JupyterLab per test session: bound to 127.0.0.1 on a free port, with a
random token and temporary Jupyter data / config / runtime directories that
hold the "Python 3 (Kalam)" kernel spec and two settings (no windowing, so
every cell is in the DOM; no news pop-up). Its root is a temporary copy of
``notebooks/`` with outputs cleared and the Kalam kernel chosen, so nothing in
the repository is touched. Readiness is polled with a deadline; the server
and every kernel are stopped at the end.

The browser is Debian's ``chromium`` (``make browser-deps`` installs it)
driven by Playwright; Playwright's own browser download is never used.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# tests/browser/ -> the repository root
REPO = Path(__file__).resolve().parent.parent.parent
NOTEBOOKS = REPO / "notebooks"
KERNEL = "kalam"
START_DEADLINE_S = 90


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

    def start_kernel_for(self, notebook: str) -> str:
        """Start the notebook's session on the Kalam kernel before the page opens, so
        the page attaches to it (no kernel-choice dialog); the page then waits for
        the kernel to report itself idle."""
        session = self.api(
            "POST",
            "sessions",
            {"path": notebook, "type": "notebook", "name": notebook, "kernel": {"name": KERNEL}},
        )
        return str(session["kernel"]["id"])

    def page_url(self, notebook: str) -> str:
        # ?reset: a fresh workspace, so tabs of earlier tests are not restored.
        return f"{self.url}/lab/tree/{notebook}?reset&token={self.token}"


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


def _quietly(fn: Any, *args: Any) -> Any:
    try:
        return fn(*args)
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None
