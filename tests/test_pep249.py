"""``import kalam`` as a PEP 249 (DB-API 2.0) module, the same specification
run against an embedded engine, a Flight SQL server and an HTTP server."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pytest

import engine
import engine.errors
import kalam
from engine import Engine

pytest.register_assert_rewrite("server_fixtures", "kalam_fixtures")
from kalam_fixtures import KINDS, unique_table  # noqa: E402

pytest_plugins = ["server_fixtures", "kalam_fixtures"]

Connect = Callable[..., kalam.Connection]


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def table(request: pytest.FixtureRequest, connect_to: Connect, kind: str) -> str:
    """A fresh SHARED table app.<name> with three rows, made as the dba user."""
    name = f"app.{unique_table(request)}"
    cur = connect_to(kind).cursor()
    cur.execute("CREATE NAMESPACE IF NOT EXISTS app")
    cur.execute(
        f"CREATE TABLE {name} (id BIGINT PRIMARY KEY, name TEXT, price DOUBLE, at TIMESTAMP) "
        "WITH (TYPE = 'SHARED')"
    )
    cur.execute(
        f"INSERT INTO {name} VALUES (1, 'pen', 1.5, '2024-01-02 03:04:05'), "
        "(2, 'ink', 7.25, NULL), (3, 'pad', 3.0, NULL)"
    )
    return name


# ----------------------------------------------------------- module surface
def test_module_globals_follow_pep_249() -> None:
    assert kalam.apilevel == "2.0"
    assert kalam.threadsafety == 1
    assert kalam.paramstyle == "qmark"
    assert "numeric" in kalam.__doc__ and ":name" in kalam.__doc__  # type: ignore[operator]


def test_exception_hierarchy_is_pep_249s() -> None:
    assert issubclass(kalam.Warning, Exception)
    assert issubclass(kalam.Error, Exception)
    assert issubclass(kalam.InterfaceError, kalam.Error)
    assert issubclass(kalam.DatabaseError, kalam.Error)
    for cls in (
        kalam.DataError,
        kalam.OperationalError,
        kalam.IntegrityError,
        kalam.InternalError,
        kalam.ProgrammingError,
        kalam.NotSupportedError,
    ):
        assert issubclass(cls, kalam.DatabaseError)


def test_the_engine_and_its_errors_are_reexported() -> None:
    assert kalam.Engine is engine.Engine
    assert kalam.KalamError is engine.errors.KalamError
    assert kalam.TableNotFoundError is engine.errors.TableNotFoundError  # type: ignore[attr-defined]
    assert kalam.EngineInternalError is engine.errors.InternalError
    assert kalam.InternalError is not engine.errors.InternalError


def test_type_objects_compare_equal_to_their_arrow_types() -> None:
    assert pa.int64() == kalam.NUMBER and pa.float64() == kalam.NUMBER
    assert pa.string() == kalam.STRING and pa.string() != kalam.NUMBER
    assert pa.timestamp("us") == kalam.DATETIME and pa.binary() == kalam.BINARY
    assert kalam.Date(2024, 1, 2) == dt.date(2024, 1, 2)
    assert kalam.Binary(b"ab") == b"ab"


# ------------------------------------------------- the same spec, every kind
def test_description_names_columns_with_type_codes(
    connect_to: Connect, kind: str, table: str
) -> None:
    cur = connect_to(kind).cursor()
    cur.execute(f"SELECT id, name, price, at FROM {table} ORDER BY id")
    assert [d[0] for d in cur.description] == ["id", "name", "price", "at"]
    assert all(len(d) == 7 for d in cur.description)
    types = [d[1] for d in cur.description]
    assert types[0] == kalam.NUMBER and types[1] == kalam.STRING
    assert types[2] == kalam.NUMBER and types[3] == kalam.DATETIME
    assert cur.rowcount == 3


def test_fetchone_fetchmany_fetchall_walk_the_result_in_order(
    connect_to: Connect, kind: str, table: str
) -> None:
    cur = connect_to(kind).cursor()
    cur.execute(f"SELECT id, name FROM {table} ORDER BY id")
    assert cur.fetchone() == (1, "pen")
    cur.arraysize = 1
    assert cur.fetchmany() == [(2, "ink")]
    assert cur.fetchall() == [(3, "pad")]
    assert cur.fetchone() is None
    assert cur.fetchmany(5) == [] and cur.fetchall() == []
    cur.execute(f"SELECT id FROM {table} ORDER BY id")
    assert list(cur) == [(1,), (2,), (3,)]


def test_values_keep_their_python_types(connect_to: Connect, kind: str, table: str) -> None:
    row = (
        connect_to(kind).execute(f"SELECT id, name, price, at FROM {table} WHERE id = 1").fetchone()
    )
    assert row == (1, "pen", 1.5, dt.datetime(2024, 1, 2, 3, 4, 5))


@pytest.mark.parametrize(
    ("sql", "params"),
    [
        ("SELECT name FROM {t} WHERE id = ? OR price = ?", (2, 3.0)),
        ("SELECT name FROM {t} WHERE id = $1 OR price = $2", [2, 3.0]),
        ("SELECT name FROM {t} WHERE id = :id OR price = :price", {"id": 2, "price": 3.0}),
    ],
    ids=["qmark", "numeric", "named"],
)
def test_parameters_bind_in_every_placeholder_style(
    connect_to: Connect, kind: str, table: str, sql: str, params: object
) -> None:
    cur = connect_to(kind).cursor()
    cur.execute(sql.format(t=table) + " ORDER BY id", params)  # type: ignore[arg-type]
    assert cur.fetchall() == [("ink",), ("pad",)]


def test_a_parameter_is_a_value_never_sql(connect_to: Connect, kind: str, table: str) -> None:
    cur = connect_to(kind).cursor()
    cur.execute(f"SELECT count(*) FROM {table} WHERE name = ?", ["pen' OR '1'='1"])
    assert cur.fetchone() == (0,)


def test_rowcount_counts_rows_affected_and_executemany_sums_them(
    connect_to: Connect, kind: str, table: str
) -> None:
    cur = connect_to(kind).cursor()
    cur.executemany(f"INSERT INTO {table} (id, name) VALUES (?, ?)", [(10, "a"), (11, "b")])
    assert cur.rowcount == 2
    assert cur.description is None
    cur.execute(f"UPDATE {table} SET price = 0 WHERE id >= 10")
    assert cur.rowcount == 2
    cur.execute(f"DELETE FROM {table} WHERE id >= 3")
    assert cur.rowcount == 3


def test_fetch_arrow_table_and_fetch_df_return_the_unread_rows(
    connect_to: Connect, kind: str, table: str
) -> None:
    cur = connect_to(kind).cursor()
    cur.execute(f"SELECT id, name FROM {table} ORDER BY id")
    assert cur.fetchone() == (1, "pen")
    rest = cur.fetch_arrow_table()
    assert rest.schema.field("id").type == pa.int64()
    assert rest.to_pylist() == [{"id": 2, "name": "ink"}, {"id": 3, "name": "pad"}]
    df = cur.execute(f"SELECT id, price FROM {table} ORDER BY id").fetch_df()
    assert df["price"].tolist() == [1.5, 7.25, 3.0]


def test_engine_errors_are_pep_249_errors_with_their_code(
    connect_to: Connect, kind: str, table: str
) -> None:
    cur = connect_to(kind).cursor()
    with pytest.raises(kalam.ProgrammingError) as missing:
        cur.execute("SELECT * FROM app.no_such_table")
    assert isinstance(missing.value, kalam.TableNotFoundError)  # type: ignore[attr-defined]
    assert missing.value.code == "TABLE_NOT_FOUND"  # type: ignore[attr-defined]
    assert "no_such_table" in str(missing.value)
    with pytest.raises(kalam.IntegrityError) as dup:
        cur.execute(f"INSERT INTO {table} (id, name) VALUES (1, 'again')")
    assert dup.value.code == "PRIMARY_KEY_VIOLATION"  # type: ignore[attr-defined]
    assert cur.execute(f"SELECT name FROM {table} WHERE id = 1").fetchall() == [("pen",)]


def test_a_syntax_error_is_a_programming_error(connect_to: Connect, kind: str) -> None:
    with pytest.raises(kalam.ProgrammingError) as err:
        connect_to(kind).execute("SELEC 1")
    assert "yntax" in str(err.value)


def test_fetching_after_a_statement_without_rows_is_an_error(
    connect_to: Connect, kind: str, table: str
) -> None:
    cur = connect_to(kind).cursor()
    cur.execute(f"UPDATE {table} SET price = 1 WHERE id = 1")
    with pytest.raises(kalam.ProgrammingError, match="no rows"):
        cur.fetchall()


def test_closed_cursors_and_connections_refuse_work(connect_to: Connect, kind: str) -> None:
    con = connect_to(kind)
    with con.cursor() as cur:
        cur.execute("SELECT 1")
    with pytest.raises(kalam.InterfaceError):
        cur.execute("SELECT 1")
    con.close()
    assert con.closed
    with pytest.raises(kalam.InterfaceError):
        con.cursor()


def test_commit_is_a_no_op_and_rollback_is_not_supported(connect_to: Connect, kind: str) -> None:
    con = connect_to(kind)
    con.commit()
    with pytest.raises(kalam.NotSupportedError):
        con.rollback()


def test_user_tables_show_each_connection_its_own_users_rows(
    connect_to: Connect, kind: str, request: pytest.FixtureRequest
) -> None:
    name = f"app.{unique_table(request)}"
    dba = connect_to(kind)
    dba.execute("CREATE NAMESPACE IF NOT EXISTS app")
    dba.execute(f"CREATE TABLE {name} (id BIGINT PRIMARY KEY, note TEXT) WITH (TYPE = 'USER')")
    alice, bob = connect_to(kind, "alice"), connect_to(kind, "bob")
    alice.execute(f"INSERT INTO {name} VALUES (1, 'alice')")
    bob.execute(f"INSERT INTO {name} VALUES (1, 'bob'), (2, 'bob')")
    assert alice.execute(f"SELECT note FROM {name}").fetchall() == [("alice",)]
    assert bob.execute(f"SELECT count(*) FROM {name}").fetchall() == [(2,)]


def test_the_catalog_lists_namespaces_tables_and_columns(
    connect_to: Connect, kind: str, table: str
) -> None:
    con = connect_to(kind)
    ns, name = table.split(".")
    objects = con.adbc_get_objects(depth="columns", db_schema_filter=ns).read_all().to_pylist()
    tables = {t["table_name"]: t for t in objects[0]["catalog_db_schemas"][0]["db_schema_tables"]}
    assert [c["column_name"] for c in tables[name]["table_columns"]] == [
        "id",
        "name",
        "price",
        "at",
    ]
    assert con.adbc_get_table_schema(name, db_schema_filter=ns).names == [
        "id",
        "name",
        "price",
        "at",
    ]
    assert con.adbc_get_info()["vendor_name"] == "Kalam"


# ------------------------------------------------------------- remote only
@pytest.mark.parametrize("remote", ["flight", "http"])
def test_a_wrong_password_is_an_operational_error(connect_to: Connect, remote: str) -> None:
    with pytest.raises(kalam.OperationalError) as err:
        connect_to(remote, "alice", password="wrong")
    assert err.value.code == "AUTHENTICATION_FAILED"  # type: ignore[attr-defined]


def test_a_remote_target_without_credentials_is_refused(kalam_server: object) -> None:
    with pytest.raises(kalam.OperationalError, match="user= and password="):
        kalam.connect(kalam_server.flight_url)  # type: ignore[attr-defined]


# ----------------------------------------------------------- embedded only
def test_connecting_to_a_directory_opens_and_closing_releases_it(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with kalam.connect(data) as con:
        con.execute("CREATE TABLE t (id INT PRIMARY KEY)")
        con.execute("INSERT INTO t VALUES (1)")
    assert con.closed
    with Engine.open(data, background_jobs=False) as eng:  # the lock was released
        assert eng.execute("SELECT id FROM t").rows() == [(1,)]


def test_a_busy_directory_is_an_operational_error(tmp_path: Path) -> None:
    with (
        Engine.open(tmp_path / "data", background_jobs=False),
        pytest.raises(kalam.OperationalError) as err,
    ):
        kalam.connect(tmp_path / "data")
    assert err.value.code == "DATA_DIR_IN_USE"  # type: ignore[attr-defined]


def test_an_unusable_target_is_an_interface_error() -> None:
    with pytest.raises(kalam.InterfaceError):
        kalam.connect(42)  # type: ignore[arg-type]
