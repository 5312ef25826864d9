"""ON CONFLICT DO UPDATE writes only rows its SET changes, as UPDATE does
(tests/test_update_rowcount.py): a conflicting row left as it was keeps its
``_seq`` and sends no live change, but still counts (PostgreSQL, DuckDB) and
is returned by RETURNING as it stands. Before, every conflicting row got a
new version: a new ``_seq``, an 'update' live change and hot-tier growth."""

from __future__ import annotations

import pytest

from engine import Engine

WAIT = 20.0


@pytest.fixture(params=["hot", "cold"])
def t(tmp_path, request):
    with Engine.open(tmp_path, background_jobs=False) as e:
        e.execute("CREATE TABLE t (id INT PRIMARY KEY, x INT, s TEXT)")
        e.execute("INSERT INTO t VALUES (1, 1, 'a'), (2, 2, 'b'), (3, 3, 'c')")
        if request.param == "cold":
            e.flush("t")
        yield e


def _seqs(e: Engine) -> dict[int, int]:
    return dict(e.execute("SELECT id, _seq FROM t ORDER BY id").rows())


@pytest.mark.parametrize(
    "sql",
    [
        "INSERT INTO t VALUES (1, 9, 'z'), (2, 9, 'z') ON CONFLICT (id) DO UPDATE SET x = t.x",
        "INSERT INTO t VALUES (1, 1, 'a'), (2, 2, 'b') "
        "ON CONFLICT (id) DO UPDATE SET x = EXCLUDED.x, s = EXCLUDED.s",
        "INSERT INTO t VALUES (1, 0, ''), (2, 0, '') ON CONFLICT (id) DO UPDATE SET s = t.s",
    ],
)
def test_a_do_update_that_changes_nothing_keeps_seq_and_counts_the_rows(t, sql):
    before = _seqs(t)
    rows_before = t.execute("SELECT * FROM t ORDER BY id").rows()
    result = t.execute(sql)
    assert result.rows_affected == 2
    assert _seqs(t) == before  # was: ids 1 and 2 with new _seq values
    assert t.execute("SELECT * FROM t ORDER BY id").rows() == rows_before


def test_only_changed_conflicting_rows_send_a_live_change(t):
    with t.subscribe("SELECT id, x FROM t") as sub:
        result = t.execute(
            "INSERT INTO t VALUES (1, 1, 'a'), (2, 5, 'b'), (4, 4, 'd') "
            "ON CONFLICT (id) DO UPDATE SET x = EXCLUDED.x"
        )
        assert result.rows_affected == 3
        got = []
        for _ in range(2):
            change = sub.get(timeout=WAIT)
            assert change is not None
            got.append((change.change_type, change.rows.to_pylist()))
        # Was: an 'update' of row 1 too, holding the value it already had.
        assert sorted(got) == [
            ("insert", [{"id": 4, "x": 4}]),
            ("update", [{"id": 2, "x": 5}]),
        ]
        assert t.db.subscriptions.sync(WAIT)
        assert sub.get(timeout=0) is None


def test_returning_shows_an_unchanged_row_as_it_stands_in_statement_order(t):
    before = _seqs(t)
    out = t.execute(
        "INSERT INTO t VALUES (3, 30, 'c'), (1, 1, 'q') "
        "ON CONFLICT (id) DO UPDATE SET x = EXCLUDED.x RETURNING id, x, s, _seq"
    ).rows()
    assert [r[:3] for r in out] == [(3, 30, "c"), (1, 1, "a")]
    assert out[1][3] == before[1]  # unchanged: its own _seq
    assert out[0][3] > max(before.values())
