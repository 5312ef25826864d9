"""A real ``kalam serve`` process for the server tests.

``start_server`` runs ``kalam serve --port 0`` on a data directory, waits
(with a deadline, polling ``/health``) until it answers, and returns a
``RunningServer`` that knows its URL and local secret and can stop it with a
signal. The ``server`` fixture (one per test module) and ``fresh_server``
(one per test) stop what they started.

Test modules load the fixtures with ``pytest_plugins = ["server_fixtures"]``.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

REPO = Path(__file__).resolve().parents[1]
START_DEADLINE = 60.0
STOP_DEADLINE = 60.0
ARROW = "application/vnd.apache.arrow.stream"


@dataclass
class RunningServer:
    data_dir: Path
    proc: subprocess.Popen[bytes]
    log_path: Path
    url: str = ""
    secret: str = ""
    client: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=60))
    _tokens: dict[str, str] = field(default_factory=dict)

    # ---------------------------------------------------------- credentials
    def token(self, user: str = "root") -> str:
        """A bearer token for ``user`` from the local-secret endpoint (cached)."""
        if user not in self._tokens:
            r = self.client.post(
                f"{self.url}/v1/api/auth/local", json={"secret": self.secret, "user": user}
            )
            assert r.status_code == 200, r.text
            self._tokens[user] = r.json()["access_token"]
        return self._tokens[user]

    def bearer(self, user: str = "root") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(user)}"}

    @staticmethod
    def basic(user: str, password: str) -> dict[str, str]:
        raw = base64.b64encode(f"{user}:{password}".encode()).decode()
        return {"Authorization": f"Basic {raw}"}

    # ---------------------------------------------------------- requests
    def post_sql(
        self,
        sql: str,
        *,
        user: str | None = "root",
        headers: dict[str, str] | None = None,
        **body: Any,
    ) -> httpx.Response:
        """``POST /v1/api/sql`` as ``user`` (bearer) unless ``headers`` say otherwise."""
        h = dict(self.bearer(user) if user is not None and headers is None else {})
        h.update(headers or {})
        return self.client.post(f"{self.url}/v1/api/sql", json={"sql": sql, **body}, headers=h)

    def ok(self, sql: str, **kw: Any) -> list[dict[str, Any]]:
        """The results of a request that must succeed."""
        r = self.post_sql(sql, **kw)
        assert r.status_code == 200, r.text
        doc = r.json()
        assert doc["status"] == "success", doc
        return doc["results"]  # type: ignore[no-any-return]

    def rows(self, sql: str, **kw: Any) -> list[list[Any]]:
        return self.ok(sql, **kw)[-1]["rows"]  # type: ignore[no-any-return]

    def login(self, user: str, password: str) -> httpx.Response:
        return self.client.post(
            f"{self.url}/v1/api/auth/login", json={"user": user, "password": password}
        )

    # ---------------------------------------------------------- lifecycle
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """Signal the server and wait for it to exit; its exit status."""
        self.client.close()
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=STOP_DEADLINE)
        except subprocess.TimeoutExpired:
            # Its threads' stacks into the log (kalam serve registers SIGUSR1
            # with faulthandler), then the log tail into the failure.
            self.proc.send_signal(signal.SIGUSR1)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=2)
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(
                "the server did not stop within the deadline; its log ends:\n" + self.log()[-6000:]
            ) from None


def serve_command(data_dir: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "engine.cli", "serve", "--data-dir", str(data_dir), *extra]


def start_server(
    data_dir: Path, *, extra: Sequence[str] = (), env: dict[str, str] | None = None
) -> RunningServer:
    """``kalam serve --port 0`` on ``data_dir``, answering ``/health``."""
    log_path = data_dir.with_name(data_dir.name + ".server.log")
    environ = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            serve_command(data_dir, "--port", "0", *extra),
            stdout=log,
            stderr=log,
            env=environ,
            cwd=REPO,
        )
    srv = RunningServer(data_dir, proc, log_path)
    deadline = time.monotonic() + START_DEADLINE
    info_path = data_dir / "server.json"
    try:
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"kalam serve exited with {proc.returncode}:\n{srv.log()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"kalam serve not ready in {START_DEADLINE} s:\n{srv.log()}")
            with contextlib.suppress(FileNotFoundError, ValueError):
                info = json.loads(info_path.read_text())
                if info.get("pid") == proc.pid:
                    with contextlib.suppress(httpx.HTTPError):
                        if srv.client.get(f"{info['url']}/health", timeout=5).status_code == 200:
                            srv.url, srv.secret = info["url"], info["secret"]
                            return srv
            time.sleep(0.05)  # polling interval, bounded by the deadline above
    except BaseException:
        srv.stop(signal.SIGKILL)
        raise


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """One server per test module (tests use their own tables and users)."""
    srv = start_server(tmp_path_factory.mktemp("srv") / "data")
    yield srv
    assert srv.stop() == 0


@pytest.fixture
def fresh_server(tmp_path: Path) -> Iterator[RunningServer]:
    srv = start_server(tmp_path / "data")
    yield srv
    srv.stop()
