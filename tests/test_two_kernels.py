"""Two real Jupyter kernels on one data directory (issue 10, acceptance 2).

Both kernels are the "Python 3 (Kalam)" kernel (``--ext=kalam_magic``, as the
Makefile installs it) with ``KALAM_DATA_DIR`` pointing at a directory served
by a ``kalam serve`` this module starts: each writes, each reads the other's
rows at once, completion works in both over the kernel protocol, and after
the first kernel shuts down the second keeps working.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from server_fixtures import RunningServer, start_server

jupyter_client = pytest.importorskip("jupyter_client")

REPO = Path(__file__).resolve().parents[1]


class Kernel:
    def __init__(self, manager: Any, client: Any) -> None:
        self.manager = manager
        self.client = client

    def run(self, code: str, timeout: float = 60) -> str:
        """Execute ``code``; fail with its traceback unless it succeeds; return its stdout."""
        out: list[str] = []

        def hook(msg: dict[str, Any]) -> None:
            if msg["msg_type"] == "stream":
                out.append(msg["content"]["text"])
            elif msg["msg_type"] == "error":
                out.append("\n".join(msg["content"]["traceback"]))

        reply = self.client.execute_interactive(
            code, timeout=timeout, output_hook=hook, allow_stdin=False
        )
        assert reply["content"]["status"] == "ok", "".join(out)
        return "".join(out)

    def complete(self, code: str) -> list[str]:
        msg_id = self.client.complete(code, len(code))
        reply = self.client.get_shell_msg(timeout=30)
        assert reply["parent_header"]["msg_id"] == msg_id
        return list(reply["content"]["matches"])

    def shutdown(self) -> None:
        self.client.stop_channels()
        self.manager.shutdown_kernel(now=False)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    srv = start_server(tmp_path_factory.mktemp("shared") / "kalam-data")
    yield srv
    assert srv.stop() == 0


def kalam_kernel_spec() -> dict[str, Any]:
    """The spec of the Kalam kernel as ``make lab`` installs it, run by this interpreter."""
    try:
        from kalam_magic.kernelspec import kernel_spec  # type: ignore[import-not-found]
    except ImportError:  # the Makefile writes the spec inline, loading the extension by --ext
        argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
        return {"argv": [*argv, "--ext=kalam_magic"], "display_name": "Kalam", "language": "python"}
    spec: dict[str, Any] = kernel_spec(sys.executable)
    return spec


def start_kernel(home: Path, data_dir: Path) -> Kernel:
    spec_dir = home / "kernels" / "kalam"
    spec_dir.mkdir(parents=True, exist_ok=True)
    (spec_dir / "kernel.json").write_text(json.dumps(kalam_kernel_spec()))
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p),
        "KALAM_DATA_DIR": str(data_dir),
    }
    km = jupyter_client.KernelManager(kernel_name="kalam")
    km.kernel_spec_manager.kernel_dirs = [str(home / "kernels")]
    km.start_kernel(env=env, cwd=str(home))
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=60)
    except BaseException:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
        raise
    return Kernel(km, kc)


@pytest.fixture(scope="module")
def kernels(
    served: RunningServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[Kernel]]:
    started: list[Kernel] = []
    try:
        for name in ("first", "second"):
            started.append(start_kernel(tmp_path_factory.mktemp(name), served.data_dir))
        yield started
    finally:
        for k in started:
            if k.manager.is_alive():
                k.client.stop_channels()
                k.manager.shutdown_kernel(now=True)


def rows_seen(kernel: Kernel) -> str:
    return kernel.run(
        "seen = %kalam SELECT id, who FROM notes.shared_notes ORDER BY id\nprint(seen.rows())"
    )


def test_both_kernels_are_clients_of_the_server(kernels, served):
    for k in kernels:
        out = k.run(
            "m = get_ipython().magics_manager.registry['KalamMagics']\n"
            "print(type(m.engine()).__name__, m.engine().url)"
        )
        assert out.split() == ["RemoteEngine", served.url]


def test_each_kernel_reads_the_rows_the_other_wrote(kernels):
    first, second = kernels
    first.run(
        "%kalam CREATE NAMESPACE notes; "
        "CREATE TABLE notes.shared_notes (id INT PRIMARY KEY, who TEXT)"
    )
    first.run("%kalam INSERT INTO notes.shared_notes VALUES (1, 'first')")
    assert rows_seen(second).strip() == "[(1, 'first')]"
    second.run("%kalam INSERT INTO notes.shared_notes VALUES (2, 'second')")
    expected = "[(1, 'first'), (2, 'second')]"
    assert rows_seen(first).strip() == expected
    assert rows_seen(second).strip() == expected


def test_completion_works_in_both_kernels(kernels):
    for k in kernels:
        assert k.complete("%%kalam\nSELECT * FROM notes.sha") == ["notes.shared_notes"]
        assert k.complete("%%kalam\nSELECT notes.shared_notes.w") == ["notes.shared_notes.who"]


def test_the_second_kernel_keeps_working_after_the_first_shuts_down(kernels):
    first, second = kernels
    first.shutdown()
    assert not first.manager.is_alive()
    second.run("%kalam INSERT INTO notes.shared_notes VALUES (3, 'after')")
    assert rows_seen(second).strip() == "[(1, 'first'), (2, 'second'), (3, 'after')]"
    assert second.complete("%%kalam\nSELECT * FROM notes.sha") == ["notes.shared_notes"]
