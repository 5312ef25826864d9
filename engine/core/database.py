"""``Database``: everything one open data directory holds, shared by the SQL
handlers and the jobs (the façade in ``engine.api`` sits on top).

It owns the hot store, the catalog, the ``_seq`` allocator, the table
providers and their caches, the job manager, the engine lock and the
per-table commit locks (see ``engine.core.commit`` for the rules).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path
from typing import Any

from engine.catalog.catalog import DEFAULT_NAMESPACE, Catalog
from engine.catalog.model import Namespace, TableDef
from engine.catalog.storages import LOCAL, Storages
from engine.core.commit import TableLocks, finish_move, finish_pending_moves, stage_move
from engine.core.readers import Readers
from engine.core.session import Session, current_session
from engine.delta.log import DeltaLog
from engine.delta.publish import recover_delta
from engine.errors import (
    EngineClosedError,
    InvalidOptionError,
    ObjectStorageError,
    TableNotFoundError,
)
from engine.exec.live import LiveQueries
from engine.exec.query import QueryContext
from engine.exec.segment_cache import SegmentCache, budget_from_mb
from engine.jobs.jobs import JobManager
from engine.live.hub import LiveHub
from engine.memtrim import release_freed_memory
from engine.names import check_user, safe_path
from engine.providers.base import TableProvider
from engine.providers.cold_tier import ColdTier, GroupCache
from engine.providers.kinds import PROVIDERS
from engine.recovery import open_hot_store
from engine.seq import SeqAllocator
from engine.sql.statements import TableRef
from engine.storage import format as data_format
from engine.storage import keys
from engine.storage.cold import SegmentVerifier
from engine.storage.fs import ColdPath, ObjectPath
from engine.storage.fs_cache import ObjectCache
from engine.txn import Txn
from engine.users import Users

# Loading at least this many hot rows returns the load's freed memory to the OS.
_TRIM_AFTER_ROWS = 100_000

DURABILITY = {
    "sync": "fsync the write-ahead log on every statement (survives power loss)",
    "async": "let the OS flush the write-ahead log (survives a process crash, not power loss)",
}


class Database:
    """The shared state of one open data directory. Thread-safe."""

    def __init__(
        self,
        data_dir: Path,
        *,
        user: str,
        durability: str,
        clock_ms: Callable[[], int],
        repair: bool = False,
        metadata_cache_mb: int | None = None,
        segment_cache_mb: int | None = None,
    ) -> None:
        if durability not in DURABILITY:
            raise InvalidOptionError(
                f"durability must be one of {sorted(DURABILITY)}, not {durability!r}"
            )
        if metadata_cache_mb is not None and (
            not isinstance(metadata_cache_mb, int)
            or isinstance(metadata_cache_mb, bool)
            or metadata_cache_mb < 0
        ):  # checked here: the query context is made by the first query
            raise InvalidOptionError(
                f"metadata_cache_mb must be a whole number of MB >= 0, not {metadata_cache_mb!r}"
            )
        # decoded segments kept in memory (the warm cache), engine-wide budget
        self.segment_cache = SegmentCache(budget_from_mb(segment_cache_mb))
        self.data_dir = data_dir
        self.user = check_user(user)
        self.durability = durability
        self.clock_ms = clock_ms
        self.lock = threading.RLock()  # the engine lock: hot rows, catalog, manifests
        self.table_locks = TableLocks()  # commit locks, taken before the engine lock
        self.readers = Readers()  # statements running, for files a compaction retires
        self._call = threading.local()  # per-call options (progress callback)
        # A directory in a newer data format is refused before anything is opened.
        format_file = data_format.check_before_open(data_dir, repair=repair)
        data_dir.mkdir(parents=True, exist_ok=True)
        # A missing or damaged hot store is refused (or, with ``repair``, rebuilt
        # from the manifest.json files; what was done is kept in ``recovery``).
        self.store, self.recovery = open_hot_store(
            data_dir, sync=durability == "sync", repair=repair
        )
        self._closed = False
        try:
            # before anything is read: the hot store's own record, and the upgrade
            self.format = data_format.settle(self.store, data_dir, format_file)
            finish_pending_moves(data_dir, self.store)
            self.catalog = Catalog(self.store)
            self.storages = Storages(self.store)  # CREATE STORAGE: buckets for cold tiers
            self.seq = SeqAllocator(self.store, clock_ms)
            self._providers: dict[int, TableProvider] = {}
            self.verifier = SegmentVerifier()
            self.row_groups = GroupCache()  # decoded row groups for point lookups
            # local copies of segments kept in buckets (CREATE STORAGE)
            self.object_cache = ObjectCache(data_dir / "cache" / "objects")
            # the one long-lived DataFusion context, made by the first query
            # (creating it is 6-30 ms of an open that must stay under 100 ms)
            self._queries: QueryContext | None = None
            self._metadata_cache_mb = metadata_cache_mb
            # State of code running outside any session (jobs, open-time recovery).
            self._no_session = Session(self.user)
            self.jobs = JobManager(self.now_us)
            self.session_id = uuid.uuid4().hex[:8]
            self.live = LiveQueries(self.session_id)
            self.subscriptions = LiveHub(self.session_id)  # live queries (SUBSCRIBE)
            self.users = Users(self.store, self.now_us())
            self.metrics: dict[str, int] = {"statements": 0, "queries": 0, "segments_pruned": 0}
            self.opened_at = time.time()
            # Delta logs of scope directories, with their replayed snapshots.
            self.delta_logs: dict[ColdPath, DeltaLog] = {}
            if self.catalog.find_namespace(DEFAULT_NAMESPACE) is None:
                txn = self.begin()
                self.catalog.put_namespace(txn, Namespace(DEFAULT_NAMESPACE, self.now_us()))
                txn.commit()
            # A crash between a manifest publish and its Delta commit: derive it now.
            self.delta_recovery = recover_delta(self)
        except BaseException:
            self.store.close()
            raise

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"{len(self.catalog.tables())} table(s)"
        return f"<Database {str(self.data_dir)!r} {state}>"

    @property
    def closed(self) -> bool:
        return self._closed

    def check_open(self) -> None:
        if self._closed:
            raise EngineClosedError("The engine is closed; open the data directory again")

    def close(self) -> None:
        """Close the store once running jobs and queries have stopped."""
        if self._closed:
            return
        self.jobs.shutdown()  # a running flush finishes first
        self.segment_cache.close()  # decoded segments: free the memory now
        self.live.shutdown()
        self.subscriptions.shutdown()
        with self.lock:
            if not self._closed:
                self._closed = True
                self.store.close()
        self.readers.finish()

    @property
    def queries(self) -> QueryContext:
        """The engine's one long-lived DataFusion context (made on first use)."""
        found = self._queries
        if found is None:
            with self.lock:
                found = self._queries
                if found is None:
                    mb = self._metadata_cache_mb
                    found = QueryContext() if mb is None else QueryContext(metadata_cache_mb=mb)
                    self._queries = found
        return found

    # ------------------------------------------------------------ per-caller state
    @property
    def namespace(self) -> str:
        """The current session's namespace (what unqualified names resolve in)."""
        return (current_session() or self._no_session).namespace

    @namespace.setter
    def namespace(self, value: str) -> None:
        (current_session() or self._no_session).namespace = value

    # ------------------------------------------------------------ per-call options
    def call_progress(self) -> Callable[[int, int], None] | None:
        """The progress callback of the statement running in this thread."""
        return getattr(self._call, "progress", None)

    def set_call_progress(self, progress: Callable[[int, int], None] | None) -> None:
        self._call.progress = progress

    # ------------------------------------------------------------ state
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
                    if self.catalog.table_by_id(table.table_id) is None:
                        raise TableNotFoundError(
                            f"Table '{table.qualified_name}' does not exist (it was dropped)"
                        )
                    cls = PROVIDERS[table.table_type]
                    cold = ColdTier(
                        table.table_id,
                        self.store,
                        lambda scope, tid=table.table_id: self.scope_dir(tid, scope),
                        self.verifier,
                        self.row_groups,
                        objects=self.object_cache,
                        segments=self.segment_cache,
                    )
                    prov = cls(
                        table.table_id,
                        self.catalog.table_by_id,
                        self.store,
                        self.lock,
                        cold,
                        self.clock_ms,
                    )
                    prov.on_commit = self.subscriptions.publish
                    self._providers[table.table_id] = prov
                    if sum(len(p.rows) for p in prov.partitions.values()) >= _TRIM_AFTER_ROWS:
                        release_freed_memory()  # the load's temporaries
        return prov

    def find_provider(self, table_id: int) -> TableProvider | None:
        """The table's provider if a statement or job has made it since the
        open (``None``: its hot rows were never read in this process)."""
        return self._providers.get(table_id)

    def forget_provider(self, table_id: int) -> None:
        self._providers.pop(table_id, None)
        self.row_groups.forget_table(table_id)
        self.segment_cache.forget(table_id)

    def invalidate(self, table_id: int) -> None:
        """Drop every cached decoding of ``table_id``'s segments (after a commit)."""
        prov = self._providers.get(table_id)
        if prov is not None:
            prov.cold.forget_all()
        self.row_groups.forget_table(table_id)

    def table_dir(self, table: TableDef) -> Path:
        return safe_path(self.data_dir, "storage", table.namespace, table.name)

    def object_root(self, table: TableDef) -> ObjectPath | None:
        """The table's directory in a bucket, or ``None`` for a table on local disk."""
        sid = table.options.get("storage_id")
        if not sid or sid == LOCAL:
            return None
        return self.storages.table_root(str(sid), table.namespace, table.name)

    def scope_dir(self, table_id: int, scope: str) -> ColdPath:
        """Where a scope's manifest.json and segments live (local disk, or
        ``<bucket>/<prefix>/<namespace>/<table>/[<user>]`` for a table in a storage)."""
        table = self.catalog.table_by_id(table_id)
        if table is None:
            raise TableNotFoundError(f"Table id {table_id} no longer exists (it was dropped)")
        remote = self.object_root(table)
        if remote is not None:
            return remote / check_user(scope) if scope else remote
        if scope:
            return safe_path(
                self.data_dir, "storage", table.namespace, table.name, check_user(scope)
            )
        return self.table_dir(table)

    # ------------------------------------------------------------ the commit path
    @contextmanager
    def changing(self, *tables: TableDef, engine_lock: bool = True) -> Iterator[list[TableDef]]:
        """Hold the commit locks of ``tables`` and (unless ``engine_lock`` is
        false, for work that must not block writers) the engine lock; yields
        their current definitions (re-read under the locks). A table dropped or
        renamed meanwhile raises ``TableNotFoundError``. Caches of the tables
        are dropped on exit, whatever the outcome."""
        ids = sorted({t.table_id for t in tables})
        with ExitStack() as stack:
            for tid in ids:
                stack.enter_context(self.table_locks.get(tid))
            if engine_lock:
                stack.enter_context(self.lock)
            current = []
            for t in tables:
                now = self.catalog.table_by_id(t.table_id)
                if now is None or (now.namespace, now.name) != (t.namespace, t.name):
                    raise TableNotFoundError(
                        f"Table '{t.qualified_name}' was dropped or renamed meanwhile",
                        namespace=t.namespace,
                        table=t.name,
                    )
                current.append(now)
            try:
                yield current
            finally:
                for tid in ids:
                    self.invalidate(tid)
                for before in current:  # a drop, rename or ALTER ends live queries
                    after = self.catalog.table_by_id(before.table_id)
                    self.subscriptions.table_changed(before.table_id, before, after)

    def stage_storage_move(
        self, txn: Txn, table: TableDef, new_name: str | None
    ) -> Callable[[], None]:
        """Record with ``txn`` that ``table``'s directory moves to ``new_name``
        (``None``: is removed); returns what carries it out after the commit."""
        remote = self.object_root(table)
        if remote is not None:
            if new_name is not None:
                raise InvalidOptionError(
                    f"Cannot rename {table.qualified_name}: its cold tier is in storage "
                    f"'{table.options['storage_id']}' and a bucket has no rename "
                    "(EXPORT it and create a new table instead)"
                )
            return lambda: _remove_objects(remote)
        src = ["storage", table.namespace, table.name]
        dst = None if new_name is None else ["storage", table.namespace, new_name]
        return self._stage(txn, keys.move_key(table.table_id), src, dst)

    def stage_scope_removal(self, txn: Txn, table: TableDef, scope: str) -> Callable[[], None]:
        """Record with ``txn`` that one scope's directory (a user's) is removed."""
        found = self.scope_dir(table.table_id, scope)
        if isinstance(found, ObjectPath):
            return lambda: _remove_objects(found)
        path = found.relative_to(self.data_dir)
        return self._stage(txn, keys.move_key(table.table_id, scope), path.parts, None)

    def _stage(
        self, txn: Txn, marker: bytes, src: Any, dst: list[str] | None
    ) -> Callable[[], None]:
        stage_move(txn, marker, src, dst)

        def finish() -> None:
            raw = self.store.get(marker)
            if raw is not None:
                finish_move(self.data_dir, self.store, marker, raw)

        return finish


def _remove_objects(root: ObjectPath) -> None:
    """After a committed DROP: delete a table's (or a user's) objects. A
    failure leaves them behind, harmlessly: their manifest names another
    table id, so a table created later under the name never adopts them and
    its first flush sweeps the segment files as orphans."""
    with suppress(ObjectStorageError):
        root.remove_tree()
