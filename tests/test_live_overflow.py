"""A live query's integer arithmetic fails on overflow as the same SELECT does
(engine/live/evaluate.py, engine/sql/checked_ints.py).

Before, a subscription ran its projection and WHERE as DataFusion wraps
them: ``b * 1000000000000`` over a BIGINT holding 10^7 came as
-8446744073709551616 in the initial rows and in every change, and ``WHERE
b * 1000000000000 > 0`` silently left the row out, where ``SELECT`` raises
"Numeric overflow"."""

from __future__ import annotations

import pytest

from engine import Engine
from engine.errors import LiveQueryClosedError, NumericOverflowError

WAIT = 20.0
BIG = 10_000_000  # * 10^12 = 10^19, beyond BIGINT
PROJECTION = "SELECT id, b * 1000000000000 AS x FROM t"
FILTER = "SELECT id FROM t WHERE b * 1000000000000 > 0"


@pytest.fixture(params=["hot", "cold"])
def t(tmp_path, request):
    with Engine.open(tmp_path, background_jobs=False) as e:
        e.execute("CREATE TABLE t (id INT PRIMARY KEY, b BIGINT, i INT)")
        e.execute("INSERT INTO t VALUES (1, 1, 1)")
        if request.param == "cold":
            e.flush("t")
        yield e


@pytest.mark.parametrize("sql", [PROJECTION, FILTER])
def test_subscribing_over_a_row_that_overflows_raises_what_select_raises(t, sql):
    t.execute("INSERT INTO t VALUES (2, ?, 0)", [BIG])
    with pytest.raises(NumericOverflowError) as selected:
        t.execute(sql)
    with pytest.raises(NumericOverflowError) as subscribed:  # was: rows with a wrapped value
        t.subscribe(sql)
    assert subscribed.value.message == selected.value.message
    assert "10000000000000000000" in subscribed.value.message
    assert t.db.subscriptions.snapshot() == []


@pytest.mark.parametrize("sql", [PROJECTION, FILTER])
def test_a_change_that_overflows_ends_the_subscription_with_the_overflow_error(t, sql):
    sub = t.subscribe(sql)
    assert sub.initial.column("id").to_pylist() == [1]
    t.execute("INSERT INTO t VALUES (2, ?, 0)", [BIG])
    # Was: an insert carrying x = -8446744073709551616 (projection), or no
    # change at all (filter: the wrapped value is negative).
    with pytest.raises(LiveQueryClosedError) as info:
        sub.get(timeout=WAIT)
    assert "Numeric overflow" in info.value.message
    assert "10000000000000000000" in info.value.message


def test_values_that_fit_still_arrive_unchanged(t):
    sub = t.subscribe("SELECT id, b * 1000000000000 AS x, i * 1000 AS y FROM t WHERE b > 0")
    t.execute("INSERT INTO t VALUES (2, 9000000, 2000000000)")
    change = sub.get(timeout=WAIT)
    assert change is not None and change.change_type == "insert"
    assert change.rows.to_pylist() == [{"id": 2, "x": 9_000_000_000_000_000_000, "y": 2 * 10**12}]
    sub.close()
