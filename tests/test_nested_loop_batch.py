"""Batch sizes for plans with a nested-loop join (``engine.exec.query``).

DataFusion stops a nested-loop join only between probe batches, so a
killed one runs on for a batch x the build side a thread; small batches
make the join itself slow (20k x 20k: 43 CPU-s at 64 rows, 2.2 at 8,192).
The size follows the rows the statement reads, and the answer never
depends on it.
"""

from __future__ import annotations

import duckdb
import pytest

from engine.exec.query import (
    DEFAULT_BATCH,
    NESTED_LOOP_BATCH,
    PAIR_S,
    STEP_S,
    WIND_DOWN_S,
    nested_loop_batch,
)

SIZES = [0, 1, 10, 100, 1_000, 5_000, 10_000, 20_000, 30_000, 40_000, 100_000, 10**6, 10**9]


def test_batches_are_powers_of_two_between_the_bounds_and_shrink_as_the_build_side_grows() -> None:
    batches = [nested_loop_batch(n) for n in SIZES]
    assert all(NESTED_LOOP_BATCH <= b <= DEFAULT_BATCH for b in batches)
    assert all(b & (b - 1) == 0 for b in batches)
    assert batches == sorted(batches, reverse=True)
    assert nested_loop_batch(1_000) == DEFAULT_BATCH
    assert nested_loop_batch(200_000) == NESTED_LOOP_BATCH


@pytest.mark.parametrize("rows", [n for n in SIZES if n])
def test_one_probe_batch_stays_inside_the_wind_down_unless_at_the_floor(rows: int) -> None:
    batch = nested_loop_batch(rows)
    cost = rows * (STEP_S + batch * PAIR_S)
    assert cost <= WIND_DOWN_S or batch == NESTED_LOOP_BATCH
    if batch < DEFAULT_BATCH:  # the next size up would not fit
        assert rows * (STEP_S + 2 * batch * PAIR_S) > WIND_DOWN_S


@pytest.mark.parametrize("rows", [300, 8_000])
def test_a_theta_join_answers_as_duckdb_does_at_any_batch_size(engine, rows: int) -> None:  # type: ignore[no-untyped-def]
    assert nested_loop_batch(rows) == (DEFAULT_BATCH if rows == 300 else 2048)
    engine.execute("CREATE TABLE t (id BIGINT PRIMARY KEY, v BIGINT)")
    engine.execute(
        "INSERT INTO t SELECT value, value % 97 FROM generate_series(1, " + str(rows) + ")"
    )
    got = (
        engine.execute(
            "SELECT count(*) AS n, sum(a.id - b.id) AS s FROM t a JOIN t b "
            "ON a.v < b.v AND a.id + b.id > 10"
        )
        .to_arrow()
        .to_pylist()
    )
    ((n, s),) = duckdb.sql(
        f"WITH t AS (SELECT range AS id, range % 97 AS v FROM range(1, {rows + 1})) "
        "SELECT count(*), sum(a.id - b.id) FROM t a JOIN t b ON a.v < b.v AND a.id + b.id > 10"
    ).fetchall()
    assert got == [{"n": n, "s": s}]
