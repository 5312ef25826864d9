"""A statement's unit of work: one hot-store batch plus the in-memory
changes to apply once (and only once) that batch has committed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from engine.storage.hot import Batch, HotStore


class Txn:
    def __init__(self, store: HotStore) -> None:
        self.store = store
        self.batch = Batch()
        self._after: list[Callable[[], Any]] = []

    def after_commit(self, fn: Callable[[], Any]) -> None:
        self._after.append(fn)

    def commit(self) -> None:
        self.store.commit(self.batch)
        for fn in self._after:
            fn()

    def __repr__(self) -> str:
        return f"<Txn {self.batch.ops} op(s), {len(self._after)} pending change(s)>"
