"""Shared fixtures for the engine specification tests.

- ``data_dir``: a fresh, not yet existing data directory under ``tmp_path``.
- ``clock``: a fake millisecond clock the engine reads (``clock.advance(seconds)``);
  tests that need time to pass move it instead of sleeping.
- ``engine``: an open ``Engine`` on ``data_dir`` driven by ``clock``, closed at teardown.
- ``open_engine`` / ``reopen``: open more engines on the same directory; all are closed
  at teardown.
- ``snapshot`` / ``expect_error``: the "a failing statement changes nothing" check.
- ``table_type``: parametrises a test over USER, SHARED and STREAM tables;
  ``create_table`` writes the matching CREATE statement.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from engine import Engine, KalamError

TABLE_TYPES = ("USER", "SHARED", "STREAM")
# 2025-06-15T12:00:00Z: a fixed "now" so defaults and TTLs are reproducible.
START_MS = 1_749_988_800_000
STREAM_TTL_SECONDS = 3600


class FakeClock:
    """A settable millisecond clock, callable like ``time.time() * 1000``."""

    def __init__(self, ms: int = START_MS) -> None:
        self.start = ms
        self.ms = ms

    def __call__(self) -> int:
        return self.ms

    def advance(self, seconds: float) -> None:
        self.ms += round(seconds * 1000)

    def __repr__(self) -> str:
        return f"<FakeClock {self.ms}>"


class Engines:
    """Opens engines on one data directory and closes every one at teardown."""

    def __init__(self, data_dir: Path, clock: FakeClock) -> None:
        self.data_dir = data_dir
        self.clock = clock
        self.opened: list[Engine] = []

    def open(self, **kwargs: Any) -> Engine:
        kwargs.setdefault("clock_ms", self.clock)
        eng = Engine.open(self.data_dir, **kwargs)
        self.opened.append(eng)
        return eng

    def reopen(self, eng: Engine, **kwargs: Any) -> Engine:
        eng.close()
        return self.open(**kwargs)

    def close_all(self) -> None:
        for eng in reversed(self.opened):
            eng.close()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def engines(data_dir: Path, clock: FakeClock) -> Iterator[Engines]:
    pool = Engines(data_dir, clock)
    yield pool
    pool.close_all()


@pytest.fixture
def engine(engines: Engines) -> Engine:
    return engines.open()


@pytest.fixture
def open_engine(engines: Engines) -> Callable[..., Engine]:
    """``open_engine(**kwargs)``: another engine on ``data_dir`` (fake clock by default)."""
    return engines.open


@pytest.fixture
def reopen(engines: Engines) -> Callable[..., Engine]:
    """``reopen(engine, **kwargs)``: close ``engine`` and open the data dir again."""
    return engines.reopen


@pytest.fixture(params=TABLE_TYPES)
def table_type(request: pytest.FixtureRequest) -> str:
    return request.param


def create_table_sql(table_type: str, name: str, columns: str) -> str:
    """``CREATE <type> TABLE name (columns)``, with the TTL a STREAM table needs."""
    with_ = f" WITH (TTL_SECONDS = {STREAM_TTL_SECONDS})" if table_type == "STREAM" else ""
    return f"CREATE {table_type} TABLE {name} ({columns}){with_}"


@pytest.fixture
def create_sql() -> Callable[[str, str, str], str]:
    """``create_sql(table_type, name, columns)`` -> the CREATE TABLE statement."""
    return create_table_sql


@pytest.fixture
def create_table() -> Callable[[Engine, str, str, str], None]:
    """``create_table(engine, table_type, name, columns)`` runs ``create_sql``'s statement."""

    def make(eng: Engine, table_type: str, name: str, columns: str) -> None:
        eng.execute(create_table_sql(table_type, name, columns))

    return make


def take_snapshot(eng: Engine, users: Sequence[str] = ("root",)) -> dict[str, Any]:
    """Everything a statement could change: namespaces, tables, their columns and,
    for each user, every visible row with its ``_seq``."""
    state: dict[str, Any] = {
        "namespaces": eng.execute("SHOW NAMESPACES").rows(),
        "tables": eng.execute("SHOW TABLES").rows(),
    }
    for ns, name, _type in state["tables"]:
        state[f"describe {ns}.{name}"] = eng.execute(f"DESCRIBE {ns}.{name}").rows()
        for user in users:
            # Two plain queries rather than ``*, _seq`` so the check leans on as
            # little of the engine as possible.
            rows = eng.execute(f"SELECT * FROM {ns}.{name}", user=user).rows()
            seqs = eng.execute(f"SELECT _seq FROM {ns}.{name}", user=user).rows()
            state[f"rows {ns}.{name} as {user}"] = sorted(rows, key=repr)
            state[f"seqs {ns}.{name} as {user}"] = sorted(s for (s,) in seqs)
    return state


@pytest.fixture
def snapshot() -> Callable[..., dict[str, Any]]:
    """``snapshot(engine, users=("root",))`` -> comparable state of the data dir."""
    return take_snapshot


@pytest.fixture
def expect_error() -> Callable[..., KalamError]:
    """``expect_error(engine, sql, ErrorClass, "CODE", *phrases, params=, user=, users=)``.

    Runs ``sql``, asserts it raises ``ErrorClass`` with ``code`` and a message
    containing every phrase, and that the catalog and every table's rows (as seen
    by ``users``) are identical before and after. Returns the error."""

    def check(
        eng: Engine,
        sql: str,
        error: type[KalamError],
        code: str,
        *phrases: str,
        params: Any = None,
        user: str | None = None,
        users: Sequence[str] = ("root",),
    ) -> KalamError:
        before = take_snapshot(eng, users)
        with pytest.raises(error) as info:
            eng.execute(sql, params, user=user)
        exc = info.value
        assert exc.code == code, exc
        for phrase in phrases:
            assert phrase in exc.message, (phrase, exc.message)
        assert take_snapshot(eng, users) == before, f"{sql!r} failed but changed state"
        return exc

    return check
