"""Merge-on-read across the hot store and Parquet segments (invariant 3).

Every test runs over a SHARED table and a USER table. For the USER table a
second user holds rows with the same primary keys; they must never be touched
by the first user's deletes, updates, flushes or primary-key checks.
"""

from __future__ import annotations

import pytest

pytest.register_assert_rewrite("conftest_cold")

from conftest_cold import OTHER_USER, Cold  # noqa: E402

from engine.errors import PrimaryKeyViolationError  # noqa: E402

pytest_plugins = ["conftest_cold"]

OTHER_ROWS = [(i, -i) for i in range(0, 45)]


def make_table(cold: Cold, kind: str) -> None:
    cold.create(kind)
    if kind == "USER":
        cold.insert(range(0, 45), user=OTHER_USER, v=lambda i: -i)
        cold.flush()


def assert_other_user_untouched(cold: Cold) -> None:
    if cold.kind == "USER":
        assert cold.rows(user=OTHER_USER) == OTHER_ROWS


def duplicated_keys(cold: Cold) -> list[tuple[int, int]]:
    return cold.sql(
        f"SELECT id, COUNT(*) AS n FROM {cold.table} GROUP BY id HAVING COUNT(*) > 1"
    ).rows()


def test_deleted_cold_row_stays_deleted_after_another_flush_and_restart(cold, kind):
    make_table(cold, kind)
    cold.insert(range(0, 10))
    cold.flush()
    assert cold.sql("DELETE FROM t WHERE id = 3").rows_affected == 1
    cold.insert([10])
    cold.flush()
    expected = [(i, i) for i in range(0, 11) if i != 3]
    assert cold.rows() == expected
    cold.restart()
    assert cold.rows() == expected
    assert cold.sql("SELECT COUNT(*) FROM t WHERE id = 3").scalar() == 0
    # A further flush with nothing of this user pending must not bring it back.
    cold.insert([11])
    cold.flush()
    cold.restart()
    assert cold.rows() == [*expected, (11, 11)]
    assert_other_user_untouched(cold)


def test_deleted_cold_row_stays_deleted_when_the_tombstone_is_still_hot(cold, kind):
    make_table(cold, kind)
    cold.insert(range(0, 10))
    cold.flush()
    cold.sql("DELETE FROM t WHERE id IN (2, 7)")
    cold.restart()
    assert cold.rows() == [(i, i) for i in range(0, 10) if i not in (2, 7)]
    assert cold.count() == 8
    assert_other_user_untouched(cold)


def test_row_updated_twice_with_a_flush_after_each_has_one_row_with_the_last_value(cold, kind):
    make_table(cold, kind)
    cold.insert(range(0, 5))
    cold.flush()
    cold.sql("UPDATE t SET v = 100 WHERE id = 2")
    cold.flush()
    cold.sql("UPDATE t SET v = 200 WHERE id = 2")
    cold.flush()
    expected = [(0, 0), (1, 1), (2, 200), (3, 3), (4, 4)]
    assert cold.rows() == expected
    assert cold.sql("SELECT v FROM t WHERE id = 2").rows() == [(200,)]
    assert duplicated_keys(cold) == []
    cold.restart()
    assert cold.rows() == expected
    assert cold.sql("SELECT COUNT(*) FROM t WHERE id = 2").scalar() == 1
    assert_other_user_untouched(cold)


def test_two_flushes_of_twenty_rows_count_forty(cold, kind):
    make_table(cold, kind)
    cold.insert(range(0, 20))
    cold.flush()
    cold.insert(range(20, 40))
    cold.flush()
    assert cold.count() == 40
    assert len(cold.manifest()["segments"]) == 2
    assert cold.sql("SELECT SUM(v) FROM t").scalar() == sum(range(40))
    cold.restart()
    assert cold.count() == 40
    assert_other_user_untouched(cold)


def test_inserting_a_key_that_exists_only_in_a_segment_is_a_primary_key_violation(cold, kind):
    make_table(cold, kind)
    cold.insert(range(0, 10))
    cold.flush()
    assert cold.stats("SELECT * FROM t")["hot_rows"] == 0
    with pytest.raises(PrimaryKeyViolationError) as info:
        cold.sql("INSERT INTO t (id, v) VALUES (5, 555)")
    assert info.value.code == "PRIMARY_KEY_VIOLATION"
    assert info.value.message == "Primary key violation: value '5' already exists in column 'id'"
    # A multi-row insert with one cold clash changes nothing.
    with pytest.raises(PrimaryKeyViolationError):
        cold.sql("INSERT INTO t (id, v) VALUES (50, 1), (7, 1)")
    assert cold.rows() == [(i, i) for i in range(0, 10)]
    cold.restart()
    with pytest.raises(PrimaryKeyViolationError):
        cold.sql("INSERT INTO t (id, v) VALUES (9, 1)")
    assert cold.rows() == [(i, i) for i in range(0, 10)]


def test_key_held_by_another_users_segment_is_free_in_a_user_table(cold):
    make_table(cold, "USER")
    cold.sql("INSERT INTO t (id, v) VALUES (5, 555)")
    assert cold.rows() == [(5, 555)]
    assert_other_user_untouched(cold)


def test_deleted_cold_row_can_be_inserted_again(cold, kind):
    make_table(cold, kind)
    cold.insert(range(0, 5))
    cold.flush()
    cold.sql("DELETE FROM t WHERE id = 1")
    cold.sql("INSERT INTO t (id, v) VALUES (1, 111)")
    assert cold.rows() == [(0, 0), (1, 111), (2, 2), (3, 3), (4, 4)]
    cold.flush()
    cold.restart()
    assert cold.rows() == [(0, 0), (1, 111), (2, 2), (3, 3), (4, 4)]
    # Deleted and flushed first, then re-inserted: same outcome.
    cold.sql("DELETE FROM t WHERE id = 2")
    cold.flush()
    cold.sql("INSERT INTO t (id, v) VALUES (2, 222)")
    assert cold.rows() == [(0, 0), (1, 111), (2, 222), (3, 3), (4, 4)]
    cold.flush()
    cold.restart()
    assert cold.rows() == [(0, 0), (1, 111), (2, 222), (3, 3), (4, 4)]
    assert duplicated_keys(cold) == []
    assert_other_user_untouched(cold)


def test_row_updated_after_flush_keeps_its_new_value_across_restart_and_flush(cold, kind):
    make_table(cold, kind)
    cold.insert(range(0, 5))
    cold.flush()
    cold.sql("UPDATE t SET v = v + 1000 WHERE id >= 3")
    expected = [(0, 0), (1, 1), (2, 2), (3, 1003), (4, 1004)]
    cold.restart()
    assert cold.rows() == expected
    cold.flush()
    assert cold.rows() == expected
    cold.restart()
    assert cold.rows() == expected
    assert duplicated_keys(cold) == []
    assert_other_user_untouched(cold)


def test_update_by_a_non_key_predicate_reaches_hot_and_cold_rows(cold, kind):
    make_table(cold, kind)
    cold.insert(range(0, 10))
    cold.flush()
    cold.insert(range(10, 20))
    assert cold.sql("UPDATE t SET note = 'big' WHERE v >= 8 AND v < 12").rows_affected == 4
    cold.flush()
    cold.restart()
    assert cold.sql("SELECT id FROM t WHERE note = 'big' ORDER BY id").rows() == [
        (8,),
        (9,),
        (10,),
        (11,),
    ]
    assert cold.count() == 20


def test_exactly_one_live_version_per_key_after_mixed_history(cold, kind):
    make_table(cold, kind)
    model = {}
    for round_ in range(4):
        base = round_ * 5
        cold.insert(range(base, base + 5))
        model.update({i: i for i in range(base, base + 5)})
        cold.sql("UPDATE t SET v = v + 1 WHERE id % 3 = 0")
        model.update({k: v + 1 for k, v in model.items() if k % 3 == 0})
        cold.sql(f"DELETE FROM t WHERE id = {base + 1}")
        model.pop(base + 1, None)
        if round_ % 2 == 0:
            cold.flush()
        if round_ == 2:
            cold.restart()
    expected = sorted(model.items())
    for _ in range(2):
        assert cold.rows() == expected
        assert duplicated_keys(cold) == []
        assert cold.count() == len(model)
        cold.flush()
        cold.restart()
    assert_other_user_untouched(cold)


def test_delete_of_every_row_after_flush_leaves_an_empty_table(cold, kind):
    make_table(cold, kind)
    cold.insert(range(0, 10))
    cold.flush()
    assert cold.sql("DELETE FROM t WHERE id >= 0").rows_affected == 10
    cold.flush()
    cold.restart()
    assert cold.count() == 0
    assert cold.rows() == []
    assert_other_user_untouched(cold)
