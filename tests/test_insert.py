"""INSERT: VALUES, column lists, INSERT ... SELECT, RETURNING, and the checks
(primary key, NOT NULL, types) that make a statement all-or-nothing."""

from __future__ import annotations

import pytest

from engine.errors import (
    ColumnNotFoundError,
    KalamError,
    NotNullViolationError,
    PrimaryKeyViolationError,
    SchemaError,
    TableNotFoundError,
    TypeMismatchError,
)

COLUMNS = "id INT PRIMARY KEY, name TEXT, score DOUBLE"


@pytest.fixture
def t(engine, create_table, table_type):
    """A table ``t (id INT PRIMARY KEY, name TEXT, score DOUBLE)`` of each type."""
    create_table(engine, table_type, "t", COLUMNS)
    return engine


def rows(engine, sql="SELECT id, name, score FROM t ORDER BY id", **kw):
    return engine.execute(sql, **kw).rows()


# ---------------------------------------------------------------- the happy paths


def test_multi_row_values_insert_reports_the_count(t):
    result = t.execute("INSERT INTO t VALUES (1, 'a', 1.5), (2, 'b', NULL)")
    assert result.message == "Inserted 2 row(s)"
    assert result.rows_affected == 2
    assert not result.is_query
    assert rows(t) == [(1, "a", 1.5), (2, "b", None)]


def test_single_row_insert_message(t):
    result = t.execute("INSERT INTO t VALUES (1, 'a', 1.0)")
    assert result.message == "Inserted 1 row(s)"
    assert result.rows_affected == 1


def test_column_list_in_any_order_and_omitted_columns_are_null(t):
    t.execute("INSERT INTO t (score, id) VALUES (2.5, 1)")
    t.execute("INSERT INTO t (name, id) VALUES ('b', 2), ('c', 3)")
    assert rows(t) == [(1, None, 2.5), (2, "b", None), (3, "c", None)]


def test_values_may_be_expressions(t):
    t.execute("INSERT INTO t VALUES (1 + 1, upper('x') || 'y', CAST('2.5' AS DOUBLE) * 2)")
    assert rows(t) == [(2, "Xy", 5.0)]


def test_negative_and_parenthesised_literals(t):
    t.execute("INSERT INTO t VALUES (-1, ('p'), -0.5)")
    assert rows(t) == [(-1, "p", -0.5)]


def test_insert_with_bound_parameters(t):
    t.execute("INSERT INTO t VALUES (?, ?, ?)", [1, "a", 0.5])
    t.execute("INSERT INTO t (id, name) VALUES (:id, :name)", {"id": 2, "name": "it's; --"})
    t.execute("INSERT INTO t VALUES ($1, $2, $3), ($4, $2, NULL)", [3, "c", 3.0, 4])
    assert rows(t) == [
        (1, "a", 0.5),
        (2, "it's; --", None),
        (3, "c", 3.0),
        (4, "c", None),
    ]


def test_insert_select_from_range_inserts_every_row(t):
    result = t.execute("INSERT INTO t (id, name) SELECT value, 'x' FROM range(0, 100000)")
    assert result.rows_affected == 100000
    assert result.message == "Inserted 100,000 row(s)"
    stats = t.execute("SELECT count(*), count(DISTINCT id), min(id), max(id) FROM t").rows()
    assert stats == [(100000, 100000, 0, 99999)]


def test_insert_select_without_column_list(engine):
    engine.execute("CREATE TABLE r (id BIGINT PRIMARY KEY, v TEXT)")
    result = engine.execute("INSERT INTO r SELECT value, 'x' FROM range(0, 100000)")
    assert result.rows_affected == 100000
    assert engine.execute("SELECT count(*) FROM r WHERE v = 'x'").scalar() == 100000


def test_insert_select_from_another_table(t):
    t.execute("CREATE TABLE src (k INT PRIMARY KEY, label TEXT)")
    t.execute("INSERT INTO src VALUES (1, 'one'), (2, 'two'), (3, 'three')")
    result = t.execute(
        "INSERT INTO t (id, name, score) SELECT k * 10, upper(label), k / 2.0 FROM src WHERE k > 1"
    )
    assert result.rows_affected == 2
    assert rows(t) == [(20, "TWO", 1.0), (30, "THREE", 1.5)]


def test_insert_select_with_a_cte_and_parameters(t):
    t.execute(
        "INSERT INTO t (id, name) WITH r AS (SELECT value AS v FROM range(0, 5)) "
        "SELECT v, :label FROM r WHERE v >= :low",
        {"label": "L", "low": 3},
    )
    assert rows(t) == [(3, "L", None), (4, "L", None)]


def test_returning_columns(t):
    result = t.execute("INSERT INTO t VALUES (1, 'a', 1.5), (2, 'b', 2.5) RETURNING id, name")
    assert result.is_query
    assert result.rows_affected == 2
    assert result.columns == ["id", "name"]
    assert sorted(result.rows()) == [(1, "a"), (2, "b")]


def test_returning_star_gives_the_table_columns(t):
    result = t.execute("INSERT INTO t (id, name) VALUES (1, 'a') RETURNING *")
    assert result.columns == ["id", "name", "score"]
    assert result.rows() == [(1, "a", None)]


def test_returning_star_and_seq_matches_the_stored_seq(t):
    result = t.execute("INSERT INTO t VALUES (1, 'a', NULL), (2, 'b', NULL) RETURNING *, _seq")
    assert result.columns == ["id", "name", "score", "_seq"]
    returned = {r[0]: r[3] for r in result.rows()}
    stored = dict(t.execute("SELECT id, _seq FROM t").rows())
    assert returned == stored
    assert returned[1] < returned[2]


def test_returning_shows_defaults(engine):
    engine.execute(
        "CREATE USER TABLE d (id INT PRIMARY KEY, n INT DEFAULT 7, who TEXT DEFAULT CURRENT_USER())"
    )
    result = engine.execute("INSERT INTO d (id) VALUES (1) RETURNING *", user="alice")
    assert result.rows() == [(1, 7, "alice")]


def test_returning_after_insert_select(t):
    result = t.execute("INSERT INTO t (id) SELECT value FROM range(0, 3) RETURNING id")
    assert sorted(result.rows()) == [(0,), (1,), (2,)]


def test_returning_an_unknown_column_is_an_error_that_inserts_nothing(t, expect_error):
    t.execute("INSERT INTO t VALUES (1, 'a', NULL)")
    expect_error(
        t,
        "INSERT INTO t VALUES (2, 'b', NULL) RETURNING nope",
        ColumnNotFoundError,
        "COLUMN_NOT_FOUND",
        "nope",
        users=("root", "alice"),
    )


# ---------------------------------------------------------------- primary keys


def test_duplicate_primary_key_against_stored_rows(t, expect_error):
    t.execute("INSERT INTO t VALUES (1, 'a', NULL)")
    exc = expect_error(
        t,
        "INSERT INTO t VALUES (1, 'again', NULL)",
        PrimaryKeyViolationError,
        "PRIMARY_KEY_VIOLATION",
    )
    assert exc.message == "Primary key violation: value '1' already exists in column 'id'"


def test_duplicate_primary_key_within_one_statement(t, expect_error):
    exc = expect_error(
        t,
        "INSERT INTO t VALUES (1, 'a', NULL), (2, 'b', NULL), (1, 'c', NULL)",
        PrimaryKeyViolationError,
        "PRIMARY_KEY_VIOLATION",
    )
    assert exc.message == "Primary key violation: value '1' already exists in column 'id'"
    assert rows(t) == []


def test_duplicate_text_primary_key_names_the_value_and_column(engine, expect_error):
    engine.execute("CREATE TABLE k (code TEXT PRIMARY KEY, v INT)")
    engine.execute("INSERT INTO k VALUES ('abc', 1)")
    exc = expect_error(
        engine,
        "INSERT INTO k VALUES ('abc', 2)",
        PrimaryKeyViolationError,
        "PRIMARY_KEY_VIOLATION",
    )
    assert exc.message == "Primary key violation: value 'abc' already exists in column 'code'"


def test_duplicate_primary_key_from_insert_select(t, expect_error):
    t.execute("INSERT INTO t (id) VALUES (5)")
    expect_error(
        t,
        "INSERT INTO t (id) SELECT value FROM range(0, 10)",
        PrimaryKeyViolationError,
        "PRIMARY_KEY_VIOLATION",
        "'5'",
        "'id'",
    )


def test_duplicate_primary_key_from_a_bound_parameter(t, expect_error):
    t.execute("INSERT INTO t (id) VALUES (1)")
    expect_error(
        t,
        "INSERT INTO t (id, name) VALUES (?, ?)",
        PrimaryKeyViolationError,
        "PRIMARY_KEY_VIOLATION",
        "value '1' already exists in column 'id'",
        params=[1, "x"],
    )


# ---------------------------------------------------------------- NOT NULL


@pytest.fixture
def nn(engine, create_table, table_type):
    create_table(engine, table_type, "nn", "id INT PRIMARY KEY, name TEXT NOT NULL, note TEXT")
    engine.execute("INSERT INTO nn VALUES (1, 'one', NULL)")
    return engine


def test_explicit_null_into_not_null_column(nn, expect_error):
    expect_error(
        nn,
        "INSERT INTO nn VALUES (2, NULL, 'x')",
        NotNullViolationError,
        "NOT_NULL_VIOLATION",
        "'name'",
        "NULL",
    )


def test_omitted_not_null_column_without_default(nn, expect_error):
    expect_error(
        nn,
        "INSERT INTO nn (id, note) VALUES (2, 'x')",
        NotNullViolationError,
        "NOT_NULL_VIOLATION",
        "'name'",
    )


def test_null_bound_parameter_into_not_null_column(nn, expect_error):
    expect_error(
        nn,
        "INSERT INTO nn VALUES (?, ?, ?)",
        NotNullViolationError,
        "NOT_NULL_VIOLATION",
        "'name'",
        params=[2, None, "x"],
    )


def test_null_primary_key_is_rejected(nn, expect_error):
    expect_error(
        nn,
        "INSERT INTO nn VALUES (NULL, 'x', NULL)",
        NotNullViolationError,
        "NOT_NULL_VIOLATION",
        "'id'",
    )


# ---------------------------------------------------------------- types


@pytest.mark.parametrize(
    ("column_type", "value", "phrase"),
    [
        ("INT", "'abc'", "'abc'"),
        ("INT", "'1.5'", "INT"),  # PostgreSQL refuses it too ('12' is stored as 12)
        ("INT", "CAST('NaN' AS DOUBLE)", "INT"),  # (1.5 is stored as 2, rounded)
        ("INT", "true", "INT"),
        ("INT", "2147483648", "out of range"),
        ("INT", "-2147483649", "out of range"),
        ("BIGINT", "9223372036854775808", "out of range"),
        ("BOOLEAN", "'maybe'", "BOOLEAN"),  # ('yes' is stored as true, as in PostgreSQL)
        ("BOOLEAN", "1", "BOOLEAN"),
        ("TEXT", "42", "TEXT"),
        ("DOUBLE", "'1.5x'", "DOUBLE"),  # ('1.5' is stored as 1.5, as in PostgreSQL)
        ("TIMESTAMP", "'not a time'", "TIMESTAMP"),
        ("DATE", "'2024-13-45'", "DATE"),
        ("BYTES", "42", "BYTES"),
    ],
)
def test_value_of_the_wrong_type_is_an_error_not_null(
    engine, expect_error, column_type, value, phrase
):
    engine.execute(f"CREATE TABLE ty (id INT PRIMARY KEY, v {column_type})")
    engine.execute("INSERT INTO ty VALUES (1, NULL)")
    exc = expect_error(
        engine,
        f"INSERT INTO ty VALUES (2, {value})",
        TypeMismatchError,
        "TYPE_MISMATCH",
        "'v'",
        phrase,
    )
    assert isinstance(exc, TypeError)
    assert engine.execute("SELECT count(*) FROM ty WHERE v IS NULL").scalar() == 1


@pytest.mark.parametrize(
    ("column_type", "value"),
    [("INT", "abc"), ("INT", 2**31), ("BIGINT", 2**63), ("BOOLEAN", "maybe"), ("TEXT", 5)],
)
def test_bound_parameter_of_the_wrong_type_is_an_error(engine, expect_error, column_type, value):
    engine.execute(f"CREATE TABLE ty (id INT PRIMARY KEY, v {column_type})")
    expect_error(
        engine,
        "INSERT INTO ty VALUES (1, ?)",
        TypeMismatchError,
        "TYPE_MISMATCH",
        "'v'",
        params=[value],
    )


def test_insert_select_of_the_wrong_type_is_an_error(engine, expect_error):
    engine.execute("CREATE TABLE ty (id INT PRIMARY KEY, v INT)")
    expect_error(
        engine,
        "INSERT INTO ty SELECT value, 'text' FROM range(0, 3)",
        TypeMismatchError,
        "TYPE_MISMATCH",
        "'v'",
    )


def test_int_values_at_the_edges_of_the_range_are_stored(engine):
    engine.execute("CREATE TABLE e (id INT PRIMARY KEY, i INT, b BIGINT)")
    engine.execute(
        "INSERT INTO e VALUES (1, 2147483647, 9223372036854775807), "
        "(2, -2147483648, -9223372036854775808)"
    )
    assert engine.execute("SELECT i, b FROM e ORDER BY id").rows() == [
        (2147483647, 9223372036854775807),
        (-2147483648, -9223372036854775808),
    ]


# ---------------------------------------------------------------- all or nothing

# The third row of a three-row insert fails in each of these ways.
THIRD_ROW_FAILURES = [
    ("duplicate of a stored key", "(10, 'x', NULL)", PrimaryKeyViolationError),
    ("duplicate within the statement", "(1, 'x', NULL)", PrimaryKeyViolationError),
    ("wrong type", "(3, 'x', 'not a number')", TypeMismatchError),
    ("null key", "(NULL, 'x', NULL)", NotNullViolationError),
    ("out of range", "(2147483648, 'x', NULL)", TypeMismatchError),
]


@pytest.mark.parametrize(
    ("third", "error"),
    [(sql, err) for _, sql, err in THIRD_ROW_FAILURES],
    ids=[name for name, _, _ in THIRD_ROW_FAILURES],
)
def test_insert_whose_third_row_fails_inserts_nothing(t, snapshot, third, error):
    t.execute("INSERT INTO t VALUES (10, 'stored', 1.0)")
    before = snapshot(t)
    with pytest.raises(error):
        t.execute(f"INSERT INTO t VALUES (1, 'a', 1.0), (2, 'b', 2.0), {third}")
    assert snapshot(t) == before
    assert rows(t) == [(10, "stored", 1.0)]
    # The rows of the failed statement can still be inserted afterwards.
    t.execute("INSERT INTO t VALUES (1, 'a', 1.0), (2, 'b', 2.0)")
    assert [r[0] for r in rows(t)] == [1, 2, 10]


def test_failed_insert_leaves_nothing_behind_after_reopen(engine, reopen, create_table, table_type):
    create_table(engine, table_type, "t", COLUMNS)
    engine.execute("INSERT INTO t VALUES (10, 'stored', 1.0)")
    with pytest.raises(PrimaryKeyViolationError):
        engine.execute("INSERT INTO t VALUES (1, 'a', 1.0), (2, 'b', 2.0), (10, 'c', NULL)")
    engine = reopen(engine)
    assert rows(engine) == [(10, "stored", 1.0)]


# ---------------------------------------------------------------- shape errors


def test_row_with_too_few_values(t, expect_error):
    expect_error(t, "INSERT INTO t VALUES (1, 'a')", SchemaError, "SCHEMA_ERROR", "3", "2")


def test_row_with_too_many_values(t, expect_error):
    expect_error(t, "INSERT INTO t (id) VALUES (1, 'a')", SchemaError, "SCHEMA_ERROR")


def test_insert_select_with_the_wrong_number_of_columns(t, expect_error):
    expect_error(
        t,
        "INSERT INTO t SELECT value, 'x' FROM range(0, 3)",
        SchemaError,
        "SCHEMA_ERROR",
        "3",
        "2",
    )


def test_unknown_column_in_the_column_list(t, expect_error):
    expect_error(
        t,
        "INSERT INTO t (id, nope) VALUES (1, 'a')",
        ColumnNotFoundError,
        "COLUMN_NOT_FOUND",
        "nope",
    )


def test_column_listed_twice(t, expect_error):
    expect_error(t, "INSERT INTO t (id, id) VALUES (1, 2)", SchemaError, "SCHEMA_ERROR", "id")


@pytest.mark.parametrize("column", ["_seq", "_deleted"])
def test_hidden_columns_cannot_be_written(t, expect_error, column):
    exc = expect_error(
        t, f"INSERT INTO t (id, {column}) VALUES (1, 5)", KalamError, "SCHEMA_ERROR", column
    )
    assert "system column" in exc.message


def test_insert_into_a_missing_table(engine, expect_error):
    expect_error(
        engine, "INSERT INTO nope VALUES (1)", TableNotFoundError, "TABLE_NOT_FOUND", "nope"
    )


def test_insert_into_a_missing_namespace(engine, expect_error):
    from engine.errors import NamespaceNotFoundError

    expect_error(
        engine,
        "INSERT INTO nope.t VALUES (1)",
        NamespaceNotFoundError,
        "NAMESPACE_NOT_FOUND",
        "CREATE NAMESPACE nope",
    )


def test_messages_write_row_counts_with_thousands_separators(engine):
    engine.execute("CREATE TABLE big (id BIGINT PRIMARY KEY, v INT) WITH (TYPE = 'SHARED')")
    inserted = engine.execute("INSERT INTO big SELECT value, 0 FROM range(0, 12345)")
    assert inserted.message == "Inserted 12,345 row(s)"
    assert engine.execute("FLUSH TABLE big WAIT").message == (
        "Flushed 12,345 row(s) of default.big into 1 segment(s)"
    )
    updated = engine.execute("UPDATE big SET v = 1 WHERE id < 2000")
    assert (updated.message, updated.rows_affected) == ("Updated 2,000 row(s)", 2000)
    deleted = engine.execute("DELETE FROM big WHERE id >= 11000")
    assert (deleted.message, deleted.rows_affected) == ("Deleted 1,345 row(s)", 1345)
