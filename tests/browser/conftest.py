"""Fixtures of the browser suite: one JupyterLab per session (see ``labserver``),
the browser, one loaded JupyterLab page for the whole session (``page`` hands
it to each test and closes every document after it), and the kernel pool.

A test that opens a notebook says which with ``@pytest.mark.notebook(path)``
(or a ``name`` parameter); the pool reads the run order from the collected
tests, so the kernels of the next notebooks start while one runs.
"""

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
    CLOSE_ALL,
    KERNEL,
    NOTEBOOKS,
    REPO,
    START_DEADLINE_S,
    KernelPool,
    Lab,
    _free_port,
    _quietly,
    _write_settings,
    chromium_path,
    prepare_notebook,
)

APP_READY = "() => window.jupyterapp !== undefined && window.jupyterapp.shell !== undefined"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "notebook(path): the notebook (under the lab root) a test opens"
    )


def notebook_of(item: pytest.Item) -> str | None:
    marker = item.get_closest_marker("notebook")
    if marker is not None:
        return str(marker.args[0])
    callspec = getattr(item, "callspec", None)
    return str(callspec.params["name"]) if callspec and "name" in callspec.params else None


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    base = tmp_path_factory.mktemp("lab")
    root, data, config, runtime = (base / n for n in ("root", "data", "config", "runtime"))
    for d in (root, data, config, runtime):
        d.mkdir()
    _write_settings(config)
    # The kernel spec is installed while JupyterLab boots (it is read only
    # when the first kernel starts, which waits for this below).
    kernelspec = subprocess.Popen(
        [sys.executable, "-m", "kalam_magic.kernelspec", str(data / "kernels" / KERNEL)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    for nb in sorted(NOTEBOOKS.glob("*.ipynb")):
        prepare_notebook(nb, root / nb.name)
    port, token = _free_port(), secrets.token_hex(16)
    # No KALAM_DATA_DIR: a notebook that names no data directory gets
    # ./kalam-data beside itself, so two kernels alive at once never share one.
    env = {
        **{k: v for k, v in os.environ.items() if k != "KALAM_DATA_DIR"},
        "JUPYTER_DATA_DIR": str(data),
        "JUPYTER_CONFIG_DIR": str(config),
        "JUPYTER_RUNTIME_DIR": str(runtime),
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
        # window.jupyterapp: the tests open and close notebooks in one loaded page.
        "--LabApp.expose_app_in_browser=True",
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
                time.sleep(0.2)  # polling interval, bounded by the deadline above
        if kernelspec.wait(timeout=START_DEADLINE_S) != 0:
            raise RuntimeError("python -m kalam_magic.kernelspec failed")
        yield server
    finally:
        if kernelspec.poll() is None:
            kernelspec.kill()
            kernelspec.wait()
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


@pytest.fixture(scope="session")
def kernels(request: pytest.FixtureRequest, lab: Lab) -> Iterator[KernelPool]:
    order = [nb for nb in map(notebook_of, request.session.items) if nb is not None]
    pool = KernelPool(lab, list(dict.fromkeys(order)))
    if pool.order:
        # The first kernel imports the engine while the browser loads the page.
        pool.warm(pool.order[0])
    try:
        yield pool
    finally:
        pool.close()


def _load_app(pg: Any, lab: Lab) -> None:
    pg.goto(lab.app_url())
    pg.wait_for_function(APP_READY, timeout=90_000)
    pg.evaluate("() => window.jupyterapp.restored.then(() => true)")


@pytest.fixture(scope="session")
def workspace(browser: Any, lab: Lab, kernels: KernelPool) -> Iterator[Any]:
    """The one JupyterLab page of the session (its cache and app stay loaded)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = context.new_page()
    pg.set_default_timeout(30_000)
    _load_app(pg, lab)
    try:
        yield pg
    finally:
        context.close()


@pytest.fixture
def page(workspace: Any, lab: Lab) -> Iterator[Any]:
    """The session's page, left with no document open after the test."""
    yield workspace
    workspace.keyboard.press("Escape")  # a completer or menu left open
    try:
        workspace.wait_for_function(CLOSE_ALL, timeout=10_000)
    except Exception:
        # The page is in a state the app cannot recover from: load it afresh.
        _load_app(workspace, lab)
