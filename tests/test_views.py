"""Views: CREATE [OR REPLACE] VIEW, DROP VIEW, SHOW VIEWS, system.tables, and
how a query reads one -- in the querying user's scope, through every query
shape, after a restart, and with a clear error once what it reads is gone."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from engine import Engine
from engine.errors import (
    ColumnNotFoundError,
    PermissionDeniedError,
    QueryError,
    TableExistsError,
    TableNotFoundError,
    UnsupportedStatementError,
)


@pytest.fixture
def shop(engine: Engine) -> Engine:
    engine.execute("CREATE USER TABLE orders (id INT PRIMARY KEY, item TEXT, amount INT)")
    engine.execute("CREATE SHARED TABLE products (id INT PRIMARY KEY, name TEXT)")
    engine.execute("INSERT INTO products VALUES (1, 'pen'), (2, 'ink'), (3, 'pad')")
    engine.execute("INSERT INTO orders VALUES (1, 'a-1', 10), (2, 'a-2', 20)", user="alice")
    engine.execute(
        "INSERT INTO orders VALUES (1, 'b-secret-1', 100), (2, 'b-secret-2', 200), "
        "(3, 'b-secret-3', 300)",
        user="bob",
    )
    engine.execute("CREATE VIEW big AS SELECT id, item, amount FROM orders WHERE amount >= 10")
    engine.execute(
        "CREATE VIEW named AS SELECT o.id, o.item, p.name FROM orders o "
        "JOIN products p ON p.id = o.id"
    )
    return engine


# (query over views, alice's exact answer)
ISOLATION_QUERIES = [
    ("SELECT id, item FROM big ORDER BY id", [(1, "a-1"), (2, "a-2")]),
    ("SELECT * FROM big WHERE id = 3", []),
    ("SELECT count(*), sum(amount) FROM big", [(2, 30)]),
    ("SELECT item, name FROM named ORDER BY id", [("a-1", "pen"), ("a-2", "ink")]),
    ("SELECT b.item FROM big b JOIN orders o ON o.id = b.id ORDER BY 1", [("a-1",), ("a-2",)]),
    (
        "SELECT p.name, b.item FROM products p LEFT JOIN big b ON b.id = p.id ORDER BY p.id",
        [("pen", "a-1"), ("ink", "a-2"), ("pad", None)],
    ),
    ("SELECT name FROM products WHERE id NOT IN (SELECT id FROM big)", [("pad",)]),
    (
        "SELECT id, (SELECT count(*) FROM big AS x WHERE x.amount < big.amount) FROM big "
        "ORDER BY id",
        [(1, 0), (2, 1)],
    ),
    ("WITH c AS (SELECT * FROM big) SELECT max(item) FROM c", [("a-2",)]),
    (
        "SELECT item FROM big UNION ALL SELECT item FROM named ORDER BY 1",
        [("a-1",), ("a-1",), ("a-2",), ("a-2",)],
    ),
    ("SELECT * FROM (SELECT id FROM big) AS d ORDER BY id", [(1,), (2,)]),
]


@pytest.mark.parametrize(("sql", "expected"), ISOLATION_QUERIES)
def test_a_view_over_a_user_table_shows_each_user_only_their_rows(
    shop: Engine, sql: str, expected: list[tuple[object, ...]]
) -> None:
    rows = shop.execute(sql, user="alice").rows()
    assert rows == expected
    assert "b-secret" not in repr(rows)


def test_the_view_author_and_other_users_see_their_own_rows(shop: Engine) -> None:
    assert shop.execute("SELECT count(*) FROM big", user="bob").rows() == [(3,)]
    assert shop.execute("SELECT count(*) FROM big").rows() == [(0,)]  # root has no orders
    shop.execute("FLUSH TABLE orders WAIT")
    assert shop.execute("SELECT sum(amount) FROM big", user="alice").rows() == [(30,)]
    assert shop.execute("SELECT sum(amount) FROM big", user="bob").rows() == [(600,)]


def test_views_survive_a_restart(shop: Engine, reopen: Callable[..., Engine]) -> None:
    engine = reopen(shop)
    assert engine.execute("SHOW VIEWS").rows() == [
        ("default", "big", "SELECT id, item, amount FROM orders WHERE amount >= 10"),
        (
            "default",
            "named",
            "SELECT o.id, o.item, p.name FROM orders o JOIN products p ON p.id = o.id",
        ),
    ]
    assert engine.execute("SELECT count(*) FROM big", user="alice").rows() == [(2,)]


def test_views_are_listed_in_system_tables_with_their_query(shop: Engine) -> None:
    rows = shop.execute(
        "SELECT table_name, table_type, options FROM system.tables WHERE table_type = 'VIEW' "
        "ORDER BY table_name"
    ).rows()
    assert [r[:2] for r in rows] == [("big", "VIEW"), ("named", "VIEW")]
    assert "amount >= 10" in rows[0][2]


def test_create_or_replace_and_column_names(shop: Engine) -> None:
    with pytest.raises(TableExistsError):
        shop.execute("CREATE VIEW big AS SELECT 1 AS one")
    shop.execute("CREATE OR REPLACE VIEW big (k, what) AS SELECT id, item FROM orders")
    result = shop.execute("SELECT * FROM big ORDER BY k", user="alice")
    assert result.columns == ["k", "what"]
    assert result.rows() == [(1, "a-1"), (2, "a-2")]
    with pytest.raises(TableExistsError):
        shop.execute("CREATE VIEW orders AS SELECT 1 AS one")


def test_a_view_over_a_view_and_in_another_namespace(shop: Engine) -> None:
    shop.execute("CREATE NAMESPACE app")
    shop.execute("CREATE USER TABLE app.t (id INT PRIMARY KEY, v INT)")
    shop.execute("INSERT INTO app.t VALUES (1, 5)", user="alice")
    # unqualified names in a view resolve in the view's own namespace
    shop.execute("CREATE VIEW app.tv AS SELECT id, v FROM t")
    shop.execute("CREATE VIEW top AS SELECT b.item, tv.v FROM big b JOIN app.tv ON tv.id = b.id")
    assert shop.execute("SELECT * FROM top", user="alice").rows() == [("a-1", 5)]
    assert shop.execute("SELECT * FROM top", user="bob").rows() == []


def test_a_view_over_a_system_table_needs_the_readers_own_right(shop: Engine) -> None:
    shop.execute("CREATE VIEW people AS SELECT * FROM system.users")
    assert shop.execute("SELECT count(*) > 0 FROM people").rows() == [(True,)]
    with pytest.raises(PermissionDeniedError) as info:
        shop.execute("SELECT count(*) FROM people", user="alice")
    assert "View 'default.people'" in str(info.value)


def test_a_view_fails_clearly_once_its_table_is_dropped_or_its_column_renamed(
    shop: Engine,
) -> None:
    shop.execute("ALTER TABLE orders RENAME COLUMN amount TO total")
    with pytest.raises(ColumnNotFoundError) as info:
        shop.execute("SELECT * FROM big", user="alice")
    assert "View 'default.big' cannot be read" in str(info.value)
    assert "amount" in str(info.value)
    shop.execute("DROP TABLE products")
    with pytest.raises(TableNotFoundError) as info:
        shop.execute("SELECT * FROM named", user="alice")
    assert "View 'default.named'" in str(info.value) and "products" in str(info.value)


@pytest.mark.parametrize(
    "sql",
    [
        "INSERT INTO big VALUES (9, 'x', 1)",
        "UPDATE big SET amount = 0",
        "DELETE FROM big WHERE id = 1",
        "DROP TABLE big",
    ],
)
def test_writes_to_a_view_are_refused_and_change_nothing(shop: Engine, sql: str) -> None:
    with pytest.raises(UnsupportedStatementError) as info:
        shop.execute(sql)
    assert "is a view" in str(info.value)
    assert shop.execute("SELECT count(*) FROM orders", user="alice").rows() == [(2,)]


def test_drop_view(shop: Engine) -> None:
    shop.execute("DROP VIEW big")
    with pytest.raises(TableNotFoundError):
        shop.execute("SELECT * FROM big")
    with pytest.raises(TableNotFoundError):
        shop.execute("DROP VIEW big")
    shop.execute("DROP VIEW IF EXISTS big")
    with pytest.raises(UnsupportedStatementError):
        shop.execute("DROP VIEW orders")


def test_a_view_that_cannot_run_or_repeats_a_name_is_refused(shop: Engine) -> None:
    with pytest.raises(TableNotFoundError):
        shop.execute("CREATE VIEW bad AS SELECT * FROM nowhere")
    with pytest.raises(QueryError) as info:
        shop.execute("CREATE VIEW twice AS SELECT id, id FROM orders")
    assert "distinct names" in str(info.value)
    assert {r[1] for r in shop.execute("SHOW VIEWS").rows()} == {"big", "named"}


def test_a_view_cannot_refer_to_itself(shop: Engine) -> None:
    shop.execute("CREATE VIEW v1 AS SELECT id FROM big")
    shop.execute("CREATE VIEW v2 AS SELECT id FROM v1")
    with pytest.raises(QueryError) as info:
        shop.execute("CREATE OR REPLACE VIEW v1 AS SELECT id FROM v2")
    assert "refers to itself" in str(info.value)


def test_only_service_and_above_create_or_drop_views(shop: Engine) -> None:
    shop.execute("CREATE USER carol ROLE user")
    with pytest.raises(PermissionDeniedError):
        shop.execute("CREATE VIEW mine AS SELECT 1 AS one", user="carol")
    with pytest.raises(PermissionDeniedError):
        shop.execute("DROP VIEW big", user="carol")
    assert shop.execute("SELECT count(*) FROM big", user="carol").rows() == [(0,)]
