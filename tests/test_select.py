"""SELECT through DataFusion, the ``Result`` object, hidden columns and what
each table type lets a session see (STREAM: TTL against the injected clock)."""

from __future__ import annotations

import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

from engine import Result
from engine.errors import ColumnNotFoundError, KalamError, QueryError, TableNotFoundError


@pytest.fixture
def shop(engine):
    engine.execute("CREATE TABLE customers (id INT PRIMARY KEY, name TEXT, city TEXT)")
    engine.execute("CREATE TABLE orders (id INT PRIMARY KEY, customer_id INT, amount DOUBLE)")
    engine.execute(
        "INSERT INTO customers VALUES (1, 'ann', 'oslo'), (2, 'bo', 'rome'), (3, 'cy', 'oslo')"
    )
    engine.execute(
        "INSERT INTO orders VALUES (10, 1, 5.0), (11, 1, 7.5), (12, 2, 1.0), (13, 9, 100.0)"
    )
    return engine


# ---------------------------------------------------------------- Result


def test_query_result_conversions_and_shape(shop):
    result = shop.execute("SELECT id, name FROM customers ORDER BY id")
    assert isinstance(result, Result)
    assert result.is_query
    assert result.columns == ["id", "name"]
    assert len(result) == 3
    assert result.rows_affected is None
    assert isinstance(result.elapsed_ms, float) and result.elapsed_ms >= 0
    table = result.to_arrow()
    assert isinstance(table, pa.Table)
    assert table.column("name").to_pylist() == ["ann", "bo", "cy"]
    frame = result.to_pandas()
    assert isinstance(frame, pd.DataFrame)
    assert frame["id"].tolist() == [1, 2, 3]
    polars_frame = result.to_polars()
    assert isinstance(polars_frame, pl.DataFrame)
    assert polars_frame["name"].to_list() == ["ann", "bo", "cy"]
    assert result.rows() == [(1, "ann"), (2, "bo"), (3, "cy")]


def test_status_result_has_message_count_and_time(engine):
    created = engine.execute("CREATE TABLE users (id INT PRIMARY KEY, name TEXT)")
    assert created.message == "Table default.users created"
    assert not created.is_query
    assert created.elapsed_ms >= 0
    inserted = engine.execute("INSERT INTO users VALUES (1, 'a'), (2, 'b')")
    assert inserted.message == "Inserted 2 row(s)"
    assert inserted.rows_affected == 2
    assert len(inserted) == 0


def test_result_remembers_its_statement(engine):
    result = engine.execute("SELECT 1 AS one")
    assert result.statement == "SELECT 1 AS one"
    assert result.scalar() == 1


def test_empty_result_keeps_its_columns_and_types(shop):
    result = shop.execute("SELECT id, name FROM customers WHERE id < 0")
    assert len(result) == 0
    assert result.columns == ["id", "name"]
    assert result.to_arrow().schema.field("id").type == pa.int32()
    assert result.to_pandas().shape == (0, 2)


# ---------------------------------------------------------------- DataFusion SQL


def test_select_without_a_table(engine):
    assert engine.execute("SELECT 1 + 1 AS two, 'x' AS s").rows() == [(2, "x")]


def test_range_table_function(engine):
    result = engine.execute("SELECT count(*), sum(value) FROM range(0, 100)")
    assert result.rows() == [(100, 4950)]


def test_where_order_limit(shop):
    result = shop.execute("SELECT name FROM customers WHERE city = 'oslo' ORDER BY id DESC LIMIT 1")
    assert result.rows() == [("cy",)]


def test_inner_and_left_joins(shop):
    inner = shop.execute(
        "SELECT c.name, o.amount FROM orders o JOIN customers c ON c.id = o.customer_id "
        "ORDER BY o.id"
    )
    assert inner.rows() == [("ann", 5.0), ("ann", 7.5), ("bo", 1.0)]
    left = shop.execute(
        "SELECT c.name, count(o.id) FROM customers c LEFT JOIN orders o ON c.id = o.customer_id "
        "GROUP BY c.name ORDER BY c.name"
    )
    assert left.rows() == [("ann", 2), ("bo", 1), ("cy", 0)]


def test_aggregates_group_by_having(shop):
    result = shop.execute(
        "SELECT customer_id, sum(amount) AS total, avg(amount), max(amount) FROM orders "
        "GROUP BY customer_id HAVING sum(amount) > 2 ORDER BY customer_id"
    )
    assert result.rows() == [(1, 12.5, 6.25, 7.5), (9, 100.0, 100.0, 100.0)]


def test_cte(shop):
    result = shop.execute(
        "WITH big AS (SELECT * FROM orders WHERE amount > 2) "
        "SELECT c.name, b.amount FROM big b JOIN customers c ON c.id = b.customer_id ORDER BY 2"
    )
    assert result.rows() == [("ann", 5.0), ("ann", 7.5)]


def test_window_functions(shop):
    result = shop.execute(
        "SELECT id, row_number() OVER (PARTITION BY customer_id ORDER BY amount DESC) AS rn, "
        "sum(amount) OVER (PARTITION BY customer_id) AS total FROM orders ORDER BY id"
    )
    assert result.rows() == [(10, 2, 12.5), (11, 1, 12.5), (12, 1, 1.0), (13, 1, 100.0)]


def test_subqueries_and_union(shop):
    result = shop.execute(
        "SELECT name FROM customers WHERE id IN (SELECT customer_id FROM orders) "
        "UNION ALL SELECT 'total:' || CAST((SELECT count(*) FROM orders) AS TEXT) ORDER BY 1"
    )
    assert result.rows() == [("ann",), ("bo",), ("total:4",)]


def test_query_across_namespaces(engine):
    engine.execute("CREATE NAMESPACE app")
    engine.execute("CREATE TABLE app.a (id INT PRIMARY KEY, v TEXT)")
    engine.execute("CREATE TABLE default.b (id INT PRIMARY KEY, w TEXT)")
    engine.execute("INSERT INTO app.a VALUES (1, 'x')")
    engine.execute("INSERT INTO default.b VALUES (1, 'y')")
    result = engine.execute("SELECT a.v, b.w FROM app.a a JOIN default.b b ON a.id = b.id")
    assert result.rows() == [("x", "y")]


def test_select_from_a_missing_table(engine, expect_error):
    expect_error(engine, "SELECT * FROM nope", TableNotFoundError, "TABLE_NOT_FOUND", "nope")


def test_select_an_unknown_column(shop):
    with pytest.raises(ColumnNotFoundError) as info:
        shop.execute("SELECT nope FROM customers")
    assert info.value.code == "COLUMN_NOT_FOUND"
    assert "nope" in info.value.message


def test_query_error_is_a_kalam_error(shop):
    with pytest.raises(QueryError) as info:
        shop.execute("SELECT no_such_function(id) FROM customers")
    assert isinstance(info.value, KalamError)
    assert "no_such_function" in info.value.message


# ---------------------------------------------------------------- hidden columns


@pytest.fixture
def hidden(engine, create_table, table_type):
    create_table(engine, table_type, "h", "id INT PRIMARY KEY, v TEXT")
    engine.execute("INSERT INTO h VALUES (1, 'a'), (2, 'b')")
    engine.execute("INSERT INTO h VALUES (3, 'c')")
    return engine


def test_select_star_leaves_out_hidden_columns(hidden):
    assert hidden.execute("SELECT * FROM h").columns == ["id", "v"]


def test_hidden_columns_are_selectable_by_name(hidden):
    result = hidden.execute("SELECT id, _seq, _deleted FROM h ORDER BY id")
    assert result.columns == ["id", "_seq", "_deleted"]
    assert result.to_arrow().schema.field("_seq").type == pa.int64()
    assert result.to_arrow().schema.field("_deleted").type == pa.bool_()
    assert [r[2] for r in result.rows()] == [False, False, False]


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT *, _seq FROM h ORDER BY id",
        "SELECT *, _seq FROM default.h ORDER BY id",
        "SELECT h.*, h._seq FROM h ORDER BY id",
        "SELECT x.*, x._seq FROM default.h x ORDER BY id",
    ],
)
def test_star_plus_seq_gives_the_columns_and_seq_once(hidden, sql):
    result = hidden.execute(sql)
    assert result.columns == ["id", "v", "_seq"]
    assert [r[:2] for r in result.rows()] == [(1, "a"), (2, "b"), (3, "c")]


def test_seq_strictly_increases_across_rows_and_inserts(hidden, clock):
    seqs = [s for (s,) in hidden.execute("SELECT _seq FROM h ORDER BY id").rows()]
    assert seqs == sorted(seqs) and len(set(seqs)) == 3
    hidden.execute("INSERT INTO h VALUES (4, 'd')")  # same clock tick
    clock.advance(-5)  # even with the clock stepping back
    hidden.execute("INSERT INTO h VALUES (5, 'e')")
    later = [s for (s,) in hidden.execute("SELECT _seq FROM h WHERE id > 3 ORDER BY id").rows()]
    assert seqs[-1] < later[0] < later[1]


def test_seq_in_where_and_order_by(hidden):
    first = hidden.execute("SELECT min(_seq) FROM h").scalar()
    result = hidden.execute("SELECT id FROM h WHERE _seq > ? ORDER BY _seq", [first])
    assert result.rows() == [(2,), (3,)]


def test_hidden_columns_in_a_join_stay_out_of_star(engine):
    engine.execute("CREATE TABLE a (id INT PRIMARY KEY, x TEXT)")
    engine.execute("CREATE TABLE b (id INT PRIMARY KEY, y TEXT)")
    engine.execute("INSERT INTO a VALUES (1, 'ax')")
    engine.execute("INSERT INTO b VALUES (1, 'by')")
    result = engine.execute("SELECT *, a._seq FROM a JOIN b ON a.id = b.id")
    assert result.columns == ["id", "x", "id", "y", "_seq"]


# ---------------------------------------------------------------- visibility per table type


def test_shared_table_rows_are_visible_to_every_user(engine):
    engine.execute("CREATE SHARED TABLE s (id INT PRIMARY KEY, v TEXT)")
    engine.execute("INSERT INTO s VALUES (1, 'one')")
    engine.execute("INSERT INTO s VALUES (2, 'two')")
    expected = [(1, "one"), (2, "two")]
    for user in ("alice", "bob", "root", "carol"):
        assert engine.execute("SELECT * FROM s ORDER BY id", user=user).rows() == expected


def test_stream_table_primary_key_is_global_across_users(engine):
    engine.execute("CREATE STREAM TABLE s (id INT PRIMARY KEY, v TEXT) WITH (TTL_SECONDS = 60)")
    engine.execute("INSERT INTO s VALUES (1, 'alice')", user="alice")
    with pytest.raises(KalamError) as info:
        engine.execute("INSERT INTO s VALUES (1, 'bob')", user="bob")
    assert info.value.code == "PRIMARY_KEY_VIOLATION"


def test_user_table_rows_are_visible_only_to_their_writer(engine):
    engine.execute("CREATE USER TABLE u (id INT PRIMARY KEY, v TEXT)")
    engine.execute("INSERT INTO u VALUES (1, 'alice')", user="alice")
    engine.execute("INSERT INTO u VALUES (1, 'bob'), (2, 'bob')", user="bob")
    assert engine.execute("SELECT * FROM u", user="alice").rows() == [(1, "alice")]
    assert engine.execute("SELECT * FROM u ORDER BY id", user="bob").rows() == [
        (1, "bob"),
        (2, "bob"),
    ]
    assert engine.execute("SELECT * FROM u", user="carol").rows() == []
    assert engine.execute("SELECT * FROM u").rows() == []  # root is just another user


@pytest.fixture
def stream(engine):
    engine.execute("CREATE STREAM TABLE ev (id INT, v TEXT) WITH (TTL_SECONDS = 10)")
    return engine


def visible_ids(engine, table="ev", user=None):
    return [r[0] for r in engine.execute(f"SELECT id FROM {table} ORDER BY id", user=user).rows()]


def test_stream_rows_younger_than_the_ttl_are_visible(stream, clock):
    stream.execute("INSERT INTO ev VALUES (1, 'a')")
    clock.advance(4)
    stream.execute("INSERT INTO ev VALUES (2, 'b')")
    clock.advance(5)  # row 1 is 9 s old, row 2 is 5 s old
    assert visible_ids(stream) == [1, 2]


def test_stream_rows_vanish_once_older_than_the_ttl(stream, clock):
    stream.execute("INSERT INTO ev VALUES (1, 'a')")
    clock.advance(4)
    stream.execute("INSERT INTO ev VALUES (2, 'b')")
    clock.advance(6)  # row 1 is exactly 10 s old: no longer younger than the TTL
    assert visible_ids(stream) == [2]
    assert stream.execute("SELECT count(*) FROM ev").scalar() == 1
    clock.advance(4)
    assert visible_ids(stream) == []


def test_stream_ttl_boundary_to_the_millisecond(stream, clock):
    stream.execute("INSERT INTO ev VALUES (1, 'a')")
    clock.advance(9.999)
    assert visible_ids(stream) == [1]
    clock.advance(0.001)
    assert visible_ids(stream) == []


def test_stream_ttl_applies_inside_joins_and_aggregates(stream, clock):
    stream.execute("CREATE TABLE names (id INT PRIMARY KEY, name TEXT)")
    stream.execute("INSERT INTO names VALUES (1, 'one'), (2, 'two')")
    stream.execute("INSERT INTO ev VALUES (1, 'a')")
    clock.advance(6)
    stream.execute("INSERT INTO ev VALUES (2, 'b')")
    clock.advance(6)
    joined = stream.execute("SELECT n.name FROM ev e JOIN names n ON n.id = e.id")
    assert joined.rows() == [("two",)]
    assert stream.execute("SELECT count(*), max(id) FROM ev").rows() == [(1, 2)]


def test_stream_rows_are_shared_by_all_users(stream):
    stream.execute("INSERT INTO ev VALUES (1, 'a')", user="alice")
    stream.execute("INSERT INTO ev VALUES (2, 'b')", user="bob")
    assert visible_ids(stream, user="carol") == [1, 2]


def test_stream_ttl_is_measured_from_the_insert_not_from_open(engine, clock, reopen):
    engine.execute("CREATE STREAM TABLE ev (id INT, v TEXT) WITH (TTL_SECONDS = 10)")
    engine.execute("INSERT INTO ev VALUES (1, 'a')")
    clock.advance(5)
    engine = reopen(engine)
    assert visible_ids(engine) == [1]
    clock.advance(5)
    assert visible_ids(engine) == []


def test_deleted_rows_are_hidden_from_queries(hidden):
    assert hidden.execute("DELETE FROM h WHERE id = 2").rows_affected == 1
    assert hidden.execute("SELECT id FROM h ORDER BY id").rows() == [(1,), (3,)]
    assert hidden.execute("SELECT count(*), max(v) FROM h").rows() == [(2, "c")]
    assert hidden.execute("SELECT id, _seq > 0 FROM h ORDER BY id").rows() == [
        (1, True),
        (3, True),
    ]
    # The key is free again.
    hidden.execute("INSERT INTO h VALUES (2, 'again')")
    assert hidden.execute("SELECT v FROM h WHERE id = 2").rows() == [("again",)]


def test_information_schema_points_to_the_system_tables(engine):
    with pytest.raises(TableNotFoundError) as info:
        engine.execute("SELECT * FROM information_schema.tables")
    assert info.value.code == "TABLE_NOT_FOUND"
    assert "system.tables" in info.value.message
