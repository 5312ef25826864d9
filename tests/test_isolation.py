"""USER-table isolation (acceptance 4) and the session user.

Two users, alice and bob, hold rows under the same primary keys. Whatever the
query shape -- plain SELECT, joins with another USER table or a SHARED table,
subqueries, CTEs, set operations, aggregates, window functions, EXPLAIN
[VERBOSE | ANALYZE] -- alice's answer is exactly what it is when bob has no rows
at all, and nothing of bob's ever shows up in it."""

from __future__ import annotations

import re

import pytest

from engine.errors import PrimaryKeyViolationError

SETUP = [
    "CREATE USER TABLE orders (id INT PRIMARY KEY, item TEXT, amount INT)",
    "CREATE USER TABLE notes (id INT PRIMARY KEY, note TEXT)",
    "CREATE SHARED TABLE products (id INT PRIMARY KEY, name TEXT)",
    "INSERT INTO products VALUES (1, 'pen'), (2, 'ink'), (3, 'pad'), (4, 'cap')",
]
ALICE_ROWS = [
    "INSERT INTO orders VALUES (1, 'a-apple', 10), (2, 'a-pear', 20)",
    "INSERT INTO notes VALUES (1, 'a-note')",
]
# bob: the same keys as alice and more; every value of his is marked "b-secret".
BOB_ROWS = [
    "INSERT INTO orders SELECT value, 'b-secret-' || CAST(value AS TEXT), "
    "CAST(value * 100 AS INT) FROM range(1, 8)",
    "INSERT INTO notes VALUES (1, 'b-secret-note'), (3, 'b-secret-note-3')",
]
BOB_MARK = "b-secret"

# (query, alice's exact answer)
QUERIES = [
    ("SELECT id, item FROM orders ORDER BY id", [(1, "a-apple"), (2, "a-pear")]),
    ("SELECT * FROM orders WHERE id = 1", [(1, "a-apple", 10)]),
    ("SELECT * FROM default.orders ORDER BY id", [(1, "a-apple", 10), (2, "a-pear", 20)]),
    ("SELECT count(*) FROM orders WHERE amount > 15", [(1,)]),
    (
        "SELECT count(*), sum(amount), min(item), max(amount), avg(amount) FROM orders",
        [(2, 30, "a-apple", 20, 15.0)],
    ),
    ("SELECT id % 2 AS k, count(*) FROM orders GROUP BY id % 2 ORDER BY k", [(0, 1), (1, 1)]),
    ("SELECT DISTINCT substr(item, 1, 2) FROM orders", [("a-",)]),
    ("SELECT count(_seq), count(*) FROM orders", [(2, 2)]),
    ("SELECT o.*, o._seq > 0 FROM orders o WHERE id = 2", [(2, "a-pear", 20, True)]),
    # joins with another USER table
    (
        "SELECT o.item, n.note FROM orders o JOIN notes n ON o.id = n.id ORDER BY o.id",
        [("a-apple", "a-note")],
    ),
    (
        "SELECT o.id, n.note FROM orders o LEFT JOIN notes n ON o.id = n.id ORDER BY o.id",
        [(1, "a-note"), (2, None)],
    ),
    (
        "SELECT n.id, o.item FROM orders o FULL JOIN notes n ON o.id = n.id ORDER BY o.id",
        [(1, "a-apple"), (None, "a-pear")],
    ),
    ("SELECT a.id FROM orders a JOIN orders b ON a.id = b.id ORDER BY 1", [(1,), (2,)]),
    ("SELECT count(*) FROM orders a, orders b", [(4,)]),
    # joins with a SHARED table
    (
        "SELECT o.item, p.name FROM orders o JOIN products p ON p.id = o.id ORDER BY o.id",
        [("a-apple", "pen"), ("a-pear", "ink")],
    ),
    (
        "SELECT p.name, o.item FROM products p LEFT JOIN orders o ON p.id = o.id ORDER BY p.id",
        [("pen", "a-apple"), ("ink", "a-pear"), ("pad", None), ("cap", None)],
    ),
    ("SELECT count(*) FROM products p CROSS JOIN orders o", [(8,)]),
    # subqueries
    (
        "SELECT name FROM products WHERE id IN (SELECT id FROM orders) ORDER BY id",
        [("pen",), ("ink",)],
    ),
    (
        "SELECT name FROM products WHERE id NOT IN (SELECT id FROM orders) ORDER BY id",
        [("pad",), ("cap",)],
    ),
    (
        "SELECT (SELECT count(*) FROM orders), (SELECT max(item) FROM orders)",
        [(2, "a-pear")],
    ),
    (
        "SELECT p.name, (SELECT max(o.item) FROM orders o WHERE o.id = p.id) FROM products p "
        "ORDER BY p.id",
        [("pen", "a-apple"), ("ink", "a-pear"), ("pad", None), ("cap", None)],
    ),
    (
        "SELECT name FROM products p WHERE EXISTS "
        "(SELECT 1 FROM orders o WHERE o.id = p.id) ORDER BY p.id",
        [("pen",), ("ink",)],
    ),
    (
        "SELECT name FROM products p WHERE NOT EXISTS "
        "(SELECT 1 FROM orders o WHERE o.id = p.id) ORDER BY p.id",
        [("pad",), ("cap",)],
    ),
    ("SELECT count(*), max(amount) FROM (SELECT * FROM orders) s", [(2, 20)]),
    (
        "SELECT item FROM orders WHERE amount = (SELECT max(amount) FROM orders)",
        [("a-pear",)],
    ),
    # CTEs
    (
        "WITH mine AS (SELECT id, item FROM orders) SELECT item FROM mine ORDER BY id",
        [("a-apple",), ("a-pear",)],
    ),
    (
        "WITH j AS (SELECT o.id FROM orders o JOIN notes n ON o.id = n.id), "
        "p AS (SELECT id FROM products) SELECT count(*) FROM j JOIN p ON j.id = p.id",
        [(1,)],
    ),
    # set operations
    ("SELECT id FROM orders UNION SELECT id FROM notes ORDER BY 1", [(1,), (2,)]),
    (
        "SELECT item FROM orders UNION ALL SELECT note FROM notes ORDER BY 1",
        [("a-apple",), ("a-note",), ("a-pear",)],
    ),
    ("SELECT id FROM orders EXCEPT SELECT id FROM notes", [(2,)]),
    ("SELECT id FROM orders INTERSECT SELECT id FROM notes", [(1,)]),
    ("SELECT id FROM products EXCEPT SELECT id FROM orders ORDER BY 1", [(3,), (4,)]),
    # window functions
    (
        "SELECT item, sum(amount) OVER (), row_number() OVER (ORDER BY id DESC) FROM orders "
        "ORDER BY item",
        [("a-apple", 30, 2), ("a-pear", 30, 1)],
    ),
]
QUERY_IDS = [f"q{i:02d}" for i in range(len(QUERIES))]


def setup(engine):
    for sql in SETUP:
        engine.execute(sql)
    for sql in ALICE_ROWS:
        engine.execute(sql, user="alice")


def add_bob(engine):
    for sql in BOB_ROWS:
        engine.execute(sql, user="bob")


def cells(rows) -> list[str]:
    return [str(v) for row in rows for v in row]


@pytest.mark.parametrize(("sql", "expected"), QUERIES, ids=QUERY_IDS)
def test_user_sees_only_own_rows(engine, sql, expected):
    setup(engine)
    alone = engine.execute(sql, user="alice").rows()
    add_bob(engine)
    result = engine.execute(sql, user="alice").rows()
    assert result == expected
    assert result == alone  # bob's rows changed nothing alice can see
    assert not any(BOB_MARK in c for c in cells(result))


@pytest.mark.parametrize(("sql", "expected"), QUERIES, ids=QUERY_IDS)
def test_other_user_never_sees_alices_rows(engine, sql, expected):
    setup(engine)
    add_bob(engine)
    result = engine.execute(sql, user="bob").rows()
    assert not any(c.startswith("a-") for c in cells(result))


def test_bob_really_has_his_own_rows(engine):
    # The tests above would be vacuous if bob's inserts had gone nowhere.
    setup(engine)
    add_bob(engine)
    assert engine.execute("SELECT count(*), sum(amount) FROM orders", user="bob").rows() == [
        (7, 2800)
    ]
    assert engine.execute(
        "SELECT o.item, n.note FROM orders o JOIN notes n ON o.id = n.id ORDER BY o.id",
        user="bob",
    ).rows() == [("b-secret-1", "b-secret-note"), ("b-secret-3", "b-secret-note-3")]


# ---------------------------------------------------------------- EXPLAIN

# Metrics that measure time or memory vary from run to run; row counts do not.
_VOLATILE = re.compile(
    r"\b(\w*time\w*|elapsed_compute|output_bytes|\w*mem\w*|spilled_bytes)=[^,\]]+"
)

EXPLAIN_QUERIES = [
    "SELECT * FROM orders WHERE amount > 5",
    "SELECT count(*) FROM orders",
    "SELECT max(item), sum(amount) FROM orders",
    "SELECT o.item, n.note FROM orders o JOIN notes n ON o.id = n.id",
    "SELECT o.item, p.name FROM orders o JOIN products p ON p.id = o.id",
    "SELECT name FROM products WHERE id IN (SELECT id FROM orders)",
    "SELECT name FROM products p WHERE EXISTS (SELECT 1 FROM orders o WHERE o.id = p.id)",
    "SELECT (SELECT count(*) FROM orders)",
    "WITH m AS (SELECT * FROM orders) SELECT count(*) FROM m",
    "SELECT id FROM orders UNION ALL SELECT id FROM notes",
    "SELECT id FROM orders UNION SELECT id FROM notes",
]


def plan_text(engine, sql: str, user: str) -> str:
    rows = engine.execute(sql, user=user).rows()
    return _VOLATILE.sub(r"\1=?", "\n".join(f"{kind}: {plan}" for kind, plan in rows))


@pytest.mark.parametrize("mode", ["EXPLAIN", "EXPLAIN VERBOSE", "EXPLAIN ANALYZE"])
@pytest.mark.parametrize("sql", EXPLAIN_QUERIES)
def test_explain_does_not_reveal_other_users_data(engine, mode, sql):
    setup(engine)
    alone = plan_text(engine, f"{mode} {sql}", "alice")
    add_bob(engine)
    plan = plan_text(engine, f"{mode} {sql}", "alice")
    assert BOB_MARK not in plan
    # Row counts, statistics and scan figures are alice's alone.
    assert plan == alone


def test_explain_analyze_row_counts_are_the_users_own(engine):
    setup(engine)
    add_bob(engine)
    sql = "EXPLAIN ANALYZE SELECT * FROM orders WHERE amount > 5"
    alice = plan_text(engine, sql, "alice")
    bob = plan_text(engine, sql, "bob")
    assert "output_rows=2" in alice and "output_rows=7" not in alice
    assert "output_rows=7" in bob and "output_rows=2" not in bob
    assert "hot_rows=9" not in alice and "hot_rows=7" not in alice


# ---------------------------------------------------------------- the session user


def test_open_user_is_the_default_session_user(open_engine, data_dir):
    alice = open_engine(user="alice")
    alice.execute("CREATE USER TABLE u (id INT PRIMARY KEY, who TEXT DEFAULT CURRENT_USER())")
    alice.execute("INSERT INTO u (id) VALUES (1)")
    assert alice.execute("SELECT id, who FROM u").rows() == [(1, "alice")]
    assert alice.execute("SELECT id FROM u", user="bob").rows() == []
    alice.execute("INSERT INTO u (id) VALUES (2)", user="bob")
    assert alice.execute("SELECT id, who FROM u", user="bob").rows() == [(2, "bob")]
    assert alice.execute("SELECT id FROM u").rows() == [(1,)]


def test_default_user_is_root(engine):
    engine.execute("CREATE TABLE t (id INT PRIMARY KEY, who TEXT DEFAULT CURRENT_USER())")
    engine.execute("INSERT INTO t (id) VALUES (1)")
    assert engine.execute("SELECT who FROM t").scalar() == "root"


def test_user_rows_belong_to_the_writer_across_reopen(engine, reopen):
    engine.execute("CREATE USER TABLE u (id INT PRIMARY KEY, v TEXT)")
    engine.execute("INSERT INTO u VALUES (1, 'alice')", user="alice")
    engine.execute("INSERT INTO u VALUES (1, 'bob')", user="bob")
    engine = reopen(engine, user="alice")
    assert engine.execute("SELECT * FROM u").rows() == [(1, "alice")]
    assert engine.execute("SELECT * FROM u", user="bob").rows() == [(1, "bob")]


def test_primary_keys_are_unique_per_user(engine, expect_error):
    engine.execute("CREATE USER TABLE u (id INT PRIMARY KEY, v TEXT)")
    engine.execute("INSERT INTO u VALUES (1, 'alice')", user="alice")
    engine.execute("INSERT INTO u VALUES (1, 'bob')", user="bob")  # same key, other user
    expect_error(
        engine,
        "INSERT INTO u VALUES (1, 'alice again')",
        PrimaryKeyViolationError,
        "PRIMARY_KEY_VIOLATION",
        "value '1' already exists in column 'id'",
        user="alice",
        users=("alice", "bob"),
    )


def test_insert_select_copies_only_the_writers_rows(engine):
    setup(engine)
    add_bob(engine)
    engine.execute("CREATE USER TABLE copy (id INT PRIMARY KEY, item TEXT)")
    result = engine.execute("INSERT INTO copy SELECT id, item FROM orders", user="alice")
    assert result.rows_affected == 2
    assert engine.execute("SELECT * FROM copy ORDER BY id", user="alice").rows() == [
        (1, "a-apple"),
        (2, "a-pear"),
    ]
    assert engine.execute("SELECT count(*) FROM copy", user="bob").scalar() == 0


def test_insert_select_into_a_stream_table_copies_only_the_writers_rows(engine):
    setup(engine)
    add_bob(engine)
    engine.execute("CREATE STREAM TABLE pub (id INT, item TEXT) WITH (TTL_SECONDS = 60)")
    engine.execute("INSERT INTO pub SELECT id, item FROM orders", user="alice")
    assert engine.execute("SELECT item FROM pub ORDER BY id", user="bob").rows() == [
        ("a-apple",),
        ("a-pear",),
    ]
