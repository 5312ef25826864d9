"""A scripted tour of the engine: ``python -m engine.demo`` (or ``make demo``).

It owns nothing but the script: open a throwaway data directory, create a
namespace and a table, write and read rows, close the engine, reopen it as a
restart would, and read the same rows back. Each statement is printed with its
result in the same text format as ``kalam sql``.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from engine import Engine
from engine.cli import render_result

BEFORE_RESTART = (
    "CREATE NAMESPACE demo",
    "CREATE TABLE demo.notes (id BIGINT PRIMARY KEY, title TEXT NOT NULL, stars INT DEFAULT 0)",
    "INSERT INTO demo.notes (id, title, stars) VALUES (1, 'hot tier', 3), (2, 'cold tier', 5)",
    "INSERT INTO demo.notes (id, title) VALUES (3, 'manifest')",
    "SELECT id, title, stars FROM demo.notes ORDER BY id",
)

AFTER_RESTART = (
    "SELECT id, title, stars FROM demo.notes ORDER BY id",
    "SELECT count(*) AS notes, sum(stars) AS stars FROM demo.notes",
)


def run_statements(engine: Engine, statements: Sequence[str], out: TextIO) -> None:
    for sql in statements:
        print(f"kalam> {sql};", file=out)
        print(render_result(engine.execute(sql)), file=out)
        print(file=out)


def run_demo(data_dir: Path, out: TextIO = sys.stdout) -> None:
    """Run the scripted session against ``data_dir`` (which should be empty)."""
    print(f"-- data directory: {data_dir}\n", file=out)
    with Engine.open(data_dir, embedded=True) as engine:
        run_statements(engine, BEFORE_RESTART, out)
    print("-- engine closed; reopening the same data directory (a restart)\n", file=out)
    with Engine.open(data_dir, embedded=True) as engine:
        run_statements(engine, AFTER_RESTART, out)


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="kalam-demo-") as tmp:
        run_demo(Path(tmp) / "data")
    return 0


if __name__ == "__main__":
    sys.exit(main())
