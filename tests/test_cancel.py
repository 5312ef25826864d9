"""KILL QUERY and a kernel interrupt stop the query's work, not only its caller.

Before this, a cancelled query returned at once but DataFusion kept both
cores busy until the plan finished (a cross join: minutes), and the next
query crawled. These tests cancel a cross join that would run for many
CPU-seconds and check, by the process's CPU time (not by wall-clock speed,
which this shared machine cannot promise), that the work stops: the query's
worker reports it has finished, at most ``CPU_BUDGET`` CPU-seconds are spent
after the cancel, then the process goes quiet and the next query answers
correctly. Waits are bounded polls paced by ``threading.Event``.
"""

from __future__ import annotations

import _thread
import threading
import time
from collections.abc import Callable
from typing import Any

import pyarrow as pa
import pytest
from datafusion import SessionContext

from engine import Engine
from engine.errors import QueryCancelledError
from engine.exec import live
from engine.exec.live import LiveQuery
from engine.exec.query import nested_loop_join

ROWS = 200_000  # the cross join below is ~4e10 pairs: far longer than any test
# (No integer arithmetic in the filter: each `+` is checked for overflow,
# which makes every pair of the cross join, and so the step a kill waits
# for, about three times longer.)
CROSS = "SELECT count(*) FROM t a CROSS JOIN t b WHERE a.id <> b.id"
CPU_BUDGET = 2.0  # CPU-seconds the plan may still use after the cancel (2 cores)
QUIET = 0.05  # CPU-seconds per 0.5 s window that count as "stopped"
TIMEOUT = 60.0


def wait_until(probe: Callable[[], Any], what: str, timeout: float = TIMEOUT) -> Any:
    pause = threading.Event()
    deadline = time.monotonic() + timeout
    while True:
        found = probe()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        pause.wait(0.02)


def running(engine: Engine, sql: str) -> LiveQuery | None:
    return next((q for q in engine.db.live.snapshot() if q.sql == sql), None)


def busy_for(cpu_seconds: float) -> None:
    """Wait until this process has used ``cpu_seconds`` more CPU (the plan runs)."""
    start = time.process_time()
    wait_until(lambda: time.process_time() - start >= cpu_seconds, "the query to use CPU")


def cpu_until_quiet() -> float:
    """CPU-seconds this process uses until a 0.5 s window uses less than QUIET."""
    pause = threading.Event()
    start = previous = time.process_time()
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        pause.wait(0.5)
        now = time.process_time()
        if now - previous < QUIET:
            return previous - start
        previous = now
    raise AssertionError(f"still busy {TIMEOUT} s after the cancel: the plan kept running")


def start(engine: Engine, sql: str) -> tuple[threading.Thread, dict[str, BaseException]]:
    """Run ``sql`` on its own thread; the dict receives the error it raised."""
    outcome: dict[str, BaseException] = {}

    def run() -> None:
        try:
            engine.execute(sql)
        except BaseException as exc:
            outcome["error"] = exc

    caller = threading.Thread(target=run)
    caller.start()
    return caller, outcome


@pytest.fixture
def big(open_engine: Callable[..., Engine]) -> Engine:
    eng = open_engine(background_jobs=False)
    eng.execute("CREATE TABLE t (id BIGINT PRIMARY KEY)")
    eng.insert_arrow("t", pa.table({"id": pa.array(range(ROWS), type=pa.int64())}))
    return eng


def test_kill_query_stops_a_cross_join_and_the_next_query_is_right(big: Engine) -> None:
    caller, outcome = start(big, CROSS)
    q = wait_until(lambda: running(big, CROSS), "the query in system.live_queries")
    busy_for(0.5)
    big.execute(f"KILL QUERY '{q.query_id}'")
    caller.join(TIMEOUT)
    assert not caller.is_alive()
    assert isinstance(outcome.get("error"), QueryCancelledError)
    assert q.finished.wait(TIMEOUT), "the worker never let go of the cancelled plan"
    spent = cpu_until_quiet()
    assert spent < CPU_BUDGET, f"{spent:.2f} CPU-s spent after KILL QUERY"
    assert big.execute("SELECT count(*) FROM t").scalar() == ROWS
    assert big.execute("SELECT max(id) FROM t WHERE id < 10").scalar() == 9


def test_an_interrupt_of_the_waiting_thread_stops_the_work(big: Engine) -> None:
    def interrupt_when_running() -> None:
        wait_until(lambda: running(big, CROSS), "the query to start")
        busy_for(0.5)
        _thread.interrupt_main()  # what a kernel interrupt delivers

    threading.Thread(target=interrupt_when_running, daemon=True).start()
    with pytest.raises(QueryCancelledError, match="interrupted"):
        big.execute(CROSS)
    spent = cpu_until_quiet()
    assert spent < CPU_BUDGET, f"{spent:.2f} CPU-s spent after the interrupt"
    assert big.execute("SELECT count(*) FROM t WHERE id % 2 = 0").scalar() == ROWS // 2


def test_cancelled_queries_leave_the_worker_pool_reusable(big: Engine) -> None:
    before = {t for t in threading.enumerate() if t.name == "kalam-query"}
    for _ in range(3):
        caller, outcome = start(big, CROSS)
        q = wait_until(lambda: running(big, CROSS), "the query to start")
        big.execute(f"KILL QUERY '{q.query_id}'")
        caller.join(TIMEOUT)
        assert isinstance(outcome.get("error"), QueryCancelledError)
        assert q.finished.wait(TIMEOUT)
    # Each cancelled plan let go of its worker, so no new worker piled up.
    workers = {t for t in threading.enumerate() if t.name == "kalam-query"}
    assert len(workers - before) <= 1
    assert big.execute("SELECT sum(id) FROM t WHERE id < 4").scalar() == 6


def test_a_query_killed_before_its_plan_starts_never_runs() -> None:
    q = LiveQuery("q-test", "s", "root", CROSS, "query", 0)
    q.cancel()
    box: dict[str, Any] = {}
    done = threading.Event()
    ctx = SessionContext()
    ctx.register_record_batches("t", [pa.table({"id": list(range(ROWS))}).to_batches()])
    started = time.process_time()
    live._drain(ctx.sql(CROSS), q, box, done)
    assert time.process_time() - started < CPU_BUDGET
    assert done.is_set() and q.finished.is_set()
    assert isinstance(box["error"], QueryCancelledError)


@pytest.mark.parametrize(
    ("sql", "nested"),
    [
        ("SELECT count(*) FROM t a CROSS JOIN t b", True),
        ("SELECT count(*) FROM t a JOIN t b ON a.id < b.id", True),
        ("SELECT count(*) FROM t a, t b WHERE a.id + b.id > 3", True),
        ("SELECT count(*) FROM t a JOIN t b ON a.id = b.id", False),
        ("SELECT count(*) FROM t WHERE id IN (SELECT id FROM t)", False),
        ("SELECT count(*) FROM t", False),
    ],
)
def test_nested_loop_joins_are_recognised_in_the_plan(sql: str, nested: bool) -> None:
    ctx = SessionContext()
    ctx.register_record_batches("t", [pa.table({"id": [1, 2]}).to_batches()])
    assert nested_loop_join(ctx.sql(sql).optimized_logical_plan()) is nested
