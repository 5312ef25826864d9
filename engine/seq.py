"""``_seq``: a 64-bit sequence that is also a timestamp (snowflake layout).

``seq = (ms since 2024-01-01) << 22 | counter``. It grows monotonically per
scope (a user's rows of USER tables; the shared scope of SHARED and STREAM
tables) across restarts: each scope's high-water mark is persisted in the
batch of every statement that writes it, and a new seq is never below it even
if the clock steps back. Nothing needs an order across scopes (flush
watermarks, delete markers and row keys are all per scope), and a counter per
scope means the ``_seq`` values a user sees reveal nothing about other users'
writes. STREAM tables read a row's age from its seq, so no extra timestamp is
stored.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from engine.storage import keys
from engine.storage.hot import HotStore
from engine.txn import Txn

EPOCH_MS = 1_704_067_200_000  # 2024-01-01T00:00:00Z
_SHIFT = 22


def seq_time_ms(seq: int) -> int:
    return (seq >> _SHIFT) + EPOCH_MS


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


class SeqAllocator:
    def __init__(self, store: HotStore, clock_ms: Callable[[], int]) -> None:
        # The engine-wide mark of older data directories: the floor of every scope.
        self._floor = keys.decode_int(store.get(keys.SEQ_KEY), what="_seq high-water mark")
        self._highs: dict[str, int] = {}
        for key, raw in store.scan(keys.SEQ_SCOPE_PREFIX):
            scope = key[len(keys.SEQ_SCOPE_PREFIX) :].decode()
            self._highs[scope] = keys.decode_int(raw, what=f"_seq high-water mark of {scope!r}")
        self._clock = clock_ms
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<SeqAllocator {len(self._highs)} scope(s)>"

    @property
    def high_water(self) -> int:
        return max([self._floor, *self._highs.values()])

    def take(self, txn: Txn, count: int, scope: str) -> int:
        """Reserve ``count`` consecutive seqs of ``scope``; the mark is persisted
        with ``txn``."""
        with self._lock:
            high = self._highs.get(scope, self._floor)
            first = max(high + 1, (self._clock() - EPOCH_MS) << _SHIFT)
            last = first + max(count, 1) - 1
            self._highs[scope] = last  # at once: two takes in one batch never overlap
            txn.batch.put(keys.seq_key(scope), keys.encode_int(last))
            return first
