"""What the Hypothesis state machines that run the engine beside DuckDB share
(``test_state_machine.py``, ``test_hot_over_cold_property.py``): a fresh data
directory with its engine and an in-memory DuckDB per example, the users
that write, and the settings."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Sequence
from typing import Any

import duckdb
from hypothesis import HealthCheck, settings
from hypothesis.stateful import RuleBasedStateMachine

from engine import Engine

USERS = ("root", "bob")


class EngineBesideDuckDB(RuleBasedStateMachine):
    """One example's engine (no background jobs: steps drive flushes) and
    DuckDB connection, and the steps run so far for failure messages."""

    table_type = "USER"
    dir_prefix = "kalam-"

    def __init__(self) -> None:
        super().__init__()
        self.dir = tempfile.mkdtemp(prefix=self.dir_prefix)
        self.eng = self.open_engine()
        self.duck = duckdb.connect()
        self.log: list[str] = []

    def open_engine(self) -> Engine:
        return Engine.open(self.dir, background_jobs=False, durability="async")

    def teardown(self) -> None:
        self.eng.close()
        self.duck.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    @property
    def writers(self) -> tuple[str, ...]:
        # Both users write their own rows of a USER table; a SHARED table is
        # written by root (plain users may not) and read by both.
        return USERS if self.table_type == "USER" else ("root",)


def machine_settings(*, max_examples: int, stateful_step_count: int) -> settings:
    """Deterministic runs (no example database), no deadline: steps flush."""
    return settings(
        max_examples=max_examples,
        stateful_step_count=stateful_step_count,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


Statement = str | tuple[str, Sequence[Any]]


def engine_beside_duckdb(
    path: str,
    statements: list[Statement],
    *,
    layout: str = "hot",
    flush: tuple[str, ...] = (),
    churn: tuple[str, ...] = (),
) -> tuple[Any, duckdb.DuckDBPyConnection]:
    """An engine on ``path`` (no background jobs) and an in-memory DuckDB that
    both ran ``statements`` (``?`` parameters; PRIMARY KEY left out for
    DuckDB). ``layout``: "hot" leaves the rows in the hot tier; "cold"
    flushes the tables in ``flush``; "mixed" flushes them and then runs
    ``churn`` on both, so hot versions lie over cold rows."""
    engine = Engine.open(path, background_jobs=False, durability="async")
    duck = duckdb.connect()
    for item in statements:
        sql, params = (item, None) if isinstance(item, str) else item
        engine.execute(sql, list(params) if params is not None else None)
        duck.execute(sql.replace(" PRIMARY KEY", ""), list(params) if params is not None else None)
    if layout != "hot":
        for name in flush:
            engine.execute(f"FLUSH TABLE {name} WAIT")
    if layout == "mixed":
        for sql in churn:
            engine.execute(sql)
            duck.execute(sql)
    return engine, duck
