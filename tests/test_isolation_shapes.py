"""USER-table isolation beyond SELECT shapes, with alice's and bob's rows both
hot and cold: metadata commands, system tables, hidden columns, writes that
read, EXECUTE AS and KILL never reveal or touch the other user's rows."""

from __future__ import annotations

import json

import pytest

from engine import Engine, KalamError

BOB = "b-secret"


@pytest.fixture
def eng(tmp_path):
    with Engine.open(tmp_path, background_jobs=False) as e:
        e.execute("CREATE USER TABLE orders (id BIGINT PRIMARY KEY, item TEXT, amount BIGINT)")
        e.execute("CREATE USER alice")
        e.execute("CREATE USER bob")
        e.execute("INSERT INTO orders VALUES (1, 'a-cold', 10)", user="alice")
        e.execute(f"INSERT INTO orders VALUES (1, '{BOB}-1', 900), (2, '{BOB}-2', 901)", user="bob")
        e.flush("orders")
        e.execute("INSERT INTO orders VALUES (2, 'a-hot', 20)", user="alice")
        e.execute(f"INSERT INTO orders VALUES (3, '{BOB}-3', 902)", user="bob")
        e.execute("DELETE FROM orders WHERE id = 2", user="bob")  # a cold tombstone
        yield e


def _cells(rows):
    return [str(c) for r in rows for c in r]


ALICE_SEES = [
    ("SELECT id, item FROM orders ORDER BY id", [(1, "a-cold"), (2, "a-hot")]),
    (
        "SELECT id, _deleted FROM orders WHERE _deleted OR id > 0 ORDER BY id",
        [(1, False), (2, False)],
    ),
    ("SELECT count(*) FROM orders WHERE _seq > 0", [(2,)]),
    ("SELECT max(amount), min(amount) FROM orders", [(20, 10)]),
    ("SELECT item FROM orders WHERE amount > 100", []),
    ("SELECT item FROM orders WHERE id = 3", []),
    (
        "SELECT o.item FROM orders o WHERE o.id = ANY (SELECT id FROM orders WHERE amount > 5)",
        [("a-cold",), ("a-hot",)],
    ),
]


@pytest.mark.parametrize(("sql", "expected"), ALICE_SEES, ids=[q for q, _ in ALICE_SEES])
def test_reads_with_hidden_columns_and_predicates_see_only_own_rows(eng, sql, expected):
    assert sorted(eng.execute(sql, user="alice").rows()) == sorted(expected)


def test_show_manifest_lists_only_the_users_own_segments(eng):
    alice = eng.execute("SHOW MANIFEST orders", user="alice").to_arrow().to_pylist()
    assert alice and all(r["scope"] == "alice" for r in alice)
    assert sum(r["row_count"] for r in alice) == 1
    stats = [json.loads(r["column_stats"]) for r in alice]
    amounts = {v for st in stats for k in ("min", "max") if (v := st["3"][k]) is not None}
    assert amounts == {10} and all(BOB not in json.dumps(st) for st in stats)


def test_system_tables_are_refused_to_a_plain_user(eng):
    for table in ("segments", "manifests", "tables", "users", "stats"):
        with pytest.raises(KalamError):
            eng.execute(f"SELECT * FROM system.{table}", user="alice")


def test_insert_select_copies_only_the_writers_rows(eng):
    eng.execute("INSERT INTO orders SELECT id + 100, item, amount FROM orders", user="alice")
    rows = eng.execute("SELECT item FROM orders", user="alice").rows()
    assert sorted(rows) == [("a-cold",), ("a-cold",), ("a-hot",), ("a-hot",)]
    assert eng.execute("SELECT count(*) FROM orders", user="bob").scalar() == 2


def test_update_and_delete_reach_only_the_writers_rows(eng):
    assert eng.execute("UPDATE orders SET amount = 0", user="alice").rows_affected == 2
    assert eng.execute("DELETE FROM orders WHERE amount >= 0", user="alice").rows_affected == 2
    bob = eng.execute("SELECT id, item, amount FROM orders ORDER BY id", user="bob").rows()
    assert bob == [(1, f"{BOB}-1", 900), (3, f"{BOB}-3", 902)]


def test_upsert_and_returning_never_see_the_other_users_row(eng):
    result = eng.execute(
        "INSERT INTO orders VALUES (3, 'a-new', 1) ON CONFLICT (id) DO UPDATE SET item = 'x' "
        "RETURNING item",
        user="alice",
    )
    assert result.rows() == [("a-new",)]  # bob's id 3 is no conflict for alice


def test_execute_as_and_kill_are_refused_across_users(eng):
    with pytest.raises(KalamError, match="may not execute as"):
        eng.execute("EXECUTE AS USER 'bob' (SELECT * FROM orders)", user="alice")
    with pytest.raises(KalamError):
        eng.execute("KILL QUERY 'q1-bob'", user="alice")


def test_explain_analyze_counts_only_own_rows(eng):
    plan = eng.execute("EXPLAIN ANALYZE SELECT * FROM orders", user="alice").rows()
    assert BOB not in " ".join(_cells(plan))
