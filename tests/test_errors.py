"""The error tree, one-statement ``execute``, unsupported statements, a closed
engine, and names that could reach outside the data directory."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from engine import Engine, KalamError
from engine import errors as errors_module
from engine.errors import (
    EngineClosedError,
    InvalidNameError,
    MultipleStatementsError,
    SqlParseError,
    UnsupportedStatementError,
)

ERROR_CLASSES = [
    cls
    for _, cls in inspect.getmembers(errors_module, inspect.isclass)
    if issubclass(cls, KalamError) and cls is not KalamError
]


# ---------------------------------------------------------------- the tree


def test_every_error_has_its_own_stable_code():
    codes = [cls.code for cls in ERROR_CLASSES]
    assert len(codes) == len(set(codes))
    assert all(code.isupper() and code != KalamError.code for code in codes)


@pytest.mark.parametrize(
    ("name", "code", "builtin"),
    [
        ("SqlParseError", "SQL_PARSE_ERROR", ValueError),
        ("MultipleStatementsError", "MULTIPLE_STATEMENTS", ValueError),
        ("ParameterError", "PARAMETER_ERROR", ValueError),
        ("TableNotFoundError", "TABLE_NOT_FOUND", LookupError),
        ("NamespaceNotFoundError", "NAMESPACE_NOT_FOUND", LookupError),
        ("PrimaryKeyViolationError", "PRIMARY_KEY_VIOLATION", ValueError),
        ("NotNullViolationError", "NOT_NULL_VIOLATION", ValueError),
        ("TypeMismatchError", "TYPE_MISMATCH", TypeError),
        ("DataDirInUseError", "DATA_DIR_IN_USE", RuntimeError),
        ("QueryCancelledError", "QUERY_CANCELLED", RuntimeError),
    ],
)
def test_errors_carry_a_code_and_the_matching_builtin(name, code, builtin):
    cls = getattr(errors_module, name)
    assert cls.code == code
    assert issubclass(cls, KalamError) and issubclass(cls, builtin)


def test_error_string_shows_line_and_column_when_known():
    located = SqlParseError("Syntax error: boom", line=3, column=7)
    assert (located.line, located.column, located.message) == (3, 7, "Syntax error: boom")
    assert str(located) == "Syntax error: boom (line 3, column 7)"
    plain = SqlParseError("Syntax error: boom")
    assert str(plain) == "Syntax error: boom"
    assert plain.line is None and plain.column is None


# ---------------------------------------------------------------- one statement per execute


@pytest.fixture
def t(engine):
    engine.execute("CREATE TABLE t (id INT PRIMARY KEY)")
    engine.execute("INSERT INTO t VALUES (1)")
    return engine


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 1; SELECT 2",
        "INSERT INTO t VALUES (2); INSERT INTO t VALUES (3)",
        "INSERT INTO t VALUES (2);\nCREATE NAMESPACE zz",
        "CREATE NAMESPACE a; CREATE NAMESPACE b;",
    ],
)
def test_execute_refuses_several_statements_and_runs_none(t, expect_error, sql):
    exc = expect_error(t, sql, MultipleStatementsError, "MULTIPLE_STATEMENTS", "execute_script")
    assert "2" in exc.message


def test_trailing_semicolon_is_still_one_statement(t):
    assert t.execute("SELECT id FROM t;").rows() == [(1,)]
    assert t.execute("INSERT INTO t VALUES (2);  -- done").rows_affected == 1


@pytest.mark.parametrize("sql", ["", "   ", ";", "-- only a comment", "/* nothing */ ;"])
def test_execute_of_no_statement_is_an_error(t, snapshot, sql):
    before = snapshot(t)
    with pytest.raises(KalamError) as info:
        t.execute(sql)
    assert "empty" in info.value.message or "no statement" in info.value.message.lower()
    assert snapshot(t) == before


def test_execute_script_runs_a_batch_in_order(engine):
    results = engine.execute_script(
        "CREATE TABLE s (id INT PRIMARY KEY, v TEXT);\n"
        "INSERT INTO s VALUES (1, 'a;b'), (2, 'c');\n"
        "-- a comment; with a semicolon\n"
        "SELECT v FROM s ORDER BY id;"
    )
    assert [r.message for r in results[:2]] == ["Table default.s created", "Inserted 2 row(s)"]
    assert results[2].rows() == [("a;b",), ("c",)]


def test_execute_script_stops_at_the_first_error(t):
    with pytest.raises(KalamError) as info:
        t.execute_script(
            "INSERT INTO t VALUES (2); INSERT INTO t VALUES (1); INSERT INTO t VALUES (3)"
        )
    assert info.value.code == "PRIMARY_KEY_VIOLATION"
    # The statement before the failure ran, the one after did not.
    assert t.execute("SELECT id FROM t ORDER BY id").rows() == [(1,), (2,)]


def test_execute_script_with_a_syntax_error_runs_nothing(t, snapshot):
    before = snapshot(t)
    with pytest.raises(SqlParseError) as info:
        t.execute_script(
            "INSERT INTO t VALUES (2);\nINSERT INTO t VALUES (3);\nSELECT * FROM WHERE"
        )
    assert info.value.line == 3
    assert snapshot(t) == before


def test_execute_script_applies_the_user(engine):
    engine.execute("CREATE USER TABLE u (id INT PRIMARY KEY)")
    engine.execute_script("INSERT INTO u VALUES (1); INSERT INTO u VALUES (2)", user="alice")
    assert engine.execute("SELECT count(*) FROM u", user="alice").scalar() == 2
    assert engine.execute("SELECT count(*) FROM u", user="bob").scalar() == 0


# ---------------------------------------------------------------- unsupported statements


@pytest.mark.parametrize(
    "sql",
    ["CREATE TRIGGER tr UPDATE ON t BEGIN SELECT 1; END", "GRANT SELECT ON t TO bob", "VACUUM"],
)
def test_unsupported_statements_are_refused_and_change_nothing(t, expect_error, sql):
    expect_error(t, sql, UnsupportedStatementError, "UNSUPPORTED_STATEMENT")


def test_a_closed_engine_refuses_statements(engine):
    engine.close()
    engine.close()  # closing twice is harmless
    assert engine.closed
    with pytest.raises(EngineClosedError) as info:
        engine.execute("SELECT 1")
    assert info.value.code == "ENGINE_CLOSED"


# ---------------------------------------------------------------- names stay inside the data dir


def files_outside_hot(root: Path, data_dir: Path) -> set[Path]:
    hot = data_dir / "hot"
    return {p for p in root.rglob("*") if hot not in p.parents and p != hot}


TRAVERSALS = [
    ('CREATE NAMESPACE "../x"', "namespace"),
    ('CREATE NAMESPACE "x/../../x"', "namespace"),
    ('CREATE TABLE "../x" (id INT PRIMARY KEY)', "table"),
    ('CREATE TABLE "../../x" (id INT PRIMARY KEY)', "table"),
    ('CREATE TABLE "/tmp/x" (id INT PRIMARY KEY)', "table"),
    ('CREATE TABLE "..".x (id INT PRIMARY KEY)', "namespace"),
    ('CREATE TABLE x ("../x" INT PRIMARY KEY)', "column"),
    ('CREATE USER TABLE "../x" (id INT PRIMARY KEY)', "table"),
]


@pytest.mark.parametrize(("sql", "kind"), TRAVERSALS)
def test_quoted_path_names_are_rejected_and_create_nothing(
    engine, expect_error, tmp_path, data_dir, sql, kind
):
    before = files_outside_hot(tmp_path, data_dir)
    exc = expect_error(engine, sql, InvalidNameError, "INVALID_NAME", kind)
    assert isinstance(exc, ValueError)
    assert files_outside_hot(tmp_path, data_dir) == before
    assert not (tmp_path / "x").exists()
    assert not (data_dir / "x").exists()
    assert not (data_dir / "storage" / "x").exists()


@pytest.mark.parametrize("user", ["../x", "a/b", "..", "/etc", "Alice", ""])
def test_unsafe_user_names_are_rejected(engine, expect_error, tmp_path, data_dir, user):
    engine.execute("CREATE USER TABLE u (id INT PRIMARY KEY)")
    before = files_outside_hot(tmp_path, data_dir)
    expect_error(
        engine, "INSERT INTO u VALUES (1)", InvalidNameError, "INVALID_NAME", "user", user=user
    )
    assert files_outside_hot(tmp_path, data_dir) == before


def test_unsafe_user_name_at_open_is_rejected(tmp_path):
    with pytest.raises(InvalidNameError):
        Engine.open(tmp_path / "data", user="../x")
    assert not (tmp_path / "x").exists()
