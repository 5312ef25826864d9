"""An UPDATE reports the rows its WHERE matched, as PostgreSQL, DuckDB and
SQLite do, whether or not a value changed; RETURNING returns one row per
matched row. Rows the SET leaves as they were are still not written: they
keep their ``_seq`` (no new version, no change event, no hot-tier growth).

Each statement runs on the engine (rows hot, cold and mixed; a SHARED table
and a USER table whose other user holds the same keys) beside DuckDB and
SQLite over the same rows: the counts and the tables must agree.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Any

import duckdb
import pytest
from test_magic_support import cell, ip  # noqa: F401

import kalam
from engine import Engine

ROWS = [
    (1, 1, "a"),
    (2, 4, "b"),
    (3, None, "a"),
    (4, 5, None),
    (5, 4, "c"),
    (6, None, None),
    (7, 9, "a"),
    (8, 5, "d"),
]
ME, OTHER = "alice", "bob"  # the writer and the other user of the USER table
CREATE = "CREATE {kind} TABLE t (id BIGINT PRIMARY KEY, x INT, s TEXT)"
VALUES = ", ".join(
    "(" + ", ".join("NULL" if v is None else repr(v) for v in row) + ")" for row in ROWS
)
# Changes every even row: the mixed layout's hot versions over cold ones.
MIX = "UPDATE t SET s = coalesce(s, '') || 'h' WHERE id % 2 = 0"


class Trio:
    """One table on the engine, DuckDB and SQLite, holding the same rows."""

    def __init__(self, engine: Engine, layout: str, user: str) -> None:
        self.engine = engine
        self.user = user
        self.duck = duckdb.connect()
        self.lite = sqlite3.connect(":memory:")
        self.duck.execute("CREATE TABLE t (id BIGINT PRIMARY KEY, x INT, s TEXT)")
        self.lite.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, x INT, s TEXT)")
        self.both_others(f"INSERT INTO t VALUES {VALUES}")
        self.mine(f"INSERT INTO t VALUES {VALUES}")
        if layout != "hot":
            engine.execute("FLUSH TABLE t WAIT")
        if layout == "mixed":
            self.mine(MIX)
            self.both_others(MIX)
            engine.execute("FLUSH TABLE t WAIT")
            self.mine("UPDATE t SET s = s || 'm' WHERE id IN (3, 4)")
            self.both_others("UPDATE t SET s = s || 'm' WHERE id IN (3, 4)")

    def mine(self, sql: str) -> Any:
        return self.engine.execute(sql, user=self.user)

    def both_others(self, sql: str) -> tuple[Any, Any]:
        duck = self.duck.execute(sql).fetchall()
        cur = self.lite.execute(sql)
        lite = cur.fetchall()
        self.lite.commit()
        return duck, (lite if lite else cur.rowcount)

    def state(self) -> dict[int, tuple[Any, ...]]:
        rows = self.mine("SELECT id, x, s, _seq FROM t").rows()
        return {r[0]: r for r in rows}

    def others_state(self) -> list[tuple[Any, ...]]:
        duck = sorted(self.duck.execute("SELECT id, x, s FROM t").fetchall())
        lite = sorted(self.lite.execute("SELECT id, x, s FROM t").fetchall())
        assert duck == lite
        return duck


@pytest.fixture(params=["hot", "cold", "mixed"])
def layout(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(params=["SHARED", "USER"])
def trio(request: pytest.FixtureRequest, engine: Engine, layout: str) -> Iterator[Trio]:
    engine.execute(CREATE.format(kind=request.param))
    if request.param == "USER":
        # Another user's rows with the same keys: never matched, never counted.
        engine.execute(f"INSERT INTO t VALUES {VALUES}", user=OTHER)
    trio = Trio(engine, layout, ME if request.param == "USER" else "root")
    yield trio
    trio.duck.close()
    trio.lite.close()


def other_user_rows(trio: Trio) -> list[tuple[Any, ...]]:
    """The other user's rows of the USER table (none for the SHARED one)."""
    if trio.user != ME:
        return []
    return sorted(trio.engine.execute("SELECT id, x, s, _seq FROM t", user=OTHER).rows())


STATEMENTS = [
    # by primary key, a literal: no value changes
    ("UPDATE t SET x = 1 WHERE id = 1", 1),
    # by primary key, the column itself
    ("UPDATE t SET x = x WHERE id = 2", 1),
    # by primary key, an expression that changes the value
    ("UPDATE t SET x = x + 1 WHERE id = 2", 1),
    # by primary key, NULL to NULL
    ("UPDATE t SET x = NULL WHERE id = 3", 1),
    # by primary key, a row that does not exist
    ("UPDATE t SET x = 7 WHERE id = 99", 0),
    # set-based: only the rows holding 4 change, those holding 5 match too
    ("UPDATE t SET x = 5 WHERE x IN (4, 5)", 4),
    # set-based: nothing changes, every row matched
    ("UPDATE t SET x = x, s = s", 8),
    # set-based NULL to NULL
    ("UPDATE t SET x = NULL WHERE x IS NULL", 2),
    # one column changes for some rows, the other for none
    ("UPDATE t SET s = 'a', x = x WHERE id <= 4", 4),
    # set-based, no row matches
    ("UPDATE t SET x = 0 WHERE x > 100", 0),
]


@pytest.mark.parametrize(("sql", "matched"), STATEMENTS)
def test_update_counts_the_rows_its_where_matched_as_duckdb_and_sqlite_do(
    trio: Trio, sql: str, matched: int
) -> None:
    theirs = other_user_rows(trio)
    before = trio.state()
    result = trio.mine(sql)
    (duck,), lite = trio.both_others(sql)
    assert (result.rows_affected, duck[0], lite) == (matched, matched, matched)
    assert result.message == f"Updated {matched} row(s)"
    after = trio.state()
    assert sorted(r[:3] for r in after.values()) == trio.others_state()
    for key, row in after.items():
        # A row left as it was keeps its version; a changed one gets a new one.
        assert (row[3] == before[key][3]) == (row[:3] == before[key][:3]), key
    assert other_user_rows(trio) == theirs


def test_returning_gives_one_row_per_matched_row_unchanged_ones_with_their_seq(
    trio: Trio,
) -> None:
    sql = "UPDATE t SET x = 5 WHERE x IN (4, 5) RETURNING id, x, s"
    before = trio.state()
    result = trio.mine(sql.replace("RETURNING id, x, s", "RETURNING id, x, s, _seq"))
    duck, _ = trio.both_others(sql)
    lite = trio.lite.execute("SELECT id, x, s FROM t WHERE id IN (2, 4, 5, 8)").fetchall()
    returned = sorted(result.rows())
    assert result.rows_affected == len(returned) == 4
    assert [r[:3] for r in returned] == sorted(duck) == sorted(lite)
    after = trio.state()
    for id_, _x, _s, seq in returned:
        assert seq == after[id_][3]  # what RETURNING shows is the live version
    unchanged = {r[0] for r in returned if before[r[0]][1] == 5}
    assert unchanged == {4, 8}
    assert all(after[k][3] == before[k][3] for k in unchanged)
    assert all(after[k][3] > max(v[3] for v in before.values()) for k in {2, 5})


def test_returning_by_primary_key_returns_an_unchanged_row_as_it_stands(trio: Trio) -> None:
    before = trio.state()
    result = trio.mine("UPDATE t SET x = NULL WHERE id = 3 RETURNING *, _seq")
    assert result.rows_affected == 1
    assert result.rows() == [before[3]]
    assert trio.state() == before


def test_update_from_counts_the_target_rows_matched(trio: Trio) -> None:
    setup = (
        "CREATE TABLE u (id BIGINT PRIMARY KEY, v INT)",
        "INSERT INTO u VALUES (1, 1), (2, 4), (5, 0), (99, 0)",
    )
    for sql in setup:
        trio.engine.execute(sql.replace("CREATE TABLE", "CREATE SHARED TABLE"))
        trio.both_others(sql)
    sql = "UPDATE t SET x = u.v FROM u WHERE t.id = u.id"
    before = trio.state()
    result = trio.mine(sql)
    (duck,), lite = trio.both_others(sql)
    assert (result.rows_affected, duck[0], lite) == (3, 3, 3)
    after = trio.state()
    assert sorted(r[:3] for r in after.values()) == trio.others_state()
    assert [k for k in after if after[k][3] != before[k][3]] == [5]


@pytest.mark.parametrize(
    ("sql", "count"),
    [
        # row 1 already holds (1, 'a'): DO UPDATE counts it (PostgreSQL, DuckDB)
        (
            "INSERT INTO t VALUES (1, 1, 'a'), (20, 0, 'z') ON CONFLICT (id) DO UPDATE "
            "SET x = EXCLUDED.x, s = EXCLUDED.s",
            2,
        ),
        # the WHERE rejects row 1: left alone, not counted
        (
            "INSERT INTO t VALUES (1, 1, 'a'), (20, 0, 'z') ON CONFLICT (id) DO UPDATE "
            "SET x = EXCLUDED.x WHERE t.x > 100",
            1,
        ),
        ("INSERT INTO t VALUES (1, 0, 'q'), (20, 0, 'z') ON CONFLICT DO NOTHING", 1),
    ],
)
def test_on_conflict_counts_inserted_and_updated_rows_as_duckdb_does(
    trio: Trio, sql: str, count: int
) -> None:
    result = trio.mine(sql)
    (duck,), lite = trio.both_others(sql)
    assert (result.rows_affected, duck[0], lite) == (count, count, count)
    assert sorted(r[:3] for r in trio.state().values()) == trio.others_state()


def test_cursor_rowcount_counts_matched_rows(engine: Engine) -> None:
    engine.execute(CREATE.format(kind="SHARED"))
    engine.execute(f"INSERT INTO t VALUES {VALUES}")
    con = kalam.connect(engine)
    cur = con.cursor()
    cur.execute("UPDATE t SET x = x WHERE id = ?", [1])
    assert cur.rowcount == 1
    cur.execute("UPDATE t SET x = 5 WHERE x IN (4, 5)")
    assert cur.rowcount == 4
    cur.executemany("UPDATE t SET s = s WHERE id = ?", [(1,), (2,), (99,)])
    assert cur.rowcount == 2
    con.close()


def test_the_magic_footer_shows_matched_rows(ip: Any) -> None:  # noqa: F811
    res = cell(
        ip,
        "CREATE SHARED TABLE t (id BIGINT PRIMARY KEY, x INT);\n"
        "INSERT INTO t VALUES (1, 1), (2, 2);\n"
        "UPDATE t SET x = x",
    )
    assert res.results[-1].rows_affected == 2
    assert "Updated 2 row(s)" in str(res).splitlines()[-1]


def test_matched_rows_left_as_they_were_send_no_live_change(engine: Engine) -> None:
    engine.execute(CREATE.format(kind="SHARED"))
    engine.execute(f"INSERT INTO t VALUES {VALUES}")
    with engine.subscribe("SUBSCRIBE TO SELECT id, x FROM t") as sub:
        assert engine.execute("UPDATE t SET x = 1 WHERE id = 1").rows_affected == 1
        assert engine.execute("UPDATE t SET x = x, s = s").rows_affected == 8
        # Rows 4 and 8 already hold 5: counted, but only 2 and 5 change.
        assert engine.execute("UPDATE t SET x = 5 WHERE x IN (4, 5)").rows_affected == 4
        change = sub.get(timeout=20.0)
        assert change is not None
        assert change.change_type == "update"
        rows = sorted(change.rows.to_pylist(), key=lambda r: r["id"])
        assert rows == [{"id": 2, "x": 5}, {"id": 5, "x": 5}]
        assert engine.db.subscriptions.sync(20.0)
        assert sub.get(timeout=0) is None
