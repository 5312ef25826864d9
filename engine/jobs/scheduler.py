"""Flush policies and STREAM eviction, run by themselves.

``tick(now_ms)`` decides and runs what is due: a table flushes when its hot
rows reach the row or byte bound of its flush policy (by default 1M rows or
64 MB, see ``engine.catalog.flush_policy``) or when its oldest unflushed row
is older than ``interval:S``; a scope is compacted when its segments or dead
versions pass the table's compaction policy (``engine.jobs.compact``);
STREAM tables evict expired rows. A daemon thread calls ``tick`` every
``period`` seconds; tests call ``tick`` directly with the engine's
injectable clock instead of sleeping.

The scheduler does not read the hot rows of a table nobody has touched since
the open (that is what keeps an open with millions of hot rows cheap): such a
table's size was already bounded by the session that wrote it, and its
compaction waits for its next flush. Only what needs the rows' ages is read:
STREAM tables (TTL eviction) and tables with an ``interval`` policy.
"""

from __future__ import annotations

import threading
from functools import partial
from typing import TYPE_CHECKING

from engine.catalog.flush_policy import effective_policy
from engine.catalog.model import TableDef
from engine.jobs.compact import compact_table, due_scopes
from engine.jobs.flush import evict_expired, flush_table, pending_rows
from engine.jobs.jobs import Job
from engine.seq import seq_time_ms

if TYPE_CHECKING:
    from engine.core import Database
    from engine.providers.base import TableProvider


class Scheduler:
    def __init__(self, engine: Database, *, period: float = 1.0) -> None:
        self._engine = engine
        self._period = period
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        state = "running" if self._thread and self._thread.is_alive() else "idle"
        return f"<Scheduler {state}, every {self._period:g} s>"

    def due(self, now_ms: int | None = None) -> list[tuple[str, TableDef]]:
        """(reason, table) for every table whose policy says flush now."""
        engine = self._engine
        now = engine.clock_ms() if now_ms is None else now_ms
        out: list[tuple[str, TableDef]] = []
        for table in engine.catalog.tables():
            policy = effective_policy(table)
            loaded = engine.find_provider(table.table_id)
            if loaded is None and table.table_type != "STREAM" and "interval" not in policy:
                continue  # dormant since the open: nothing to decide without reading it
            prov = loaded or engine.provider(table)
            if table.table_type == "STREAM":
                oldest = self._oldest_seq(table)
                ttl_ms = int(table.options["ttl_seconds"]) * 1000
                if oldest is not None and seq_time_ms(oldest) <= now - ttl_ms:
                    out.append(("evict", table))
                continue
            if due_scopes(engine, table):
                out.append(("compact", table))
            pending = pending_rows(prov)
            if not pending:
                continue
            if "rows" in policy and pending >= policy["rows"]:
                out.append(("rows", table))
                continue
            if "bytes" in policy and pending_bytes(prov) >= policy["bytes"]:
                out.append(("bytes", table))
                continue
            if "interval" in policy:
                oldest = self._oldest_seq(table)
                if oldest is not None and seq_time_ms(oldest) <= now - policy["interval"] * 1000:
                    out.append(("interval", table))
        return out

    def _oldest_seq(self, table: TableDef) -> int | None:
        prov = self._engine.provider(table)
        with self._engine.lock:
            # min_seq reads the columnar seqs: no tuple built per hot row.
            found = (p.rows.min_seq() for p in prov.partitions.values())
            return min((q for q in found if q is not None), default=None)

    def tick(self, now_ms: int | None = None) -> list[str]:
        """Run every due flush / eviction now (in this thread); returns job ids."""
        engine = self._engine
        ids = []
        for reason, table in self.due(now_ms):
            if reason == "evict":
                job = engine.jobs.run_inline(
                    "evict",
                    partial(_evict, engine, table),
                    namespace=table.namespace,
                    table_name=table.name,
                )
            elif reason == "compact":
                job = engine.jobs.run_inline(
                    "compact",
                    partial(_compact, engine, table),
                    namespace=table.namespace,
                    table_name=table.name,
                )
            else:
                job = engine.jobs.run_inline(
                    "flush",
                    partial(_flush, engine, table, reason=reason),
                    namespace=table.namespace,
                    table_name=table.name,
                )
            ids.append(job.job_id)
        return ids

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="kalam-scheduler", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.wait(self._period):
            if self._engine.closed:
                return
            try:
                self.tick()
            except Exception:  # noqa: BLE001 - a failed tick is recorded on its job; keep going
                continue


def pending_bytes(prov: TableProvider) -> int:
    """Memory the table's hot rows hold (for the ``bytes`` bound)."""
    return sum(p.rows.held_bytes() for p in list(prov.partitions.values()))


def _flush(engine: Database, table: TableDef, job: Job, *, reason: str) -> object:
    current = engine.catalog.table_by_id(table.table_id)
    if current is None:
        return None
    report = flush_table(engine, current)
    job.rows, job.segments = report.rows, report.segments
    job.message = f"{report.message} (policy: {reason})"
    return report


def _compact(engine: Database, table: TableDef, job: Job) -> object:
    current = engine.catalog.table_by_id(table.table_id)
    if current is None:
        return None
    report = compact_table(engine, current, scopes=due_scopes(engine, current))
    job.rows, job.segments = report.rows, report.segments_after
    job.message = f"{report.message} (policy)"
    return report


def _evict(engine: Database, table: TableDef, job: Job) -> int:
    current = engine.catalog.table_by_id(table.table_id)
    if current is None:
        return 0
    n = evict_expired(engine, current)
    job.rows = n
    job.message = f"Evicted {n:,} expired row(s) from {current.qualified_name}"
    return n
