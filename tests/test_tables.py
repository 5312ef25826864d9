"""CREATE / DROP TABLE, SHOW TABLES, DESCRIBE, CREATE INDEX, column types and
defaults."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import pyarrow as pa
import pytest

from engine.errors import (
    InvalidNameError,
    InvalidOptionError,
    NamespaceNotFoundError,
    SchemaError,
    TableExistsError,
    TableNotFoundError,
    UnsupportedStatementError,
)


def table_types(engine) -> dict[str, str]:
    return {f"{ns}.{name}": ttype for ns, name, ttype in engine.execute("SHOW TABLES").rows()}


def system_table_type(engine, name: str) -> str:
    return engine.execute(
        "SELECT table_type FROM system.tables WHERE table_name = :n", {"n": name}
    ).scalar()


# ---------------------------------------------------------------- table types


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("CREATE TABLE t (id INT PRIMARY KEY)", "SHARED"),
        ("CREATE SHARED TABLE t (id INT PRIMARY KEY)", "SHARED"),
        ("CREATE USER TABLE t (id INT PRIMARY KEY)", "USER"),
        ("CREATE STREAM TABLE t (id INT) WITH (TTL_SECONDS = 60)", "STREAM"),
        ("CREATE TABLE t (id INT PRIMARY KEY) WITH (TYPE = 'USER')", "USER"),
        ("CREATE TABLE t (id INT PRIMARY KEY) WITH (TYPE = 'SHARED')", "SHARED"),
        ("CREATE TABLE t (id INT) WITH (TYPE = 'STREAM', TTL_SECONDS = 60)", "STREAM"),
        ("CREATE USER TABLE t (id INT PRIMARY KEY) WITH (TYPE = 'USER')", "USER"),
    ],
)
def test_table_type_comes_from_the_keyword_or_the_type_option(engine, sql, expected):
    result = engine.execute(sql)
    assert result.message == "Table default.t created"
    assert table_types(engine) == {"default.t": expected}
    assert system_table_type(engine, "t") == expected


def test_table_without_a_type_is_shared(engine):
    engine.execute("CREATE TABLE plain (id INT PRIMARY KEY)")
    assert table_types(engine) == {"default.plain": "SHARED"}
    assert system_table_type(engine, "plain") == "SHARED"


def test_conflicting_keyword_and_type_option_is_an_error(engine, expect_error):
    expect_error(
        engine,
        "CREATE USER TABLE t (id INT PRIMARY KEY) WITH (TYPE = 'SHARED')",
        InvalidOptionError,
        "INVALID_OPTION",
        "USER",
        "SHARED",
    )


def test_unknown_type_option_value_is_an_error(engine, expect_error):
    expect_error(
        engine,
        "CREATE TABLE t (id INT PRIMARY KEY) WITH (TYPE = 'BOGUS')",
        InvalidOptionError,
        "INVALID_OPTION",
        "BOGUS",
    )


def test_create_table_in_a_namespace(engine):
    engine.execute("CREATE NAMESPACE app")
    result = engine.execute("CREATE USER TABLE app.users (id INT PRIMARY KEY, name TEXT)")
    assert result.message == "Table app.users created"
    assert result.rows_affected in (0, None)
    assert table_types(engine) == {"app.users": "USER"}


def test_tables_survive_reopen(engine, reopen, table_type, create_sql):
    engine.execute(create_sql(table_type, "t", "id INT PRIMARY KEY, v TEXT NOT NULL"))
    before = engine.execute("DESCRIBE t").rows()
    engine = reopen(engine)
    assert table_types(engine) == {"default.t": table_type}
    assert engine.execute("DESCRIBE t").rows() == before


@pytest.mark.parametrize("policy", ["rows:100", "interval:30", "rows:100,interval:30"])
def test_flush_policy_option_is_accepted(engine, policy):
    engine.execute(f"CREATE TABLE t (id INT PRIMARY KEY) WITH (FLUSH_POLICY = '{policy}')")
    options = json.loads(
        engine.execute("SELECT options FROM system.tables WHERE table_name = 't'").scalar()
    )
    numbers = [int(part.split(":")[1]) for part in policy.replace(" ", "").split(",")]
    text = json.dumps(options)
    for n in numbers:
        assert str(n) in text, (policy, options)


@pytest.mark.parametrize("policy", ["rows:0", "rows:x", "pages:10", "rows:5,rows:6", "", "rows"])
def test_invalid_flush_policy_is_an_error(engine, expect_error, policy):
    expect_error(
        engine,
        f"CREATE TABLE t (id INT PRIMARY KEY) WITH (FLUSH_POLICY = '{policy}')",
        InvalidOptionError,
        "INVALID_OPTION",
        "FLUSH_POLICY",
    )


def test_stream_table_refuses_a_flush_policy(engine, expect_error):
    # STREAM rows are never flushed, so a flush policy would be silently meaningless.
    expect_error(
        engine,
        "CREATE TABLE ev (id INT, v TEXT) WITH (TYPE = 'STREAM', TTL_SECONDS = 10, "
        "FLUSH_POLICY = 'rows:10')",
        InvalidOptionError,
        "INVALID_OPTION",
        "FLUSH_POLICY",
    )


# ---------------------------------------------------------------- CREATE TABLE errors


def test_create_table_in_a_missing_namespace_says_how_to_create_it(engine, expect_error):
    expect_error(
        engine,
        "CREATE TABLE nope.t (id INT PRIMARY KEY)",
        NamespaceNotFoundError,
        "NAMESPACE_NOT_FOUND",
        "nope",
        "CREATE NAMESPACE nope",
    )


def test_create_existing_table_is_an_error(engine, expect_error):
    engine.execute("CREATE TABLE t (id INT PRIMARY KEY, v TEXT)")
    engine.execute("INSERT INTO t VALUES (1, 'a')")
    expect_error(
        engine,
        "CREATE USER TABLE t (id BIGINT PRIMARY KEY)",
        TableExistsError,
        "TABLE_EXISTS",
        "default.t",
        "already exists",
    )


def test_create_table_if_not_exists_leaves_the_existing_table_alone(engine, snapshot):
    engine.execute("CREATE TABLE t (id INT PRIMARY KEY, v TEXT)")
    engine.execute("INSERT INTO t VALUES (1, 'a')")
    before = snapshot(engine)
    result = engine.execute("CREATE USER TABLE IF NOT EXISTS t (id BIGINT PRIMARY KEY)")
    assert "already exists" in result.message
    assert snapshot(engine) == before


def test_create_table_if_not_exists_creates_a_missing_table(engine):
    engine.execute("CREATE TABLE IF NOT EXISTS t (id INT PRIMARY KEY)")
    assert table_types(engine) == {"default.t": "SHARED"}


@pytest.mark.parametrize(
    "columns",
    [
        "id INT PRIMARY KEY, name TEXT, name TEXT",
        "id INT PRIMARY KEY, name TEXT, NAME BIGINT",
        "id INT PRIMARY KEY, Name TEXT, nAmE TEXT",
        "ID INT PRIMARY KEY, id TEXT",
    ],
)
def test_duplicate_column_names_are_an_error_ignoring_case(engine, expect_error, columns):
    exc = expect_error(
        engine, f"CREATE TABLE t ({columns})", SchemaError, "SCHEMA_ERROR", "Duplicate column"
    )
    assert "name" in exc.message.lower() or "id" in exc.message.lower()


@pytest.mark.parametrize("column", ["_seq", "_deleted", '"_seq"', "_SEQ"])
def test_reserved_column_names_are_an_error(engine, expect_error, table_type, column, create_sql):
    sql = create_sql(table_type, "t", f"id INT PRIMARY KEY, {column} BIGINT")
    expect_error(engine, sql, InvalidNameError, "INVALID_NAME", "reserved")


@pytest.mark.parametrize(
    "sql",
    [
        "CREATE TABLE t (id INT, v TEXT)",
        "CREATE SHARED TABLE t (id INT, v TEXT)",
        "CREATE USER TABLE t (id INT, v TEXT)",
        "CREATE TABLE t (id INT, v TEXT) WITH (TYPE = 'USER')",
    ],
)
def test_user_and_shared_tables_need_a_primary_key(engine, expect_error, sql):
    expect_error(engine, sql, SchemaError, "SCHEMA_ERROR", "PRIMARY KEY")


def test_stream_table_may_omit_the_primary_key(engine):
    engine.execute("CREATE STREAM TABLE ev (kind TEXT, v INT) WITH (TTL_SECONDS = 60)")
    engine.execute("INSERT INTO ev VALUES ('a', 1), ('a', 1)")
    assert engine.execute("SELECT count(*) FROM ev").scalar() == 2


@pytest.mark.parametrize(
    "sql",
    [
        "CREATE STREAM TABLE ev (id INT, v TEXT)",
        "CREATE TABLE ev (id INT, v TEXT) WITH (TYPE = 'STREAM')",
        "CREATE STREAM TABLE ev (id INT, v TEXT) WITH (FLUSH_POLICY = 'rows:10')",
    ],
)
def test_stream_table_needs_ttl_seconds(engine, expect_error, sql):
    expect_error(engine, sql, InvalidOptionError, "INVALID_OPTION", "TTL_SECONDS")


@pytest.mark.parametrize("ttl", ["0", "-5", "'soon'"])
def test_ttl_seconds_must_be_a_positive_integer(engine, expect_error, ttl):
    expect_error(
        engine,
        f"CREATE STREAM TABLE ev (id INT) WITH (TTL_SECONDS = {ttl})",
        InvalidOptionError,
        "INVALID_OPTION",
        "TTL_SECONDS",
    )


@pytest.mark.parametrize(
    "sql",
    [
        "CREATE TABLE t (id INT PRIMARY KEY) WITH (TTL_SECONDS = 60)",
        "CREATE SHARED TABLE t (id INT PRIMARY KEY) WITH (TTL_SECONDS = 60)",
        "CREATE USER TABLE t (id INT PRIMARY KEY) WITH (TTL_SECONDS = 60)",
        "CREATE TABLE t (id INT PRIMARY KEY) WITH (TYPE = 'USER', TTL_SECONDS = 60)",
    ],
)
def test_ttl_seconds_on_a_non_stream_table_is_an_error(engine, expect_error, sql):
    expect_error(engine, sql, InvalidOptionError, "INVALID_OPTION", "TTL_SECONDS", "STREAM")


def test_unknown_table_option_is_an_error(engine, expect_error):
    exc = expect_error(
        engine,
        "CREATE TABLE t (id INT PRIMARY KEY) WITH (COLOUR = 'blue')",
        InvalidOptionError,
        "INVALID_OPTION",
        "COLOUR",
    )
    # The message lists what is allowed.
    assert "FLUSH_POLICY" in exc.message and "TTL_SECONDS" in exc.message


@pytest.mark.parametrize("type_name", ["JSONB", "GEOMETRY", "INTERVAL", "UUIDX"])
def test_unsupported_column_type_is_an_error(engine, expect_error, type_name):
    exc = expect_error(
        engine,
        f"CREATE TABLE t (id INT PRIMARY KEY, v {type_name})",
        SchemaError,
        "SCHEMA_ERROR",
        "Unsupported column type",
    )
    assert type_name in exc.message.upper()


def test_two_primary_keys_are_an_error(engine, expect_error):
    expect_error(
        engine,
        "CREATE TABLE t (a INT PRIMARY KEY, b INT PRIMARY KEY)",
        SchemaError,
        "SCHEMA_ERROR",
        "PRIMARY KEY",
    )


def test_table_level_primary_key_clause(engine, expect_error):
    engine.execute("CREATE TABLE t (id INT, v TEXT, PRIMARY KEY (id))")
    engine.execute("INSERT INTO t VALUES (1, 'a')")
    pk = [r for r in engine.execute("DESCRIBE t").rows() if r[4]]
    assert [r[0] for r in pk] == ["id"]


# ---------------------------------------------------------------- column types

# (SQL type, literal, bound value, value read back, Arrow type)
TYPES = [
    ("BOOLEAN", "true", True, True, pa.bool_()),
    ("INT", "42", 42, 42, pa.int32()),
    ("INTEGER", "-7", -7, -7, pa.int32()),
    ("BIGINT", "9007199254740993", 9007199254740993, 9007199254740993, pa.int64()),
    ("FLOAT", "1.5", 1.5, 1.5, pa.float32()),  # as in DataFusion: FLOAT = REAL
    ("REAL", "2.5", 2.5, 2.5, pa.float32()),
    ("DOUBLE", "3.25", 3.25, 3.25, pa.float64()),
    ("TEXT", "'héllo'", "héllo", "héllo", pa.string()),
    ("VARCHAR", "'it''s'", "it's", "it's", pa.string()),
    ("VARCHAR(20)", "'short'", "short", "short", pa.string()),
    ("STRING", "'a;b'", "a;b", "a;b", pa.string()),
    (
        "TIMESTAMP",
        "'2024-01-02 03:04:05.123456'",
        dt.datetime(2024, 1, 2, 3, 4, 5, 123456),
        dt.datetime(2024, 1, 2, 3, 4, 5, 123456),
        pa.timestamp("us"),
    ),
    ("DATE", "'2024-02-29'", dt.date(2024, 2, 29), dt.date(2024, 2, 29), pa.date32()),
    ("BYTES", "X'00ff10'", b"\x00\xff\x10", b"\x00\xff\x10", pa.binary()),
    ("BLOB", "X'c0ffee'", b"\xc0\xff\xee", b"\xc0\xff\xee", pa.binary()),
]
TYPE_IDS = [t[0] for t in TYPES]


@pytest.mark.parametrize(
    ("type_name", "literal", "bound", "expected", "arrow"), TYPES, ids=TYPE_IDS
)
def test_literal_round_trips_with_its_arrow_type(
    engine, table_type, type_name, literal, bound, expected, arrow, create_sql
):
    engine.execute(create_sql(table_type, "t", f"id INT PRIMARY KEY, v {type_name}"))
    engine.execute(f"INSERT INTO t (id, v) VALUES (1, {literal})")
    result = engine.execute("SELECT v FROM t")
    assert result.to_arrow().schema.field("v").type == arrow
    assert result.rows() == [(expected,)]


@pytest.mark.parametrize(
    ("type_name", "literal", "bound", "expected", "arrow"), TYPES, ids=TYPE_IDS
)
def test_bound_parameter_round_trips_with_its_arrow_type(
    engine, table_type, type_name, literal, bound, expected, arrow, create_sql
):
    engine.execute(create_sql(table_type, "t", f"id INT PRIMARY KEY, v {type_name}"))
    engine.execute("INSERT INTO t (id, v) VALUES (?, ?)", [1, bound])
    engine.execute("INSERT INTO t (id, v) VALUES (:id, :v)", {"id": 2, "v": bound})
    engine.execute("INSERT INTO t (id, v) VALUES ($1, NULL)", [3])
    result = engine.execute("SELECT id, v FROM t ORDER BY id")
    assert result.to_arrow().schema.field("v").type == arrow
    assert result.rows() == [(1, expected), (2, expected), (3, None)]
    # The bound value also compares equal to the stored one in a predicate.
    found = engine.execute("SELECT id FROM t WHERE v = ? ORDER BY id", [bound]).rows()
    assert found == [(1,), (2,)]


def test_describe_reports_canonical_types(engine):
    engine.execute(
        "CREATE TABLE t (id BIGINT PRIMARY KEY, a INTEGER, b VARCHAR(10), c STRING, "
        "d BLOB, e BOOLEAN, f DATE, g TIMESTAMP, h DOUBLE, i REAL)"
    )
    types = {r[0]: r[1] for r in engine.execute("DESCRIBE t").rows()}
    assert types["id"] == "BIGINT"
    assert types["a"] == "INT"
    assert types["b"] == types["c"] == "TEXT"
    assert types["d"] == "BYTES"
    assert types["e"] == "BOOLEAN"
    assert types["f"] == "DATE"
    assert types["g"] == "TIMESTAMP"
    assert types["h"] == "DOUBLE"


def test_timezone_aware_datetime_parameter_is_stored_as_utc(engine):
    engine.execute("CREATE TABLE t (id INT PRIMARY KEY, at TIMESTAMP)")
    plus_two = dt.timezone(dt.timedelta(hours=2))
    engine.execute("INSERT INTO t VALUES (1, ?)", [dt.datetime(2024, 5, 1, 12, 0, tzinfo=plus_two)])
    assert engine.execute("SELECT at FROM t").scalar() == dt.datetime(2024, 5, 1, 10, 0)


# ---------------------------------------------------------------- constraints and defaults


def test_not_null_and_primary_key_show_in_describe(engine):
    engine.execute(
        "CREATE TABLE t (id BIGINT PRIMARY KEY, name TEXT NOT NULL, score DOUBLE DEFAULT 1.5, "
        "note TEXT)"
    )
    result = engine.execute("DESCRIBE TABLE t")
    assert result.columns == [
        "column_name",
        "data_type",
        "nullable",
        "default",
        "primary_key",
        "column_id",
    ]
    rows = {r[0]: r for r in result.rows()}
    assert list(rows) == ["id", "name", "score", "note"]
    assert rows["id"][1:] == ("BIGINT", False, None, True, 1)
    assert rows["name"][1:] == ("TEXT", False, None, False, 2)
    assert rows["score"][1] == "DOUBLE" and rows["score"][2] is True
    assert rows["score"][3] == "1.5"
    assert rows["score"][4:] == (False, 3)
    assert rows["note"][1:] == ("TEXT", True, None, False, 4)


def test_describe_without_table_keyword_and_qualified(engine):
    engine.execute("CREATE NAMESPACE app")
    engine.execute("CREATE USER TABLE app.t (id INT PRIMARY KEY, v TEXT)")
    assert [r[0] for r in engine.execute("DESCRIBE app.t").rows()] == ["id", "v"]
    assert [r[0] for r in engine.execute("DESCRIBE TABLE app.t").rows()] == ["id", "v"]


def test_describe_missing_table_is_an_error(engine, expect_error):
    expect_error(engine, "DESCRIBE nope", TableNotFoundError, "TABLE_NOT_FOUND", "nope")


def test_literal_defaults_fill_omitted_columns(engine, table_type, create_sql):
    engine.execute(
        create_sql(
            table_type,
            "t",
            "id INT PRIMARY KEY, n INT DEFAULT 7, s TEXT DEFAULT 'x', f DOUBLE DEFAULT -1.5, "
            "b BOOLEAN DEFAULT false, plain TEXT",
        )
    )
    engine.execute("INSERT INTO t (id) VALUES (1)")
    engine.execute("INSERT INTO t (id, n, s) VALUES (2, 8, 'y')")
    assert engine.execute("SELECT id, n, s, f, b, plain FROM t ORDER BY id").rows() == [
        (1, 7, "x", -1.5, False, None),
        (2, 8, "y", -1.5, False, None),
    ]


@pytest.mark.parametrize("spelling", ["NOW()", "CURRENT_TIMESTAMP"])
def test_now_default_is_the_engine_clock(engine, clock, spelling):
    engine.execute(f"CREATE TABLE t (id INT PRIMARY KEY, at TIMESTAMP DEFAULT {spelling})")
    engine.execute("INSERT INTO t (id) VALUES (1)")
    clock.advance(90)
    engine.execute("INSERT INTO t (id) VALUES (2)")
    start = dt.datetime(1970, 1, 1) + dt.timedelta(milliseconds=clock.start)
    assert engine.execute("SELECT at FROM t ORDER BY id").rows() == [
        (start,),
        (start + dt.timedelta(seconds=90),),
    ]


def test_current_user_default_is_the_writing_user(engine):
    # A STREAM table: every user may write it and every user sees all its rows.
    engine.execute(
        "CREATE STREAM TABLE t (id INT, who TEXT DEFAULT CURRENT_USER()) WITH (TTL_SECONDS = 60)"
    )
    engine.execute("INSERT INTO t (id) VALUES (1)")
    engine.execute("INSERT INTO t (id) VALUES (2)", user="alice")
    assert engine.execute("SELECT id, who FROM t ORDER BY id").rows() == [
        (1, "root"),
        (2, "alice"),
    ]


def test_snowflake_id_default_is_a_bigint_that_increases(engine, clock):
    engine.execute("CREATE TABLE t (id BIGINT PRIMARY KEY DEFAULT SNOWFLAKE_ID(), v INT NOT NULL)")
    engine.execute("INSERT INTO t (v) VALUES (1), (2), (3)")
    engine.execute("INSERT INTO t (v) VALUES (4)")
    clock.advance(1)
    engine.execute("INSERT INTO t (v) VALUES (5)")
    result = engine.execute("SELECT id, v FROM t ORDER BY v")
    assert result.to_arrow().schema.field("id").type == pa.int64()
    ids = [r[0] for r in result.rows()]
    assert len(set(ids)) == 5
    assert ids == sorted(ids)
    assert all(i > 0 for i in ids)


def test_uuid_v7_default_is_a_version_7_uuid_with_the_clock_time(engine, clock):
    engine.execute("CREATE TABLE t (id TEXT PRIMARY KEY DEFAULT UUID_V7(), v INT)")
    engine.execute("INSERT INTO t (v) VALUES (1), (2)")
    values = [r[0] for r in engine.execute("SELECT id FROM t").rows()]
    assert len(set(values)) == 2
    for text in values:
        u = uuid.UUID(text)
        assert str(u) == text
        assert u.version == 7
        assert u.variant == uuid.RFC_4122
        assert u.int >> 80 == clock.ms  # the first 48 bits are the Unix ms timestamp


CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def test_ulid_default_is_26_crockford_characters_with_the_clock_time(engine, clock):
    engine.execute("CREATE TABLE t (id TEXT PRIMARY KEY DEFAULT ULID(), v INT)")
    engine.execute("INSERT INTO t (v) VALUES (1), (2)")
    values = [r[0] for r in engine.execute("SELECT id FROM t").rows()]
    assert len(set(values)) == 2
    for text in values:
        assert len(text) == 26
        assert set(text) <= set(CROCKFORD)
        stamp = 0
        for ch in text[:10]:
            stamp = stamp * 32 + CROCKFORD.index(ch)
        assert stamp == clock.ms


def test_defaults_survive_reopen(engine, reopen):
    engine.execute(
        "CREATE TABLE t (id INT PRIMARY KEY, n INT DEFAULT 7, at TIMESTAMP DEFAULT NOW())"
    )
    engine = reopen(engine)
    engine.execute("INSERT INTO t (id) VALUES (1)")
    n, at = engine.execute("SELECT n, at FROM t").rows()[0]
    assert n == 7 and at is not None


# ---------------------------------------------------------------- DROP / SHOW / INDEX


def test_drop_table_removes_catalog_entry_rows_and_storage(
    engine, data_dir, table_type, create_sql
):
    engine.execute(create_sql(table_type, "t", "id INT PRIMARY KEY, v TEXT"))
    engine.execute("CREATE TABLE keep (id INT PRIMARY KEY)")
    engine.execute("INSERT INTO keep VALUES (1)")
    engine.execute("INSERT INTO t VALUES (1, 'a'), (2, 'b')")
    # Writing a SHARED table needs a service role; root writes it instead.
    engine.execute(
        "INSERT INTO t VALUES (3, 'alice')", user=None if table_type == "SHARED" else "alice"
    )
    storage = data_dir / "storage" / "default" / "t"
    # Segments only appear after a flush (a later issue); the table's directory is
    # what DROP must remove either way.
    storage.mkdir(parents=True, exist_ok=True)
    (storage / "batch-0.parquet").write_bytes(b"not really parquet")

    result = engine.execute("DROP TABLE t")

    assert result.message == "Table default.t dropped"
    assert table_types(engine) == {"default.keep": "SHARED"}
    assert engine.execute("SELECT count(*) FROM system.tables WHERE table_name = 't'").scalar() == 0
    with pytest.raises(TableNotFoundError):
        engine.execute("SELECT * FROM t")
    assert not storage.exists()
    engine.execute(create_sql(table_type, "t", "id INT PRIMARY KEY, v TEXT"))
    assert len(engine.execute("SELECT * FROM t")) == 0
    assert len(engine.execute("SELECT * FROM t", user="alice")) == 0
    assert engine.execute("SELECT id FROM keep").rows() == [(1,)]


def test_dropped_table_stays_empty_after_reopen(engine, reopen, table_type, create_sql):
    engine.execute(create_sql(table_type, "t", "id INT PRIMARY KEY"))
    engine.execute("INSERT INTO t VALUES (1), (2)")
    engine.execute("DROP TABLE t")
    engine = reopen(engine)
    assert table_types(engine) == {}
    engine.execute(create_sql(table_type, "t", "id INT PRIMARY KEY"))
    assert len(engine.execute("SELECT * FROM t")) == 0


def test_drop_table_qualified_name(engine):
    engine.execute("CREATE NAMESPACE app")
    engine.execute("CREATE TABLE app.t (id INT PRIMARY KEY)")
    engine.execute("CREATE TABLE default.t (id INT PRIMARY KEY)")
    assert engine.execute("DROP TABLE app.t").message == "Table app.t dropped"
    assert table_types(engine) == {"default.t": "SHARED"}


def test_drop_missing_table_is_an_error(engine, expect_error):
    engine.execute("CREATE TABLE keep (id INT PRIMARY KEY)")
    expect_error(engine, "DROP TABLE nope", TableNotFoundError, "TABLE_NOT_FOUND", "nope")


def test_drop_table_if_exists_on_a_missing_table_is_a_no_op(engine, snapshot):
    engine.execute("CREATE TABLE keep (id INT PRIMARY KEY)")
    engine.execute("INSERT INTO keep VALUES (1)")
    before = snapshot(engine)
    result = engine.execute("DROP TABLE IF EXISTS nope")
    assert "does not exist" in result.message
    assert snapshot(engine) == before


def test_drop_table_if_exists_drops_an_existing_table(engine):
    engine.execute("CREATE TABLE t (id INT PRIMARY KEY)")
    engine.execute("DROP TABLE IF EXISTS t")
    assert table_types(engine) == {}


def test_show_tables_lists_every_namespace_with_types(engine):
    engine.execute("CREATE NAMESPACE app")
    engine.execute("CREATE USER TABLE app.u (id INT PRIMARY KEY)")
    engine.execute("CREATE STREAM TABLE app.s (id INT) WITH (TTL_SECONDS = 5)")
    engine.execute("CREATE TABLE d (id INT PRIMARY KEY)")
    result = engine.execute("SHOW TABLES")
    assert result.columns == ["namespace", "table_name", "table_type"]
    assert sorted(result.rows()) == [
        ("app", "s", "STREAM"),
        ("app", "u", "USER"),
        ("default", "d", "SHARED"),
    ]


def test_show_tables_in_a_namespace_lists_only_that_namespace(engine):
    engine.execute("CREATE NAMESPACE app")
    engine.execute("CREATE USER TABLE app.u (id INT PRIMARY KEY)")
    engine.execute("CREATE TABLE d (id INT PRIMARY KEY)")
    assert engine.execute("SHOW TABLES IN app").rows() == [("app", "u", "USER")]
    assert engine.execute("SHOW TABLES IN default").rows() == [("default", "d", "SHARED")]


def test_show_tables_in_a_missing_namespace_is_an_error(engine, expect_error):
    expect_error(
        engine, "SHOW TABLES IN nope", NamespaceNotFoundError, "NAMESPACE_NOT_FOUND", "nope"
    )


def test_show_tables_on_an_empty_data_dir_is_an_empty_result(engine):
    result = engine.execute("SHOW TABLES")
    assert result.is_query and len(result) == 0
    assert result.columns == ["namespace", "table_name", "table_type"]


def test_create_index_is_refused_with_a_message_that_says_why(engine, snapshot):
    engine.execute("CREATE TABLE t (id INT PRIMARY KEY, v TEXT)")
    engine.execute("INSERT INTO t VALUES (1, 'a')")
    before = snapshot(engine)
    with pytest.raises(UnsupportedStatementError, match="CREATE INDEX is not supported") as info:
        engine.execute("CREATE INDEX t_v ON t (v)")
    assert info.value.code == "UNSUPPORTED_STATEMENT"
    assert "CREATE UNIQUE INDEX" in str(info.value)
    assert snapshot(engine) == before


def test_create_index_on_a_missing_table_is_an_error(engine, expect_error):
    expect_error(
        engine, "CREATE INDEX ix ON nope (v)", TableNotFoundError, "TABLE_NOT_FOUND", "nope"
    )
