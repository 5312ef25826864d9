"""Fixtures and helpers for the cold-tier integration tests (flush, manifests,
merge-on-read, pruning, crash safety, damage, flush policies, STREAM tables).

Import what a test module needs from here; the fixtures build on ``engines``
and ``clock`` from ``conftest.py``. Every engine opened here has
``background_jobs=False`` so nothing flushes or evicts unless a test says so
(``engine.flush``, ``FLUSH TABLE``, or ``engine.scheduler.tick``).

- ``Cold``: one data directory, its current engine, and one table seen as one
  user. ``cold.sql(...)`` runs as that user; ``cold.restart()`` closes and
  reopens the directory; ``cold.scope_dir`` is where that user's (USER) or the
  table's (SHARED) manifest.json and segments live.
- Test modules load the fixtures with ``pytest.register_assert_rewrite("conftest_cold")``
  before importing helpers from here, and ``pytest_plugins = ["conftest_cold"]``.
- ``cold`` fixture: a ``Cold`` with no table yet; ``kind`` parametrises a test
  over SHARED and USER tables (STREAM tables are never flushed).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from engine import Engine, Result

COLD_KINDS = ("SHARED", "USER")
USER = "alice"
OTHER_USER = "bob"


class Cold:
    """An engine on one data directory plus the table under test."""

    def __init__(self, engines: Any, *, table: str = "t", user: str = USER) -> None:
        self._engines = engines
        self.table = table
        self.user = user
        self.kind = "SHARED"
        self.engine: Engine = self.open()

    def open(self, **kwargs: Any) -> Engine:
        kwargs.setdefault("background_jobs", False)
        return self._engines.open(**kwargs)

    @property
    def data_dir(self) -> Path:
        return Path(self._engines.data_dir).resolve()

    def restart(self) -> Engine:
        self.engine.close()
        self.engine = self.open()
        return self.engine

    def create(
        self,
        kind: str,
        columns: str = "id BIGINT PRIMARY KEY, v INT, note TEXT",
        *,
        with_: str = "",
    ) -> None:
        self.kind = kind
        # Writing a SHARED table needs the service role; root has every role.
        self.user = USER if kind == "USER" else "root"
        options = f" WITH ({with_})" if with_ else ""
        self.engine.execute(f"CREATE {kind} TABLE {self.table} ({columns}){options}")

    def sql(self, sql: str, params: Any = None, *, user: str | None = None) -> Result:
        return self.engine.execute(sql, params, user=user or self.user)

    def flush(self) -> Result:
        return self.engine.flush(self.table)

    def rows(self, *, user: str | None = None, cols: str = "id, v") -> list[tuple[Any, ...]]:
        return self.sql(f"SELECT {cols} FROM {self.table} ORDER BY id", user=user).rows()

    def count(self, *, user: str | None = None) -> int:
        return self.sql(f"SELECT COUNT(*) FROM {self.table}", user=user).scalar()

    def stats(self, sql: str, params: Any = None) -> dict[str, int]:
        return self.sql(sql, params).stats[f"default.{self.table}"]

    def insert(self, ids: range | list[int], *, user: str | None = None, v=lambda i: i) -> None:
        values = ", ".join(f"({i}, {v(i)}, 'n{i}')" for i in ids)
        self.sql(f"INSERT INTO {self.table} (id, v, note) VALUES {values}", user=user)

    @property
    def table_dir(self) -> Path:
        return self.data_dir / "storage" / "default" / self.table

    def scope_dir_of(self, user: str) -> Path:
        return self.table_dir / user if self.kind == "USER" else self.table_dir

    @property
    def scope_dir(self) -> Path:
        return self.scope_dir_of(self.user)

    @property
    def manifest_path(self) -> Path:
        return self.scope_dir / "manifest.json"

    def manifest(self) -> dict[str, Any]:
        return read_json(self.manifest_path)

    def segment_paths(self) -> list[Path]:
        """Segment files the manifest names, in id order."""
        return [self.scope_dir / s["path"] for s in self.manifest()["segments"]]


def read_json(path: Path) -> dict[str, Any]:
    """A JSON file; for a ``manifest.json``, the manifest it holds with its
    change log (``manifest.jsonl``) replayed, in the checkpoint's shape."""
    if path.name == "manifest.json":
        from engine.manifest import encode, read_manifest_json

        return orjson.loads(encode(read_manifest_json(path)))
    return orjson.loads(path.read_bytes())


def segment_files(directory: Path) -> list[str]:
    """``batch-*.parquet`` names present on disk (sorted)."""
    if not directory.is_dir():
        return []
    return sorted(p.name for p in directory.glob("batch-*.parquet"))


def stray_files(directory: Path) -> list[str]:
    """Files in a scope directory other than the manifest's (checkpoint and
    log) and the segments it names."""
    if not directory.is_dir():
        return []
    manifest = directory / "manifest.json"
    named = {s["path"] for s in read_json(manifest)["segments"]} if manifest.exists() else set()
    return sorted(
        p.name
        for p in directory.iterdir()
        if p.is_file() and p.name not in ("manifest.json", "manifest.jsonl") and p.name not in named
    )


@pytest.fixture
def cold(engines: Any) -> Iterator[Cold]:
    c = Cold(engines)
    yield c
    c.engine.close()


@pytest.fixture(params=COLD_KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return request.param
