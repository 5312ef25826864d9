"""Live views and interrupts in a real Jupyter kernel, over the kernel protocol.

- Kernel › Interrupt during a cross join: the cell fails with
  ``QueryCancelledError``, the kernel process stops using CPU within 2 s
  (read from ``/proc`` in CPU-seconds, so a busy machine cannot stretch it:
  2 s on each of DataFusion's two threads) and the next cell answers right.
  A nested-loop join stops between probe batches, each thread finishing
  the one it is on (``engine.exec.live``): ~7 us a build row, 0.7 CPU-s
  a thread over 100k rows, against the ~1,100 CPU-s the whole join takes.
- ``%%kalam SUBSCRIBE TO ...``: the cell returns at once with one output
  carrying a display id; a later cell's write shows up as an
  ``update_display_data`` of that same output.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from test_magic_kernel import Kernel, kernel  # noqa: F401

TIMEOUT = 60.0
DATAFUSION_THREADS = 2  # engine.exec.query: target_partitions
CPU_BUDGET = 2.0 * DATAFUSION_THREADS
_TICK = os.sysconf("SC_CLK_TCK")


def kernel_cpu(k: Kernel) -> float:
    """CPU-seconds the kernel process has used (user + system)."""
    pid = k.manager.provisioner.process.pid  # type: ignore[attr-defined]
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def wait_busy(k: Kernel, msg_id: str) -> None:
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        msg = k.client.get_iopub_msg(timeout=TIMEOUT)
        if (
            msg["parent_header"].get("msg_id") == msg_id
            and msg["msg_type"] == "status"
            and msg["content"]["execution_state"] == "busy"
        ):
            return
    raise AssertionError("the kernel never started the cell")


def test_interrupting_a_cross_join_stops_the_kernels_cpu_and_the_next_cell_runs(
    kernel: Kernel,  # noqa: F811
) -> None:
    reply, _ = kernel.run(
        "import pyarrow as pa\n"
        "_eng = get_ipython().magics_manager.registry['KalamMagics'].engine()\n"
        "_eng.insert_arrow('crossed', pa.table({'id': pa.array(range(100000), pa.int64())}),"
        " primary_key='id')"
    )
    assert reply["status"] == "ok", reply
    start = kernel_cpu(kernel)
    msg_id = kernel.client.execute(
        "%kalam SELECT count(*) FROM crossed a CROSS JOIN crossed b WHERE a.id + b.id > 3"
    )
    wait_busy(kernel, msg_id)
    pause = threading.Event()
    deadline = time.monotonic() + TIMEOUT
    while kernel_cpu(kernel) - start < 1.0 and time.monotonic() < deadline:
        pause.wait(0.05)  # the plan is running in DataFusion
    kernel.manager.interrupt_kernel()  # type: ignore[attr-defined]
    reply = kernel.client.get_shell_msg(timeout=TIMEOUT)
    assert reply["parent_header"]["msg_id"] == msg_id
    assert reply["content"]["status"] == "error"
    assert "QueryCancelledError" in "\n".join(reply["content"]["traceback"])
    cancelled_at = previous = kernel_cpu(kernel)
    while True:
        pause.wait(0.5)
        now = kernel_cpu(kernel)
        if now - previous < 0.05:
            break
        previous = now
        assert time.monotonic() < deadline + TIMEOUT, "the kernel kept burning CPU"
    spent = previous - cancelled_at
    assert spent < CPU_BUDGET, f"{spent:.2f} CPU-s used after the interrupt"
    reply, _ = kernel.run(
        "x = %kalam SELECT count(*) AS n FROM crossed\nassert x.scalar() == 100000"
    )
    assert reply["status"] == "ok", reply


def _display_id(messages: list[dict[str, Any]]) -> str:
    for m in messages:
        if m["msg_type"] in ("display_data", "execute_result"):
            found = m["content"].get("transient", {}).get("display_id")
            if found:
                return str(found)
    raise AssertionError(f"no output with a display id in {[m['msg_type'] for m in messages]}")


def test_a_live_view_returns_at_once_and_a_later_write_updates_its_output(
    kernel: Kernel,  # noqa: F811
) -> None:
    reply, _ = kernel.run(
        "%kalam CREATE TABLE board (id INT PRIMARY KEY, note TEXT); "
        "INSERT INTO board VALUES (1, 'first')"
    )
    assert reply["status"] == "ok", reply
    reply, messages = kernel.run("view = %kalam SUBSCRIBE TO SELECT id, note FROM board")
    assert reply["status"] == "ok", reply
    display_id = _display_id(messages)
    # Read iopub directly: the update may be attributed to either cell.
    kernel.client.execute("%kalam INSERT INTO board VALUES (2, 'second from another cell')")
    deadline = time.monotonic() + TIMEOUT
    seen = ""
    while "second from another cell" not in seen:
        assert time.monotonic() < deadline, "the live output was never updated"
        msg = kernel.client.get_iopub_msg(timeout=TIMEOUT)
        if msg["msg_type"] == "update_display_data":
            assert msg["content"]["transient"]["display_id"] == display_id
            seen = msg["content"]["data"]["text/plain"]
    reply = kernel.client.get_shell_msg(timeout=TIMEOUT)  # the INSERT cell's reply
    assert reply["content"]["status"] == "ok", reply
    reply, _ = kernel.run(
        "view.stop()\nassert [r['id'] for r in view.table().to_pylist()] == [1, 2]\n"
        "assert not view.running"
    )
    assert reply["status"] == "ok", reply


@pytest.mark.parametrize("form", ["%%kalam --updates 1\n", "%%kalam --for 0.2\n"])
def test_blocking_forms_show_exactly_one_output_with_the_final_rows(
    kernel: Kernel,  # noqa: F811
    form: str,
) -> None:
    kernel.run("%kalam CREATE TABLE IF NOT EXISTS feed (id INT PRIMARY KEY)")
    code = (
        "import threading\n"
        "_e = get_ipython().magics_manager.registry['KalamMagics'].engine()\n"
        "def _w():\n"
        "    import time\n"
        "    while not _e.db.subscriptions.snapshot(): time.sleep(0.01)\n"
        "    _e.execute('INSERT INTO feed VALUES (7)')\n"
        "threading.Thread(target=_w, daemon=True).start()\n"
    )
    kernel.run("%kalam DELETE FROM feed")
    if "--updates" in form:
        kernel.run(code)
    reply, messages = kernel.run(form + "SUBSCRIBE TO SELECT id FROM feed")
    assert reply["status"] == "ok", reply
    outputs = [m for m in messages if m["msg_type"] in ("display_data", "execute_result")]
    assert len(outputs) == 1
    text = outputs[0]["content"]["data"]["text/plain"]
    assert "stopped" in text
    assert ("7" in text.split("\n")[3]) if "--updates" in form else "0 rows" in text
