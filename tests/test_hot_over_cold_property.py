"""Property test: random writes, flushes and compactions of a table whose hot
rows overlap its cold rows; after every step ``count(*)``, ``min`` / ``max``
and ``SELECT * LIMIT n`` (whichever shortcut answers them) must agree with
the full plan (``WHERE true``) and with DuckDB holding the same rows.

The table is a USER table written by two users (isolation: each sees only
their own rows) or a SHARED one, with delete markers kept (``DELTA = false``)
or rewritten away at each flush. Besides one-row statements, bulk loads of
1,100 rows and set-based updates of them exercise the columnar hot batches
(``insert_arrow`` chunks, a key index of sorted integer arrays).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from helpers_differential import USERS, EngineBesideDuckDB, machine_settings
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import initialize, invariant, precondition, rule

from engine.providers.base import KeyMatcher

SMALL_KEYS = st.integers(0, 30)
VALUES = st.none() | st.integers(-5, 5)
BULK_BASES = (1000, 3000)
BULK_ROWS = 1100


class HotOverCold(EngineBesideDuckDB):
    dir_prefix = "kalam-hotcold-"

    def __init__(self) -> None:
        super().__init__()
        self.loaded: set[tuple[str, int]] = set()

    @initialize(delta=st.booleans())
    def create(self, delta: bool) -> None:
        self.eng.execute(
            f"CREATE {self.table_type} TABLE t (id BIGINT PRIMARY KEY, n INT) "
            f"WITH (DELTA = {str(delta).lower()}, COMPACT_POLICY = 'none')"
        )
        for user in self.writers:
            self.duck.execute(f"CREATE TABLE t_{user} (id BIGINT PRIMARY KEY, n INT)")
        self.log.append(f"CREATE (DELTA = {delta})")

    def readers_table(self, user: str) -> str:
        return f"t_{user}" if self.table_type == "USER" else "t_root"

    def both(self, sql: str, user: str) -> None:
        self.log.append(f"{user}: {sql}")
        self.eng.execute(sql, user=user)
        self.duck.execute(sql.replace(" t ", f" t_{user} ", 1))

    # ---- steps
    @rule(data=st.data(), keys=st.lists(SMALL_KEYS, min_size=1, max_size=4, unique=True))
    def insert(self, data: st.DataObject, keys: list[int]) -> None:
        user = data.draw(st.sampled_from(self.writers))
        taken = {
            k for (k,) in self.duck.execute(f"SELECT id FROM t_{user} WHERE id < 1000").fetchall()
        }
        keys = [k for k in keys if k not in taken]
        if keys:
            values = ", ".join(f"({k}, {data.draw(VALUES) or 'NULL'})" for k in keys)
            self.both(f"INSERT INTO t VALUES {values}", user)

    @rule(data=st.data(), lo=SMALL_KEYS, width=st.integers(0, 8), value=VALUES)
    def update(self, data: st.DataObject, lo: int, width: int, value: int | None) -> None:
        user = data.draw(st.sampled_from(self.writers))
        shown = "NULL" if value is None else str(value)
        self.both(f"UPDATE t SET n = {shown} WHERE id BETWEEN {lo} AND {lo + width}", user)

    @rule(data=st.data(), lo=SMALL_KEYS, width=st.integers(0, 5))
    def delete(self, data: st.DataObject, lo: int, width: int) -> None:
        user = data.draw(st.sampled_from(self.writers))
        self.both(f"DELETE FROM t WHERE id BETWEEN {lo} AND {lo + width}", user)

    @rule(data=st.data(), base=st.sampled_from(BULK_BASES))
    def bulk_load(self, data: st.DataObject, base: int) -> None:
        user = data.draw(st.sampled_from(self.writers))
        if (user, base) in self.loaded:
            return
        self.loaded.add((user, base))
        ids = list(range(base, base + BULK_ROWS))
        self.log.append(f"{user}: insert_arrow {base}..{base + BULK_ROWS}")
        self.eng.insert_arrow(
            "t", pa.table({"id": pa.array(ids, pa.int64()), "n": [i % 5 for i in ids]}), user=user
        )
        self.duck.execute(
            f"INSERT INTO t_{user} SELECT i, i % 5 FROM range({base}, {base + BULK_ROWS}) r(i)"
        )

    @precondition(lambda self: bool(self.loaded))
    @rule(data=st.data(), step=st.sampled_from([1, 2, 7]))
    def bulk_update(self, data: st.DataObject, step: int) -> None:
        user = data.draw(st.sampled_from(self.writers))
        self.both(f"UPDATE t SET n = n + 1 WHERE id >= 1000 AND id % {step} = 0", user)

    @precondition(lambda self: bool(self.loaded))
    @rule(data=st.data(), step=st.sampled_from([3, 50]))
    def bulk_delete(self, data: st.DataObject, step: int) -> None:
        user = data.draw(st.sampled_from(self.writers))
        self.both(f"DELETE FROM t WHERE id >= 1000 AND id % {step} = 1", user)

    @rule()
    def flush(self) -> None:
        self.log.append("FLUSH")
        self.eng.execute("FLUSH TABLE t WAIT")

    @rule()
    def compact(self) -> None:
        self.log.append("COMPACT")
        self.eng.execute("COMPACT TABLE t WAIT")

    # ---- the comparison
    @invariant()
    def shortcuts_agree_with_the_plan_and_duckdb(self) -> None:
        for user in USERS:
            duck = self.readers_table(user) if user in self.writers else None
            self._check_aggregates(user, duck)
            self._check_limit(user, duck)

    def _check_aggregates(self, user: str, duck: str | None) -> None:
        for sql in ("SELECT count(*) FROM t", "SELECT count(*), min(n), max(id), max(n) FROM t"):
            got = self.eng.execute(sql, user=user).rows()
            planned = self.eng.execute(sql + " WHERE true", user=user).rows()
            assert got == planned, (sql, user, got, planned, self.log[-10:])
            if duck is not None:
                theirs = self.duck.execute(sql.replace(" t", f" {duck}")).fetchall()
                assert got == theirs, (sql, user, got, theirs, self.log[-10:])

    def _check_limit(self, user: str, duck: str | None) -> None:
        every = self.eng.execute("SELECT * FROM t WHERE true", user=user).rows()
        if duck is not None:
            theirs = self.duck.execute(f"SELECT * FROM {duck}").fetchall()
            assert sorted(every, key=repr) == sorted(theirs, key=repr), self.log[-10:]
        for n in (1, 5, 40):
            rows = self.eng.execute(f"SELECT * FROM t LIMIT {n}", user=user).rows()
            assert len(rows) == min(n, len(every)), (n, user, self.log[-10:])
            assert len(set(rows)) == len(rows)
            assert set(rows) <= set(every), (n, user, set(rows) - set(every), self.log[-10:])


class SharedHotOverCold(HotOverCold):
    table_type = "SHARED"


SETTINGS = machine_settings(max_examples=20, stateful_step_count=15)

TestUserTableShortcuts = HotOverCold.TestCase
TestUserTableShortcuts.settings = SETTINGS
TestSharedTableShortcuts = SharedHotOverCold.TestCase
TestSharedTableShortcuts.settings = SETTINGS


# ---- the hidden-row matcher alone, against a brute-force count

INT64 = st.integers(-(2**63), 2**63 - 1)


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(
    cold=st.lists(st.integers(-50, 50) | INT64, max_size=60),
    hot=st.lists(st.integers(-60, 60) | INT64, max_size=30, unique=True),
)
def test_key_matcher_counts_every_hidden_cold_row(cold: list[int], hot: list[int]) -> None:
    matcher = KeyMatcher(np.sort(np.asarray(cold, dtype=np.int64)))
    expected = sum(cold.count(k) for k in hot)
    assert matcher.matches(np.asarray(hot, dtype=np.int64)) == expected


def test_key_matcher_uses_a_bitmap_for_dense_keys_and_binary_search_for_sparse_ones() -> None:
    dense = KeyMatcher(np.arange(0, 1000, 2, dtype=np.int64))
    sparse = KeyMatcher(np.arange(0, 100_000, 100, dtype=np.int64))
    assert dense.bitmap is not None and sparse.bitmap is None
    probe = np.asarray([-2, 0, 3, 100, 998, 1000, 99_900, 2**62], dtype=np.int64)
    assert dense.matches(probe) == 3  # 0, 100, 998
    assert sparse.matches(probe) == 4  # 0, 100, 1000, 99_900
