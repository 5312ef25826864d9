"""Set-based UPDATE and DELETE take the columnar route (issue 15).

Thousands of target rows (more than a bulk chunk's 1,024) are converted and
checked a column at a time and staged as one record batch; these tests pin
that the route writes exactly what the row-by-row route wrote: values, the
rows counted, the errors (and that a failing statement changes nothing),
RETURNING, USER scoping, live queries, rows hot, cold or both, and that an
acknowledged statement survives a restart and a SIGKILL.
"""

from __future__ import annotations

import datetime as dt
import re
import subprocess
import sys
from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from crash_runs import killed_after, repo_env

from engine import Engine
from engine.catalog.model import Column
from engine.errors import (
    KalamError,
    NotNullViolationError,
    NumericOverflowError,
    TypeMismatchError,
    UniqueViolationError,
)
from engine.sql.set_columns import stored_array
from engine.types import arrow_type, assign

N = 3000
BIG = 2**63 - 1
T0 = dt.datetime(2025, 1, 1)
COLUMNS = (
    "id BIGINT PRIMARY KEY, n BIGINT, s TEXT, f FLOAT, d DECIMAL(12, 2), "
    "ts TIMESTAMP, nn INT NOT NULL, u INT UNIQUE"
)


def source(ids: range) -> pa.Table:
    return pa.table(
        {
            "id": pa.array(list(ids), pa.int64()),
            "n": pa.array([i * 10 for i in ids], pa.int64()),
            "s": pa.array([f"s{i}" for i in ids]),
            "f": pa.array([i / 4 for i in ids], pa.float32()),
            "d": pa.array([Decimal(i) / 100 for i in ids], pa.decimal128(12, 2)),
            "ts": pa.array([T0 + dt.timedelta(seconds=i) for i in ids], pa.timestamp("us")),
            "nn": pa.array(list(ids), pa.int32()),
            "u": pa.array(list(ids), pa.int32()),
        }
    )


def rows(eng: Engine, sql: str = "SELECT * FROM t ORDER BY id", user: str | None = None) -> Any:
    return eng.execute(sql, user=user).to_pylist()


@pytest.fixture(params=["hot", "cold", "hot over cold"])
def big(request: pytest.FixtureRequest, engine: Engine) -> Engine:
    engine.execute(f"CREATE TABLE t ({COLUMNS})")
    engine.insert_arrow("t", source(range(N)))
    if request.param != "hot":
        engine.flush("t")
    if request.param == "hot over cold":  # half the rows get a hot version over the cold one
        engine.execute("UPDATE t SET s = s || 'h' WHERE id % 2 = 1")
    return engine


def test_a_bulk_update_writes_every_matching_row_and_survives_restart_and_flush(
    big: Engine, reopen: Callable[..., Engine]
) -> None:
    before = {r["id"]: r for r in rows(big)}
    r = big.execute("UPDATE t SET n = n * 2 + id, s = s || '!', f = f + 1 WHERE id % 3 = 0")
    assert r.rows_affected == N // 3
    expected = []
    for i in range(N):
        row = dict(before[i])
        if i % 3 == 0:
            row.update(n=row["n"] * 2 + i, s=row["s"] + "!", f=row["f"] + 1)
        expected.append(row)
    assert rows(big) == expected
    eng = reopen(big)
    assert rows(eng) == expected
    eng.flush("t")
    assert rows(eng) == expected
    assert rows(reopen(eng)) == expected


def test_rows_the_set_leaves_unchanged_are_counted_but_not_written(big: Engine) -> None:
    seqs = rows(big, "SELECT id, _seq FROM t ORDER BY id")
    matched = len(seqs)
    assert big.execute("UPDATE t SET n = n, s = s WHERE id >= 0").rows_affected == matched
    assert rows(big, "SELECT id, _seq FROM t ORDER BY id") == seqs
    # n is already 50 for id 5 only: every other row of the 2,000 is changed,
    # and all 2,000 matched.
    assert big.execute("UPDATE t SET n = 50 WHERE id < 2000").rows_affected == 2000
    changed = rows(big, "SELECT id, _seq FROM t WHERE id < 2000 ORDER BY id")
    assert [r["_seq"] == seqs[r["id"]]["_seq"] for r in changed].count(True) == 1


def test_an_update_matching_no_row_changes_nothing(big: Engine) -> None:
    r = big.execute("UPDATE t SET n = 1 WHERE id < 0 RETURNING *")
    assert r.rows_affected == 0 and r.table.num_rows == 0
    assert big.execute("DELETE FROM t WHERE id > 10 * 1000000").rows_affected == 0


@pytest.mark.parametrize(
    ("setup", "sql", "value"),
    [
        (
            f"UPDATE t SET n = {BIG} WHERE id = 2500",
            "UPDATE t SET n = n + 1",
            "9223372036854775808",
        ),
        (
            f"UPDATE t SET n = -{BIG} - 1 WHERE id = 7",
            "UPDATE t SET n = -n WHERE id < 100",
            "9223372036854775808",
        ),
        (f"UPDATE t SET n = {BIG} WHERE id = 1999", "UPDATE t SET n = (n - 1) * 3 + 1", "2767"),
        # Every row overflows; which one is reported depends on the scan order,
        # so the value is any multiple of 2**62 beyond 64 bits.
        (None, "UPDATE t SET n = n * 4611686018427387904 * 2 WHERE id > 0", r"\d{20}"),
    ],
)
def test_integer_overflow_in_one_row_of_many_raises_and_changes_nothing(
    big: Engine, expect_error: Callable[..., KalamError], setup: str | None, sql: str, value: str
) -> None:
    if setup:
        big.execute(setup)
    err = expect_error(big, sql, NumericOverflowError, "NUMERIC_OVERFLOW", "'n'")
    assert re.search(value, err.message), err.message


def test_overflow_with_a_bound_parameter_is_checked_on_every_row(
    big: Engine, expect_error: Callable[..., KalamError]
) -> None:
    big.execute(f"UPDATE t SET n = {BIG - 5} WHERE id = 2222")
    big.execute("UPDATE t SET n = n + $1", [5])
    assert big.execute("SELECT n FROM t WHERE id = 2222").scalar() == BIG
    expect_error(
        big, "UPDATE t SET n = n + ?", NumericOverflowError, "NUMERIC_OVERFLOW", params=[1]
    )


@pytest.mark.parametrize(
    ("sql", "error", "code", "phrase"),
    [
        (
            "UPDATE t SET nn = NULL WHERE id > 10",
            NotNullViolationError,
            "NOT_NULL_VIOLATION",
            "'nn'",
        ),
        (
            "UPDATE t SET nn = CASE WHEN id = 2999 THEN NULL ELSE nn + 1 END",
            NotNullViolationError,
            "NOT_NULL_VIOLATION",
            "'nn'",
        ),
        (
            "UPDATE t SET nn = nn * CAST('NaN' AS DOUBLE) WHERE id > 0",
            TypeMismatchError,
            "TYPE_MISMATCH",
            "'nn'",
        ),
        ("UPDATE t SET nn = n * 1000000", TypeMismatchError, "TYPE_MISMATCH", "out of range"),
        ("UPDATE t SET s = n", TypeMismatchError, "TYPE_MISMATCH", "'s'"),
        ("UPDATE t SET f = id * 1e300", TypeMismatchError, "TYPE_MISMATCH", "out of range"),
        ("UPDATE t SET d = d * 100000000000", NumericOverflowError, "NUMERIC_OVERFLOW", "'d'"),
        ("UPDATE t SET u = 7 WHERE id < 10", UniqueViolationError, "UNIQUE_VIOLATION", "'u'"),
    ],
)
def test_a_bad_value_in_any_row_fails_the_statement_and_changes_nothing(
    big: Engine,
    expect_error: Callable[..., KalamError],
    sql: str,
    error: type[KalamError],
    code: str,
    phrase: str,
) -> None:
    expect_error(big, sql, error, code, phrase)


def test_unique_values_may_move_between_rows_of_one_update(big: Engine) -> None:
    assert big.execute("UPDATE t SET u = u + 1").rows_affected == N
    assert rows(big, "SELECT min(u) AS lo, max(u) AS hi FROM t") == [{"lo": 1, "hi": N}]


def test_decimals_round_half_away_from_zero_and_timestamps_and_text_keep_their_types(
    big: Engine,
) -> None:
    before = {r["id"]: r for r in rows(big)}
    big.execute("UPDATE t SET d = d / 3, ts = ts + INTERVAL '1 day', s = upper(s) WHERE id % 2 = 0")
    for r in rows(big):
        old = before[r["id"]]
        if r["id"] % 2:
            assert r == old
            continue
        exact = (old["d"] / 3).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
        assert r["d"] == exact, r
        assert r["ts"] == old["ts"] + dt.timedelta(days=1)
        assert r["s"] == old["s"].upper()


def test_set_may_use_other_columns_subqueries_and_default(big: Engine) -> None:
    big.execute("UPDATE t SET n = (SELECT max(nn) FROM t) + nn WHERE id >= 1000")
    assert rows(big, "SELECT count(*) AS c FROM t WHERE n = 2999 + nn") == [{"c": 2000}]
    big.execute("ALTER TABLE t ADD COLUMN k INT DEFAULT 42")
    big.execute("UPDATE t SET k = 1")
    assert big.execute("UPDATE t SET k = DEFAULT WHERE id < 1500").rows_affected == 1500
    assert rows(big, "SELECT k, count(*) AS c FROM t GROUP BY k ORDER BY k") == [
        {"k": 1, "c": 1500},
        {"k": 42, "c": 1500},
    ]


def test_returning_shows_exactly_the_versions_written(big: Engine) -> None:
    top = big.execute("SELECT max(_seq) FROM t").scalar()
    r = big.execute("UPDATE t SET n = -1 WHERE id < 1500 RETURNING id, n, _seq, _deleted")
    assert r.rows_affected == r.table.num_rows == 1500
    got = r.table.to_pylist()
    assert sorted(x["id"] for x in got) == list(range(1500))
    assert {x["n"] for x in got} == {-1} and not any(x["_deleted"] for x in got)
    assert len({x["_seq"] for x in got}) == 1500 and min(x["_seq"] for x in got) > top
    d = big.execute("DELETE FROM t WHERE id >= 1500 RETURNING *, _deleted")
    assert d.rows_affected == d.table.num_rows == 1500
    assert {x["_deleted"] for x in d.table.to_pylist()} == {True}
    assert sorted(x["s"] for x in d.table.to_pylist()) == sorted(
        r["s"] for r in rows(big, "SELECT s FROM t WHERE _deleted = true AND id >= 1500")
    )


def test_a_bulk_delete_removes_exactly_the_matching_rows_for_good(
    big: Engine, reopen: Callable[..., Engine]
) -> None:
    assert big.execute("DELETE FROM t WHERE id % 2 = 0").rows_affected == N // 2
    expected = [r for r in rows(big) if r["id"] % 2]
    assert len(expected) == N // 2 and rows(big, "SELECT count(*) AS c FROM t") == [{"c": N // 2}]
    eng = reopen(big)
    assert rows(eng) == expected
    eng.flush("t")
    assert rows(eng) == expected
    eng = reopen(eng)
    assert rows(eng) == expected
    # The deleted keys are free again.
    eng.execute("INSERT INTO t (id, nn) VALUES (0, 1), (2, 1)")
    assert eng.execute("SELECT count(*) FROM t").scalar() == N // 2 + 2


def test_a_user_table_bulk_update_touches_only_the_callers_rows(engine: Engine) -> None:
    engine.execute("CREATE USER TABLE notes (id BIGINT PRIMARY KEY, v BIGINT)")
    data = pa.table(
        {"id": pa.array(range(2000), pa.int64()), "v": pa.array([0] * 2000, pa.int64())}
    )
    for user in ("alice", "bob"):
        engine.execute(f"CREATE USER {user}")
        engine.insert_arrow("notes", data, user=user)
    # id 0 keeps v = 0 (not written) but is matched: 2,000 of alice's rows, none of bob's.
    assert engine.execute("UPDATE notes SET v = v + id", user="alice").rows_affected == 2000
    assert engine.execute("DELETE FROM notes WHERE id < 500", user="alice").rows_affected == 500
    assert engine.execute("SELECT sum(v) FROM notes", user="bob").scalar() == 0
    assert engine.execute("SELECT count(*) FROM notes", user="bob").scalar() == 2000
    assert engine.execute("SELECT count(*) FROM notes", user="alice").scalar() == 1500
    assert engine.execute("SELECT min(v) FROM notes", user="alice").scalar() == 500


def test_live_queries_see_a_bulk_update_and_delete_of_their_rows(engine: Engine) -> None:
    engine.execute(f"CREATE TABLE t ({COLUMNS})")
    engine.insert_arrow("t", source(range(N)))
    with engine.subscribe("SUBSCRIBE TO SELECT id, n FROM t WHERE id < 3") as sub:
        engine.execute("UPDATE t SET n = n + 1")
        engine.execute("DELETE FROM t WHERE id % 2 = 1")
        found = [sub.get(timeout=20.0) for _ in range(2)]
        assert all(c is not None for c in found)
        assert [(c.change_type, c.rows.to_pylist()) for c in found] == [  # type: ignore[union-attr]
            ("update", [{"id": 0, "n": 1}, {"id": 1, "n": 11}, {"id": 2, "n": 21}]),
            ("delete", [{"id": 1, "n": 11}]),
        ]


# ---------------------------------------------------------------- the vectorised conversion


CASES: list[tuple[str, pa.Array]] = [
    ("SMALLINT", pa.array([1, -32768, 32767, None], pa.int64())),
    ("SMALLINT", pa.array([1, 40000], pa.int64())),
    ("INT", pa.array([1.0, -2.0, None], pa.float64())),
    ("INT", pa.array([1.0, 2.5], pa.float64())),
    ("INT", pa.array([float("nan")], pa.float64())),
    ("INT", pa.array([True, False])),
    ("INT", pa.array([0.5, 1.5, -2.5, 2.7, None], pa.float64())),  # halves to even
    ("SMALLINT", pa.array([32767.5], pa.float64())),  # rounds out of range
    ("INT", pa.array([Decimal("2.5"), Decimal("-0.5")], pa.decimal128(5, 1))),  # away from 0
    ("SMALLINT", pa.array([Decimal("-32768.5")], pa.decimal128(7, 1))),
    ("INT", pa.array(["3", " -4 "], pa.string())),  # integer text, as PostgreSQL reads it
    ("INT", pa.array(["2.7"], pa.string())),
    ("BIGINT", pa.array([Decimal("3"), Decimal("4.00")], pa.decimal128(10, 2))),
    ("FLOAT", pa.array([0.1, 1e38, None, float("inf")], pa.float64())),
    ("FLOAT", pa.array([3.5e38], pa.float64())),
    ("FLOAT", pa.array([2**60 + 1, 3], pa.int64())),
    ("DOUBLE", pa.array([2**60 + 1, -(2**62) - 3], pa.int64())),
    ("DOUBLE", pa.array([Decimal("0.1"), Decimal("1.10")], pa.decimal128(10, 2))),
    ("TEXT", pa.array(["a", None], pa.string_view())),
    ("TEXT", pa.array([1, 2], pa.int32())),
    ("BYTES", pa.array([b"x", None], pa.large_binary())),
    ("BOOLEAN", pa.array([1, 0], pa.int8())),
    ("TIMESTAMP", pa.array([1_000_000_001, None], pa.timestamp("ns", tz="+02:00"))),
    ("TIMESTAMP", pa.array([1_000_000_000], pa.timestamp("ns"))),
    ("TIMESTAMP", pa.array([dt.date(2024, 2, 29)], pa.date32())),
    ("DATE", pa.array([dt.datetime(2024, 2, 29, 23, 59)], pa.timestamp("us"))),
    ("DECIMAL(6,2)", pa.array([Decimal("1.5"), Decimal("-9999.99")], pa.decimal128(20, 2))),
    ("DECIMAL(6,2)", pa.array([Decimal("10000.00")], pa.decimal128(20, 2))),
    ("DECIMAL(6,2)", pa.array([Decimal("1.005"), Decimal("-1.005")], pa.decimal128(20, 3))),
    ("DECIMAL(6,2)", pa.array([12, -3, None], pa.int64())),
    ("DECIMAL(6,2)", pa.array([123456], pa.int32())),
    ("DECIMAL(6,2)", pa.array([0.125, 2.675], pa.float64())),
]


@pytest.mark.parametrize(("type_name", "values"), CASES)
def test_the_columnar_conversion_stores_what_assign_stores_or_fails_as_it_fails(
    type_name: str, values: pa.Array
) -> None:
    col = Column(1, "c", type_name, True, False)
    expected: Any
    try:
        stored = [None if v is None else assign(v, type_name, "c") for v in values.to_pylist()]
        expected = pa.array(stored, type=arrow_type(type_name))
    except KalamError as exc:
        expected = exc
    if isinstance(expected, KalamError):
        with pytest.raises(type(expected)) as info:
            stored_array(values, col)
        assert info.value.message == expected.message
    else:
        got = stored_array(values, col)
        assert got.type == expected.type and got.to_pylist() == expected.to_pylist()


# ---------------------------------------------------------------- SIGKILL

CHILD = """
import sys
import pyarrow as pa
from engine import Engine
eng = Engine.open(sys.argv[1], durability=sys.argv[2], background_jobs=False)
eng.execute("CREATE TABLE t (id BIGINT PRIMARY KEY, v BIGINT)")
ids = pa.array(range(5000), pa.int64())
eng.insert_arrow("t", pa.table({"id": ids, "v": ids}))
print("ack", eng.execute("UPDATE t SET v = v * 3 WHERE id % 2 = 0").rows_affected, flush=True)
print("ack", eng.execute("DELETE FROM t WHERE id % 5 = 0").rows_affected, flush=True)
sys.stdin.read()  # wait here to be killed
"""


@pytest.mark.parametrize("durability", ["sync", "async"])
def test_an_acknowledged_bulk_update_and_delete_survive_sigkill(
    tmp_path: Path, durability: str
) -> None:
    data_dir = tmp_path / "data"
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(data_dir), durability],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=repo_env(),
    )
    with killed_after(proc, guard_s=120):
        assert proc.stdout is not None
        acks = [proc.stdout.readline().split() for _ in range(2)]
    # The UPDATE matched 2,500 rows (id 0 keeps v = 0 and is not rewritten).
    assert acks == [["ack", "2500"], ["ack", "1000"]]
    eng = Engine.open(data_dir, background_jobs=False)
    try:
        expected = [(i, i * 3 if i % 2 == 0 else i) for i in range(5000) if i % 5 != 0]
        for _ in range(2):
            assert eng.execute("SELECT id, v FROM t ORDER BY id").rows() == expected
            eng.flush("t")
            eng.close()
            eng = Engine.open(data_dir, background_jobs=False)
    finally:
        eng.close()


def test_set_default_gives_the_columns_default_on_one_row_and_on_many(engine: Engine) -> None:
    engine.execute(
        "CREATE TABLE t (id INT PRIMARY KEY, k INT DEFAULT 42, w TEXT DEFAULT CURRENT_USER, z INT)"
    )
    engine.execute("INSERT INTO t VALUES (1, 1, 'x', 5), (2, 2, 'y', 6), (3, 3, 'z', 7)")
    assert (
        engine.execute(
            "UPDATE t SET k = DEFAULT, w = DEFAULT, z = DEFAULT WHERE id = 1"
        ).rows_affected
        == 1
    )
    assert engine.execute("UPDATE t SET w = DEFAULT WHERE id > 1").rows_affected == 2
    assert engine.execute("SELECT * FROM t ORDER BY id").rows() == [
        (1, 42, "root", None),
        (2, 2, "root", 6),
        (3, 3, "root", 7),
    ]


@pytest.mark.parametrize(
    ("columns", "key"),
    [
        ("a TEXT PRIMARY KEY, v BIGINT", lambda i: {"a": f"k{i:05d}"}),
        ("a INT, b TEXT, v BIGINT, PRIMARY KEY (a, b)", lambda i: {"a": i % 7, "b": f"b{i}"}),
        ("a TIMESTAMP PRIMARY KEY, v BIGINT", lambda i: {"a": T0 + dt.timedelta(seconds=i)}),
    ],
    ids=["text key", "composite key", "timestamp key"],
)
def test_bulk_update_and_delete_work_for_every_kind_of_key(
    engine: Engine, reopen: Callable[..., Engine], columns: str, key: Callable[[int], dict]
) -> None:
    engine.execute(f"CREATE TABLE t ({columns})")
    keys = [key(i) for i in range(N)]
    data = {name: [k[name] for k in keys] for name in keys[0]}
    engine.insert_arrow("t", pa.table({**data, "v": pa.array(range(N), pa.int64())}))
    engine.flush("t")
    engine.execute("UPDATE t SET v = v + 1 WHERE v < 1500")  # cold rows get hot versions
    assert engine.execute("UPDATE t SET v = v * 2 WHERE v % 2 = 0").rows_affected == N // 2
    model = [(i + 1 if i < 1500 else i) for i in range(N)]
    model = [v * 2 if v % 2 == 0 else v for v in model]
    kept = [v for v in model if v % 3 == 1]
    assert engine.execute("DELETE FROM t WHERE v % 3 <> 1").rows_affected == N - len(kept)
    expected = sorted(engine.execute("SELECT * FROM t").rows())
    for _ in range(2):
        engine = reopen(engine)
        assert sorted(engine.execute("SELECT * FROM t").rows()) == expected
        engine.flush("t")
        assert sorted(engine.execute("SELECT * FROM t").rows()) == expected
    assert sorted(v for *_, v in expected) == sorted(kept)


def test_bulk_update_and_delete_on_every_table_type_survive_restart(
    engine: Engine,
    reopen: Callable[..., Engine],
    table_type: str,
    create_table: Callable[[Engine, str, str, str], None],
) -> None:
    # STREAM tables have no key: a row is known by its first _seq.
    key = "" if table_type == "STREAM" else " PRIMARY KEY"
    create_table(engine, table_type, "t", f"id BIGINT{key}, v BIGINT")
    ids = pa.array(range(N), pa.int64())
    engine.insert_arrow("t", pa.table({"id": ids, "v": ids}))
    assert engine.execute("UPDATE t SET v = v + 1 WHERE id < 2500").rows_affected == 2500
    # A second rewrite of the same rows replaces them again (never a copy).
    assert engine.execute("UPDATE t SET v = v + 999999 WHERE id < 2500").rows_affected == 2500
    assert engine.execute("DELETE FROM t WHERE id % 2 = 0").rows_affected == N // 2
    expected = [(i, i + 1_000_000 if i < 2500 else i) for i in range(1, N, 2)]
    assert engine.execute("SELECT id, v FROM t ORDER BY id").rows() == expected
    engine = reopen(engine)
    assert engine.execute("SELECT id, v FROM t ORDER BY id").rows() == expected


def test_a_stream_row_updated_twice_stays_one_row_and_deletes_as_one(engine: Engine) -> None:
    engine.execute("CREATE STREAM TABLE s (id BIGINT, v BIGINT) WITH (TTL_SECONDS = 3600)")
    engine.execute("INSERT INTO s VALUES (1, 1), (2, 2)")
    for _ in range(2):
        assert engine.execute("UPDATE s SET v = v + 10 WHERE id = 1").rows_affected == 1
    assert engine.execute("SELECT id, v FROM s ORDER BY id").rows() == [(1, 21), (2, 2)]
    assert engine.execute("DELETE FROM s WHERE id = 1").rows_affected == 1
    assert engine.execute("SELECT id, v FROM s").rows() == [(2, 2)]


def test_a_bulk_delete_over_rows_written_one_by_one_stays_deleted_across_flush_and_restart(
    engine: Engine, reopen: Callable[..., Engine]
) -> None:
    engine.execute("CREATE TABLE t (id BIGINT PRIMARY KEY, v TEXT)")
    for i in range(0, 40, 2):  # records per key, older than the bulk tombstones
        engine.execute("INSERT INTO t VALUES ($1, 'one')", [i])
    ids = pa.array(range(41, N), pa.int64())
    engine.insert_arrow("t", pa.table({"id": ids, "v": pa.array(["bulk"] * len(ids))}))
    assert engine.execute("DELETE FROM t WHERE id % 4 = 0").rows_affected == 10 + len(
        [i for i in range(41, N) if i % 4 == 0]
    )
    engine.execute("INSERT INTO t VALUES (8, 'back')")  # a key the bulk delete freed
    expected = sorted(engine.execute("SELECT id, v FROM t").rows())
    assert (8, "back") in expected and (4, "one") not in expected and (2, "one") in expected
    engine = reopen(engine)
    assert sorted(engine.execute("SELECT id, v FROM t").rows()) == expected
    engine.flush("t")
    engine = reopen(engine)
    assert sorted(engine.execute("SELECT id, v FROM t").rows()) == expected
    assert engine.execute("SELECT count(*) FROM t WHERE _deleted = true").scalar() == 0
