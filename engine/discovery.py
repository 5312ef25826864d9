"""Finding the Kalam server that owns a data directory.

``kalam serve`` keeps ``<data_dir>/server.json`` (URL, pid, a per-run secret;
mode 0600) while it runs. A record whose process is gone, or whose server
does not answer ``/health``, is stale and ignored, so a killed server never
leaves a directory unusable.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from engine.errors import KalamError
from engine.owner import is_server_cmdline, pid_alive

SERVER_FILE = "server.json"
#: How long discovery waits for ``/health`` before calling a server stale.
HEALTH_TIMEOUT_S = 2.0
#: How long an open waits for a ``kalam serve`` that holds the lock to publish server.json.
STARTING_SERVER_WAIT_S = 15.0

__all__ = ["ServerInfo", "find_server", "read_server_file", "server_is_live", "wait_for_server"]


@dataclass(frozen=True)
class ServerInfo:
    """What ``<data_dir>/server.json`` says about the server that owns a directory."""

    data_dir: Path
    url: str
    pid: int
    secret: str
    flight_url: str | None = None
    version: str | None = None

    def __repr__(self) -> str:  # never show the secret
        return f"<ServerInfo {self.url} pid={self.pid} data_dir={str(self.data_dir)!r}>"


def read_server_file(data_dir: Path) -> ServerInfo | None:
    """The server record of ``data_dir``, or ``None`` when missing or unreadable."""
    try:
        doc = json.loads((data_dir / SERVER_FILE).read_text())
        return ServerInfo(
            data_dir=data_dir,
            url=str(doc["url"]).rstrip("/"),
            pid=int(doc["pid"]),
            secret=str(doc["secret"]),
            flight_url=doc.get("flight_url"),
            version=doc.get("version"),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def server_is_live(info: ServerInfo, *, timeout: float = HEALTH_TIMEOUT_S) -> bool:
    """The recorded process runs and its ``/health`` answers 200."""
    if not pid_alive(info.pid):
        return False
    import httpx  # here: every Engine.open calls find_server, and importing httpx costs 25+ ms

    try:
        return httpx.get(f"{info.url}/health", timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


def find_server(data_dir: Path, *, timeout: float = HEALTH_TIMEOUT_S) -> ServerInfo | None:
    """The live server that owns ``data_dir``; a stale ``server.json`` is ignored."""
    info = read_server_file(data_dir)
    if info is None or not server_is_live(info, timeout=timeout):
        return None
    return info


def wait_for_server(
    data_dir: Path, in_use: KalamError, *, timeout: float = STARTING_SERVER_WAIT_S
) -> ServerInfo | None:
    """The server holding ``data_dir`` once it is up, when ``in_use`` (the
    ``DataDirInUseError`` an embedded open got) names a ``kalam serve`` that is
    still starting; ``None`` right away for any other holder."""
    pid = in_use.fields.get("pid")
    if not isinstance(pid, int) or not is_server_cmdline(in_use.fields.get("command")):
        return None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and pid_alive(pid):
        info = find_server(data_dir)
        if info is not None:
            return info
        time.sleep(0.1)
    return None
