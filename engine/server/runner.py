"""Running the Kalam server: the listening socket, ``server.json`` and a clean
shutdown.

``serve`` binds (``port=0`` picks a free port), writes
``<data_dir>/server.json`` (mode 0600, atomically: url, pid, a per-run local
secret, flight_url, version), announces the URL on stdout, then runs uvicorn
until SIGTERM or SIGINT. Uvicorn then stops accepting connections and lets
the requests in flight finish; ``serve`` removes ``server.json`` and returns,
and the caller closes the engine (every acknowledged write is already synced
by the statement that made it).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import signal
import socket
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import uvicorn

from engine.server.app import WORKERS, create_app
from engine.version import __version__

if TYPE_CHECKING:
    from engine.api import Engine

SERVER_FILE = "server.json"
GRACE_SECONDS = 30
KEEP_ALIVE_SECONDS = 75
SWITCH_INTERVAL = 0.0005  # seconds  # how long in-flight requests may take to finish at shutdown

log = logging.getLogger("kalam.server")


def server_file(data_dir: Path) -> Path:
    return Path(data_dir) / SERVER_FILE


def running_server(data_dir: Path) -> dict[str, Any] | None:
    """The ``server.json`` of a server process still alive on ``data_dir``."""
    try:
        info = json.loads(server_file(data_dir).read_text())
        os.kill(int(info["pid"]), 0)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return info if isinstance(info, dict) else None


def write_server_file(data_dir: Path, info: dict[str, Any]) -> Path:
    """Write ``server.json`` readable by the owner only, atomically."""
    path = server_file(data_dir)
    tmp = path.with_name(f".{SERVER_FILE}.{os.getpid()}.tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(info, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return path


def remove_server_file(data_dir: Path, pid: int) -> None:
    """Remove ``server.json`` if it is this process's."""
    path = server_file(data_dir)
    try:
        if json.loads(path.read_text()).get("pid") == pid:
            path.unlink()
    except (FileNotFoundError, ValueError):
        pass


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto must be IPPROTO_TCP (not 0): asyncio sets TCP_NODELAY only on such
    # sockets, and without it a response's header and body writes wait out the
    # client's delayed ACK (~40 ms per request on a keep-alive connection).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    # Listening before server.json exists: a client that reads the file early
    # waits in the backlog instead of being refused.
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


@contextlib.contextmanager
def _signals_absorbed() -> Iterator[None]:
    """Uvicorn re-raises the signal that stopped it once it has shut down; a
    no-op handler meanwhile lets the engine close cleanly afterwards."""
    sigs = (signal.SIGINT, signal.SIGTERM)
    previous = {s: signal.signal(s, lambda *_: None) for s in sigs}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def serve(
    engine: Engine,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    token_ttl: int | None = None,
    flight_url: str | None = None,
    out: TextIO | None = None,
) -> None:
    """Serve ``engine`` over HTTP until SIGTERM / SIGINT (blocks)."""
    sock = bind(host, port)
    bound = sock.getsockname()[1]
    url = f"http://[{host}]:{bound}" if ":" in host else f"http://{host}:{bound}"
    local_secret = secrets.token_hex(32)
    executor = ThreadPoolExecutor(WORKERS, thread_name_prefix="kalam-http")
    app = create_app(engine, local_secret=local_secret, token_ttl=token_ttl, executor=executor)
    config = uvicorn.Config(
        app,
        log_config=None,
        access_log=False,  # RequestLog writes one line per request instead
        lifespan="off",
        timeout_graceful_shutdown=GRACE_SECONDS,
        # Notebook clients sit idle between cells; uvicorn's default (5 s)
        # would close their connections after every pause.
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        ws="websockets-sansio",
    )
    server = uvicorn.Server(config)
    pid = os.getpid()
    info = {
        "url": url,
        "pid": pid,
        "secret": local_secret,
        "flight_url": flight_url,
        "version": __version__,
    }
    with _signals_absorbed():
        write_server_file(engine.data_dir, info)
        try:
            print(
                f"Kalam server listening on {url} (data dir {engine.data_dir})",
                file=out or sys.stdout,
                flush=True,
            )
            server.run(sockets=[sock])
        finally:
            # Statements still running past the grace period are cancelled
            # (their clients get "query cancelled"), so a stop never waits on
            # a runaway query; then the workers drain before the engine closes.
            for q in engine.db.live.snapshot():
                q.cancel()
            executor.shutdown(wait=True, cancel_futures=True)
            remove_server_file(engine.data_dir, pid)
            sock.close()
    log.info("server stopped; closing the data directory")
