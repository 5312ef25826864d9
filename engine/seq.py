"""``_seq``: a 64-bit sequence that is also a timestamp (snowflake layout).

``seq = (ms since 2024-01-01) << 22 | counter``. It grows monotonically across
restarts: the high-water mark is persisted in every statement's batch, and a
new seq is never below it even if the clock steps back. STREAM tables read a
row's age from its seq, so no extra timestamp is stored.
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
        self._high = keys.decode_int(store.get(keys.SEQ_KEY), what="_seq high-water mark")
        self._clock = clock_ms
        self._lock = threading.Lock()

    @property
    def high_water(self) -> int:
        return self._high

    def take(self, txn: Txn, count: int) -> int:
        """Reserve ``count`` consecutive seqs; the mark is persisted with ``txn``."""
        with self._lock:
            first = max(self._high + 1, (self._clock() - EPOCH_MS) << _SHIFT)
            self._high = first + max(count, 1) - 1
            txn.batch.put(keys.SEQ_KEY, keys.encode_int(self._high))
            return first
