"""``ChangeQueue``: the subscriber's side of a live query, embedded or remote.

Both ``Subscription`` (fed by the engine's hub) and ``RemoteSubscription``
(fed by a WebSocket reader) queue changes for one subscriber the same way:
``get(timeout)`` blocks for the next change, ``on_change`` runs a callback
thread instead, and once the live query has ended (first reason wins) the
queued changes can still be read before ``LiveQueryClosedError``. Only how a
queue is fed and how it is closed differ; those live in the subclasses.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Self

from engine.errors import LiveQueryClosedError

if TYPE_CHECKING:
    from engine.live.subscription import Change


class ChangeQueue:
    """Thread-safe queue of changes with an end reason; see the module docstring."""

    id: str

    def __init__(self) -> None:
        self.changes_delivered = 0
        self._pending: deque[Change] = deque()
        self._cond = threading.Condition()
        self._reason: str | None = None
        self._callback: threading.Thread | None = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        raise NotImplementedError

    def _callback_failed(self, reason: str) -> None:
        """End the live query because the subscriber's callback raised."""
        raise NotImplementedError

    @property
    def closed(self) -> bool:
        return self._reason is not None

    @property
    def close_reason(self) -> str | None:
        return self._reason

    @property
    def pending(self) -> int:
        return len(self._pending)

    def end(self, reason: str) -> bool:
        """Mark ended with ``reason`` (the first reason wins); wakes ``get``.
        True if this call ended it."""
        with self._cond:
            if self._reason is not None:
                return False
            self._reason = reason
            self._cond.notify_all()
            return True

    def _discard_pending(self) -> None:
        with self._cond:
            self._pending.clear()

    def get(self, timeout: float | None = None) -> Change | None:
        """The next change (blocking up to ``timeout`` seconds; ``None``: for
        ever). Returns ``None`` on timeout; raises ``LiveQueryClosedError``
        once the live query has ended and its queued changes are read."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._pending:
                if self._reason is not None:
                    raise LiveQueryClosedError(
                        f"Live query {self.id} has ended: {self._reason}",
                        subscription_id=self.id,
                        reason=self._reason,
                    )
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return None
                self._cond.wait(left)
            self.changes_delivered += 1
            return self._pending.popleft()

    def on_change(
        self,
        callback: Callable[[Change], Any],
        *,
        on_close: Callable[[str], Any] | None = None,
    ) -> None:
        """Call ``callback(change)`` for each change on a thread of this
        subscription (instead of calling ``get``), then ``on_close(reason)``.
        An exception in ``callback`` ends the subscription with that error."""
        if self._callback is not None:
            raise LiveQueryClosedError(f"Live query {self.id} already has a callback")

        def loop() -> None:
            while True:
                try:
                    change = self.get()
                except LiveQueryClosedError:
                    break
                try:
                    if change is not None:
                        callback(change)
                except Exception as exc:  # the subscriber's bug ends its subscription
                    self._callback_failed(f"the change callback failed: {exc!r}")
                    break
            if on_close is not None:
                on_close(self._reason or "closed")

        self._callback = threading.Thread(target=loop, name=f"kalam-live-{self.id}", daemon=True)
        self._callback.start()

    def _join_threads(self, *threads: threading.Thread | None) -> None:
        for thread in (*threads, self._callback):
            if thread is not None and thread is not threading.current_thread():
                thread.join(timeout=5)
