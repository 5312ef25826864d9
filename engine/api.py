"""The ``Engine`` façade: open a data directory, execute statements.

One ``Engine`` per data directory; it owns the hot store, the catalog, the
``_seq`` allocator and the table providers. Statement semantics live in
``engine.sql`` handlers; this module only wires them together.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from engine.catalog.catalog import DEFAULT_NAMESPACE, Catalog
from engine.catalog.model import Namespace, TableDef
from engine.errors import (
    EngineClosedError,
    InvalidOptionError,
    MultipleStatementsError,
    UnsupportedStatementError,
)
from engine.exec.live import LiveQueries
from engine.jobs.jobs import JobManager
from engine.jobs.scheduler import Scheduler
from engine.names import check_user, safe_path
from engine.providers.base import TableProvider
from engine.providers.cold_tier import ColdTier, GroupCache
from engine.providers.kinds import PROVIDERS
from engine.recovery import open_hot_store
from engine.result import Result
from engine.security import Users, authorize
from engine.seq import SeqAllocator, wall_clock_ms
from engine.sql import parser
from engine.sql import statements as st
from engine.sql.statements import Statement, TableRef
from engine.storage import keys
from engine.storage.cold import SegmentVerifier
from engine.txn import Txn

DURABILITY = {
    "sync": "fsync the write-ahead log on every statement (survives power loss)",
    "async": "let the OS flush the write-ahead log (survives a process crash, not power loss)",
}


class Engine:
    """An open data directory. Thread-safe; use as a context manager."""

    def __init__(
        self,
        data_dir: Path,
        *,
        user: str,
        durability: str,
        clock_ms: Callable[[], int],
        background_jobs: bool = True,
        repair: bool = False,
    ) -> None:
        if durability not in DURABILITY:
            raise InvalidOptionError(
                f"durability must be one of {sorted(DURABILITY)}, not {durability!r}"
            )
        self.data_dir = data_dir
        self.user = check_user(user)
        self.durability = durability
        self.clock_ms = clock_ms
        self.lock = threading.RLock()
        self._call = threading.local()  # per-call options (progress callback)
        self.flush_lock = threading.Lock()
        data_dir.mkdir(parents=True, exist_ok=True)
        self.store, self.recovery = open_hot_store(
            data_dir, sync=durability == "sync", repair=repair
        )
        self._closed = False
        try:
            self.catalog = Catalog(self.store)
            self.seq = SeqAllocator(self.store, clock_ms)
            self._providers: dict[int, TableProvider] = {}
            self.verifier = SegmentVerifier()
            self.row_groups = GroupCache()  # decoded row groups for point lookups
            self.namespace = DEFAULT_NAMESPACE
            self.jobs = JobManager(self.now_us)
            self.session_id = uuid.uuid4().hex[:8]
            self.live = LiveQueries(self.session_id)
            self.users = Users(self.store, self.now_us())
            self.metrics: dict[str, int] = {"statements": 0, "queries": 0, "segments_pruned": 0}
            self.opened_at = time.time()
            self.scheduler = Scheduler(self)
            self._finish_renames()
            if self.catalog.find_namespace(DEFAULT_NAMESPACE) is None:
                txn = self.begin()
                self.catalog.put_namespace(txn, Namespace(DEFAULT_NAMESPACE, self.now_us()))
                txn.commit()
        except BaseException:
            self.store.close()
            raise
        if background_jobs:
            self.scheduler.start()

    def _finish_renames(self) -> None:
        from engine.sql.alter import finish_rename

        for marker, move in list(self.store.scan(keys.RENAME_PREFIX)):
            finish_rename(self, marker, move)

    @classmethod
    def open(
        cls,
        data_dir: str | os.PathLike[str],
        *,
        user: str = "root",
        durability: str = "sync",
        clock_ms: Callable[[], int] | None = None,
        background_jobs: bool = True,
        repair: bool = False,
    ) -> Engine:
        """Open (creating if missing) the data directory ``data_dir``.

        ``clock_ms`` replaces the wall clock (tests drive TTL and flush
        intervals with it); ``background_jobs=False`` leaves flush policies and
        eviction to explicit ``engine.scheduler.tick()`` calls. ``repair=True``
        recovers a damaged or lost hot store (see ``engine.recovery``) and
        leaves what it did in ``engine.recovery``."""
        return cls(
            Path(data_dir).expanduser().resolve(),
            user=user,
            durability=durability,
            clock_ms=clock_ms or wall_clock_ms,
            background_jobs=background_jobs,
            repair=repair,
        )

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"{len(self.catalog.tables())} table(s)"
        return f"<Engine {self.data_dir.name!r} user={self.user!r} {state}>"

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        if self._closed:
            return
        self.scheduler.stop()
        self.jobs.shutdown()  # a running flush finishes first
        self.live.shutdown()
        with self.lock:
            if not self._closed:
                self._closed = True
                self.store.close()

    def insert_arrow(
        self,
        table: str,
        data: Any,
        *,
        user: str | None = None,
        primary_key: str | None = None,
        table_type: str = "SHARED",
    ) -> Result:
        """Bulk-append an Arrow table (or anything with ``__arrow_c_stream__``)
        to ``table`` (``"t"`` or ``"ns.t"``), creating it when missing."""
        import pyarrow as pa

        from engine.sql.bulk import insert_arrow

        self._check_open()
        started = time.perf_counter()
        if not isinstance(data, pa.Table):
            data = pa.table(data)
        who = check_user(user) if user is not None else self.user
        result = insert_arrow(
            self, table, data, user=who, primary_key=primary_key, table_type=table_type
        )
        result.elapsed_ms = (time.perf_counter() - started) * 1000
        return result

    def flush(
        self,
        table: str,
        *,
        wait: bool = True,
        progress: Callable[[int, int], None] | None = None,
    ) -> Result:
        """Flush ``table`` (``"t"`` or ``"ns.t"``); with ``wait`` block until done."""
        from engine.sql.storage_cmds import start_flush

        self._check_open()
        ns, _, name = table.rpartition(".")
        tdef = self.resolve(TableRef(ns or None, name))
        return start_flush(self, tdef, wait=wait, progress=progress)

    # ------------------------------------------------------------ execution
    def execute(
        self,
        sql: str,
        params: Sequence[Any] | Mapping[str, Any] | None = None,
        *,
        user: str | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> Result:
        """Run exactly one statement.

        ``progress(done, total)`` is called as long-running work advances; a
        FLUSH given a progress callback waits for its job."""
        started = time.perf_counter()
        statements = parser.parse(sql)
        if len(statements) != 1:
            if not statements:
                raise MultipleStatementsError("No statement to execute: the SQL is empty")
            raise MultipleStatementsError(
                f"execute() runs one statement, got {len(statements)}; "
                "use execute_script() for a ';'-separated batch"
            )
        self._call.progress = progress
        try:
            return self._run(statements[0], params, user, started)
        finally:
            self._call.progress = None

    def explain(
        self,
        sql: str,
        params: Sequence[Any] | Mapping[str, Any] | None = None,
        *,
        user: str | None = None,
    ) -> Result:
        """``EXPLAIN`` of one query, with the scan and pruning figures."""
        started = time.perf_counter()
        statements = parser.parse(sql)
        if len(statements) != 1 or not isinstance(statements[0], st.Query):
            raise UnsupportedStatementError("explain() takes exactly one query (SELECT ...)")
        stmt = statements[0]
        if not stmt.explain:
            stmt = replace(
                stmt,
                explain=True,
                explain_sql="EXPLAIN " + stmt.explain_sql,
                column=stmt.column - 8,
            )
        return self._run(stmt, params, user, started)

    def call_progress(self) -> Callable[[int, int], None] | None:
        """The progress callback of the ``execute`` running in this thread."""
        return getattr(self._call, "progress", None)

    def execute_script(self, sql: str, *, user: str | None = None) -> list[Result]:
        """Run a ``;``-separated batch in order, stopping at the first error."""
        results = []
        for stmt in parser.parse(sql):
            results.append(self._run(stmt, None, user, time.perf_counter()))
        return results

    def _run(self, stmt: Statement, params: Any, user: str | None, started: float) -> Result:
        self._check_open()
        who = check_user(user) if user is not None else self.user
        bound = parser.bind_params(stmt.params, params)
        result = self.run_statement(stmt, bound, who)
        result.elapsed_ms = (time.perf_counter() - started) * 1000
        result.statement = stmt.sql
        return result

    def run_statement(self, stmt: Statement, bound: dict[str, Any], who: str) -> Result:
        """Authorise and run one parsed statement as ``who`` (tracked as live)."""
        from engine.sql.dispatch import dispatch

        role = self.users.ensure(who, self.now_us()).role
        authorize(self, stmt, role)
        with self.live.track(who, stmt.sql, _kind(stmt), self.now_us()):
            result = dispatch(self, stmt, bound, who)
        self.metrics["statements"] += 1
        if result.is_query:
            self.metrics["queries"] += 1
        for figures in result.stats.values():
            self.metrics["segments_pruned"] += figures.get("segments_pruned", 0)
        return result

    def _check_open(self) -> None:
        if self._closed:
            raise EngineClosedError("The engine is closed; open the data directory again")

    # ------------------------------------------------------------ internals for handlers
    def begin(self) -> Txn:
        return Txn(self.store)

    def now_us(self) -> int:
        return self.clock_ms() * 1000

    def resolve(self, ref: TableRef) -> TableDef:
        return self.catalog.get_table(ref.namespace or self.namespace, ref.name)

    def provider(self, table: TableDef) -> TableProvider:
        prov = self._providers.get(table.table_id)
        if prov is None:
            with self.lock:
                prov = self._providers.get(table.table_id)
                if prov is None:
                    cls = PROVIDERS[table.table_type]
                    cold = ColdTier(
                        table.table_id,
                        self.store,
                        lambda scope, tid=table.table_id: self.scope_dir(tid, scope),
                        self.verifier,
                        self.row_groups,
                    )
                    prov = cls(
                        table.table_id,
                        self.catalog.table_by_id,
                        self.store,
                        self.lock,
                        cold,
                        self.clock_ms,
                    )
                    self._providers[table.table_id] = prov
        return prov

    def forget_provider(self, table_id: int) -> None:
        self._providers.pop(table_id, None)

    def table_dir(self, table: TableDef) -> Path:
        return safe_path(self.data_dir, "storage", table.namespace, table.name)

    def scope_dir(self, table_id: int, scope: str) -> Path:
        """Where a scope's manifest.json and segments live."""
        table = self.catalog.table_by_id(table_id)
        assert table is not None
        if scope:
            return safe_path(
                self.data_dir, "storage", table.namespace, table.name, check_user(scope)
            )
        return self.table_dir(table)


def _kind(stmt: Statement) -> str:
    if isinstance(stmt, st.Query):
        return "query"
    if isinstance(stmt, (st.Insert, st.Update, st.Delete)):
        return "dml"
    return "command"
