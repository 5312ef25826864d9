"""Re-execute notebooks in place so their stored outputs match the engine.

Usage (from the repository root)::

    .venv/bin/python notebooks/refresh_outputs.py               # every notebook
    .venv/bin/python notebooks/refresh_outputs.py quickstart    # some of them

Each notebook runs top to bottom in a fresh kernel of this Python, with the
repository on the kernel's import path. A cell that raises stops the run
unless it carries the ``raises-exception`` tag (the same rule nbval applies),
so a notebook is only rewritten when it ran as documented.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def refresh(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p
    )
    # The kernel is started from this interpreter's bin directory first on PATH.
    os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]])
    client = NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(HERE)}}
    )
    client.execute()
    nbformat.write(nb, path)
    print(f"refreshed {path.name}")


def main(names: list[str]) -> int:
    paths = [HERE / f"{n.removesuffix('.ipynb')}.ipynb" for n in names] or sorted(
        HERE.glob("*.ipynb")
    )
    for path in paths:
        refresh(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
