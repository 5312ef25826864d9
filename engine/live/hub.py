"""``LiveHub``: the subscriptions of one open data directory and the
delivery of committed changes to them.

Writers call ``publish`` from the commit path, after their batch is durable
and while they still hold the engine lock, so events are numbered in commit
order; publishing only appends to a queue (nothing is evaluated on the
writer's time). One hub thread takes the queued events in order, in runs,
and lets each subscription on the table evaluate them (see
``engine.live.subscription``). A subscription registers under the engine lock
with the number of the last event its initial rows include, so the initial
rows and the change stream neither miss nor repeat a change.
"""

from __future__ import annotations

import itertools
import threading
from collections import deque
from dataclasses import dataclass
from typing import Any

from engine.catalog.model import TableDef
from engine.errors import KalamError, QueryNotFoundError
from engine.live.subscription import Subscription
from engine.providers.base import RowVersion


@dataclass(frozen=True)
class RowsEvent:
    """Row versions one statement committed to one scope of one table."""

    no: int
    table: TableDef
    scope: str
    versions: dict[Any, RowVersion]


@dataclass(frozen=True)
class _Control:
    action: str  # "ready" | "end" | "sync"
    sub: Subscription | None = None
    table_id: int = 0
    reason: str = ""
    done: threading.Event | None = None


class LiveHub:
    """Registry of live subscriptions plus the thread that feeds them."""

    def __init__(self, session_id: str) -> None:
        self.session_id = session_id
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._subs: dict[str, Subscription] = {}
        self._by_table: dict[int, list[Subscription]] = {}
        self._events: deque[RowsEvent | _Control] = deque()
        self._no = 0
        self._thread: threading.Thread | None = None
        self._stopping = False

    def __repr__(self) -> str:
        return f"<LiveHub {len(self._subs)} subscription(s), {len(self._events)} queued>"

    def new_id(self) -> str:
        return f"live{next(self._ids)}-{self.session_id}"

    # ------------------------------------------------------------ commit path
    def publish(self, table: TableDef, scope: str, versions: dict[Any, RowVersion]) -> None:
        """Queue row versions that just committed (call under the engine lock)."""
        if table.table_id not in self._by_table:  # the common case: nobody listens
            return
        with self._lock:
            self._no += 1
            self._events.append(RowsEvent(self._no, table, scope, dict(versions)))
            self._wake.notify()

    def table_changed(self, table_id: int, before: TableDef, after: TableDef | None) -> None:
        """End the table's subscriptions when a commit dropped, renamed or altered it."""
        if table_id not in self._by_table:
            return
        if after is None:
            reason = f"table {before.qualified_name} was dropped"
        elif (after.namespace, after.name) != (before.namespace, before.name):
            reason = f"table {before.qualified_name} was renamed to {after.qualified_name}"
        elif after.schema_version != before.schema_version:
            reason = f"table {before.qualified_name} was altered; subscribe again"
        else:
            return
        self._control(_Control("end", table_id=table_id, reason=reason))

    # ------------------------------------------------------------ subscriptions
    def register(self, sub: Subscription) -> None:
        """Add ``sub``; its initial rows must be read before the engine lock
        (held by the caller) is released. Changes wait until ``activate``."""
        with self._lock:
            if self._stopping:
                raise KalamError("The engine is closing: no new live queries")
            sub.start_after = self._no
            self._subs[sub.id] = sub
            self._by_table.setdefault(sub.table_id, []).append(sub)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="kalam-live", daemon=True)
                self._thread.start()

    def activate(self, sub: Subscription) -> None:
        """The initial rows are in ``sub``: deliver what committed since."""
        self._control(_Control("ready", sub=sub))

    def remove(self, sub: Subscription, reason: str) -> None:
        with self._lock:
            if self._subs.pop(sub.id, None) is not None:
                subs = self._by_table.get(sub.table_id, [])
                if sub in subs:
                    subs.remove(sub)
                if not subs:
                    self._by_table.pop(sub.table_id, None)
        sub.end(reason)

    def sync(self, timeout: float = 10.0) -> bool:
        """Wait until every change published so far has been handed to its
        subscriptions (their queues); False on timeout."""
        with self._lock:
            if self._thread is None or self._stopping:
                return True
        done = threading.Event()
        self._control(_Control("sync", done=done))
        return done.wait(timeout)

    def find(self, sub_id: str) -> Subscription | None:
        with self._lock:
            return self._subs.get(sub_id)

    def kill(self, sub_id: str, by: str) -> Subscription:
        sub = self.find(sub_id)
        if sub is None:
            raise QueryNotFoundError(f"No live query with id '{sub_id}'")
        self.remove(sub, f"killed by {by} (KILL LIVE QUERY)")
        return sub

    def snapshot(self) -> list[Subscription]:
        with self._lock:
            return list(self._subs.values())

    def shutdown(self) -> None:
        """End every subscription and stop the hub thread (engine close)."""
        with self._lock:
            self._stopping = True
            subs = list(self._subs.values())
            self._wake.notify()
            thread = self._thread
        for sub in subs:
            self.remove(sub, "the engine was closed")
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=10)

    # ------------------------------------------------------------ the hub thread
    def _control(self, item: _Control) -> None:
        with self._lock:
            self._events.append(item)
            self._wake.notify()

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._events and not self._stopping:
                    self._wake.wait()
                if self._stopping:
                    self._events.clear()
                    return
                items = list(self._events)
                self._events.clear()
            run: list[RowsEvent] = []
            for item in items:
                if isinstance(item, RowsEvent):
                    run.append(item)
                    continue
                self._deliver(run)
                run = []
                self._handle(item)
            self._deliver(run)

    def _handle(self, item: _Control) -> None:
        if item.action == "ready" and item.sub is not None:
            sub = item.sub
            backlog, sub.backlog = sub.backlog, []
            sub.ready = True
            self._feed(sub, backlog)
        elif item.action == "sync" and item.done is not None:
            item.done.set()
        elif item.action == "end":
            with self._lock:
                subs = list(self._by_table.get(item.table_id, []))
            for sub in subs:
                self.remove(sub, item.reason)

    def _deliver(self, run: list[RowsEvent]) -> None:
        if not run:
            return
        for table_id in dict.fromkeys(e.table.table_id for e in run):
            with self._lock:
                subs = list(self._by_table.get(table_id, []))
            for sub in subs:
                mine = [
                    e
                    for e in run
                    if e.table.table_id == table_id
                    and e.scope in sub.scopes
                    and e.no > sub.start_after
                ]
                if not sub.ready:
                    sub.backlog.extend(mine)
                else:
                    self._feed(sub, mine)

    def _feed(self, sub: Subscription, events: list[RowsEvent]) -> None:
        """Apply ``events`` to ``sub``, stopping at a schema change or an error."""
        if sub.closed:
            return
        same = [e for e in events if e.table.schema_version == sub.schema_version]
        if len(same) != len(events):
            first = next(
                i for i, e in enumerate(events) if e.table.schema_version != sub.schema_version
            )
            same = events[:first]
        try:
            sub.apply(same)
        except KalamError as exc:
            self.remove(sub, f"evaluating a change failed: {exc}")
            return
        except Exception as exc:  # an engine bug: end this subscription, keep the hub
            self.remove(sub, f"internal error evaluating a change ({type(exc).__name__}: {exc})")
            return
        if len(same) != len(events):
            self.remove(sub, f"table {sub.table_name} was altered; subscribe again")
