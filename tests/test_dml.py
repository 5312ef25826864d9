"""UPDATE and DELETE: predicates DataFusion evaluates, row counts, all-or-nothing
checks, per-user scoping, tombstones, and rows that live in segments.

Most tests run on the ``db`` fixture: a table ``t (id INT PRIMARY KEY, v INT,
s TEXT NOT NULL)`` of every table type, seeded with ids 1..10 laid out hot,
cold, both, updated after a flush or deleted after a flush (see
``conftest_dml``). Each statement is mirrored on a Python model and
``db.verify()`` checks the result now, after a flush and after restarts.
"""

from __future__ import annotations

import threading

import conftest_dml
import pytest
from conftest_dml import USERS, Db, seed

from engine.errors import (
    ColumnNotFoundError,
    KalamError,
    NotNullViolationError,
    SchemaError,
    TypeMismatchError,
)

# Fixtures shared with the other DML/ALTER modules (conftest.py belongs to another suite).
db = conftest_dml.db
fresh = conftest_dml.fresh


def run(db: Db, sql: str, expected: int, *, verb: str, user: str = "root") -> None:
    result = db.execute(sql, user=user)
    assert result.rows_affected == expected, (sql, result.message)
    assert result.message == f"{verb} {expected} row(s)"
    assert not result.is_query


def update(db: Db, sql: str, expected: int, *, user: str = "root") -> None:
    run(db, sql, expected, verb="Updated", user=user)


def delete(db: Db, sql: str, expected: int, *, user: str = "root") -> None:
    run(db, sql, expected, verb="Deleted", user=user)


# ---------------------------------------------------------------- UPDATE


def test_update_one_row_by_primary_key(db):
    n = db.expect_update(lambda r: r.id == 3, v=lambda r: r.v + 1)
    assert n == 1
    update(db, "UPDATE t SET v = v + 1 WHERE id = 3", n)
    db.verify()


def test_update_without_where_changes_every_row(db):
    n = db.expect_update(lambda r: True, s=lambda r: r.s.upper())
    assert n == 10
    update(db, "UPDATE t SET s = upper(s)", n)
    db.verify()


def test_update_several_columns_at_once(db):
    n = db.expect_update(lambda r: r.id in (2, 4), v=lambda r: r.id * 1000, s=lambda r: "x")
    update(db, "UPDATE t SET v = id * 1000, s = 'x' WHERE id IN (2, 4)", n)
    assert n == 2
    db.verify()


def test_update_with_case_counts_every_matched_row_even_those_left_as_they_were(db):
    # Odd rows are "updated" to their own value: they count, as in PostgreSQL.
    n = db.expect_update(lambda r: True, v=lambda r: r.v * 2 if r.id % 2 == 0 else r.v)
    assert n == 10
    update(db, "UPDATE t SET v = CASE WHEN id % 2 = 0 THEN v * 2 ELSE v END", n)
    db.verify()


def test_update_to_identical_values_counts_the_matched_rows(db):
    update(db, "UPDATE t SET v = v", 10)
    update(db, "UPDATE t SET v = 30, s = s WHERE id = 3", 1)
    update(db, "UPDATE t SET s = s || '' WHERE id <= 5", 5)
    db.verify()


def test_update_to_null(db):
    n = db.expect_update(lambda r: r.id >= 8, v=lambda r: None)
    update(db, "UPDATE t SET v = NULL WHERE id >= 8", n)
    assert n == 3
    update(db, "UPDATE t SET v = NULL WHERE id >= 8", 3)  # NULL to NULL: matched
    db.verify()


def test_update_with_functions_and_in_lists(db):
    n = db.expect_update(
        lambda r: r.id in (1, 5, 7) or r.s.endswith("9"),
        s=lambda r: f"{r.s}-{len(r.s)}",
    )
    update(
        db,
        "UPDATE t SET s = concat(s, '-', CAST(length(s) AS TEXT)) "
        "WHERE id IN (1, 5, 7) OR right(s, 1) = '9'",
        n,
    )
    assert n == 4
    db.verify()


def test_update_between_and_not(db):
    n = db.expect_update(lambda r: 3 <= r.id <= 6 and r.id != 4, v=lambda r: -1)
    update(db, "UPDATE t SET v = -1 WHERE id BETWEEN 3 AND 6 AND NOT (id = 4)", n)
    assert n == 3
    db.verify()


def test_update_where_uncorrelated_subquery_over_another_table(db):
    db.execute("CREATE SHARED TABLE pick (id INT PRIMARY KEY, bonus INT)")
    db.execute("INSERT INTO pick VALUES (2, 5), (3, 7), (99, 1)")
    n = db.expect_update(lambda r: r.id in (2, 3), v=lambda r: 7)
    update(
        db, "UPDATE t SET v = (SELECT max(bonus) FROM pick) WHERE id IN (SELECT id FROM pick)", n
    )
    assert n == 2
    db.verify()


def test_update_set_from_correlated_subquery(db):
    db.execute("CREATE SHARED TABLE pick (id INT PRIMARY KEY, bonus INT)")
    db.execute("INSERT INTO pick VALUES (2, 5), (3, 7)")
    bonus = {2: 5, 3: 7}
    n = db.expect_update(lambda r: r.id in bonus, v=lambda r: bonus[r.id])
    update(
        db,
        "UPDATE t SET v = (SELECT max(p.bonus) FROM pick p WHERE p.id = t.id) "
        "WHERE EXISTS (SELECT 1 FROM pick p WHERE p.id = t.id)",
        n,
    )
    assert n == 2
    db.verify()


def test_update_where_seq_names_one_version(db):
    (seq,) = db.execute("SELECT _seq FROM t WHERE id = 4").rows()[0]
    n = db.expect_update(lambda r: r.id == 4, s=lambda r: "by-seq")
    update(db, f"UPDATE t SET s = 'by-seq' WHERE _seq = {seq}", n)
    assert n == 1
    # The updated row has a new _seq: the old one no longer matches anything.
    update(db, f"UPDATE t SET s = 'again' WHERE _seq = {seq}", 0)
    (new_seq,) = db.execute("SELECT _seq FROM t WHERE id = 4").rows()[0]
    assert new_seq > seq
    db.verify()


def test_update_of_a_missing_row_counts_zero(db):
    update(db, "UPDATE t SET v = 1 WHERE id = 404", 0)
    db.verify()


def test_updating_a_deleted_row_counts_zero_and_does_not_revive_it(db):
    db.expect_delete(lambda r: r.id == 2)
    delete(db, "DELETE FROM t WHERE id = 2", 1)
    update(db, "UPDATE t SET v = 5 WHERE id = 2", 0)
    update(db, "UPDATE t SET v = 5 WHERE id = 11", 0)  # deleted in the seed (some placements)
    db.verify()


def test_update_with_bound_parameters(db):
    n = db.expect_update(lambda r: r.id == 6, s=lambda r: "it's; --")
    result = db.execute("UPDATE t SET s = ? WHERE id = ?", ["it's; --", 6])
    assert result.rows_affected == n == 1
    db.verify()


def test_repeated_updates_of_one_row_keep_only_the_last(db):
    for i in range(5):
        db.expect_update(lambda r: r.id == 1, v=lambda r, i=i: i)
        update(db, f"UPDATE t SET v = {i} WHERE id = 1", 1)
    assert db.execute("SELECT count(*) FROM t WHERE id = 1").scalar() == 1
    db.verify()


def test_update_with_repeated_subexpression(db):
    # DataFusion's own DML failed on these with "No field named __common_expr_N".
    n = db.expect_update(
        lambda r: (r.v + 1) * 2 > 50 and (r.v + 1) * 2 < 150, v=lambda r: (r.v + 1) * 2
    )
    update(db, "UPDATE t SET v = (v + 1) * 2 WHERE (v + 1) * 2 > 50 AND (v + 1) * 2 < 150", n)
    db.verify()


# ---------------------------------------------------------------- UPDATE errors


def test_updating_the_primary_key_is_an_error(db, expect_error):
    expect_error(
        db.eng,
        "UPDATE t SET id = id + 100 WHERE id = 1",
        SchemaError,
        "SCHEMA_ERROR",
        "primary key",
        users=USERS,
    )
    expect_error(db.eng, "UPDATE t SET v = 0, id = 5", SchemaError, "SCHEMA_ERROR", users=USERS)


def test_not_null_violation_on_a_later_row_changes_nothing(db, expect_error):
    sql = "UPDATE t SET s = CASE WHEN id = 3 THEN NULL ELSE 'x' END WHERE id IN (1, 2, 3)"
    expect_error(db.eng, sql, NotNullViolationError, "NOT_NULL_VIOLATION", "'s'", users=USERS)
    db.verify()


def test_type_checks_apply_to_new_values(db, expect_error):
    expect_error(
        db.eng,
        "UPDATE t SET v = 'abc' WHERE id = 1",
        TypeMismatchError,
        "TYPE_MISMATCH",
        users=USERS,
    )
    expect_error(
        db.eng,
        "UPDATE t SET v = 3000000000 WHERE id < 4",
        TypeMismatchError,
        "TYPE_MISMATCH",
        users=USERS,
    )
    expect_error(
        db.eng,
        "UPDATE t SET v = CASE WHEN id = 9 THEN 3000000000 ELSE 1 END",
        TypeMismatchError,
        "TYPE_MISMATCH",
        users=USERS,
    )
    db.verify()


def test_unknown_columns_are_errors(db, expect_error):
    expect_error(
        db.eng,
        "UPDATE t SET nope = 1",
        ColumnNotFoundError,
        "COLUMN_NOT_FOUND",
        "nope",
        users=USERS,
    )
    with pytest.raises(KalamError, match="nope"):
        db.execute("UPDATE t SET v = 1 WHERE nope = 2")
    with pytest.raises(KalamError, match="nope"):
        db.execute("DELETE FROM t WHERE nope = 2")
    db.check()


def test_system_columns_cannot_be_assigned(db):
    with pytest.raises(KalamError):
        db.execute("UPDATE t SET _seq = 1 WHERE id = 1")
    with pytest.raises(KalamError):
        db.execute("UPDATE t SET _deleted = true WHERE id = 1")
    db.verify()


# ---------------------------------------------------------------- DELETE


def test_delete_one_row_then_again_counts_zero(db):
    assert db.expect_delete(lambda r: r.id == 5) == 1
    delete(db, "DELETE FROM t WHERE id = 5", 1)
    delete(db, "DELETE FROM t WHERE id = 5", 0)
    delete(db, "DELETE FROM t WHERE id = 404", 0)
    db.verify()


@pytest.mark.parametrize(
    "predicate",
    ["false", "1 = 0", "v > 50 AND v < 30", "id IN (404, 405)", "NOT (id = id)", "s IS NULL"],
)
def test_delete_with_an_always_false_predicate_deletes_nothing(db, predicate):
    # datafusion 55's own DELETE ... WHERE false deleted every row.
    delete(db, f"DELETE FROM t WHERE {predicate}", 0)
    db.verify()


def test_delete_without_where_deletes_every_row(db):
    n = db.expect_delete(lambda r: True)
    assert n == 10
    delete(db, "DELETE FROM t", n)
    assert db.rows() == []
    db.verify()


def test_delete_with_functions_in_lists_and_or(db):
    n = db.expect_delete(lambda r: r.id % 3 == 0 or r.id in (1, 2))
    delete(db, "DELETE FROM t WHERE id % 3 = 0 OR id IN (1, 2)", n)
    assert n == 5
    db.verify()


def test_delete_where_subquery_over_another_table(db):
    db.execute("CREATE SHARED TABLE gone (id INT PRIMARY KEY)")
    db.execute("INSERT INTO gone VALUES (4), (8), (400)")
    n = db.expect_delete(lambda r: r.id in (4, 8))
    delete(db, "DELETE FROM t WHERE id IN (SELECT id FROM gone)", n)
    assert n == 2
    db.verify()


def test_delete_where_seq_above_a_mark(db):
    (mark,) = db.execute("SELECT max(_seq) FROM t").rows()[0]
    db.insert([(20, 1, "new"), (21, 2, "new")])
    n = db.expect_delete(lambda r: r.id in (20, 21))
    delete(db, f"DELETE FROM t WHERE _seq > {mark}", n)
    db.verify()


def test_deleted_row_can_be_inserted_again(db):
    db.expect_delete(lambda r: r.id == 7)
    delete(db, "DELETE FROM t WHERE id = 7", 1)
    db.insert([(7, 700, "again")])
    db.verify()


def test_tombstones_are_visible_until_a_flush(db):
    db.expect_delete(lambda r: r.id in (3, 9))
    delete(db, "DELETE FROM t WHERE id IN (3, 9)", 2)
    db.check_tombstones("after the delete")
    # The tombstone keeps the row's last values.
    assert db.execute("SELECT id, v, _deleted FROM t WHERE _deleted = true AND id = 3").rows() == [
        (3, 30, True)
    ]
    assert 3 not in [i for (i,) in db.execute("SELECT id FROM t").rows()]
    db.restart()
    db.check_tombstones("after a restart")
    if db.flushable:
        db.flush()
        db.check_tombstones("after a flush")
        assert db.execute("SELECT count(*) FROM t WHERE _deleted = true").scalar() == 0
        db.restart()
        db.check_tombstones("after a flush and a restart")
    db.check()


# ---------------------------------------------------------------- USER scoping


def test_user_tables_touch_only_the_session_users_rows(db):
    if db.table_type != "USER":
        pytest.skip("scoping applies to USER tables")
    n = db.expect_update(lambda r: True, user="bob", v=lambda r: 0)
    update(db, "UPDATE t SET v = 0", n, user="bob")
    n = db.expect_delete(lambda r: r.id <= 3, user="bob")
    delete(db, "DELETE FROM t WHERE id <= 3", n, user="bob")
    # root's rows with the same primary keys are untouched (db.check looks at both).
    n = db.expect_update(lambda r: r.id == 2, s=lambda r: "root's")
    update(db, "UPDATE t SET s = 'root''s' WHERE id = 2", n)
    db.verify()


def test_user_update_predicate_cannot_reach_other_users_rows(db):
    if db.table_type != "USER":
        pytest.skip("scoping applies to USER tables")
    # bob's v values are negative; root's are positive: root matches none of bob's.
    update(db, "UPDATE t SET s = 'hit' WHERE v < 0", 0)
    delete(db, "DELETE FROM t WHERE s LIKE 'b%'", 0)
    delete(db, "DELETE FROM t WHERE v > 0", 0, user="bob")
    db.verify()


def test_a_user_without_rows_changes_nothing(db):
    if db.table_type != "USER":
        pytest.skip("scoping applies to USER tables")
    update(db, "UPDATE t SET v = 1", 0, user="carol")
    delete(db, "DELETE FROM t", 0, user="carol")
    db.verify()


# ---------------------------------------------------------------- cold rows over time


def test_cold_row_history_never_resurrects(fresh):
    db = fresh
    db.create()
    db.insert([(1, 10, "a"), (2, 20, "b"), (3, 30, "c")])
    db.flush()
    for step in range(3):
        db.expect_update(lambda r: r.id == 1, v=lambda r, step=step: step)
        update(db, f"UPDATE t SET v = {step} WHERE id = 1", 1)
        db.flush()
        db.check(f"after update {step} and a flush")
    db.expect_delete(lambda r: r.id in (1, 2))
    delete(db, "DELETE FROM t WHERE id IN (1, 2)", 2)
    db.flush()
    db.restart()
    db.check("after delete, flush, restart")
    db.insert([(2, 222, "reborn")])
    db.flush()
    db.insert([(4, 40, "d")])
    db.verify()
    assert db.execute("SELECT count(*) FROM t").scalar() == 3


def test_update_after_flush_does_not_duplicate(fresh):
    db = fresh
    db.create()
    db.insert([(i, i, f"s{i}") for i in range(1, 6)])
    db.flush()
    db.expect_update(lambda r: True, v=lambda r: r.v + 100)
    update(db, "UPDATE t SET v = v + 100", 5)
    assert db.execute("SELECT count(*), count(DISTINCT id) FROM t").rows() == [(5, 5)]
    db.verify()
    assert db.execute("SELECT count(*), count(DISTINCT id) FROM t").rows() == [(5, 5)]


# ---------------------------------------------------------------- concurrency


@pytest.mark.parametrize("placement", ["hot", "cold"])
def test_concurrent_updates_of_one_row_all_succeed(fresh, placement):
    db = fresh
    seed(db, placement)
    threads = 6
    start = threading.Barrier(threads)
    results: list[object] = [None] * threads

    def work(i: int) -> None:
        start.wait(timeout=30)
        try:
            results[i] = db.execute(f"UPDATE t SET v = {1000 + i} WHERE id = 1").rows_affected
        except BaseException as exc:  # reported below
            results[i] = exc

    workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=60)
    assert results == [1] * threads
    (final,) = db.execute("SELECT v FROM t WHERE id = 1").rows()[0]
    assert final in {1000 + i for i in range(threads)}
    db.expect_update(lambda r: r.id == 1, v=lambda r: final)
    db.verify()


@pytest.mark.parametrize("placement", ["hot", "cold"])
def test_twenty_rapid_increments_add_twenty(fresh, placement):
    db = fresh
    seed(db, placement)
    for _ in range(20):
        update(db, "UPDATE t SET v = v + 1 WHERE id = 1", 1)
    assert db.execute("SELECT v FROM t WHERE id = 1").scalar() == 10 + 20
    db.expect_update(lambda r: r.id == 1, v=lambda r: r.v + 20)
    db.verify()


def test_concurrent_increments_serialise(fresh):
    db = fresh
    seed(db, "both")
    threads, each = 4, 5
    start = threading.Barrier(threads)
    errors: list[BaseException] = []

    def work() -> None:
        start.wait(timeout=30)
        try:
            for _ in range(each):
                db.execute("UPDATE t SET v = v + 1 WHERE id = 1")
        except BaseException as exc:
            errors.append(exc)

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=60)
    assert errors == []
    assert db.execute("SELECT v FROM t WHERE id = 1").scalar() == 10 + threads * each
