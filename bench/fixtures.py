"""Fixtures shared by the benchmarks: engine access, peer databases, work dirs.

Owns the rule that turns "the engine cannot do this yet" into ``NotAvailable``
(a clean skip with a reason) while real engine bugs still surface as errors,
and the lookup of segment files through a table's ``manifest.json``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.harness import BenchConfig, NotAvailable

# Class names of engine errors that mean "not implemented yet" rather than a bug.
_UNSUPPORTED = {"UnsupportedStatementError", "SqlParseError"}


def engine_class() -> Any:
    """``engine.Engine``, or ``NotAvailable`` if the engine does not import yet."""
    try:
        from engine import Engine
    except Exception as exc:  # any import-time failure means "not there yet"
        raise NotAvailable(f"engine does not import ({type(exc).__name__}: {exc})") from exc
    return Engine


def is_unsupported(exc: BaseException) -> bool:
    return isinstance(exc, NotImplementedError) or type(exc).__name__ in _UNSUPPORTED


@contextlib.contextmanager
def needs(feature: str) -> Iterator[None]:
    """Turn an "unsupported" engine error raised inside the block into ``NotAvailable``."""
    try:
        yield
    except NotAvailable:
        raise
    except Exception as exc:
        if is_unsupported(exc):
            raise NotAvailable(f"{feature}: {type(exc).__name__}: {exc}") from exc
        raise


def open_engine(data_dir: Path, **kwargs: Any) -> Any:
    Engine = engine_class()
    data_dir.mkdir(parents=True, exist_ok=True)
    return Engine.open(str(data_dir), **kwargs)


@contextlib.contextmanager
def work_dir(cfg: BenchConfig, name: str) -> Iterator[Path]:
    """A fresh directory under ``bench/_work`` removed afterwards (unless BENCH_KEEP_WORK=1)."""
    path = cfg.work_dir / f"{name}-{os.getpid()}"
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    try:
        yield path
    finally:
        if os.environ.get("BENCH_KEEP_WORK") != "1":
            shutil.rmtree(path, ignore_errors=True)


# ------------------------------------------------------------------- peers


def sqlite_connect(path: Path) -> sqlite3.Connection:
    """SQLite file database in WAL mode with ``synchronous=FULL`` (fsync per commit)."""
    con = sqlite3.connect(str(path))
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=FULL")
    return con


def duckdb_connect(path: Path | None = None) -> Any:
    """DuckDB file database (autocommit per statement), or in-memory when ``path`` is None."""
    import duckdb

    return duckdb.connect(str(path) if path is not None else ":memory:")


# ---------------------------------------------------------- cold segments


def segment_files(data_dir: Path, namespace: str, table: str) -> list[str]:
    """Absolute paths of a SHARED table's segments, as named by its manifest
    (``manifest.json`` and its change log).

    The manifest is the only truth about cold data, so the peers read exactly
    the files it lists (never a directory glob). Relative paths are taken
    relative to the manifest's directory.
    """
    scope_dir = data_dir / "storage" / namespace / table
    manifest = scope_dir / "manifest.json"
    if not manifest.exists():
        raise NotAvailable(f"no manifest at {manifest}")
    try:  # the checkpoint with its change log (manifest.jsonl) replayed
        from engine.manifest import encode, read_manifest_json

        doc = json.loads(encode(read_manifest_json(manifest)))
    except ImportError:
        doc = json.loads(manifest.read_text(encoding="utf-8"))
    paths: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            p = node.get("path")
            if isinstance(p, str) and p.endswith(".parquet"):
                paths.append(p)
                return
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(doc)
    out = []
    for p in paths:
        full = Path(p) if Path(p).is_absolute() else scope_dir / p
        if not full.exists():
            # Some layouts store paths relative to the data dir.
            alt = data_dir / p
            full = alt if alt.exists() else full
        out.append(str(full))
    if not out:
        raise NotAvailable(f"manifest {manifest} lists no segments")
    return out


def physical_column(files: list[str], logical: str, *, engine: Any, table: str) -> str:
    """The name a logical column has inside the segment files.

    Segments name columns by stable column id (e.g. ``c3``); the id comes from
    ``DESCRIBE``'s ``column_id``. A segment that uses the logical name is also accepted.
    """
    import pyarrow.parquet as pq

    names = pq.read_schema(files[0]).names
    if logical in names:
        return logical
    desc = engine.execute(f"DESCRIBE {table}").to_pylist()
    for row in desc:
        if row.get("column_name") == logical and row.get("column_id") is not None:
            for candidate in (f"c{row['column_id']}", str(row["column_id"])):
                if candidate in names:
                    return candidate
    raise NotAvailable(f"cannot map column {logical!r} of {table} to segment columns {names}")


def id_a_b_table(n: int, seed: int) -> Any:
    """``n`` rows of ``id`` (0..n-1), ``a`` (random 0..999) and ``b``
    (random 0..99), the same for the same seed."""
    import numpy as np
    import pyarrow as pa

    rng = np.random.default_rng(seed)
    return pa.table(
        {
            "id": np.arange(n, dtype=np.int64),
            "a": rng.integers(0, 1000, n),
            "b": rng.integers(0, 100, n),
        }
    )
