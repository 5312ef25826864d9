"""Integer overflow in what a statement writes is an error that changes
nothing, never a silently wrapped value (DataFusion's ``+ - *`` wrap)."""

from __future__ import annotations

import pytest

from engine import Engine
from engine.errors import NumericOverflowError, TypeMismatchError

MAX, MIN = 2**63 - 1, -(2**63)


@pytest.fixture(params=["hot", "cold"])
def eng(tmp_path, request):
    with Engine.open(tmp_path, background_jobs=False) as e:
        e.execute("CREATE TABLE c (id BIGINT PRIMARY KEY, n BIGINT, i INT)")
        e.execute("INSERT INTO c VALUES (1, ?, 0), (2, ?, 2147483647), (3, 5, 5)", [MAX, MIN])
        if request.param == "cold":
            e.flush("c")
        yield e


def _state(eng):
    return eng.execute("SELECT id, n, i FROM c ORDER BY id").rows()


BEFORE = [(1, MAX, 0), (2, MIN, 2147483647), (3, 5, 5)]


@pytest.mark.parametrize(
    ("sql", "params"),
    [
        ("UPDATE c SET n = n + 1", None),
        ("UPDATE c SET n = n + 1 WHERE id = 1", None),
        ("UPDATE c AS x SET n = x.n * 2 WHERE id IN (1, 3)", None),
        ("UPDATE c SET n = -n - 2 WHERE id = 2", None),
        ("UPDATE c SET n = n - ? WHERE id = 2", [1]),
        ("UPDATE c SET n = (n + 10) - 20 WHERE id = 1", None),
        ("INSERT INTO c VALUES (4, 9223372036854775807 + 1, 0)", None),
        ("INSERT INTO c VALUES (4, ? * 2, 0)", [MAX]),
    ],
)
def test_an_overflowing_write_is_refused_and_changes_nothing(eng, sql, params):
    with pytest.raises(NumericOverflowError) as caught:
        eng.execute(sql, params)
    assert caught.value.code == "NUMERIC_OVERFLOW"
    assert _state(eng) == BEFORE
    assert eng.execute("SELECT sum(CAST(n AS DECIMAL(38, 0))) FROM c").scalar() == MAX + MIN + 5


def test_values_that_fit_are_written_exactly(eng):
    eng.execute("UPDATE c SET n = n - 1 WHERE id = 1")
    eng.execute("UPDATE c SET n = n + 1 WHERE id = 2")
    eng.execute("UPDATE c SET n = n * 3 + 1 WHERE id = 3")
    eng.execute("INSERT INTO c VALUES (4, 9223372036854775806 + 1, 0)")
    assert [r[1] for r in _state(eng)] == [MAX - 1, MIN + 1, 16, MAX]


def test_a_32_bit_column_refuses_a_value_outside_its_range(eng):
    with pytest.raises(TypeMismatchError, match="out of range"):
        eng.execute("UPDATE c SET i = i + 1 WHERE id = 2")
    assert _state(eng) == BEFORE


def test_insert_arrow_refuses_a_double_beyond_float_range_and_changes_nothing(tmp_path):
    import pyarrow as pa

    with Engine.open(tmp_path, background_jobs=False) as e:
        e.execute("CREATE SHARED TABLE f (a INT PRIMARY KEY, b FLOAT)")
        with pytest.raises(TypeMismatchError, match="out of range"):
            e.insert_arrow("f", pa.table({"a": [1, 2], "b": [1.5, 1e300]}))
        assert e.execute("SELECT count(*) FROM f").scalar() == 0
        e.insert_arrow("f", pa.table({"a": [3], "b": [float("inf")]}))  # inf stays inf
        assert e.execute("SELECT b FROM f").scalar() == float("inf")


@pytest.mark.parametrize(
    "sql",
    [
        "INSERT INTO c VALUES (1, 1, 0) ON CONFLICT (id) DO UPDATE SET n = c.n + 1",
        "INSERT INTO c AS x VALUES (1, 1, 0) ON CONFLICT (id) DO UPDATE SET n = x.n + EXCLUDED.n",
        "INSERT INTO c VALUES (3, 9223372036854775807, 0) ON CONFLICT (id) "
        "DO UPDATE SET n = EXCLUDED.n * 2",
    ],
)
def test_an_overflowing_upsert_is_refused_and_changes_nothing(eng, sql):
    with pytest.raises(NumericOverflowError):
        eng.execute(sql)
    assert _state(eng) == BEFORE


def test_an_upsert_that_fits_is_written_exactly(eng):
    eng.execute(
        "INSERT INTO c AS x VALUES (1, -1, 0) ON CONFLICT (id) DO UPDATE SET n = x.n + EXCLUDED.n"
    )
    assert _state(eng)[0] == (1, MAX - 1, 0)
