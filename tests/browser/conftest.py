"""Fixtures of the browser suite: one JupyterLab per session (see ``labserver``),
the browser, and a fresh page per test."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from labserver import (
    KERNEL,
    NOTEBOOKS,
    REPO,
    START_DEADLINE_S,
    Lab,
    _free_port,
    _quietly,
    _write_settings,
    chromium_path,
    prepare_notebook,
)


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    base = tmp_path_factory.mktemp("lab")
    root, data, config, runtime = (base / n for n in ("root", "data", "config", "runtime"))
    for d in (root, data, config, runtime):
        d.mkdir()
    _write_settings(config)
    subprocess.run(
        [sys.executable, "-m", "kalam_magic.kernelspec", str(data / "kernels" / KERNEL)],
        check=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    for nb in sorted(NOTEBOOKS.glob("*.ipynb")):
        prepare_notebook(nb, root / nb.name)
    port, token = _free_port(), secrets.token_hex(16)
    env = {
        **os.environ,
        "JUPYTER_DATA_DIR": str(data),
        "JUPYTER_CONFIG_DIR": str(config),
        "JUPYTER_RUNTIME_DIR": str(runtime),
        "KALAM_DATA_DIR": str(base / "kalam-data"),
        "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p),
        # The kernel spec names "python": the one of this environment.
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
    }
    cmd = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    log = (base / "lab.log").open("wb")
    proc = subprocess.Popen(
        cmd, env=env, cwd=root, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    server = Lab(f"http://127.0.0.1:{port}", token, root, proc)
    try:
        deadline = time.monotonic() + START_DEADLINE_S
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"JupyterLab exited; see {base / 'lab.log'}")
            try:
                server.api("GET", "status")
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"JupyterLab not ready in {START_DEADLINE_S} s") from None
                time.sleep(0.2)
        yield server
    finally:
        if proc.poll() is None:
            for kernel in _quietly(server.api, "GET", "kernels") or []:
                _quietly(server.api, "DELETE", f"kernels/{kernel['id']}")
            # The server's own process group (it was started in a session of its own).
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        log.close()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api")
    executable = chromium_path()
    if executable is None:
        pytest.fail("chromium is not installed; run `make browser-deps` (apt-get install chromium)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = context.new_page()
    pg.set_default_timeout(30_000)
    try:
        yield pg
    finally:
        context.close()
