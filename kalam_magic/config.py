"""The ``Kalam`` configurable: every setting of the magic, declared once.

``%config Kalam.<name> = value`` changes a setting for the session; the same
names work in an IPython profile (``c.Kalam.displaylimit = 50``). Each trait
carries its help text, which ``%kalam?`` and the tests read back.
"""

from __future__ import annotations

import os
from pathlib import Path

from traitlets import Bool, Enum, Float, Int, Unicode, validate
from traitlets.config import Configurable

DATA_DIR_ENV = "KALAM_DATA_DIR"
DEFAULT_DATA_DIR = "kalam-data"


class Kalam(Configurable):
    """Settings of the ``%%kalam`` magic."""

    data_dir = Unicode(
        "",
        help=(
            "Data directory of the engine. Empty means $KALAM_DATA_DIR, else ./kalam-data. "
            "`%kalam --connect DIR` sets it."
        ),
    ).tag(config=True)

    user = Unicode(
        "root",
        help="User the statements run as, unless a cell passes --user NAME.",
    ).tag(config=True)

    displaylimit = Int(
        20,
        help=(
            "Rows shown per result; a longer result shows 'N of M rows' and stays whole "
            "in the returned object. 0 shows every row."
        ),
    ).tag(config=True)

    display_max_rows = Int(
        10_000,
        help=(
            "With displaylimit = 0, a longer result renders this many rows and says so; "
            "`--rows all` on a cell renders every row (0: never cap)."
        ),
    ).tag(config=True)

    durability = Enum(
        ["sync", "async"],
        default_value="sync",
        help=(
            "How an engine opened by the magic commits: 'sync' fsyncs the WAL per "
            "statement, 'async' leaves it to the OS. Applies to engines opened afterwards."
        ),
    ).tag(config=True)

    embedded = Bool(
        False,
        help=(
            "Open the data directory in this kernel even when a `kalam serve` owns it "
            "(which then fails as 'in use'). By default a running server is used, so "
            "every notebook shares the directory. Applies to engines opened afterwards."
        ),
    ).tag(config=True)

    progress_threshold = Int(
        100_000,
        help="Row count from which FLUSH and --persist show a progress bar (0: never).",
    ).tag(config=True)

    progress_after = Float(
        1.0,
        help=(
            "Seconds after which a running statement shows its elapsed time and rows so "
            "far in its output area, replaced by the result when done (0: never)."
        ),
    ).tag(config=True)

    persist_batch_rows = Int(
        50_000,
        help="Rows handed to the engine per bulk write by --persist.",
    ).tag(config=True)

    @validate("displaylimit", "display_max_rows", "progress_threshold")
    def _non_negative(self, proposal: dict) -> int:
        value = int(proposal["value"])
        if value < 0:
            raise ValueError(f"{proposal['trait'].name} must be >= 0, got {value}")
        return value

    @validate("progress_after")
    def _non_negative_seconds(self, proposal: dict) -> float:
        value = float(proposal["value"])
        if value < 0:
            raise ValueError(f"progress_after must be >= 0, got {value}")
        return value

    @validate("persist_batch_rows")
    def _positive(self, proposal: dict) -> int:
        value = int(proposal["value"])
        if value < 1:
            raise ValueError(f"persist_batch_rows must be >= 1, got {value}")
        return value

    @validate("user")
    def _user_not_empty(self, proposal: dict) -> str:
        value = str(proposal["value"])
        if not value:
            raise ValueError("user must not be empty")
        return value

    def resolved_data_dir(self) -> Path:
        """The data directory in effect: the setting, else the environment, else ./kalam-data."""
        raw = self.data_dir or os.environ.get(DATA_DIR_ENV) or DEFAULT_DATA_DIR
        return Path(raw).expanduser().resolve()


def settings_help() -> str:
    """One line per setting, for the magic's docstring."""
    lines = []
    for name, trait in sorted(Kalam.class_traits(config=True).items()):
        lines.append(f"    Kalam.{name} (default {trait.default_value!r}): {trait.help}")
    return "\n".join(lines)
