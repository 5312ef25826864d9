"""The DML forms people write, each doing what it says (never run as a plainer
statement): UPDATE / DELETE ... RETURNING, INSERT ... ON CONFLICT (DO NOTHING /
DO UPDATE), INSERT OR IGNORE / OR REPLACE, table aliases in UPDATE and DELETE,
and ``pk = NULL`` predicates.

Most tests run on ``forms``: a table ``t (id INT PRIMARY KEY, v INT, s TEXT
DEFAULT 'd')`` of type USER or SHARED holding ids 1..4 (root: v = 10*id,
s = 'r<id>'; for USER tables bob also holds ids 1..4 with v = -id), laid out
``hot``, ``cold`` (all flushed) or ``mixed`` (ids 1, 2 flushed, 3, 4 hot).
``forms.check(...)`` compares root's rows now, after a flush and after a
restart, and makes sure bob's rows never changed.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from conftest import Engines

from engine import Result, security
from engine.errors import (
    ColumnNotFoundError,
    KalamError,
    PermissionDeniedError,
    PrimaryKeyViolationError,
    QueryError,
    SchemaError,
    UnsupportedStatementError,
)
from engine.sql.parser import parse

PLACEMENTS = ("hot", "cold", "mixed")
TYPES = ("USER", "SHARED")
Row = tuple[int, Any, Any]


def root_row(i: int) -> Row:
    return (i, i * 10, f"r{i}")


def bob_row(i: int) -> Row:
    return (i, -i, f"b{i}")


class Forms:
    """An engine with the seeded table ``t`` and helpers to check it."""

    def __init__(self, engines: Engines, table_type: str, placement: str) -> None:
        self.engines = engines
        self.table_type = table_type
        self.placement = placement
        self.eng = engines.open(background_jobs=False)
        self.eng.execute(
            f"CREATE {table_type} TABLE t (id INT PRIMARY KEY, v INT, s TEXT DEFAULT 'd')"
        )
        users = ("root", "bob") if table_type == "USER" else ("root",)
        for user in users:
            make = root_row if user == "root" else bob_row
            first = [make(i) for i in (1, 2)]
            second = [make(i) for i in (3, 4)]
            self.insert(first + second if placement != "mixed" else first, user)
        if placement != "hot":
            self.eng.flush("t")
        if placement == "mixed":
            for user in users:
                make = root_row if user == "root" else bob_row
                self.insert([make(i) for i in (3, 4)], user)
        assert self.rows() == [root_row(i) for i in range(1, 5)]

    def insert(self, rows: list[Row], user: str) -> None:
        flat = [x for r in rows for x in r]
        values = ", ".join("(?, ?, ?)" for _ in rows)
        self.eng.execute(f"INSERT INTO t VALUES {values}", flat, user=user)

    def run(self, sql: str, params: Any = None, *, user: str = "root") -> Result:
        return self.eng.execute(sql, params, user=user)

    def rows(self, user: str = "root") -> list[tuple[Any, ...]]:
        return self.run("SELECT id, v, s FROM t ORDER BY id", user=user).rows()

    def seqs(self, user: str = "root") -> dict[int, int]:
        return dict(self.run("SELECT id, _seq FROM t", user=user).rows())

    def check(self, expected: list[tuple[Any, ...]]) -> None:
        """Root sees ``expected`` now, after a flush and after a restart; bob's
        rows of a USER table are untouched throughout."""
        for when in ("now", "after a flush", "after a restart"):
            if when == "after a flush":
                self.eng.flush("t")
            elif when == "after a restart":
                self.eng = self.engines.reopen(self.eng, background_jobs=False)
            assert self.rows() == sorted(expected), when
            if self.table_type == "USER":
                assert self.rows("bob") == [bob_row(i) for i in range(1, 5)], when


@pytest.fixture(
    params=[(t, p) for t in TYPES for p in PLACEMENTS],
    ids=[f"{t}-{p}" for t in TYPES for p in PLACEMENTS],
)
def forms(request: pytest.FixtureRequest, engines: Engines) -> Iterator[Forms]:
    yield Forms(engines, *request.param)


@pytest.fixture
def shared(engines: Engines) -> Forms:
    """A SHARED table with ids 1, 2 flushed and 3, 4 hot (for error cases)."""
    return Forms(engines, "SHARED", "mixed")


def unchanged(f: Forms, sql: str, error: type[KalamError], *phrases: str, **kw: Any) -> None:
    """``sql`` fails with ``error`` naming every phrase, and changes no row or _seq."""
    before = (f.rows(), f.seqs())
    with pytest.raises(error) as info:
        f.run(sql, **kw)
    for phrase in phrases:
        assert phrase in info.value.message, (phrase, info.value.message)
    assert (f.rows(), f.seqs()) == before, f"{sql!r} failed but changed rows"


# ---------------------------------------------------------------- UPDATE / DELETE RETURNING


def test_update_returning_star_and_seq_gives_the_new_versions(forms: Forms) -> None:
    before = forms.seqs()
    res = forms.run("UPDATE t SET v = v + 1 WHERE v >= 20 RETURNING *, _seq")
    assert res.is_query and res.rows_affected == 3
    assert res.columns == ["id", "v", "s", "_seq"]
    got = sorted(res.rows())
    assert [r[:3] for r in got] == [(2, 21, "r2"), (3, 31, "r3"), (4, 41, "r4")]
    after = forms.seqs()
    for i, _v, _s, seq in got:
        assert seq == after[i] and seq > max(before.values())
    forms.check([root_row(1), (2, 21, "r2"), (3, 31, "r3"), (4, 41, "r4")])


def test_update_by_primary_key_returning_named_columns(forms: Forms) -> None:
    res = forms.run("UPDATE t SET s = upper(s) WHERE id = 1 RETURNING s, id")
    assert res.columns == ["s", "id"]
    assert res.rows() == [("R1", 1)]
    assert res.rows_affected == 1
    forms.check([(1, 10, "R1"), *[root_row(i) for i in (2, 3, 4)]])


def test_update_returning_gives_every_matched_row_unchanged_ones_as_they_stand(
    forms: Forms,
) -> None:
    before = dict(forms.seqs())
    res = forms.run("UPDATE t SET v = 20 WHERE id IN (1, 2) RETURNING id, v, _seq")
    assert res.rows_affected == 2
    rows = sorted(res.rows())
    assert [r[:2] for r in rows] == [(1, 20), (2, 20)]
    # Row 2 already held 20: not written, returned with its own version.
    assert rows[1][2] == before[2] and rows[0][2] != before[1]


def test_update_returning_with_no_match_is_an_empty_result_with_its_columns(forms: Forms) -> None:
    for sql in (
        "UPDATE t SET v = 0 WHERE id = 99 RETURNING *",
        "UPDATE t SET v = 0 WHERE v > 1000 RETURNING *",
    ):
        res = forms.run(sql)
        assert res.is_query and res.rows_affected == 0
        assert res.columns == ["id", "v", "s"] and res.rows() == []


def test_delete_returning_gives_the_deleted_rows(forms: Forms) -> None:
    before = forms.seqs()
    res = forms.run("DELETE FROM t WHERE v <= 20 OR id = 4 RETURNING *, _seq, _deleted")
    assert res.is_query and res.rows_affected == 3
    got = sorted(res.rows())
    assert [r[:3] for r in got] == [root_row(1), root_row(2), root_row(4)]
    # The _seq is the tombstone's: newer than the row it deleted.
    assert all(r[3] > before[r[0]] and r[4] is True for r in got)
    forms.check([root_row(3)])


def test_delete_by_primary_key_returning_a_column(forms: Forms) -> None:
    res = forms.run("DELETE FROM t WHERE id = ? RETURNING v", [3])
    assert res.rows() == [(30,)] and res.rows_affected == 1
    assert forms.run("DELETE FROM t WHERE id = 3 RETURNING v").rows() == []
    forms.check([root_row(i) for i in (1, 2, 4)])


def test_returning_an_unknown_column_fails_before_anything_changes(shared: Forms) -> None:
    for sql in (
        "UPDATE t SET v = 0 RETURNING nope",
        "DELETE FROM t RETURNING nope",
        "DELETE FROM t WHERE id = 1 RETURNING id, nope",
        "INSERT INTO t VALUES (9, 9, 'n') ON CONFLICT DO NOTHING RETURNING nope",
    ):
        unchanged(shared, sql, ColumnNotFoundError, "nope")


def test_returning_expressions_are_refused_not_ignored() -> None:
    with pytest.raises(UnsupportedStatementError):
        parse("UPDATE t SET v = 1 RETURNING v + 1")
    with pytest.raises(UnsupportedStatementError):
        parse("DELETE FROM t RETURNING upper(s)")


# ---------------------------------------------------------------- table aliases


def test_update_with_an_alias_by_primary_key_and_by_scan(forms: Forms) -> None:
    assert forms.run("UPDATE t AS x SET v = x.v + 1 WHERE x.id = 1").rows_affected == 1
    assert forms.run("UPDATE t x SET v = x.v + 2 WHERE x.v >= 30").rows_affected == 2
    res = forms.run("UPDATE t AS x SET s = x.s || '!' WHERE x.id = 2 RETURNING x.s, x.*")
    assert res.rows() == [("r2!", 2, 20, "r2!")]
    forms.check([(1, 11, "r1"), (2, 20, "r2!"), (3, 32, "r3"), (4, 42, "r4")])


def test_delete_with_an_alias_by_primary_key_and_by_scan(forms: Forms) -> None:
    assert forms.run("DELETE FROM t AS x WHERE x.id = 1").rows_affected == 1
    assert forms.run("DELETE FROM t x WHERE x.v > 30 RETURNING x.id").rows() == [(4,)]
    forms.check([root_row(2), root_row(3)])


def test_a_quoted_alias_keeps_its_case(forms: Forms) -> None:
    res = forms.run('UPDATE t AS "X" SET v = "X".v + 1 WHERE "X".id = 1 RETURNING "X".v')
    assert res.rows() == [(11,)]
    assert forms.run('UPDATE t "X" SET v = "X".v + 1 WHERE "X".v > 30').rows_affected == 1
    assert forms.run('DELETE FROM t AS "X" WHERE "X".id = 2').rows_affected == 1
    res = forms.run(
        "INSERT INTO t AS \"X\" VALUES (3, 1, 'x') "
        'ON CONFLICT (id) DO UPDATE SET v = "X".v + EXCLUDED.v WHERE "X".v > 0 RETURNING v'
    )
    assert res.rows() == [(31,)]
    forms.check([(1, 11, "r1"), (3, 31, "r3"), (4, 41, "r4")])


def test_an_aliased_table_is_not_reachable_by_its_own_name(shared: Forms) -> None:
    # As in PostgreSQL: once aliased, the table goes by the alias only.
    unchanged(shared, "UPDATE t AS x SET v = 0 WHERE t.id = 1", ColumnNotFoundError)
    unchanged(shared, "DELETE FROM t AS x WHERE t.v > 0", ColumnNotFoundError)
    unchanged(shared, "UPDATE t AS x SET v = 0 WHERE x.id = 1 RETURNING t.v", ColumnNotFoundError)


# ---------------------------------------------------------------- pk = NULL


@pytest.mark.parametrize(
    ("where", "params"),
    [("id = NULL", None), ("id = ?", [None]), ("NULL = id", None)],
    ids=["literal", "bound", "reversed"],
)
def test_primary_key_equal_to_null_matches_nothing(forms: Forms, where: str, params: Any) -> None:
    assert forms.run(f"SELECT * FROM t WHERE {where}", params).rows() == []
    alias_where = where.replace("id", "x.id")
    assert forms.run(f"SELECT * FROM t x WHERE {alias_where}", params).rows() == []
    assert forms.run(f"UPDATE t SET v = 0 WHERE {where}", params).rows_affected == 0
    assert forms.run(f"DELETE FROM t WHERE {where}", params).rows_affected == 0
    forms.check([root_row(i) for i in range(1, 5)])


# ---------------------------------------------------------------- ON CONFLICT DO NOTHING / OR IGNORE


@pytest.mark.parametrize(
    "insert",
    [
        "INSERT INTO t VALUES {} ON CONFLICT (id) DO NOTHING",
        "INSERT INTO t VALUES {} ON CONFLICT DO NOTHING",
        "INSERT OR IGNORE INTO t VALUES {}",
    ],
    ids=["do-nothing", "do-nothing-no-target", "or-ignore"],
)
def test_do_nothing_skips_rows_whose_key_exists_hot_or_cold(forms: Forms, insert: str) -> None:
    before = forms.seqs()
    res = forms.run(insert.format("(1, 0, 'x'), (5, 50, 'n'), (4, 0, 'x')") + " RETURNING *")
    assert res.rows_affected == 1 and res.message == "Inserted 1 row(s)"
    assert res.rows() == [(5, 50, "n")]
    assert {k: v for k, v in forms.seqs().items() if k != 5} == before
    forms.check([*[root_row(i) for i in range(1, 5)], (5, 50, "n")])


def test_do_nothing_keeps_the_first_of_two_rows_with_one_key(forms: Forms) -> None:
    res = forms.run(
        "INSERT INTO t VALUES (7, 1, 'a'), (7, 2, 'b'), (1, 0, 'x') ON CONFLICT DO NOTHING"
    )
    assert res.rows_affected == 1
    forms.check([*[root_row(i) for i in range(1, 5)], (7, 1, "a")])


# ---------------------------------------------------------------- ON CONFLICT DO UPDATE


def test_do_update_updates_existing_rows_and_inserts_new_ones(forms: Forms) -> None:
    before = forms.seqs()
    res = forms.run(
        "INSERT INTO t (id, v) VALUES (1, 100), (5, 500), (4, 400) "
        "ON CONFLICT (id) DO UPDATE SET v = EXCLUDED.v RETURNING id, v, s, _seq"
    )
    assert res.rows_affected == 3
    assert res.message == "Inserted 1 row(s), updated 2 row(s)"
    got = res.rows()
    assert [r[:3] for r in got] == [(1, 100, "r1"), (5, 500, "d"), (4, 400, "r4")]
    seqs = [r[3] for r in got]
    assert len(set(seqs)) == 3 and min(seqs) > max(before.values())
    assert forms.seqs()[1] == seqs[0] and forms.seqs()[4] == seqs[2]
    forms.check([(1, 100, "r1"), root_row(2), root_row(3), (4, 400, "r4"), (5, 500, "d")])


def test_do_update_sees_the_existing_row_and_excluded_and_honours_where(forms: Forms) -> None:
    res = forms.run(
        "INSERT INTO t VALUES (1, 5, 'a'), (2, 5, 'b'), (3, 5, 'c') "
        "ON CONFLICT (id) DO UPDATE SET v = t.v + EXCLUDED.v, s = EXCLUDED.s || t.s "
        "WHERE t.v <> 20 RETURNING *"
    )
    assert res.rows_affected == 2
    assert res.rows() == [(1, 15, "ar1"), (3, 35, "cr3")]
    forms.check([(1, 15, "ar1"), root_row(2), (3, 35, "cr3"), root_row(4)])


def test_do_update_with_an_alias_and_parameters(forms: Forms) -> None:
    res = forms.run(
        "INSERT INTO t AS x (id, v) VALUES (?, ?) "
        "ON CONFLICT (id) DO UPDATE SET v = x.v * ? + EXCLUDED.v WHERE x.id = ? RETURNING x.v",
        [2, 1, 3, 2],
    )
    assert res.rows() == [(61,)]
    forms.check([root_row(1), (2, 61, "r2"), root_row(3), root_row(4)])


def test_do_update_may_set_the_key_to_itself_but_not_change_it(forms: Forms) -> None:
    res = forms.run(
        "INSERT INTO t VALUES (1, 1, 'k') ON CONFLICT (id) DO UPDATE "
        "SET id = EXCLUDED.id, v = EXCLUDED.v, s = EXCLUDED.s"
    )
    assert res.rows_affected == 1
    unchanged(
        forms,
        "INSERT INTO t VALUES (2, 0, 'x') ON CONFLICT (id) DO UPDATE SET id = t.id + 100",
        SchemaError,
        "primary key",
    )
    forms.check([(1, 1, "k"), *[root_row(i) for i in (2, 3, 4)]])


def test_do_update_touching_a_key_twice_fails_and_changes_nothing(forms: Forms) -> None:
    for rows in ("(1, 1, 'a'), (1, 2, 'b')", "(8, 1, 'a'), (8, 2, 'b')"):
        unchanged(
            forms,
            f"INSERT INTO t VALUES (6, 6, 'n'), {rows} ON CONFLICT (id) DO UPDATE SET v = 0",
            PrimaryKeyViolationError,
            "cannot affect row a second time",
        )


def test_a_failing_row_undoes_the_whole_upsert(forms: Forms) -> None:
    # The second conflicting row divides by zero: nothing, not even row 9, is written.
    unchanged(
        forms,
        "INSERT INTO t VALUES (9, 9, 'n'), (1, 1, 'a'), (2, 0, 'b') "
        "ON CONFLICT (id) DO UPDATE SET v = t.v / EXCLUDED.v",
        QueryError,
    )


def test_upsert_from_a_select_updates_cold_and_hot_rows(forms: Forms) -> None:
    res = forms.run(
        "INSERT INTO t (id, v) SELECT id, v * 2 FROM t WHERE id IN (1, 4) "
        "ON CONFLICT (id) DO UPDATE SET v = EXCLUDED.v"
    )
    assert res.rows_affected == 2
    forms.check([(1, 20, "r1"), root_row(2), root_row(3), (4, 80, "r4")])


def test_user_tables_find_conflicts_in_the_writers_scope_only(engines: Engines) -> None:
    f = Forms(engines, "USER", "mixed")
    res = f.run(
        "INSERT INTO t VALUES (1, 7, 'c'), (9, 9, 'c') ON CONFLICT (id) DO UPDATE SET v = 0",
        user="carol",
    )
    assert res.message == "Inserted 2 row(s), updated 0 row(s)"
    assert f.rows("carol") == [(1, 7, "c"), (9, 9, "c")]
    f.check([root_row(i) for i in range(1, 5)])


# ---------------------------------------------------------------- INSERT OR REPLACE


def test_or_replace_writes_the_whole_new_row(forms: Forms) -> None:
    res = forms.run("INSERT OR REPLACE INTO t (id, v) VALUES (2, 0), (6, 60) RETURNING *")
    assert res.rows_affected == 2 and res.message == "Inserted 1 row(s), updated 1 row(s)"
    # Columns the statement does not list take their defaults, not the old values.
    assert res.rows() == [(2, 0, "d"), (6, 60, "d")]
    forms.check([root_row(1), (2, 0, "d"), root_row(3), root_row(4), (6, 60, "d")])


def test_or_replace_keeps_the_last_of_two_rows_with_one_key(forms: Forms) -> None:
    res = forms.run("INSERT OR REPLACE INTO t VALUES (3, 1, 'a'), (3, 2, 'b') RETURNING *")
    assert res.rows() == [(3, 2, "b")] and res.rows_affected == 1
    forms.check([root_row(1), root_row(2), (3, 2, "b"), root_row(4)])


# ---------------------------------------------------------------- conflict clauses refused


def test_conflict_clauses_the_table_cannot_honour_are_clear_errors(shared: Forms) -> None:
    cases = [
        ("INSERT INTO t VALUES (1, 0, 'x') ON CONFLICT (v) DO NOTHING", SchemaError, "primary key"),
        ("INSERT INTO t VALUES (1, 0, 'x') ON CONFLICT (id, v) DO NOTHING", SchemaError, "(id)"),
        ("INSERT INTO t VALUES (1, 0, 'x') ON CONFLICT DO UPDATE SET v = 0", SchemaError, "(id)"),
        (
            "INSERT INTO t VALUES (1, 0, 'x') ON CONFLICT (id) DO UPDATE SET nope = 0",
            ColumnNotFoundError,
            "nope",
        ),
        (
            "INSERT INTO t VALUES (1, 0, 'x') ON CONFLICT (id) DO UPDATE SET v = 1, v = 2",
            SchemaError,
            "twice",
        ),
        (
            "INSERT INTO t VALUES (1, 0, 'x') ON CONFLICT (id) DO UPDATE SET _seq = 1",
            SchemaError,
            "system column",
        ),
        (
            "INSERT INTO t VALUES (1, 0, 'x') ON CONFLICT (id) DO UPDATE SET v = v + 1",
            QueryError,
            "EXCLUDED.",
        ),
        (
            "INSERT INTO t VALUES (1, 0, 'x') ON CONFLICT (id) DO UPDATE "
            "SET v = (SELECT max(v) FROM t)",
            UnsupportedStatementError,
            "subqueries",
        ),
        (
            "INSERT INTO t VALUES (1, 0, 'x') ON CONFLICT ON CONSTRAINT t_pkey DO NOTHING",
            UnsupportedStatementError,
            "ON CONSTRAINT",
        ),
        ("INSERT OR ROLLBACK INTO t VALUES (1, 0, 'x')", UnsupportedStatementError, "ROLLBACK"),
    ]
    for sql, error, phrase in cases:
        unchanged(shared, sql, error, phrase)


def test_a_table_without_a_primary_key_refuses_every_conflict_form(engines: Engines) -> None:
    eng = engines.open(background_jobs=False)
    eng.execute("CREATE STREAM TABLE ev (k INT, v INT) WITH (TTL_SECONDS = 60)")
    eng.execute("INSERT INTO ev VALUES (1, 1)")
    for sql in (
        "INSERT INTO ev VALUES (1, 2) ON CONFLICT DO NOTHING",
        "INSERT OR IGNORE INTO ev VALUES (1, 2)",
        "INSERT OR REPLACE INTO ev VALUES (1, 2)",
    ):
        with pytest.raises(SchemaError, match="primary key"):
            eng.execute(sql)
    assert eng.execute("SELECT k, v FROM ev").rows() == [(1, 1)]


def test_a_plain_insert_of_an_existing_key_still_fails(forms: Forms) -> None:
    unchanged(forms, "INSERT INTO t VALUES (9, 9, 'n'), (1, 0, 'x')", PrimaryKeyViolationError)


# ---------------------------------------------------------------- rights


def test_upserts_that_may_change_rows_need_the_update_right() -> None:
    def actions(sql: str) -> tuple[str, ...]:
        stmt = parse(sql)[0]
        return security.write_actions(stmt)  # type: ignore[arg-type]

    assert actions("INSERT INTO t VALUES (1)") == ("INSERT",)
    assert actions("INSERT INTO t VALUES (1) ON CONFLICT DO NOTHING") == ("INSERT",)
    assert actions("INSERT OR IGNORE INTO t VALUES (1)") == ("INSERT",)
    assert actions("INSERT INTO t VALUES (1) ON CONFLICT (id) DO UPDATE SET v = 1") == (
        "INSERT",
        "UPDATE",
    )
    assert actions("INSERT OR REPLACE INTO t VALUES (1)") == ("INSERT", "UPDATE")
    assert actions("UPDATE t SET v = 1") == ("UPDATE",)
    assert actions("DELETE FROM t") == ("DELETE",)


def test_a_role_that_may_insert_but_not_update_cannot_upsert(
    shared: Forms, monkeypatch: pytest.MonkeyPatch
) -> None:
    shared.run("CREATE USER svc ROLE service")
    real = security.may_write
    monkeypatch.setattr(
        security,
        "may_write",
        lambda role, table_type, action: action != "UPDATE" and real(role, table_type, action),
    )
    shared.run("INSERT INTO t VALUES (5, 5, 'n') ON CONFLICT DO NOTHING", user="svc")
    for sql in (
        "INSERT INTO t VALUES (1, 0, 'x') ON CONFLICT (id) DO UPDATE SET v = 0",
        "INSERT OR REPLACE INTO t VALUES (6, 0, 'x')",
        "UPDATE t SET v = 0",
    ):
        unchanged(shared, sql, PermissionDeniedError, "UPDATE", user="svc")


def test_a_plain_user_cannot_upsert_into_a_shared_table(shared: Forms) -> None:
    unchanged(
        shared,
        "INSERT INTO t VALUES (1, 0, 'x') ON CONFLICT (id) DO UPDATE SET v = 0",
        PermissionDeniedError,
        "SHARED",
        user="ann",
    )


@pytest.mark.parametrize("flushed", [False, True], ids=["hot", "cold"])
def test_do_update_stores_timestamps_dates_and_other_types_right(
    engines: Engines, flushed: bool
) -> None:
    eng = engines.open(background_jobs=False)
    eng.execute("CREATE TABLE e (id INT PRIMARY KEY, at TIMESTAMP, d DATE, n BIGINT, v INT)")
    eng.execute("INSERT INTO e VALUES (1, '2025-01-01 10:00:00', '2025-01-01', 1, 1)")
    if flushed:
        eng.flush("e")
    upserts = [
        # EXCLUDED copies (no DataFusion), then literals, then expressions with a WHERE.
        "ON CONFLICT (id) DO UPDATE SET at = EXCLUDED.at, d = EXCLUDED.d, n = EXCLUDED.n",
        "ON CONFLICT (id) DO UPDATE SET at = '2025-02-02 02:00:00', d = '2025-02-02'",
        "ON CONFLICT (id) DO UPDATE SET at = EXCLUDED.at, v = EXCLUDED.n WHERE e.v < 100",
    ]
    expected = [
        ("2025-03-03 03:00:00", "2025-03-03", 7, 1),
        ("2025-02-02 02:00:00", "2025-02-02", 7, 1),
        ("2025-03-03 03:00:00", "2025-02-02", 7, 7),
    ]
    for clause, want in zip(upserts, expected, strict=True):
        res = eng.execute(
            f"INSERT INTO e VALUES (1, '2025-03-03 03:00:00', '2025-03-03', 7, 0) {clause}"
        )
        assert res.rows_affected == 1
        got = eng.execute("SELECT CAST(at AS VARCHAR), CAST(d AS VARCHAR), n, v FROM e").rows()
        assert got == [(want[0].replace(" ", "T"), *want[1:])], clause


def test_an_expired_stream_row_does_not_conflict(engines: Engines, clock: Any) -> None:
    eng = engines.open(background_jobs=False)
    eng.execute("CREATE STREAM TABLE ev (id INT PRIMARY KEY, v INT) WITH (TTL_SECONDS = 60)")
    eng.execute("INSERT INTO ev VALUES (1, 1), (2, 2)")
    upsert = "INSERT INTO ev VALUES (1, 10), (2, 20) ON CONFLICT (id) DO UPDATE SET v = ev.v + 100"
    res = eng.execute(upsert + " WHERE ev.id = 1")
    assert res.message == "Inserted 0 row(s), updated 1 row(s)"
    clock.advance(61)  # both rows are past their TTL: the proposed rows insert afresh
    res = eng.execute(upsert)
    assert res.message == "Inserted 2 row(s), updated 0 row(s)"
    assert eng.execute("SELECT id, v FROM ev ORDER BY id").rows() == [(1, 10), (2, 20)]


def test_the_parser_keeps_alias_returning_and_conflict_clause() -> None:
    from engine.sql import statements as st

    up = parse("UPDATE ns.t AS x SET v = 1 WHERE x.id = 2 RETURNING x.*, _seq")[0]
    assert isinstance(up, st.Update)
    assert up.table == st.TableRef("ns", "t") and up.table.alias == "x"
    assert up.returning == ("*", "_seq")
    de = parse("DELETE FROM t y RETURNING y.id")[0]
    assert isinstance(de, st.Delete) and de.table.alias == "y" and de.returning == ("id",)
    ins = parse(
        "INSERT INTO t VALUES (1, 2) ON CONFLICT (id) DO UPDATE SET v = EXCLUDED.v WHERE t.v < 3"
    )[0]
    assert isinstance(ins, st.Insert) and ins.on_conflict is not None
    assert ins.on_conflict.action == "update" and ins.on_conflict.target == ("id",)
    assert [name for name, _ in ins.on_conflict.assignments] == ["v"]
    assert ins.on_conflict.where is not None
    assert parse("INSERT OR IGNORE INTO t VALUES (1)")[0].on_conflict == st.OnConflict("nothing")
    assert parse("INSERT OR REPLACE INTO t VALUES (1)")[0].on_conflict == st.OnConflict("replace")
    assert parse("INSERT INTO t VALUES (1)")[0].on_conflict is None
    with pytest.raises(ColumnNotFoundError):
        parse("DELETE FROM t AS x RETURNING z.id")
