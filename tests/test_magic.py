"""The %%kalam magic in a real IPython shell over a real engine (issue 7).

Loading, settings, data directory and user choice, multi-statement cells,
errors, bound parameters, capture with -o and the returned result object.
"""

from __future__ import annotations

import _thread
import threading
from pathlib import Path

import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
from IPython.core.error import UsageError
from test_magic_support import cell, ip, line, run_as_notebook  # noqa: F401

from engine import Engine
from engine.errors import (
    ParameterError,
    PrimaryKeyViolationError,
    QueryCancelledError,
    SqlParseError,
    TableNotFoundError,
)
from kalam_magic import CellResult, Kalam, KalamCellError

USERS = "CREATE TABLE users (id INT PRIMARY KEY, name TEXT)"


def magics(ip):  # noqa: F811
    return ip.magics_manager.registry["KalamMagics"]


# ------------------------------------------------------------ loading


def test_load_ext_registers_line_and_cell_magic(ip):  # noqa: F811
    assert "kalam" in ip.magics_manager.magics["line"]
    assert "kalam" in ip.magics_manager.magics["cell"]
    assert isinstance(line(ip, "SELECT 1 AS one"), CellResult)


def test_unload_ext_removes_the_magic_and_releases_the_data_dir(ip, tmp_path):  # noqa: F811
    line(ip, "SELECT 1")
    ip.run_line_magic("unload_ext", "kalam_magic")
    try:
        assert "kalam" not in ip.magics_manager.magics["line"]
        assert "kalam" not in ip.magics_manager.magics["cell"]
        assert not any(type(c) is Kalam for c in ip.configurables)
        # The engine was closed: the directory can be opened again in this process.
        with Engine.open(tmp_path / "data") as engine:
            assert engine.execute("SELECT 1 AS x").scalar() == 1
    finally:
        ip.run_line_magic("load_ext", "kalam_magic")


def test_every_setting_has_help_and_is_in_the_magic_docstring(ip):  # noqa: F811
    doc = ip.magics_manager.magics["line"]["kalam"].__doc__
    for name, trait in Kalam.class_traits(config=True).items():
        assert trait.help, name
        assert f"Kalam.{name}" in doc
    for option in ("-o", "--polars", "--arrow", "--all", "--explain", "--connect", "--user"):
        assert option in doc


def test_config_rejects_invalid_values(ip):  # noqa: F811
    settings = magics(ip).settings
    with pytest.raises(Exception, match="displaylimit"):
        settings.displaylimit = -1
    with pytest.raises(Exception, match="durability|sync"):
        settings.durability = "sometimes"


# ------------------------------------------------------------ data directory


def test_data_dir_comes_from_env_when_not_configured(ip, tmp_path):  # noqa: F811
    assert magics(ip).settings.resolved_data_dir() == (tmp_path / "data").resolve()
    line(ip, USERS)
    assert (tmp_path / "data").is_dir()


def test_config_data_dir_wins_over_env(ip, tmp_path):  # noqa: F811
    ip.user_ns["other"] = str(tmp_path / "configured")
    ip.run_line_magic("config", "Kalam.data_dir = other")
    line(ip, USERS)
    assert (tmp_path / "configured").is_dir()
    assert not (tmp_path / "data").exists()


def test_default_data_dir_is_kalam_data_in_the_working_directory(ip, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.delenv("KALAM_DATA_DIR")
    line(ip, USERS)
    assert (tmp_path / "kalam-data").is_dir()


def test_connect_switches_and_reuses_the_engine_of_a_directory(ip, tmp_path):  # noqa: F811
    ip.user_ns["a"] = str(tmp_path / "a")
    ip.user_ns["b"] = str(tmp_path / "b")
    cell(ip, USERS + "; INSERT INTO users VALUES (1, 'Alice')", "--connect $a")
    engine_a = magics(ip).engine()
    line(ip, "--connect $b")
    with pytest.raises(KalamCellError) as err:
        line(ip, "SELECT * FROM users")
    assert isinstance(err.value.error, TableNotFoundError)
    line(ip, "--connect {a}")
    assert magics(ip).engine() is engine_a
    assert line(ip, "SELECT name FROM users").rows() == [("Alice",)]
    assert len(magics(ip).engines) == 2


def test_connect_does_not_echo_the_path(ip, tmp_path):  # noqa: F811
    ip.user_ns["target"] = str(tmp_path / "secret-place")
    _, shown = run_as_notebook(ip, "%kalam --connect $target")
    assert "Connected" in shown
    assert "secret-place" not in shown and str(tmp_path) not in shown


# ------------------------------------------------------------ users


def test_statements_run_as_root_unless_told_otherwise(ip):  # noqa: F811
    cell(ip, "CREATE USER TABLE notes (id INT PRIMARY KEY, body TEXT)")
    cell(ip, "INSERT INTO notes VALUES (1, 'by root')")
    cell(ip, "INSERT INTO notes VALUES (1, 'by alice')", "--user alice")
    assert line(ip, "SELECT body FROM notes").rows() == [("by root",)]
    assert line(ip, "--user alice SELECT body FROM notes").rows() == [("by alice",)]
    ip.run_line_magic("config", "Kalam.user = 'bob'")
    assert line(ip, "SELECT body FROM notes").rows() == []
    ip.user_ns["who"] = "alice"
    assert line(ip, "--user $who SELECT body FROM notes").rows() == [("by alice",)]


# ------------------------------------------------------------ options


def test_options_are_read_from_the_magic_line_only(ip):  # noqa: F811
    res = line(ip, "SELECT '--all -o x' AS text")
    assert res.rows() == [("--all -o x",)]
    assert "x" not in ip.user_ns
    res = cell(ip, "SELECT '--user bob' AS text")
    assert res.rows() == [("--user bob",)]


def test_sql_on_the_cell_magic_line_is_refused(ip):  # noqa: F811
    with pytest.raises(UsageError, match="cell body"):
        cell(ip, "SELECT 1", "SELECT 2")


def test_unknown_option_is_a_usage_error(ip):  # noqa: F811
    with pytest.raises(UsageError, match="unknown option '--nope'"):
        line(ip, "--nope SELECT 1")


# ------------------------------------------------------------ several statements


def test_cell_runs_statements_in_order_and_shows_status_lines_and_last_query(ip):  # noqa: F811
    res = cell(
        ip,
        USERS + ";\nINSERT INTO users VALUES (1, 'Alice');\n"
        "SELECT count(*) AS n FROM users;\nSELECT name FROM users ORDER BY id",
    )
    assert len(res.results) == 4
    assert res.rows() == [("Alice",)]
    text = str(res)
    assert text.startswith("Table default.users created · ")
    assert "\nInserted 1 row(s) · " in text
    assert "name" in text and "Alice" in text
    assert "\nn\n" not in text and "BIGINT" not in text  # the first query is not shown


def test_all_shows_every_query(ip):  # noqa: F811
    res = cell(ip, "SELECT 41 AS first_q; SELECT 42 AS second_q", "--all")
    assert [kind for kind, _ in res.parts()] == ["table", "table"]
    assert "first_q" in str(res) and "second_q" in str(res)
    assert res.scalar() == 42


def test_cell_of_only_status_statements_shows_them_all(ip):  # noqa: F811
    res = cell(ip, USERS + "; INSERT INTO users VALUES (1, 'a'), (2, 'b')")
    assert [kind for kind, _ in res.parts()] == ["status", "status"]
    assert res.rows_affected == 2
    assert res.message == "Inserted 2 row(s)"


# ------------------------------------------------------------ errors


def test_error_stops_the_cell_and_points_into_the_cell(ip):  # noqa: F811
    body = (
        USERS
        + ";\nINSERT INTO users VALUES (1, 'a');\nSELECT * FROM nope;\n"
        + ("INSERT INTO users VALUES (2, 'b')")
    )
    with pytest.raises(KalamCellError) as info:
        cell(ip, body)
    err = info.value
    assert isinstance(err.error, TableNotFoundError)
    # Line 1 of the cell is the %%kalam line, so the third SQL line is line 4;
    # the caret sits under the unknown table's name.
    assert (err.position.line, err.position.column) == (4, 15)
    assert err.statement_index == 3
    assert err.lines()[-2].strip() == "SELECT * FROM nope;"
    assert line(ip, "SELECT id FROM users").rows() == [(1,)]  # the 4th statement never ran


def test_error_column_is_moved_to_the_statement_position_in_the_cell(ip):  # noqa: F811
    with pytest.raises(KalamCellError) as info:
        cell(ip, "SELECT 1;\n  SELECT 2; SELECT 1 WHERE x = {who}")
    err = info.value
    assert isinstance(err.error, ParameterError)
    text = "\n".join(err.lines())
    assert err.position.line == 3
    assert err.position.column == 1 + len("  SELECT 2; SELECT 1 WHERE x = ")
    caret = err.lines()[-1]
    assert caret.index("^") - 4 == err.position.column - 1
    assert ":who" in text


def test_parse_error_in_second_line_of_a_statement(ip):  # noqa: F811
    with pytest.raises(KalamCellError) as info:
        cell(ip, "SELECT 1;\nSELECT 1 +\n  * 2")
    assert isinstance(info.value.error, SqlParseError)
    assert info.value.position.line == 4


def test_kalam_error_shows_one_short_message_without_traceback(ip):  # noqa: F811
    cell(ip, USERS + "; INSERT INTO users VALUES (1, 'a')")
    result, shown = run_as_notebook(ip, "%%kalam\nINSERT INTO users VALUES (1, 'again')")
    assert not result.success  # the cell fails, so "Run All" stops here
    assert isinstance(result.error_in_exec, KalamCellError)
    assert isinstance(result.error_in_exec.error, PrimaryKeyViolationError)
    assert "Traceback" not in shown and "File " not in shown
    assert "PrimaryKeyViolationError: Primary key violation" in shown
    assert "line 2, column 1 of the cell" in shown
    assert len(shown.strip().splitlines()) <= 5


def test_a_bug_keeps_its_traceback(ip, monkeypatch):  # noqa: F811
    def broken(self, sql, params=None, **options):
        raise ZeroDivisionError("a bug, not a user error")

    monkeypatch.setattr(Engine, "execute", broken)
    result, shown = run_as_notebook(ip, "%kalam SELECT 1")
    assert isinstance(result.error_in_exec, ZeroDivisionError)
    assert "Traceback" in shown and "ZeroDivisionError" in shown


def test_interrupt_cancels_the_query_and_the_engine_stays_usable(ip):  # noqa: F811
    # The timer only delivers the interrupt; the query cannot finish on its own.
    timer = threading.Timer(0.5, _thread.interrupt_main)
    timer.start()
    try:
        with pytest.raises(KalamCellError) as info:
            line(ip, f"SELECT value FROM range(0, {10**12}) WHERE value % 1000 = 7")
    finally:
        timer.cancel()
    assert isinstance(info.value.error, QueryCancelledError)
    assert line(ip, "SELECT 1 AS ok").scalar() == 1


# ------------------------------------------------------------ parameters


def test_colon_name_binds_a_notebook_value(ip):  # noqa: F811
    cell(ip, USERS + "; INSERT INTO users VALUES (1, 'alice'), (2, 'bob')")
    ip.user_ns["who"] = "bob"
    assert line(ip, "SELECT id FROM users WHERE name = :who").rows() == [(2,)]


def test_bound_values_are_never_spliced_into_sql(ip):  # noqa: F811
    cell(ip, USERS + "; INSERT INTO users VALUES (1, 'alice'), (2, 'bob')")
    ip.user_ns["who"] = "bob' OR '1'='1"
    res = cell(ip, "SELECT * FROM users WHERE name = :who ORDER BY id")
    assert len(res) == 0
    assert "OR '1'='1" not in res.result.statement


def test_brace_template_is_refused_pointing_to_colon_name(ip):  # noqa: F811
    ip.user_ns["who"] = "bob"
    for run in (lambda: line(ip, "SELECT {who} AS v"), lambda: cell(ip, "SELECT {who} AS v")):
        with pytest.raises(KalamCellError) as info:
            run()
        assert isinstance(info.value.error, ParameterError)
        assert ":who" in info.value.error.message


def test_missing_notebook_variable_is_a_short_parameter_error(ip):  # noqa: F811
    with pytest.raises(KalamCellError) as info:
        cell(ip, "SELECT 1;\nSELECT :nowhere AS v")
    assert isinstance(info.value.error, ParameterError)
    assert ":nowhere" in info.value.error.message
    assert info.value.position.line == 3


# ------------------------------------------------------------ capture


def test_out_stores_a_pandas_dataframe_of_the_last_query(ip):  # noqa: F811
    cell(ip, USERS + "; INSERT INTO users VALUES (1, 'alice'), (2, 'bob')")
    cell(ip, "SELECT 1 AS ignored; SELECT id, name FROM users ORDER BY id", "-o df")
    df = ip.user_ns["df"]
    assert isinstance(df, pd.DataFrame)
    assert df.to_dict("list") == {"id": [1, 2], "name": ["alice", "bob"]}


def test_out_polars_and_arrow(ip):  # noqa: F811
    line(ip, "--out p --polars SELECT 1 AS x")
    line(ip, "-o a --arrow SELECT 2 AS x")
    assert isinstance(ip.user_ns["p"], pl.DataFrame) and ip.user_ns["p"]["x"].to_list() == [1]
    assert isinstance(ip.user_ns["a"], pa.Table) and ip.user_ns["a"].column("x").to_pylist() == [2]


def test_polars_without_out_is_a_usage_error(ip):  # noqa: F811
    with pytest.raises(UsageError, match="-o NAME"):
        line(ip, "--polars SELECT 1")


def test_shown_and_captured_come_from_one_execution(ip):  # noqa: F811
    res = line(ip, "-o df SELECT random() AS r")
    shown = str(res).splitlines()[3].strip()
    assert shown == repr(float(ip.user_ns["df"]["r"][0]))
    # INSERT ... RETURNING: a second execution would hit the primary key.
    line(ip, USERS)
    res = line(ip, "-o ins INSERT INTO users VALUES (7, 'once') RETURNING id")
    assert ip.user_ns["ins"]["id"].tolist() == [7]
    assert line(ip, "SELECT count(*) AS n FROM users").scalar() == 1


def test_line_magic_returns_the_result_object(ip):  # noqa: F811
    cell(ip, USERS + "; INSERT INTO users VALUES (1, 'alice'), (2, 'bob')")
    ip.run_cell("res = %kalam SELECT id, name FROM users ORDER BY id")
    res = ip.user_ns["res"]
    assert isinstance(res, CellResult)
    assert len(res) == 2 and res.columns == ["id", "name"]
    assert res.to_pandas()["name"].tolist() == ["alice", "bob"]
    assert res.to_arrow().num_rows == 2
    assert res.rows() == [(1, "alice"), (2, "bob")]


def test_outputs_never_echo_the_data_directory(ip, tmp_path):  # noqa: F811
    _, shown = run_as_notebook(
        ip,
        "%%kalam\n" + USERS + "; INSERT INTO users VALUES (1, 'a'); SELECT * FROM users",
    )
    _, err = run_as_notebook(ip, "%kalam SELECT * FROM nope")
    for text in (shown, err):
        assert str(tmp_path) not in text and "kalam-data" not in text


def test_magic_imports_no_network_or_telemetry_module():
    source = "\n".join(
        p.read_text(encoding="utf-8")
        for p in (Path(__file__).resolve().parents[1] / "kalam_magic").glob("*.py")
    )
    for module in ("socket", "urllib", "http.client", "requests", "httpx", "telemetry"):
        assert f"import {module}" not in source and f"from {module}" not in source


def test_data_dir_in_use_is_a_short_error_naming_the_directory(ip, tmp_path):  # noqa: F811
    busy = tmp_path / "busy"
    with Engine.open(busy):
        ip.user_ns["busy"] = str(busy)
        result, shown = run_as_notebook(ip, "%kalam --connect $busy")
    assert isinstance(result.error_in_exec, KalamCellError)
    assert result.error_in_exec.code == "DATA_DIR_IN_USE"
    assert "Traceback" not in shown
    # Which directory could not be opened is the point of the message (issue 10).
    assert str(busy.resolve()) in shown and "<data dir>" not in shown
    # The failed switch left the previous directory in effect.
    assert line(ip, "SELECT 1 AS still_connected").scalar() == 1
    assert magics(ip).settings.resolved_data_dir() == (tmp_path / "data").resolve()
