"""Segment pruning before DataFusion sees a file (invariant 6).

Five segments of ten rows each with disjoint ranges: segment k holds ids
10k..10k+9, ``v = 2 * id``, and ``note`` is NULL in segment 2 (ids 20..29)
only. Every query must return the right rows, and ``Result.stats`` must show
how many segments were read and how many were pruned.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

pytest.register_assert_rewrite("conftest_cold")

from conftest_cold import Cold  # noqa: E402

pytest_plugins = ["conftest_cold"]

SEGMENTS = 5
MODEL = [
    {"id": i, "v": 2 * i, "note": None if 20 <= i < 30 else f"n{i}"} for i in range(SEGMENTS * 10)
]


def build(cold: Cold, kind: str = "SHARED") -> None:
    cold.create(kind)
    for k in range(SEGMENTS):
        ids = range(10 * k, 10 * k + 10)
        values = ", ".join(f"({i}, {2 * i}, {'NULL' if k == 2 else repr(f'n{i}')})" for i in ids)
        cold.sql(f"INSERT INTO t (id, v, note) VALUES {values}")
        cold.flush()
    assert len(cold.manifest()["segments"]) == SEGMENTS


@pytest.fixture
def five(cold: Cold) -> Cold:
    build(cold)
    return cold


def ids_where(pred: Callable[[dict[str, Any]], bool]) -> list[tuple[int]]:
    return [(r["id"],) for r in MODEL if pred(r)]


CASES = [
    # (WHERE clause, params, model predicate, segments scanned)
    ("id = 5", None, lambda r: r["id"] == 5, 1),
    ("id = ?", [45], lambda r: r["id"] == 45, 1),
    ("id = 1000", None, lambda r: False, 0),
    ("id < 10", None, lambda r: r["id"] < 10, 1),
    ("id <= 10", None, lambda r: r["id"] <= 10, 2),
    ("id > 39", None, lambda r: r["id"] > 39, 1),
    ("id >= 39", None, lambda r: r["id"] >= 39, 2),
    ("id BETWEEN 15 AND 25", None, lambda r: 15 <= r["id"] <= 25, 2),
    ("id IN (3, 47)", None, lambda r: r["id"] in (3, 47), 2),
    ("id IN (3, 4, 5, 6, 47)", None, lambda r: r["id"] in (3, 4, 5, 6, 47), 2),
    ("id IS NULL", None, lambda r: False, 0),
    ("id IS NOT NULL", None, lambda r: True, 5),
    ("id >= 10 AND id < 20", None, lambda r: 10 <= r["id"] < 20, 1),
    ("id = 5 OR id = 45", None, lambda r: r["id"] in (5, 45), 2),
    ("id < 5 OR id > 44", None, lambda r: r["id"] < 5 or r["id"] > 44, 2),
    ("v = 30", None, lambda r: r["v"] == 30, 1),
    ("v > 80", None, lambda r: r["v"] > 80, 1),
    ("v BETWEEN 0 AND 18", None, lambda r: 0 <= r["v"] <= 18, 1),
    ("v IN (2, 98)", None, lambda r: r["v"] in (2, 98), 2),
    ("v > 50 AND id < 30", None, lambda r: r["v"] > 50 and r["id"] < 30, 1),
    ("v < 10 OR id = 33", None, lambda r: r["v"] < 10 or r["id"] == 33, 2),
    ("note IS NULL", None, lambda r: r["note"] is None, 1),
    ("note IS NOT NULL", None, lambda r: r["note"] is not None, 4),
    ("note IS NULL AND id < 25", None, lambda r: r["note"] is None and r["id"] < 25, 1),
    ("v >= 0", None, lambda r: r["v"] >= 0, 5),
]


@pytest.mark.parametrize(("where", "params", "pred", "scanned"), CASES, ids=[c[0] for c in CASES])
def test_predicates_return_the_right_rows_and_prune_segments(five, where, params, pred, scanned):
    result = five.sql(f"SELECT id FROM t WHERE {where} ORDER BY id", params)
    assert result.rows() == ids_where(pred)
    stats = result.stats["default.t"]
    assert stats["segments_total"] == SEGMENTS
    assert stats["segments_scanned"] == scanned
    assert stats["segments_pruned"] == SEGMENTS - scanned
    assert stats["cold_rows_scanned"] == 10 * scanned
    assert stats["hot_rows"] == 0


def test_a_query_without_a_filter_scans_every_segment(five):
    # COUNT(id), not COUNT(*): a bare COUNT(*) is answered from the manifest
    # without scanning (tests/test_metadata_answers.py).
    result = five.sql("SELECT COUNT(id) FROM t")
    assert result.scalar() == 50
    assert result.stats["default.t"]["segments_scanned"] == SEGMENTS
    assert result.stats["default.t"]["segments_pruned"] == 0


def test_explain_shows_the_kalam_scan_figures(five):
    plan = five.sql("EXPLAIN SELECT * FROM t WHERE id = 5").rows()
    scan = [text for kind, text in plan if kind == "kalam_scan"]
    assert len(scan) == 1
    assert scan[0].startswith("default.t: ")
    assert "segments_total=5" in scan[0]
    assert "segments_scanned=1" in scan[0]
    assert "segments_pruned=4" in scan[0]
    # Only the surviving file reaches DataFusion.
    physical = "\n".join(text for kind, text in plan if kind == "physical_plan")
    assert "batch-1.parquet" in physical
    assert "batch-2.parquet" not in physical


def test_self_join_reads_what_both_sides_need(five):
    result = five.sql(
        "SELECT a.id, b.id FROM t a JOIN t b ON a.id + 40 = b.id WHERE a.id < 3 ORDER BY a.id"
    )
    assert result.rows() == [(0, 40), (1, 41), (2, 42)]


def test_self_join_with_different_filters_on_each_side(five):
    result = five.sql(
        "SELECT a.id, b.v FROM t a, t b WHERE a.id = 5 AND b.id = 45 AND a.note IS NOT NULL"
    )
    assert result.rows() == [(5, 90)]


def test_subquery_over_the_same_table_returns_the_right_rows(five):
    result = five.sql(
        "SELECT id FROM t WHERE id IN (SELECT id + 1 FROM t WHERE v = 40) ORDER BY id"
    )
    assert result.rows() == [(21,)]
    result = five.sql("SELECT id FROM t WHERE v > (SELECT MAX(v) FROM t WHERE id < 48) ORDER BY id")
    assert result.rows() == [(48,), (49,)]


def test_pruned_query_still_sees_hot_rows_updates_and_deletes(five):
    five.sql("INSERT INTO t (id, v) VALUES (5000, 7)")
    five.sql("UPDATE t SET v = 1000 WHERE id = 12")
    five.sql("DELETE FROM t WHERE id = 13")
    assert five.sql("SELECT id, v FROM t WHERE v = 7 OR id = 13 ORDER BY id").rows() == [(5000, 7)]
    assert five.sql("SELECT id, v FROM t WHERE id BETWEEN 11 AND 13 ORDER BY id").rows() == [
        (11, 22),
        (12, 1000),
    ]
    result = five.sql("SELECT id FROM t WHERE id = 12")
    assert result.rows() == [(12,)]
    # A primary-key lookup finds the newer hot version and reads no segment at all.
    assert result.stats["default.t"]["segments_scanned"] == 0
    five.flush()
    # The new segment spans 12..5000; stats see the superseded old version too.
    result = five.sql("SELECT id, v FROM t WHERE id = 12")
    assert result.rows() == [(12, 1000)]
    assert five.sql("SELECT COUNT(*) FROM t WHERE id = 13").scalar() == 0
    assert five.sql("SELECT COUNT(*) FROM t").scalar() == 50


def test_pruning_in_a_user_table_counts_only_that_users_segments(cold):
    build(cold, "USER")
    cold.sql("INSERT INTO t (id, v) VALUES (1, 1)", user="bob")
    cold.flush()
    result = cold.sql("SELECT id FROM t WHERE id = 5")
    assert result.rows() == [(5,)]
    stats = result.stats["default.t"]
    assert (stats["segments_total"], stats["segments_scanned"]) == (SEGMENTS, 1)
    bob = cold.sql("SELECT id FROM t WHERE id = 5", user="bob")
    assert bob.rows() == []
    assert bob.stats["default.t"]["segments_total"] == 1
    assert bob.stats["default.t"]["segments_scanned"] == 0
