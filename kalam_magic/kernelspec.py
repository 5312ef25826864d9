"""The "Python 3 (Kalam)" kernel: a Python kernel that has kalam_magic loaded at start.

``python -m kalam_magic.kernelspec DIR`` writes ``DIR/kernel.json`` (``make lab``
does). The kernel loads the extension through ``exec_lines`` rather than
``--ext``: IPython's extension manager then does not count it as loaded, so a
notebook's own ``%load_ext kalam_magic`` (which every shipped notebook starts
with, to run on the stock kernel too) finds the magics already registered and
stays silent instead of printing "already loaded".
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

DISPLAY_NAME = "Python 3 (Kalam)"
STARTUP = "import kalam_magic; kalam_magic.load_ipython_extension(get_ipython())"


def kernel_spec(python: str = "python") -> dict[str, Any]:
    return {
        "display_name": DISPLAY_NAME,
        "language": "python",
        "argv": [
            python,
            "-m",
            "ipykernel_launcher",
            "-f",
            "{connection_file}",
            f"--IPKernelApp.exec_lines={STARTUP}",
        ],
    }


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m kalam_magic.kernelspec KERNEL_DIR", file=sys.stderr)
        return 2
    target = Path(argv[0])
    target.mkdir(parents=True, exist_ok=True)
    (target / "kernel.json").write_text(json.dumps(kernel_spec(), indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
