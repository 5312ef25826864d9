"""UNIQUE columns: no two live rows of a scope share a non-NULL value, whether
the rows are hot, flushed to segments, or written by INSERT, UPDATE, upsert or
INSERT ... SELECT; NULLs repeat freely; a USER table is unique per user; a
refused write changes nothing."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from engine import Engine
from engine.errors import SchemaError, UniqueViolationError


@pytest.fixture(params=["hot", "cold", "updated-after-flush"])
def accounts(request: pytest.FixtureRequest, engine: Engine) -> Engine:
    engine.execute("CREATE TABLE acc (id INT PRIMARY KEY, email TEXT UNIQUE, n INT)")
    engine.execute("INSERT INTO acc VALUES (1, 'a', 1), (2, 'b', 2), (3, NULL, 3)")
    if request.param != "hot":
        engine.execute("FLUSH TABLE acc WAIT")
    if request.param == "updated-after-flush":
        engine.execute("UPDATE acc SET n = n + 10 WHERE id = 2")
    return engine


VIOLATIONS = [
    "INSERT INTO acc VALUES (4, 'a', 4)",
    "INSERT INTO acc VALUES (4, 'c', 4), (5, 'c', 5)",
    "UPDATE acc SET email = 'a' WHERE id = 2",
    "UPDATE acc SET email = 'x' WHERE id IN (2, 3)",
    "INSERT INTO acc VALUES (2, 'a', 0) ON CONFLICT (id) DO UPDATE SET email = 'a'",
    "INSERT INTO acc SELECT id + 10, email, n FROM acc WHERE id = 1",
]


@pytest.mark.parametrize("sql", VIOLATIONS)
def test_a_repeated_value_is_refused_and_changes_nothing(
    accounts: Engine, expect_error: Callable[..., object], sql: str
) -> None:
    expect_error(accounts, sql, UniqueViolationError, "UNIQUE_VIOLATION", "email")


def test_nulls_may_repeat(accounts: Engine) -> None:
    accounts.execute("INSERT INTO acc VALUES (4, NULL, 4), (5, NULL, 5)")
    accounts.execute("UPDATE acc SET email = NULL WHERE id = 1")
    assert accounts.execute("SELECT count(*) FROM acc WHERE email IS NULL").rows() == [(4,)]


def test_a_value_freed_by_update_or_delete_can_be_taken(accounts: Engine) -> None:
    accounts.execute("UPDATE acc SET email = 'z' WHERE id = 1")
    accounts.execute("INSERT INTO acc VALUES (4, 'a', 4)")
    accounts.execute("DELETE FROM acc WHERE id = 2")
    accounts.execute("INSERT INTO acc VALUES (5, 'b', 5)")
    # one statement may swap two values: the check is on the statement's result
    accounts.execute(
        "UPDATE acc SET email = CASE WHEN id = 4 THEN 'b' ELSE 'a' END WHERE id IN (4, 5)"
    )
    rows = accounts.execute("SELECT id, email FROM acc ORDER BY id").rows()
    assert rows == [(1, "z"), (3, None), (4, "b"), (5, "a")]


def test_rewriting_a_row_with_its_own_value_is_allowed(accounts: Engine) -> None:
    accounts.execute("INSERT INTO acc VALUES (1, 'a', 99) ON CONFLICT (id) DO UPDATE SET n = 99")
    accounts.execute("UPDATE acc SET n = 7 WHERE email = 'b'")
    assert accounts.execute("SELECT id, n FROM acc WHERE id IN (1, 2) ORDER BY id").rows() == [
        (1, 99),
        (2, 7),
    ]


def test_a_user_table_is_unique_per_user(engine: Engine) -> None:
    engine.execute("CREATE USER TABLE u (id INT PRIMARY KEY, k TEXT UNIQUE)")
    engine.execute("INSERT INTO u VALUES (1, 'x')", user="alice")
    engine.execute("INSERT INTO u VALUES (1, 'x')", user="bob")  # another scope
    engine.execute("FLUSH TABLE u WAIT")
    with pytest.raises(UniqueViolationError):
        engine.execute("INSERT INTO u VALUES (2, 'x')", user="bob")
    engine.execute("INSERT INTO u VALUES (2, 'y')", user="bob")
    assert engine.execute("SELECT k FROM u ORDER BY id", user="bob").rows() == [("x",), ("y",)]


def test_unique_survives_a_restart(accounts: Engine, reopen: Callable[..., Engine]) -> None:
    engine = reopen(accounts)
    with pytest.raises(UniqueViolationError):
        engine.execute("INSERT INTO acc VALUES (9, 'b', 9)")
    engine.execute("INSERT INTO acc VALUES (9, 'c', 9)")


def test_add_column_unique_is_refused_rather_than_enforcing_nothing(engine: Engine) -> None:
    engine.execute("CREATE TABLE t (id INT PRIMARY KEY, a INT)")
    with pytest.raises(SchemaError):
        engine.execute("ALTER TABLE t ADD COLUMN b INT UNIQUE")


def test_create_unique_index_enforces_a_constraint_over_its_columns(engine: Engine) -> None:
    engine.execute("CREATE TABLE t (id INT PRIMARY KEY, a INT, b TEXT)")
    engine.execute("INSERT INTO t VALUES (1, 1, 'x'), (2, 1, 'y'), (3, NULL, 'x')")
    engine.execute("FLUSH TABLE t WAIT")
    engine.execute("CREATE UNIQUE INDEX iab ON t (a DESC, b)")
    with pytest.raises(UniqueViolationError) as info:
        engine.execute("INSERT INTO t VALUES (4, 1, 'x')")
    assert "(a, b)" in str(info.value)
    engine.execute("INSERT INTO t VALUES (4, 2, 'x'), (5, NULL, 'x')")  # a NULL never clashes
    with pytest.raises(UniqueViolationError):
        engine.execute("UPDATE t SET b = 'y' WHERE id = 1")
    # rows already repeating a value refuse the index, and nothing changes
    with pytest.raises(UniqueViolationError):
        engine.execute("CREATE UNIQUE INDEX ia ON t (a)")
    engine.execute("INSERT INTO t VALUES (6, 1, 'z')")
    engine.execute("ALTER TABLE t RENAME COLUMN b TO bb")  # the constraint follows the column
    with pytest.raises(UniqueViolationError):
        engine.execute("INSERT INTO t VALUES (7, 2, 'x')")


def test_a_unique_index_survives_a_restart(engine: Engine, reopen: Callable[..., Engine]) -> None:
    engine.execute("CREATE TABLE t (id INT PRIMARY KEY, a INT)")
    engine.execute("CREATE UNIQUE INDEX ia ON t (a)")
    engine.execute("INSERT INTO t VALUES (1, 1)")
    engine = reopen(engine)
    with pytest.raises(UniqueViolationError):
        engine.execute("INSERT INTO t VALUES (2, 1)")
