"""DataFusion's allocator keeps freed pages for a minute (engine/allocator.py).

mimalloc prints the options it read when ``MIMALLOC_VERBOSE=1``, which shows
what DataFusion's copy of it actually uses: the setting only counts if it is
in the environment before the extension loads.
"""

from __future__ import annotations

import os
import subprocess
import sys

from engine.allocator import PURGE_DELAY_MS


def _purge_delay_read(code: str, **env: str) -> list[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MIMALLOC_")}
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={**clean, "MIMALLOC_VERBOSE": "1", **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    # DataFusion's mimalloc prefixes its lines "mimalloc: ".
    return [
        line.split(":")[-1].strip()
        for line in (out.stderr + out.stdout).splitlines()
        if line.startswith("mimalloc: option 'purge_delay'")
    ]


def test_importing_engine_sets_datafusions_purge_delay_before_it_loads() -> None:
    assert _purge_delay_read("import engine, datafusion") == [str(PURGE_DELAY_MS)]


def test_importing_kalam_or_the_magic_sets_it_too() -> None:
    assert _purge_delay_read("import kalam") == [str(PURGE_DELAY_MS)]
    assert _purge_delay_read("import kalam_magic") == [str(PURGE_DELAY_MS)]


def test_a_purge_delay_the_user_set_is_kept() -> None:
    assert _purge_delay_read("import engine", MIMALLOC_PURGE_DELAY="77") == ["77"]


def test_without_the_engine_datafusion_keeps_mimallocs_default() -> None:
    # The test above would pass vacuously if the default were ours.
    assert _purge_delay_read("import datafusion") != [str(PURGE_DELAY_MS)]
