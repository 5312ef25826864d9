"""The ``Engine`` façade: open a data directory, execute statements.

One ``Engine`` per data directory. Its state (store, catalog, providers,
locks, caches) lives in ``engine.core.Database``, which the SQL handlers and
jobs receive; this module only parses, binds and hands statements over, and
starts the background scheduler.
"""

from __future__ import annotations

import atexit
import functools
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar, overload
from weakref import WeakSet

from engine.catalog.catalog import Catalog
from engine.core import DURABILITY, Database
from engine.core.session import Session, using
from engine.errors import (
    DataDirInUseError,
    InternalError,
    KalamError,
    MultipleStatementsError,
    UnsupportedStatementError,
)
from engine.jobs.jobs import JobManager
from engine.jobs.scheduler import Scheduler
from engine.live import Change, Subscription
from engine.names import check_user
from engine.owner import remove_owner, write_owner
from engine.result import Result
from engine.security import authorize
from engine.seq import wall_clock_ms
from engine.sql import parser
from engine.sql import statements as st
from engine.sql.dispatch import run_statement
from engine.sql.statements import Statement, TableRef
from engine.storage.hot import HotStore
from engine.users import Users

if TYPE_CHECKING:
    from engine.remote import RemoteEngine

__all__ = ["DURABILITY", "Change", "Connection", "Engine", "Subscription"]

_T = TypeVar("_T")


def _only_kalam_errors(fn: Callable[..., _T]) -> Callable[..., _T]:
    """Every exception leaving a public entry point is a ``KalamError``: one
    that is not is an engine bug, reported as ``InternalError`` with the
    original attached (``KeyboardInterrupt`` and friends pass through)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> _T:
        try:
            return fn(*args, **kwargs)
        except KalamError:
            raise
        except Exception as exc:
            raise InternalError(
                f"Internal error ({type(exc).__name__}: {exc}); this is a bug in the engine, "
                "not in your statement",
                original_type=type(exc).__name__,
            ) from exc

    return wrapper


# Engines still open when the interpreter exits are closed first: closing
# stops their background threads before finalisation, when a native thread
# (RocksDB's, DataFusion's runtime) calling back into Python aborts the
# process (seen: "PyGILState_Release ... must be current", exit status 134).
_OPEN: WeakSet[Engine] = WeakSet()


@atexit.register
def _close_open_engines() -> None:
    for eng in list(_OPEN):
        try:
            eng.close()
        except Exception:  # noqa: BLE001 - exiting anyway; closing is best effort
            continue


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
        metadata_cache_mb: int | None = None,
        segment_cache_mb: int | None = None,
    ) -> None:
        self.db = Database(
            data_dir,
            user=user,
            durability=durability,
            clock_ms=clock_ms,
            repair=repair,
            metadata_cache_mb=metadata_cache_mb,
            segment_cache_mb=segment_cache_mb,
        )
        self.scheduler = Scheduler(self.db)
        _OPEN.add(self)
        # Sessions of plain execute(..., user=...) calls, one per user: a USE by
        # one user never changes what another's unqualified names mean.
        self._sessions: dict[str, Session] = {}
        self._sessions_lock = threading.Lock()
        # Who holds the directory, for the "in use" message another process shows.
        write_owner(data_dir)
        if background_jobs:
            self.scheduler.start()

    @overload
    @classmethod
    def open(
        cls,
        data_dir: str | os.PathLike[str],
        *,
        user: str = ...,
        durability: str = ...,
        clock_ms: Callable[[], int] | None = ...,
        background_jobs: bool = ...,
        repair: bool = ...,
        embedded: Literal[True],
        metadata_cache_mb: int | None = ...,
        segment_cache_mb: int | None = ...,
    ) -> Engine: ...

    @overload
    @classmethod
    def open(
        cls,
        data_dir: str | os.PathLike[str],
        *,
        user: str = ...,
        durability: str = ...,
        clock_ms: Callable[[], int] | None = ...,
        background_jobs: bool = ...,
        repair: bool = ...,
        embedded: bool = ...,
        metadata_cache_mb: int | None = ...,
        segment_cache_mb: int | None = ...,
    ) -> Engine | RemoteEngine: ...

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
        embedded: bool = False,
        metadata_cache_mb: int | None = None,
        segment_cache_mb: int | None = None,
    ) -> Engine | RemoteEngine:
        """Open (creating if missing) the data directory ``data_dir``.

        When ``<data_dir>/server.json`` names a live Kalam server (``kalam
        serve``), the directory is shared through it: the answer is a
        ``RemoteEngine`` client with the same surface. ``embedded=True`` (and
        any option that only means something in this process: ``clock_ms``,
        ``background_jobs=False``, ``repair``) always opens the directory in
        this process, which fails with ``DataDirInUseError`` while another
        process holds it.

        ``clock_ms`` replaces the wall clock (tests drive TTL and flush
        intervals with it); ``background_jobs=False`` leaves flush policies and
        eviction to explicit ``engine.scheduler.tick()`` calls. ``repair=True``
        recovers a damaged or lost hot store (see ``engine.recovery``) and
        leaves what it did in ``engine.recovery``. ``metadata_cache_mb`` sizes
        the Parquet metadata cache queries share (default 64).
        ``segment_cache_mb`` is the memory budget of the warm cache of decoded
        segments (default: a quarter of the machine's RAM; 0 turns it off)."""
        path = Path(data_dir).expanduser().resolve()
        shared = not (embedded or repair or clock_ms is not None or not background_jobs)
        if shared:
            # engine.remote (httpx and the wire code) only when a server owns
            # the directory: importing it is 100+ ms of an open.
            from engine.discovery import find_server, wait_for_server

            server = find_server(path)
            if server is not None:
                from engine.remote import RemoteEngine

                return RemoteEngine(server, user=user)
        try:
            return cls(
                path,
                user=user,
                durability=durability,
                clock_ms=clock_ms or wall_clock_ms,
                background_jobs=background_jobs,
                repair=repair,
                metadata_cache_mb=metadata_cache_mb,
                segment_cache_mb=segment_cache_mb,
            )
        except DataDirInUseError as err:
            # A server that holds the lock but has not published server.json yet
            # (it is starting): connect once it answers.
            server = wait_for_server(path, err) if shared else None
            if server is None:
                raise
            from engine.remote import RemoteEngine

            return RemoteEngine(server, user=user)

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"{len(self.catalog.tables())} table(s)"
        return f"<Engine {self.data_dir.name!r} user={self.user!r} {state}>"

    # Read-only views of the database state, for shells and tests.
    @property
    def data_dir(self) -> Path:
        return self.db.data_dir

    @property
    def user(self) -> str:
        return self.db.user

    @property
    def durability(self) -> str:
        return self.db.durability

    @property
    def namespace(self) -> str:
        """The default user's current namespace."""
        return self._session(None).namespace

    def namespace_of(self, user: str | None = None) -> str:
        """The current namespace (``USE``) of ``user``'s ``execute`` session."""
        return self._session(user).namespace

    def running(self, user: str | None = None) -> list[dict[str, Any]]:
        """The statements running now (of ``user`` if given): id, user, sql, kind,
        elapsed milliseconds and result rows collected so far; for progress displays."""
        return [
            {
                "query_id": q.query_id,
                "user": q.user,
                "sql": q.sql,
                "kind": q.kind,
                "duration_ms": q.duration_ms,
                "rows": q.rows,
            }
            for q in self.db.live.snapshot()
            if user is None or q.user == user
        ]

    def connect(self, *, user: str | None = None) -> Connection:
        """A connection with a session of its own (its own ``USE``), as ``user``."""
        self.db.check_open()
        who = check_user(user) if user is not None else self.db.user
        return Connection(self, Session(who))

    def _session(self, user: str | None) -> Session:
        who = check_user(user) if user is not None else self.db.user
        with self._sessions_lock:
            found = self._sessions.get(who)
            if found is None:
                found = self._sessions[who] = Session(who)
            return found

    @property
    def catalog(self) -> Catalog:
        return self.db.catalog

    @property
    def store(self) -> HotStore:
        return self.db.store

    @property
    def jobs(self) -> JobManager:
        return self.db.jobs

    @property
    def users(self) -> Users:
        return self.db.users

    @property
    def recovery(self) -> Any:
        """What ``open(..., repair=True)`` did to the hot store (``None`` otherwise)."""
        return self.db.recovery

    @property
    def session_id(self) -> str:
        return self.db.session_id

    @property
    def closed(self) -> bool:
        return self.db.closed

    def close(self) -> None:
        if self.db.closed:
            return
        self.scheduler.stop()
        self.db.close()
        remove_owner(self.data_dir)

    @_only_kalam_errors
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

        self.db.check_open()
        started = time.perf_counter()
        if not isinstance(data, pa.Table):
            data = pa.table(data)
        session = self._session(user)
        with using(session):
            result = insert_arrow(
                self.db,
                table,
                data,
                user=session.user,
                primary_key=primary_key,
                table_type=table_type,
            )
        result.elapsed_ms = (time.perf_counter() - started) * 1000
        return result

    @_only_kalam_errors
    def flush(
        self,
        table: str,
        *,
        wait: bool = True,
        progress: Callable[[int, int], None] | None = None,
        user: str | None = None,
    ) -> Result:
        """Flush ``table`` (``"t"`` or ``"ns.t"``); with ``wait`` block until done.
        Needs the rights ``FLUSH TABLE`` needs (role ``service`` or higher)."""
        from engine.sql.storage_cmds import start_flush

        self.db.check_open()
        ns, _, name = table.rpartition(".")
        ref = TableRef(ns or None, name)
        session = self._session(user)
        with using(session):
            role = self.db.users.ensure(session.user, self.db.now_us()).role
            authorize(self.db, st.FlushTable(f"FLUSH TABLE {table}", table=ref, wait=wait), role)
            tdef = self.db.resolve(ref)
            return start_flush(self.db, tdef, wait=wait, progress=progress)

    # ------------------------------------------------------------ execution
    @_only_kalam_errors
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
        stmt = self._one_statement(sql)
        self.db.set_call_progress(progress)
        try:
            return self._run(stmt, params, user, started)
        finally:
            self.db.set_call_progress(None)

    @_only_kalam_errors
    def subscribe(
        self, sql: str, *, user: str | None = None, max_pending: int | None = None
    ) -> Subscription:
        """Start a live query: ``SUBSCRIBE TO SELECT ... FROM ns.t [WHERE ...]``
        or the bare SELECT. Returns the ``Subscription`` (its ``initial`` rows,
        then ``get()`` changes in commit order); close it when done. A
        subscriber that leaves more than ``max_pending`` changes unread
        (default 10 000) is closed with an error."""
        return self._subscribe(sql, None, user, max_pending)

    def _subscribe(
        self, sql: str, session: Session | None, user: str | None, max_pending: int | None
    ) -> Subscription:
        stmt = self._one_statement(sql)
        if not isinstance(stmt, st.Subscribe):
            stmt = parser.subscription_of(stmt)
        result = self._run(stmt, None, user, time.perf_counter(), session)
        sub: Subscription = result.subscription
        if max_pending is not None:
            sub.max_pending = max(int(max_pending), 1)
        return sub

    @staticmethod
    def _one_statement(sql: str) -> Statement:
        statements = parser.parse(sql)
        if len(statements) != 1:
            if not statements:
                raise MultipleStatementsError("No statement to execute: the SQL is empty")
            raise MultipleStatementsError(
                f"execute() runs one statement, got {len(statements)}; "
                "use execute_script() for a ';'-separated batch"
            )
        return statements[0]

    @_only_kalam_errors
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

    @_only_kalam_errors
    def execute_script(self, sql: str, *, user: str | None = None) -> list[Result]:
        """Run a ``;``-separated batch in order, stopping at the first error."""
        results = []
        for stmt in parser.parse(sql):
            results.append(self._run(stmt, None, user, time.perf_counter()))
        return results

    def _run(
        self,
        stmt: Statement,
        params: Any,
        user: str | None,
        started: float,
        session: Session | None = None,
    ) -> Result:
        self.db.check_open()
        session = session or self._session(user)
        # An INSERT checks its values against their columns (naming them).
        bound = parser.bind_params(
            stmt.params, params, check_ranges=not isinstance(stmt, st.Insert)
        )
        with using(session):
            result = run_statement(self.db, stmt, bound, session.user)
        result.elapsed_ms = (time.perf_counter() - started) * 1000
        result.statement = stmt.sql
        return result


class Connection:
    """A session on an open ``Engine``: its own current namespace (``USE``),
    one user. Cheap; create one per caller that needs its own state."""

    def __init__(self, engine: Engine, session: Session) -> None:
        self._engine = engine
        self.session = session

    def __repr__(self) -> str:
        return f"<Connection user={self.user!r} namespace={self.namespace!r}>"

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    @property
    def user(self) -> str:
        return self.session.user

    @property
    def namespace(self) -> str:
        return self.session.namespace

    @_only_kalam_errors
    def execute(self, sql: str, params: Sequence[Any] | Mapping[str, Any] | None = None) -> Result:
        """Run exactly one statement in this connection's session."""
        stmt = self._engine._one_statement(sql)
        return self._engine._run(stmt, params, None, time.perf_counter(), self.session)

    @_only_kalam_errors
    def subscribe(self, sql: str, *, max_pending: int | None = None) -> Subscription:
        """A live query in this connection's session (see ``Engine.subscribe``)."""
        return self._engine._subscribe(sql, self.session, None, max_pending)

    @_only_kalam_errors
    def execute_script(self, sql: str) -> list[Result]:
        return [
            self._engine._run(stmt, None, None, time.perf_counter(), self.session)
            for stmt in parser.parse(sql)
        ]
