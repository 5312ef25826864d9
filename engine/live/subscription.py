"""``Subscription`` and ``Change``: what a live query hands its subscriber.

A subscription keeps, per primary key, the projected values its subscriber
last saw (the initial rows, then every change). That is what turns a
committed row version into the right change for this subscriber: a row that
starts matching the WHERE is an ``insert``, one that keeps matching an
``update`` (with the values it had as ``old_values``), one that stops
matching or is deleted a ``delete`` (its last values as ``rows``). No stored
old version is ever read back, so cold rows cost nothing extra.

Changes wait in a bounded queue. A subscriber that falls more than
``max_pending`` changes behind is closed with an error saying so; nothing is
ever dropped silently.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import groupby
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from engine.catalog.model import TableDef
from engine.live.evaluate import Evaluator, rows_of, table_of
from engine.live.queue import ChangeQueue
from engine.providers.base import RowVersion, build_arrow

if TYPE_CHECKING:
    from engine.live.hub import LiveHub, RowsEvent

DEFAULT_MAX_PENDING = 10_000


@dataclass(frozen=True)
class Change:
    """One committed change as a subscriber sees it.

    ``insert``: ``rows`` are the new rows. ``update``: ``rows`` the new values,
    ``old_values`` the values the subscriber saw before (same order).
    ``delete``: ``rows`` the values the subscriber last saw. ``seq`` is the
    highest ``_seq`` written by the change."""

    change_type: str  # "insert" | "update" | "delete"
    rows: pa.Table
    old_values: pa.Table | None
    seq: int

    def __repr__(self) -> str:
        return f"<Change {self.change_type} {self.rows.num_rows} row(s) seq={self.seq}>"


class Subscription(ChangeQueue):
    """A live query: ``initial`` rows, then ``get()`` changes in commit order.

    Thread-safe. Close it (or use it as a context manager) when done."""

    def __init__(
        self,
        hub: LiveHub,
        sub_id: str,
        *,
        user: str,
        sql: str,
        table: TableDef,
        scopes: list[str],
        evaluator: Evaluator,
        created_us: int,
        max_pending: int = DEFAULT_MAX_PENDING,
    ) -> None:
        super().__init__()
        self.id = sub_id
        self.user = user
        self.sql = sql
        self.table_id = table.table_id
        self.table_name = table.qualified_name
        self.schema_version = table.schema_version
        self.scopes = frozenset(scopes)
        self.created_us = created_us
        self.max_pending = max_pending
        self.schema: pa.Schema = evaluator.empty().schema
        self.initial: pa.Table = self.schema.empty_table()
        self._hub = hub
        self._evaluator = evaluator
        # Rows are known by their primary key (STREAM tables without one: by _seq).
        self._key = table.pk.name if table.pk is not None else "_seq"
        self._key_type = table.pk.arrow_type if table.pk is not None else pa.int64()
        self._seen: dict[Any, tuple[Any, ...]] = {}  # primary key -> projected values
        # Hub state, touched only by the hub (under its lock or on its thread).
        self.start_after = 0  # the hub event number the initial rows include
        self.ready = False  # initial rows taken; until then changes wait in backlog
        self.backlog: list[RowsEvent] = []

    def __repr__(self) -> str:
        state = f"closed: {self._reason}" if self._reason else f"{len(self._pending)} pending"
        return f"<Subscription {self.id} on {self.table_name} ({state})>"

    # ------------------------------------------------------------ subscriber side
    def _callback_failed(self, reason: str) -> None:
        self._hub.remove(self, reason)

    def close(self) -> None:
        """End the subscription (idempotent); queued changes are discarded."""
        self._hub.remove(self, "closed by the subscriber")
        self._discard_pending()
        self._join_threads()

    # ------------------------------------------------------------ hub side
    def take_initial(self, full: pa.Table) -> None:
        """Set the initial rows from the table's matching rows (all columns)."""
        projected = self._evaluator.project(full)
        keys = full.column(self._key).to_pylist()
        self._seen = dict(zip(keys, rows_of(projected), strict=True))
        self.schema = projected.schema
        self.initial = projected

    def apply(self, events: list[RowsEvent]) -> None:
        """Turn committed row versions (in commit order) into changes and queue them."""
        if not events:
            return
        changes = self._changes(events)
        if not changes:
            return
        with self._cond:
            if self._reason is not None:
                return
            room = max(self.max_pending - len(self._pending), 0)
            overflow = len(changes) > room
            # What fits stays queued, in order, and is read before the error.
            self._pending.extend(changes[:room])
            self._cond.notify_all()
        if overflow:
            self._hub.remove(
                self,
                f"the subscriber fell behind: more than {self.max_pending} changes were "
                "waiting to be read; subscribe again to get the current rows",
            )

    def _changes(self, events: list[RowsEvent]) -> list[Change]:
        table = events[0].table
        entries: list[tuple[int, Any, int, int]] = []  # (event no, key, seq, live index)
        live: list[RowVersion] = []
        for e in events:
            keys = pa.array(list(e.versions), type=self._key_type).to_pylist()
            for key, version in zip(keys, e.versions.values(), strict=True):
                index = -1
                if not version[1]:
                    index = len(live)
                    live.append(version)
                entries.append((e.no, key, version[0], index))
        data = build_arrow(table, live, hidden=self._evaluator.hidden)
        picked, projected = self._evaluator.evaluate(data)
        new_rows = dict(zip(picked, rows_of(projected), strict=True))
        out: list[Change] = []
        for _, group in groupby(entries, key=lambda x: x[0]):
            kinds: dict[str, tuple[list[Any], list[Any], list[int]]] = {
                k: ([], [], []) for k in ("insert", "update", "delete")
            }
            for _, key, seq, index in group:
                old = self._seen.get(key)
                new = new_rows.get(index) if index >= 0 else None
                if new is not None:
                    self._seen[key] = new
                    kind = "insert" if old is None else "update"
                    kinds[kind][0].append(new)
                    if old is not None:
                        kinds[kind][1].append(old)
                    kinds[kind][2].append(seq)
                elif old is not None:
                    del self._seen[key]
                    kinds["delete"][0].append(old)
                    kinds["delete"][2].append(seq)
            for kind, (rows, olds, seqs) in kinds.items():
                if rows:
                    out.append(
                        Change(
                            kind,
                            table_of(rows, self.schema),
                            table_of(olds, self.schema) if kind == "update" else None,
                            max(seqs),
                        )
                    )
        return out
