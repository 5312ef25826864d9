"""Shared fixtures and a row model for the UPDATE/DELETE, ALTER TABLE and
durability tests (imported by those modules; ``conftest.py`` is not touched).

- ``Db``: one engine on a fresh data dir (fake clock, no background jobs, so a
  flush happens only when a test asks), a table ``t`` and a Python model of the
  rows every scope should hold. ``verify()`` compares the engine with the model,
  then flushes and restarts and compares again.
- ``seed(db, placement)``: lays the seeded rows out between the hot store and
  segments: ``hot``, ``cold``, ``both``, ``updated_after_flush``,
  ``deleted_after_flush``.
- ``db``: a seeded ``Db`` parametrised over table type x placement (STREAM
  tables are never flushed, so only ``hot`` applies to them).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import pytest
from conftest import Engines, create_table_sql

from engine import Engine, Result

USERS = ("root", "bob")
PLACEMENTS = ("hot", "cold", "both", "updated_after_flush", "deleted_after_flush")
TYPE_PLACEMENTS = [(t, p) for t in ("USER", "SHARED") for p in PLACEMENTS] + [("STREAM", "hot")]
COLUMNS = "id INT PRIMARY KEY, v INT, s TEXT NOT NULL"
SEED_IDS = range(1, 11)


class Row(NamedTuple):
    id: int
    v: int | None
    s: str


def seed_row(scope: str, i: int) -> Row:
    """Seeded values differ per scope, so a leak between users shows."""
    if scope == "bob":
        return Row(i, -i, f"b{i}")
    return Row(i, i * 10, f"r{i}")


@dataclass
class Db:
    """An engine, its table ``t`` and the rows each scope should hold."""

    engines: Engines
    table_type: str
    eng: Engine = field(init=False)
    model: dict[str, dict[int, Row]] = field(init=False)
    # ids deleted since the scope's last flush: ``WHERE _deleted = true`` shows them.
    tombstones: dict[str, set[int]] = field(init=False)

    def __post_init__(self) -> None:
        self.eng = self.engines.open(background_jobs=False)
        self.model = {s: {} for s in self.scopes}
        self.tombstones = {s: set() for s in self.scopes}

    # ---- scopes
    @property
    def scopes(self) -> tuple[str, ...]:
        return USERS if self.table_type == "USER" else ("",)

    def scope(self, user: str) -> str:
        return user if self.table_type == "USER" else ""

    @property
    def flushable(self) -> bool:
        return self.table_type != "STREAM"

    # ---- engine
    def execute(self, sql: str, params: Any = None, *, user: str = "root") -> Result:
        return self.eng.execute(sql, params, user=user)

    def create(self, columns: str = COLUMNS, name: str = "t") -> None:
        self.eng.execute(create_table_sql(self.table_type, name, columns))

    def flush(self, table: str = "t") -> None:
        self.eng.flush(table)
        if table == "t":
            for s in self.scopes:
                self.tombstones[s].clear()

    def restart(self) -> Engine:
        self.eng = self.engines.reopen(self.eng, background_jobs=False)
        return self.eng

    def rows(
        self, user: str = "root", sql: str = "SELECT id, v, s FROM t"
    ) -> list[tuple[Any, ...]]:
        return sorted(self.execute(sql, user=user).rows(), key=repr)

    # ---- model
    def insert(self, rows: Iterable[tuple[Any, ...]], *, user: str = "root") -> None:
        rows = [Row(*r) for r in rows]
        values = ", ".join("(?, ?, ?)" for _ in rows)
        flat = [x for r in rows for x in r]
        assert self.execute(f"INSERT INTO t VALUES {values}", flat, user=user).rows_affected == len(
            rows
        )
        scope = self.scope(user)
        for r in rows:
            self.model[scope][r.id] = r
            self.tombstones[scope].discard(r.id)

    def expect_update(
        self, where: Callable[[Row], bool], *, user: str = "root", **setters: Callable[[Row], Any]
    ) -> int:
        """Apply an UPDATE to the model; returns how many rows it matches
        (what an UPDATE counts, whether or not their values change)."""
        scope = self.model[self.scope(user)]
        matched = 0
        for pk, row in list(scope.items()):
            if where(row):
                scope[pk] = row._replace(**{c: f(row) for c, f in setters.items()})
                matched += 1
        return matched

    def expect_delete(self, where: Callable[[Row], bool], *, user: str = "root") -> int:
        scope = self.scope(user)
        gone = [pk for pk, row in self.model[scope].items() if where(row)]
        for pk in gone:
            del self.model[scope][pk]
            self.tombstones[scope].add(pk)
        return len(gone)

    def expected(self, user: str = "root") -> list[tuple[Any, ...]]:
        return sorted((tuple(r) for r in self.model[self.scope(user)].values()), key=repr)

    # ---- checks
    def check(self, when: str = "") -> None:
        for user in USERS:
            actual = self.rows(user)
            assert actual == self.expected(user), _diff(
                f"rows of {user} {when}", actual, self.expected(user)
            )

    def check_tombstones(self, when: str = "") -> None:
        for user in USERS:
            ids = sorted(
                i
                for (i,) in self.execute("SELECT id FROM t WHERE _deleted = true", user=user).rows()
            )
            assert ids == sorted(self.tombstones[self.scope(user)]), f"tombstones of {user} {when}"

    def verify(self) -> None:
        """The model holds now, after a flush, after a restart and after another flush."""
        self.check("right after the statement")
        if self.flushable:
            self.flush()
            self.check("after a flush")
        self.restart()
        self.check("after a restart")
        if self.flushable:
            self.flush()
            self.restart()
            self.check("after a second flush and restart")


def _diff(what: str, actual: list[Any], expected: list[Any]) -> str:
    extra = [r for r in actual if r not in expected]
    missing = [r for r in expected if r not in actual]
    return f"{what}: unexpected {extra}, missing {missing}"


def seed(db: Db, placement: str) -> None:
    """Create ``t`` and write ids 1..10 for every user in ``placement``'s layout."""
    db.create()
    for user in USERS if db.table_type == "USER" else ("root",):
        scope = db.scope(user)
        rows = [seed_row(scope, i) for i in SEED_IDS]
        if placement == "both":
            db.insert(rows[:5], user=user)
        elif placement == "deleted_after_flush":
            db.insert([*rows, seed_row(scope, 11), seed_row(scope, 12)], user=user)
        else:
            db.insert(rows, user=user)
    if placement == "hot":
        return
    db.flush()
    for user in USERS if db.table_type == "USER" else ("root",):
        scope = db.scope(user)
        if placement == "both":
            db.insert([seed_row(scope, i) for i in SEED_IDS[5:]], user=user)
        elif placement == "updated_after_flush":
            db.execute("UPDATE t SET s = s || '*' WHERE id % 2 = 0", user=user)
            db.expect_update(lambda r: r.id % 2 == 0, user=user, s=lambda r: r.s + "*")
        elif placement == "deleted_after_flush":
            db.execute("DELETE FROM t WHERE id > 10", user=user)
            db.expect_delete(lambda r: r.id > 10, user=user)
    db.check("after seeding")


@pytest.fixture(params=TYPE_PLACEMENTS, ids=[f"{t}-{p}" for t, p in TYPE_PLACEMENTS])
def db(request: pytest.FixtureRequest, engines: Engines) -> Db:
    """A seeded ``Db`` for every table type x placement."""
    table_type, placement = request.param
    out = Db(engines, table_type)
    seed(out, placement)
    return out


@pytest.fixture(params=["USER", "SHARED"])
def fresh(request: pytest.FixtureRequest, engines: Engines) -> Db:
    """An unseeded ``Db`` (no table yet) for a USER or a SHARED table."""
    return Db(engines, request.param)
