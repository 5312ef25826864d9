"""Shortcut answers over hot rows that overlap cold rows (issue 15).

Two shortcuts are pinned here:

- ``count(*)`` (and min/max when nothing can hide a cold row) answered from
  the manifests plus the hot tier even when hot versions update or delete
  cold rows and delete markers name dead ones
  (``TableProvider.aggregates_from_metadata``);
- ``SELECT <columns> FROM t LIMIT n`` answered from n live hot rows when the
  hot tier has that many (``TableProvider.first_rows``).

Every answer is compared with the same query forced through the full plan
(``WHERE true`` takes both shortcuts away) and with DuckDB holding the same
rows after the same statements. Each test also says whether the shortcut
must have been taken.
"""

from __future__ import annotations

import datetime as dt

import duckdb
import pytest

from engine import Engine

COUNT = "SELECT count(*) FROM t"


class Mirror:
    """The engine table ``t`` and a DuckDB table per scope holding the same
    rows: every data statement runs on both (the DuckDB side as the scope's
    table ``t_<scope>``)."""

    def __init__(self, engine: Engine, create: str, duck_columns: str, *, users: tuple = ()):
        self.engine = engine
        self.users = users or (None,)
        self.duck = duckdb.connect()
        engine.execute(create)
        for u in self.users:
            self.duck.execute(f"CREATE TABLE {self._duck_table(u)} ({duck_columns})")

    @staticmethod
    def _duck_table(user: str | None) -> str:
        return f"t_{user or 'shared'}"

    def run(self, sql: str, *, user: str | None = None) -> None:
        kwargs = {"user": user} if user else {}
        self.engine.execute(sql, **kwargs)
        self.duck.execute(sql.replace(" t ", f" {self._duck_table(user)} ", 1))

    def maintain(self, sql: str) -> None:
        """FLUSH / COMPACT / ALTER ... SET: the engine only (rows unchanged)."""
        self.engine.execute(sql)

    def check(self, *, count_shortcut: bool | None = None, user: str | None = None) -> int:
        """Assert count(*) = the full plan's count = DuckDB's; returns it.
        ``count_shortcut``: whether it must (True) or must not (False) have
        been answered without reading a segment."""
        kwargs = {"user": user} if user else {}
        result = self.engine.execute(COUNT, **kwargs)
        ((planned,),) = self.engine.execute(COUNT + " WHERE true", **kwargs).rows()
        ((duck,),) = self.duck.execute(f"SELECT count(*) FROM {self._duck_table(user)}").fetchall()
        ((count,),) = result.rows()
        assert count == planned == duck
        figures = next(iter(result.stats.values()))
        if count_shortcut is not None:
            assert (figures["segments_scanned"] == 0) == count_shortcut, figures
        return count

    def check_limit(
        self,
        n: int,
        *,
        shortcut: bool | None = None,
        cold: bool | None = None,
        user: str | None = None,
    ) -> list[tuple]:
        """``SELECT * FROM t LIMIT n``: min(n, live rows) distinct rows, each
        a live row of the full plan (and of DuckDB). ``shortcut``: whether
        ``first_rows`` must have answered; ``cold``: whether it must have
        read cold rows to top the hot ones up."""
        kwargs = {"user": user} if user else {}
        result = self.engine.execute(f"SELECT * FROM t LIMIT {n}", **kwargs)
        every = self.engine.execute("SELECT * FROM t WHERE true", **kwargs).rows()
        duck = self.duck.execute(f"SELECT * FROM {self._duck_table(user)}").fetchall()
        assert sorted(every, key=repr) == sorted(duck, key=repr)
        rows = result.rows()
        assert len(rows) == min(n, len(every))
        assert len(set(rows)) == len(rows)
        assert set(rows) <= set(every)
        figures = next(iter(result.stats.values()))
        if shortcut is not None:
            assert bool(figures.get("limit_shortcut")) == shortcut, figures
        if cold is not None:
            assert (figures["segments_scanned"] > 0) == cold, figures
        return rows


@pytest.fixture
def m(engine) -> Mirror:
    mirror = Mirror(
        engine,
        "CREATE SHARED TABLE t (id BIGINT PRIMARY KEY, n INT, d DATE) WITH (DELTA = false)",
        "id BIGINT PRIMARY KEY, n INT, d DATE",
    )
    rows = ", ".join(f"({i}, {i % 7}, NULL)" for i in range(0, 40, 2))
    mirror.run(f"INSERT INTO t VALUES {rows}")
    mirror.maintain("FLUSH TABLE t WAIT")
    return mirror


# ---- count(*) with hot versions over cold rows


def test_hot_inserts_beside_cold_rows_are_counted(m):
    m.run("INSERT INTO t VALUES (1, 1, NULL), (3, 3, NULL), (1001, 5, NULL)")  # in range, outside
    assert m.check(count_shortcut=True) == 23


def test_hot_updates_of_cold_rows_count_each_row_once(m):
    m.run("UPDATE t SET n = n + 1 WHERE id < 10")
    assert m.check(count_shortcut=True) == 20


def test_hot_deletes_of_cold_rows_are_not_counted(m):
    m.run("DELETE FROM t WHERE id IN (0, 2, 38)")
    assert m.check(count_shortcut=True) == 17


def test_a_deleted_cold_key_inserted_again_counts_once(m):
    m.run("DELETE FROM t WHERE id = 4")
    m.run("INSERT INTO t VALUES (4, 0, NULL)")
    assert m.check(count_shortcut=True) == 20


def test_deleting_a_key_that_never_existed_changes_nothing(m):
    m.run("DELETE FROM t WHERE id = 5")
    m.run("INSERT INTO t VALUES (5, 0, NULL)")
    m.run("DELETE FROM t WHERE id = 5")
    assert m.check(count_shortcut=True) == 20


def test_a_row_updated_twice_counts_once(m):
    m.run("UPDATE t SET n = 1 WHERE id = 6")
    m.run("UPDATE t SET n = 2 WHERE id = 6")
    assert m.check(count_shortcut=True) == 20
    m.maintain("FLUSH TABLE t WAIT")
    m.run("UPDATE t SET n = 3 WHERE id = 6")
    assert m.check(count_shortcut=True) == 20


@pytest.mark.parametrize("delta", [False, True], ids=["markers kept", "delta rewrites"])
def test_cold_deletes_and_updates_flushed_as_markers_are_counted_exactly(m, delta):
    m.maintain(f"ALTER TABLE t SET (DELTA = {str(delta).lower()})")
    m.run("DELETE FROM t WHERE id IN (0, 10)")
    m.run("UPDATE t SET n = 9 WHERE id IN (2, 12)")
    m.maintain("FLUSH TABLE t WAIT")
    assert m.check(count_shortcut=True) == 18
    # markers plus new hot versions over the same and other cold rows
    m.run("DELETE FROM t WHERE id IN (2, 14)")
    m.run("UPDATE t SET n = 0 WHERE id IN (12, 16)")
    m.run("INSERT INTO t VALUES (0, 0, NULL)")
    assert m.check(count_shortcut=True) == 17


def test_sparse_keys_are_matched_by_binary_search(engine):
    """Keys far apart (span > 8x their count) are matched against the sorted
    cold keys rather than a bitmap of their span; both must agree."""
    m = Mirror(
        engine,
        "CREATE SHARED TABLE t (id BIGINT PRIMARY KEY, n INT) WITH (DELTA = false)",
        "id BIGINT PRIMARY KEY, n INT",
    )
    rows = ", ".join(f"({i * 1000 - 50_000}, {i})" for i in range(100))
    m.run(f"INSERT INTO t VALUES {rows}, (9223372036854775807, 0)")
    m.maintain("FLUSH TABLE t WAIT")
    m.run("UPDATE t SET n = 0 WHERE id IN (-50000, 0, 1000, 9223372036854775807)")
    m.run("DELETE FROM t WHERE id IN (2000, 3000)")
    m.run("INSERT INTO t VALUES (2500, 1), (-9223372036854775808, 1)")
    assert m.check(count_shortcut=True) == 101
    m.maintain("FLUSH TABLE t WAIT")
    m.run("DELETE FROM t WHERE id = 2500")
    assert m.check(count_shortcut=True) == 100


def test_counts_stay_exact_across_flush_and_compact(m):
    m.run("UPDATE t SET n = 1 WHERE id < 20")
    m.maintain("FLUSH TABLE t WAIT")
    m.run("DELETE FROM t WHERE id >= 30")
    m.run("INSERT INTO t VALUES (101, 1, NULL), (103, 1, NULL)")
    m.maintain("FLUSH TABLE t WAIT")
    m.run("UPDATE t SET n = 2 WHERE id IN (0, 101)")
    assert m.check(count_shortcut=True) == 17
    m.maintain("COMPACT TABLE t WAIT")
    assert m.check(count_shortcut=True) == 17
    m.run("DELETE FROM t WHERE id = 103")
    assert m.check(count_shortcut=True) == 16


def test_a_write_after_a_cached_count_is_seen(m):
    """The hidden-row count is cached per hot version: every write moves it."""
    m.run("UPDATE t SET n = 1 WHERE id = 2")
    assert m.check(count_shortcut=True) == 20
    m.run("DELETE FROM t WHERE id = 4")
    assert m.check(count_shortcut=True) == 19
    m.run("DELETE FROM t WHERE id = 2")
    assert m.check(count_shortcut=True) == 18
    m.run("INSERT INTO t VALUES (2, 1, NULL)")
    assert m.check(count_shortcut=True) == 19


def test_counts_survive_rename_and_reopen(m, reopen):
    m.run("UPDATE t SET n = 1 WHERE id < 6")
    m.run("DELETE FROM t WHERE id = 8")
    assert m.check(count_shortcut=True) == 19
    m.engine.execute("ALTER TABLE t RENAME COLUMN n TO k")
    assert m.check(count_shortcut=True) == 19
    m.engine = reopen(m.engine)
    assert m.check(count_shortcut=True) == 19


def test_each_user_counts_only_their_own_rows_over_their_own_cold_rows(engine):
    users = ("alice", "bob")
    m = Mirror(
        engine,
        "CREATE USER TABLE t (id INT PRIMARY KEY, n INT) WITH (DELTA = false)",
        "id INT PRIMARY KEY, n INT",
        users=users,
    )
    m.run("INSERT INTO t VALUES (1, 1), (2, 2), (3, 3)", user="alice")
    m.run("INSERT INTO t VALUES (1, 1), (2, 2), (3, 3), (4, 4), (5, 5)", user="bob")
    m.maintain("FLUSH TABLE t WAIT")
    # bob deletes the keys alice keeps, alice updates the keys bob deletes
    m.run("DELETE FROM t WHERE id IN (1, 2)", user="bob")
    m.run("UPDATE t SET n = 0 WHERE id IN (1, 2)", user="alice")
    m.run("INSERT INTO t VALUES (9, 9)", user="alice")
    assert m.check(count_shortcut=True, user="alice") == 4
    assert m.check(count_shortcut=True, user="bob") == 3
    m.maintain("FLUSH TABLE t WAIT")  # bob's deletes become markers
    m.run("DELETE FROM t WHERE id = 3", user="alice")
    assert m.check(count_shortcut=True, user="alice") == 3
    assert m.check(count_shortcut=True, user="bob") == 3
    assert engine.execute(COUNT, user="carol").rows() == [(0,)]


@pytest.mark.parametrize(
    "create, duck, rows, hide",
    [
        (
            "CREATE SHARED TABLE t (a INT, b TEXT, n INT, PRIMARY KEY (a, b))",
            "a INT, b TEXT, n INT, PRIMARY KEY (a, b)",
            "(1, 'x', 1), (1, 'y', 2), (2, 'x', 3), (3, 'z', 4)",
            "a = 1 AND b = 'y'",
        ),
        (
            "CREATE SHARED TABLE t (k TEXT PRIMARY KEY, n INT)",
            "k TEXT PRIMARY KEY, n INT",
            "('apple', 1), ('kiwi', 2), ('pear', 3), ('plum', 4)",
            "k = 'kiwi'",
        ),
    ],
    ids=["composite key", "text key"],
)
def test_keys_other_than_one_integer_fall_back_when_a_hot_key_may_hide_a_cold_row(
    engine, create, duck, rows, hide
):
    m = Mirror(engine, create + " WITH (DELTA = false)", duck)
    m.run(f"INSERT INTO t VALUES {rows}")
    m.maintain("FLUSH TABLE t WAIT")
    assert m.check(count_shortcut=True) == 4
    m.run(f"UPDATE t SET n = 0 WHERE {hide}")
    assert m.check(count_shortcut=False) == 4
    m.run(f"DELETE FROM t WHERE {hide}")
    assert m.check(count_shortcut=False) == 3
    # flushed: the delete is a marker, which the cold key index counts exactly
    m.maintain("FLUSH TABLE t WAIT")
    assert m.check(count_shortcut=True) == 3


def test_stream_rows_that_expire_are_never_counted_from_metadata(engine, clock):
    engine.execute("CREATE STREAM TABLE s (id INT PRIMARY KEY) WITH (TTL_SECONDS = 10)")
    engine.execute("INSERT INTO s VALUES (1), (2), (3)")
    clock.advance(6)
    engine.execute("INSERT INTO s VALUES (4), (5)")
    assert engine.execute("SELECT count(*) FROM s").rows() == [(5,)]
    clock.advance(6)
    assert engine.execute("SELECT count(*) FROM s").rows() == [(2,)]
    rows = engine.execute("SELECT * FROM s LIMIT 3").rows()
    assert sorted(rows) == [(4,), (5,)]
    assert engine.execute("SELECT * FROM s LIMIT 2").rows() in ([(4,), (5,)], [(5,), (4,)])


# ---- min / max: only when nothing can hide a cold row


MINMAX = "SELECT min(n), max(n), min(d), max(d), count(*) FROM t"


def _minmax(m: Mirror) -> tuple[list, bool]:
    result = m.engine.execute(MINMAX)
    assert result.rows() == m.engine.execute(MINMAX + " WHERE true").rows()
    assert result.rows() == m.duck.execute(MINMAX.replace(" t", " t_shared")).fetchall()
    return result.rows(), next(iter(result.stats.values()))["segments_scanned"] == 0


def test_min_max_with_nulls_come_from_statistics_when_nothing_is_hidden(m):
    # cold: n in 0..6, d all NULL; hot: new keys only (odd keys inside the cold range)
    assert _minmax(m) == ([(0, 6, None, None, 20)], True)
    m.run("INSERT INTO t VALUES (7, NULL, '2020-01-02'), (9, -1, NULL)")
    assert _minmax(m) == ([(-1, 6, dt.date(2020, 1, 2), dt.date(2020, 1, 2), 22)], True)


def test_min_max_fall_back_when_a_hot_version_hides_the_cold_extreme(m):
    m.run("UPDATE t SET n = NULL WHERE n = 6")  # the cold maximum is now superseded
    assert _minmax(m) == ([(0, 5, None, None, 20)], False)
    m.run("DELETE FROM t WHERE n = 0")
    assert _minmax(m) == ([(1, 5, None, None, 17)], False)


def test_min_max_fall_back_while_delete_markers_name_dead_rows(m):
    m.run("DELETE FROM t WHERE n = 6")
    m.maintain("FLUSH TABLE t WAIT")
    assert _minmax(m) == ([(0, 5, None, None, 17)], False)
    m.maintain("COMPACT TABLE t WAIT")  # the dead rows are gone: statistics exact again
    assert _minmax(m) == ([(0, 5, None, None, 17)], True)


# ---- SELECT ... LIMIT n


def test_limit_is_served_from_hot_rows_when_they_are_enough(m):
    m.run("UPDATE t SET n = 100 WHERE id < 10")  # 5 hot versions over cold rows
    m.check_limit(5, shortcut=True, cold=False)
    rows = m.check_limit(3, shortcut=True, cold=False)
    assert all(n == 100 for _, n, _ in rows)  # the new versions, never the cold ones


def test_limit_tops_hot_rows_up_with_cold_rows_no_hot_key_hides(m):
    m.run("UPDATE t SET n = 100 WHERE id < 10")  # hides the first 5 cold rows
    rows = m.check_limit(6, shortcut=True, cold=True)
    assert sorted(r[0] for r in rows) == [0, 2, 4, 6, 8, 10]
    assert [r for r in rows if r[0] < 10] == [r for r in rows if r[1] == 100]
    m.check_limit(20, shortcut=True, cold=True)
    m.check_limit(50, shortcut=True, cold=True)  # more than the table holds: every row
    m.check_limit(100_000, shortcut=False)  # too many to hold at once: the plan streams them


def test_limit_never_returns_a_deleted_row(m):
    m.run("DELETE FROM t WHERE id < 10")
    m.run("INSERT INTO t VALUES (1, 1, NULL), (3, 3, NULL)")
    m.check_limit(2, shortcut=True, cold=False)
    assert sorted(m.engine.execute("SELECT id FROM t LIMIT 2").rows()) == [(1,), (3,)]
    rows = m.check_limit(3, shortcut=True, cold=True)
    assert sorted(r[0] for r in rows) == [1, 3, 10]
    m.check_limit(17, shortcut=True, cold=True)


def test_limit_skips_cold_rows_named_by_delete_markers(m):
    m.run("DELETE FROM t WHERE id < 10")
    m.run("UPDATE t SET n = 50 WHERE id IN (10, 12)")
    m.maintain("FLUSH TABLE t WAIT")  # markers for 0..8 and the old 10 and 12
    rows = m.check_limit(4, shortcut=True, cold=True)
    assert all(r[0] >= 10 for r in rows)
    assert all(r[1] == 50 for r in rows if r[0] in (10, 12))
    m.check_limit(15, shortcut=True, cold=True)
    m.check_limit(16, shortcut=True, cold=True)


def test_limit_over_cold_rows_reads_segments_one_at_a_time_until_it_has_enough(engine):
    m = Mirror(
        engine,
        "CREATE SHARED TABLE t (id BIGINT PRIMARY KEY, n INT) "
        "WITH (DELTA = false, COMPACT_POLICY = 'none')",
        "id BIGINT PRIMARY KEY, n INT",
    )
    for lo in (0, 100, 200):  # three segments of 10 rows
        m.run("INSERT INTO t VALUES " + ", ".join(f"({i}, {i})" for i in range(lo, lo + 10)))
        m.maintain("FLUSH TABLE t WAIT")
    figures = lambda n: next(iter(engine.execute(f"SELECT * FROM t LIMIT {n}").stats.values()))  # noqa: E731
    m.check_limit(4, shortcut=True, cold=True)
    assert figures(4)["segments_scanned"] == 1 and figures(4)["cold_rows_scanned"] == 4
    m.check_limit(15, shortcut=True, cold=True)
    assert figures(15)["segments_scanned"] == 2
    m.check_limit(40, shortcut=True, cold=True)
    assert figures(40)["segments_scanned"] == 3
    # hot versions and markers over the first segment: the rest comes from the next ones
    m.run("DELETE FROM t WHERE id < 5")
    m.maintain("FLUSH TABLE t WAIT")
    m.run("UPDATE t SET n = -1 WHERE id >= 5 AND id < 10")
    for n in (3, 5, 6, 12, 25, 26):
        m.check_limit(n, shortcut=True)
    rows = m.check_limit(8, shortcut=True)
    assert [r for r in rows if r[0] < 10] == [r for r in rows if r[1] == -1]


def test_limit_over_hot_rows_only_runs_the_plan_when_they_are_too_few(engine):
    m = Mirror(engine, "CREATE SHARED TABLE t (id INT PRIMARY KEY)", "id INT PRIMARY KEY")
    m.run("INSERT INTO t VALUES (1), (2)")
    m.check_limit(2, shortcut=True, cold=False)
    m.check_limit(3, shortcut=False)


@pytest.mark.parametrize(
    "create, duck, rows, change, shortcut",
    [
        (
            "CREATE SHARED TABLE t (k TEXT PRIMARY KEY, n INT)",
            "k TEXT PRIMARY KEY, n INT",
            "('apple', 1), ('kiwi', 2), ('pear', 3), ('plum', 4)",
            "UPDATE t SET n = 0 WHERE k IN ('apple', 'pear')",
            True,
        ),
        (
            "CREATE SHARED TABLE t (a INT, b TEXT, n INT, PRIMARY KEY (a, b))",
            "a INT, b TEXT, n INT, PRIMARY KEY (a, b)",
            "(1, 'x', 1), (1, 'y', 2), (2, 'x', 3), (3, 'z', 4)",
            "UPDATE t SET n = 0 WHERE a = 1",
            False,
        ),
    ],
    ids=["text key: topped up", "composite key: the plan"],
)
def test_limit_over_text_and_composite_keys(engine, create, duck, rows, change, shortcut):
    m = Mirror(engine, create, duck)
    m.run(f"INSERT INTO t VALUES {rows}")
    m.maintain("FLUSH TABLE t WAIT")
    m.run(change)
    m.check_limit(2, shortcut=True, cold=False)
    for n in (3, 4, 10):
        m.check_limit(n, shortcut=shortcut)


def test_limit_shapes_projection_alias_and_offset_over_hot_rows(m):
    m.run("INSERT INTO t VALUES (101, 1, NULL), (103, 2, NULL), (105, 3, NULL)")
    result = m.engine.execute("SELECT n AS v, id FROM t LIMIT 2 OFFSET 1")
    assert result.to_arrow().schema.names == ["v", "id"]
    assert len(result.rows()) == 2
    assert next(iter(result.stats.values()))["limit_shortcut"] == 1
    assert m.engine.execute("SELECT * FROM t LIMIT 0").rows() == []
    # shapes that need every row never take it
    for sql in (
        "SELECT * FROM t ORDER BY id LIMIT 2",
        "SELECT * FROM t WHERE n > 0 LIMIT 2",
        "SELECT count(*) FROM t LIMIT 2",
        "SELECT DISTINCT n FROM t LIMIT 2",
        "SELECT n + 1 FROM t LIMIT 2",
    ):
        figures = next(iter(m.engine.execute(sql).stats.values()))
        assert "limit_shortcut" not in figures, sql
    assert m.engine.execute("SELECT id FROM t ORDER BY id LIMIT 2").rows() == [(0,), (2,)]
    assert m.engine.execute("SELECT count(*) FROM t LIMIT 2").rows() == [(23,)]


def test_explain_shows_the_limit_shortcut(m):
    m.run("UPDATE t SET n = 1 WHERE id < 10")
    plan = m.engine.execute("EXPLAIN SELECT * FROM t LIMIT 3").rows()
    scan = [p for kind, p in plan if kind == "kalam_scan"]
    assert scan and "limit_shortcut=1" in scan[0] and "segments_scanned=0" in scan[0]
    plan = m.engine.execute("EXPLAIN SELECT * FROM t LIMIT 30").rows()
    scan = [p for kind, p in plan if kind == "kalam_scan"]
    assert scan and "limit_shortcut=1" in scan[0] and "segments_scanned=1" in scan[0]
    plan = m.engine.execute("EXPLAIN SELECT * FROM t ORDER BY id LIMIT 3").rows()
    scan = [p for kind, p in plan if kind == "kalam_scan"]
    assert scan and "limit_shortcut" not in scan[0]


def test_limit_over_a_user_table_shows_only_that_users_rows(engine):
    m = Mirror(
        engine,
        "CREATE USER TABLE t (id INT PRIMARY KEY, n INT)",
        "id INT PRIMARY KEY, n INT",
        users=("alice", "bob"),
    )
    m.run("INSERT INTO t VALUES (1, 10), (2, 20), (3, 30)", user="alice")
    m.run("INSERT INTO t VALUES (1, 11), (2, 21), (3, 31), (4, 41)", user="bob")
    m.maintain("FLUSH TABLE t WAIT")
    m.run("UPDATE t SET n = n + 1000", user="alice")
    m.run("INSERT INTO t VALUES (5, 51), (6, 61), (7, 71)", user="bob")
    for user in ("alice", "bob"):
        m.check_limit(3, shortcut=True, cold=False, user=user)
        m.check_limit(5, user=user)
    assert sorted(engine.execute("SELECT * FROM t LIMIT 3", user="alice").rows()) == [
        (1, 1010),
        (2, 1020),
        (3, 1030),
    ]
    assert engine.execute("SELECT * FROM t LIMIT 3", user="carol").rows() == []


def test_limit_naming_hidden_columns_reads_the_plan(m):
    m.run("UPDATE t SET n = 1 WHERE id < 10")
    result = m.engine.execute("SELECT id, _seq FROM t LIMIT 2")
    assert len(result.rows()) == 2
    assert "limit_shortcut" not in next(iter(result.stats.values()))
