"""A notebook's first cell, ``%load_ext kalam_magic``, prints nothing on either
kernel: the stock Python kernel and the "Python 3 (Kalam)" kernel that
``make lab`` installs, which already has the extension loaded (issue 13)."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kalam_magic.kernelspec import DISPLAY_NAME, kernel_spec

jupyter_client = pytest.importorskip("jupyter_client")

REPO = Path(__file__).resolve().parents[1]


def _start(home: Path, spec: dict[str, Any]) -> Any:
    spec_dir = home / "kernels" / "k"
    spec_dir.mkdir(parents=True)
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p),
        "KALAM_DATA_DIR": str(home / "data"),
    }
    km = jupyter_client.KernelManager(kernel_name="k")
    km.kernel_spec_manager.kernel_dirs = [str(home / "kernels")]
    km.start_kernel(env=env, cwd=str(home))
    return km


def _outputs(kc: Any, code: str) -> tuple[str, list[dict[str, Any]]]:
    shown: list[dict[str, Any]] = []
    reply = kc.execute_interactive(code, timeout=60, output_hook=shown.append)
    kept = [m for m in shown if m["msg_type"] in ("stream", "display_data", "execute_result")]
    return reply["content"]["status"], kept


@pytest.fixture(params=["stock", "kalam"])
def kernel(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    if request.param == "kalam":
        spec = kernel_spec(sys.executable)
    else:
        argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
        spec = {"argv": argv, "display_name": "stock", "language": "python"}
    km = _start(tmp_path, spec)
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=60)
        yield kc
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def test_load_ext_is_silent_and_the_magic_works_once(kernel):
    status, shown = _outputs(kernel, "%load_ext kalam_magic")
    assert status == "ok" and shown == []
    status, shown = _outputs(
        kernel,
        "ip = get_ipython()\n"
        "assert sum(m is ip.magics_manager.registry['KalamMagics'].matcher\n"
        "           for m in ip.Completer.custom_matchers) == 1\n"
        "%kalam SELECT 41 + 1 AS answer",
    )
    assert status == "ok"
    assert "42" in shown[-1]["content"]["data"]["text/plain"]


def test_the_kalam_kernel_has_the_magic_before_any_cell(tmp_path):
    km = _start(tmp_path, kernel_spec(sys.executable))
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=60)
        status, shown = _outputs(kc, "%kalam SELECT 1 AS one")
        assert status == "ok" and "one" in shown[-1]["content"]["data"]["text/plain"]
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    assert kernel_spec()["display_name"] == DISPLAY_NAME
