"""Which statements may still read files that a commit has retired.

Compaction replaces segments; a query planned against the previous manifest
may still be reading the old files. Every statement reads inside
``Readers.reading()``; ``retire(paths)`` removes files at once when no
statement that started before the retirement is still running, and otherwise
when the last such statement finishes. Files waiting for removal are listed
by ``retired()`` so an orphan sweep never deletes one that is still read.
A crash before removal leaves them as orphans (no manifest names them),
which the next flush or compaction of the scope sweeps away.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from engine.storage.fs import ColdPath


class Readers:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tokens = itertools.count(1)
        self._epoch = 0
        self._active: dict[int, int] = {}  # token -> epoch it started in
        self._pending: list[tuple[int, list[ColdPath]]] = []  # (retirement epoch, files)

    def __repr__(self) -> str:
        waiting = sum(len(p) for _, p in self._pending)
        return f"<Readers {len(self._active)} reading, {waiting} retired file(s) waiting>"

    @contextmanager
    def reading(self) -> Iterator[None]:
        with self._lock:
            token = next(self._tokens)
            self._active[token] = self._epoch
        try:
            yield
        finally:
            with self._lock:
                del self._active[token]
                due = self._due()
            _remove(due)

    def retire(self, paths: list[ColdPath]) -> None:
        """Remove ``paths`` once no statement that began before now still runs."""
        with self._lock:
            self._epoch += 1
            self._pending.append((self._epoch, list(paths)))
            due = self._due()
        _remove(due)

    def retired(self) -> set[ColdPath]:
        with self._lock:
            return {p for _, paths in self._pending for p in paths}

    def finish(self) -> None:
        """Remove everything retired (the engine is closing: nothing reads)."""
        with self._lock:
            due = [p for _, paths in self._pending for p in paths]
            self._pending.clear()
        _remove(due)

    def _due(self) -> list[ColdPath]:
        oldest = min(self._active.values(), default=None)
        due: list[ColdPath] = []
        keep = []
        for epoch, paths in self._pending:
            if oldest is None or oldest >= epoch:
                due.extend(paths)
            else:
                keep.append((epoch, paths))
        self._pending = keep
        return due


def _remove(paths: list[ColdPath]) -> None:
    for p in paths:
        p.unlink(missing_ok=True)
