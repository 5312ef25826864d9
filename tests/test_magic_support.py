"""Fixtures for the magic tests: a real IPython shell with the extension loaded.

The shell is IPython's in-process test shell; calling a magic through
``run_line_magic`` / ``run_cell_magic`` raises whatever the magic raises, and
``run_cell`` is used where the test is about what a notebook user sees
(no traceback, a failed cell). Every test gets its own data directory and
the engines are closed when the extension is unloaded.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from IPython.core.interactiveshell import InteractiveShell
from IPython.testing.globalipapp import start_ipython
from IPython.utils.capture import capture_output

GOLDEN = Path(__file__).resolve().parent / "golden"


def shell() -> InteractiveShell:
    """IPython's global test shell (created on first use, then reused)."""
    start_ipython()
    ip = InteractiveShell.instance()
    assert ip is not None
    return ip


@pytest.fixture
def ip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[InteractiveShell]:
    """A shell with kalam_magic loaded on a fresh data directory (via $KALAM_DATA_DIR)."""
    monkeypatch.setenv("KALAM_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)
    sh = shell()
    before = set(sh.user_ns)
    sh.run_line_magic("load_ext", "kalam_magic")
    try:
        yield sh
    finally:
        sh.run_line_magic("unload_ext", "kalam_magic")
        # %config writes into the shell's config, which outlives the extension.
        sh.config.pop("Kalam", None)
        for name in set(sh.user_ns) - before:
            del sh.user_ns[name]


def cell(ip: InteractiveShell, body: str, line: str = "") -> Any:
    """Run ``%%kalam line`` + ``body``; errors propagate."""
    return ip.run_cell_magic("kalam", line, body)


def line(ip: InteractiveShell, text: str) -> Any:
    """Run ``%kalam text``; errors propagate."""
    return ip.run_line_magic("kalam", text)


def run_as_notebook(ip: InteractiveShell, source: str) -> tuple[Any, str]:
    """Run a whole cell as the kernel would; return (ExecutionResult, everything printed)."""
    with capture_output() as captured:
        result = ip.run_cell(source, store_history=False)
    text = (
        captured.stdout
        + captured.stderr
        + "".join(o.data.get("text/plain", "") for o in captured.outputs)
    )
    return result, text


__all__ = ["GOLDEN", "cell", "ip", "line", "run_as_notebook", "shell"]
