"""The magic inside a real Jupyter kernel, spoken to over the kernel protocol the
way JupyterLab does: completion requests, a failing cell, an interrupt (issue 7).

One kernel per module (start-up costs seconds); each test uses its own tables.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

jupyter_client = pytest.importorskip("jupyter_client")

REPO = Path(__file__).resolve().parents[1]


class Kernel:
    def __init__(self, client: Any) -> None:
        self.client = client

    def run(self, code: str, timeout: float = 60) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """Execute ``code``; return the reply content and the iopub messages it produced."""
        messages: list[dict[str, Any]] = []
        reply = self.client.execute_interactive(
            code, timeout=timeout, output_hook=messages.append, allow_stdin=False
        )
        return reply["content"], messages


@pytest.fixture(scope="module")
def kernel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kernel]:
    home = tmp_path_factory.mktemp("kernel")
    spec_dir = home / "kernels" / "kalam-test"
    spec_dir.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec_dir / "kernel.json").write_text(
        json.dumps({"argv": argv, "display_name": "kalam test", "language": "python"})
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p),
        "KALAM_DATA_DIR": str(home / "data"),
    }
    km = jupyter_client.KernelManager(kernel_name="kalam-test")
    km.kernel_spec_manager.kernel_dirs = [str(home / "kernels")]
    km.start_kernel(env=env, cwd=str(home))
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=60)
        k = Kernel(kc)
        reply, _ = k.run("%load_ext kalam_magic")
        assert reply["status"] == "ok"
        k.manager = km  # type: ignore[attr-defined]
        yield k
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def test_complete_request_offers_tables_of_a_namespace(kernel):
    reply, _ = kernel.run(
        "%kalam CREATE NAMESPACE app; CREATE TABLE app.orders (id INT PRIMARY KEY, total DOUBLE)"
    )
    assert reply["status"] == "ok"
    code = "%%kalam\nSELECT * FROM users u JOIN app."
    msg_id = kernel.client.complete(code, len(code))
    reply = kernel.client.get_shell_msg(timeout=30)
    assert reply["parent_header"]["msg_id"] == msg_id
    content = reply["content"]
    assert content["matches"] == ["app.orders"]
    assert code[content["cursor_start"] : content["cursor_end"]] == "app."


def test_complete_request_offers_columns_after_table_dot(kernel):
    kernel.run("%kalam CREATE TABLE people (id INT PRIMARY KEY, name TEXT, nick TEXT)")
    code = "%%kalam\nSELECT people.n"
    kernel.client.complete(code, len(code))
    content = kernel.client.get_shell_msg(timeout=30)["content"]
    assert content["matches"] == ["people.name", "people.nick"]


def test_failing_cell_reports_an_error_without_a_python_traceback(kernel):
    reply, messages = kernel.run("%%kalam\nSELECT 1;\nSELECT * FROM missing_table")
    assert reply["status"] == "error"  # Run All stops at this cell
    errors = [m["content"] for m in messages if m["msg_type"] == "error"]
    assert len(errors) == 1
    shown = "\n".join(errors[0]["traceback"])
    assert "TableNotFoundError" in shown and "line 3, column 15 of the cell" in shown
    assert "Traceback" not in shown and ".py" not in shown


def test_interrupt_cancels_a_running_query_and_the_kernel_goes_on(kernel):
    msg_id = kernel.client.execute(
        "%kalam SELECT value FROM range(0, 1000000000000) WHERE value % 1000 = 7"
    )
    # Wait until the kernel reports it is busy with this request, then interrupt.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        msg = kernel.client.get_iopub_msg(timeout=30)
        if (
            msg["parent_header"].get("msg_id") == msg_id
            and msg["msg_type"] == "status"
            and msg["content"]["execution_state"] == "busy"
        ):
            break
    time.sleep(0.5)  # let the query reach DataFusion; it can never finish on its own
    kernel.manager.interrupt_kernel()
    reply = kernel.client.get_shell_msg(timeout=60)
    assert reply["parent_header"]["msg_id"] == msg_id
    assert reply["content"]["status"] == "error"
    assert "QueryCancelledError" in "\n".join(reply["content"]["traceback"])
    reply, _ = kernel.run("x = %kalam SELECT 41 + 1 AS answer\nassert x.scalar() == 42")
    assert reply["status"] == "ok"
