"""Kalam in the tools analysts use, each driven through its real library:
pandas ``read_sql``, polars ``read_database``, the ADBC Flight SQL driver,
jupysql's ``%sql`` and marimo's ``mo.sql`` and data-source catalog."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import Any

import adbc_driver_flightsql.dbapi as flightsql
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
from test_magic_support import cell, ip  # noqa: F401

import kalam
from engine import Engine, auth
from engine.flight import serve_flight
from engine.flight.server import FlightSqlServer

ROWS = [(1, "pen", 1.5), (2, "ink", 7.25), (3, "pad", 3.0)]


@pytest.fixture(scope="module")
def kalam_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    eng = Engine.open(tmp_path_factory.mktemp("tools") / "data", background_jobs=False)
    eng.execute("CREATE USER analyst WITH PASSWORD 'analyst-pw' ROLE user")
    eng.execute("CREATE NAMESPACE shop")
    eng.execute(
        "CREATE TABLE shop.items (id BIGINT PRIMARY KEY, name TEXT, price DOUBLE) "
        "WITH (TYPE = 'SHARED')"
    )
    eng.execute("INSERT INTO shop.items VALUES (1, 'pen', 1.5), (2, 'ink', 7.25), (3, 'pad', 3.0)")
    eng.execute("CREATE TABLE shop.mine (id BIGINT PRIMARY KEY, note TEXT) WITH (TYPE = 'USER')")
    eng.execute("INSERT INTO shop.mine VALUES (1, 'analyst note')", user="analyst")
    eng.execute("INSERT INTO shop.mine VALUES (1, 'root note'), (2, 'root two')")
    yield eng
    eng.close()


@pytest.fixture(scope="module")
def flight_url(kalam_engine: Engine) -> Iterator[str]:
    srv: FlightSqlServer = serve_flight(
        kalam_engine,
        "127.0.0.1",
        0,
        authenticate=lambda u, p: auth.verify_password(kalam_engine.db, u, p),
        issue_token=lambda u: auth.issue_token(kalam_engine.db, u),
        verify_token=lambda t: auth.verify_token(kalam_engine.db, t),
    )
    yield f"grpc://127.0.0.1:{srv.port}"
    srv.shutdown()


@pytest.fixture
def adbc_con(flight_url: str) -> Iterator[Any]:
    con = flightsql.connect(
        flight_url,
        db_kwargs={"username": "analyst", "password": "analyst-pw"},
        autocommit=True,
    )
    yield con
    con.close()


@pytest.fixture(params=["embedded", "flight"])
def kalam_con(
    request: pytest.FixtureRequest, kalam_engine: Engine, flight_url: str
) -> Iterator[kalam.Connection]:
    if request.param == "embedded":
        con = kalam.connect(kalam_engine, user="analyst")
    else:
        con = kalam.connect(flight_url, user="analyst", password="analyst-pw")
    yield con
    con.close()


QUERY = "SELECT id, name, price FROM shop.items ORDER BY id"


# ------------------------------------------------------------------ pandas
def test_pandas_read_sql_with_the_pep_249_connection(kalam_con: kalam.Connection) -> None:
    with warnings.catch_warnings():
        # pandas warns that it only tests SQLAlchemy, sqlite3 and ADBC connections.
        warnings.simplefilter("ignore", UserWarning)
        df = pd.read_sql(QUERY, kalam_con)
        one = pd.read_sql("SELECT name FROM shop.items WHERE id = ?", kalam_con, params=[2])
    assert list(df.itertuples(index=False, name=None)) == ROWS
    assert one["name"].tolist() == ["ink"]


def test_pandas_read_sql_with_the_adbc_driver_keeps_arrow_types(adbc_con: Any) -> None:
    df = pd.read_sql(QUERY, adbc_con, dtype_backend="pyarrow")
    assert list(df.itertuples(index=False, name=None)) == ROWS
    assert str(df["id"].dtype) == "int64[pyarrow]"


# ------------------------------------------------------------------ polars
def test_polars_read_database_over_adbc_takes_the_arrow_path(adbc_con: Any) -> None:
    df = pl.read_database(QUERY, adbc_con)
    assert df.rows() == ROWS
    assert df.schema == {"id": pl.Int64, "name": pl.String, "price": pl.Float64}
    batches = list(pl.read_database(QUERY, adbc_con, iter_batches=True, batch_size=2))
    assert sum(b.height for b in batches) == 3


def test_polars_read_database_with_the_pep_249_connection(kalam_con: kalam.Connection) -> None:
    df = pl.read_database(QUERY, kalam_con)
    assert df.rows() == ROWS
    assert df.schema["id"] == pl.Int64


def test_polars_reads_the_users_own_rows_only(adbc_con: Any) -> None:
    df = pl.read_database("SELECT note FROM shop.mine", adbc_con)
    assert df["note"].to_list() == ["analyst note"]


# ------------------------------------------------------------------- ADBC
def test_adbc_cursor_results_match_the_embedded_engine(adbc_con: Any, kalam_engine: Engine) -> None:
    with adbc_con.cursor() as cur:
        cur.execute("SELECT id, name, price FROM shop.items WHERE price > ? ORDER BY id", [2.0])
        remote = cur.fetch_arrow_table()
    local = kalam_engine.execute(
        "SELECT id, name, price FROM shop.items WHERE price > ? ORDER BY id", [2.0]
    ).to_arrow()
    assert remote.equals(local.cast(remote.schema))
    assert remote.num_rows == 2


# ----------------------------------------------------------------- jupysql
def test_jupysql_sql_magic_returns_the_same_rows_as_kalam(
    ip: Any,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # jupysql's usage statistics and version check would reach the network.
    monkeypatch.setenv("PLOOMBER_STATS_ENABLED", "false")
    monkeypatch.setenv("PLOOMBER_VERSION_CHECK_DISABLED", "true")
    cell(
        ip,
        "CREATE TABLE notes (id BIGINT PRIMARY KEY, body TEXT);"
        "INSERT INTO notes VALUES (1, 'a'), (2, 'b'), (3, 'c')",
    )
    expected = cell(ip, "SELECT id, body FROM notes WHERE id >= 2 ORDER BY id")
    engine = ip.magics_manager.registry["KalamMagics"].engine()
    ip.user_ns["kcon"] = kalam.connect(engine)
    ip.run_line_magic("load_ext", "sql")
    try:
        ip.run_line_magic("config", "SqlMagic.displaylimit = 0")
        ip.run_line_magic("sql", "kcon --alias kalam_conn")
        got = ip.run_line_magic("sql", "SELECT id, body FROM notes WHERE id >= 2 ORDER BY id")
        rows = [tuple(r) for r in got]
        assert rows == expected.result.rows() == [(2, "b"), (3, "c")]
        assert list(got.keys) == ["id", "body"]
    finally:
        ip.run_line_magic("sql", "--close kalam_conn")
        ip.user_ns.pop("kcon").close()


# ------------------------------------------------------------------ marimo
def test_marimo_sql_runs_on_a_kalam_connection(kalam_con: kalam.Connection) -> None:
    import marimo as mo

    df = mo.sql(QUERY, engine=kalam_con, output=False)
    assert isinstance(df, pl.DataFrame)
    assert df.rows() == ROWS


def test_marimo_recognises_the_connection_and_lists_its_tables(
    kalam_con: kalam.Connection,
) -> None:
    from marimo._sql.engines.adbc import AdbcDBAPIEngine
    from marimo._sql.get_engines import engine_to_data_source_connection, get_engines_from_variables

    [(name, engine)] = get_engines_from_variables([("kcon", kalam_con)])
    assert name == "kcon" and isinstance(engine, AdbcDBAPIEngine)
    source = engine_to_data_source_connection(name, engine)
    assert (source.dialect, source.default_database, source.default_schema) == (
        "kalam",
        "kalam",
        "default",
    )
    [database] = engine.get_databases(
        include_schemas=True, include_tables=True, include_table_details=True
    )
    schemas = {s.name: s for s in database.schemas}
    tables = {t.name: t for t in schemas["shop"].tables}
    assert {"items", "mine"} <= set(tables)
    assert [(c.name, c.type) for c in tables["items"].columns] == [
        ("id", "integer"),
        ("name", "string"),
        ("price", "number"),
    ]
    listed = engine.get_tables_in_schema(
        schema="shop", database="kalam", include_table_details=False
    )
    assert {"items", "mine"} <= {t.name for t in listed}


def test_arrow_results_stay_columnar_end_to_end(kalam_con: kalam.Connection) -> None:
    table = kalam_con.execute(QUERY).fetch_arrow_table()
    assert table.schema.field("price").type == pa.float64()
    assert table.column("id").to_pylist() == [1, 2, 3]


# ------------------------------------------------------------------ README
def test_the_readme_kalam_snippet_runs_as_written(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Use it from other tools", 1)[1]
    snippet = re.search(r"```python\n(.*?)```", section, re.DOTALL).group(1)  # type: ignore[union-attr]
    monkeypatch.chdir(tmp_path)
    with kalam.connect("kalam-data") as con:
        con.execute("CREATE TABLE events (id BIGINT PRIMARY KEY, kind TEXT)")
        con.cursor().executemany("INSERT INTO events VALUES (?, ?)", [(1, "click"), (2, "view")])
    scope: dict[str, Any] = {}
    exec(compile(snippet, "README.md", "exec"), scope)  # noqa: S102 - the README's own code
    assert scope["table"].num_rows == 2
    assert scope["con"].closed
