"""Splitting scripts into statements, where each statement starts, where a
syntax error is, and the parse cache."""

from __future__ import annotations

import dataclasses

import pytest

from engine import StatementText, split_statements
from engine.errors import SqlParseError
from engine.sql.parser import parse

# ---------------------------------------------------------------- splitting


def texts(sql: str) -> list[str]:
    return [s.sql for s in split_statements(sql)]


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT 1; SELECT 2", ["SELECT 1", "SELECT 2"]),
        ("SELECT 1;", ["SELECT 1"]),
        ("SELECT ';' AS s; SELECT 2", ["SELECT ';' AS s", "SELECT 2"]),
        ("SELECT 'it''s; fine'; SELECT 2", ["SELECT 'it''s; fine'", "SELECT 2"]),
        ('SELECT 1 AS "a;b"; SELECT 2', ['SELECT 1 AS "a;b"', "SELECT 2"]),
        ("SELECT $$a;b$$; SELECT 2", ["SELECT $$a;b$$", "SELECT 2"]),
        ("SELECT 1 -- not; a split\n; SELECT 2", ["SELECT 1", "SELECT 2"]),
        ("SELECT 1 /* ; */ + 1; SELECT 2", ["SELECT 1 /* ; */ + 1", "SELECT 2"]),
        ("SELECT 1 /* a\n;\n b */ + 1", ["SELECT 1 /* a\n;\n b */ + 1"]),
        (
            "INSERT INTO t VALUES (1, 'a;b');\nSELECT 2",
            ["INSERT INTO t VALUES (1, 'a;b')", "SELECT 2"],
        ),
    ],
)
def test_split_on_semicolons_outside_strings_and_comments(sql, expected):
    assert texts(sql) == expected


@pytest.mark.parametrize("sql", ["", "   \n ", ";", ";;  ;", "-- just a comment", "/* c */"])
def test_empty_statements_are_dropped(sql):
    assert split_statements(sql) == []


def test_blank_statements_between_semicolons_are_dropped():
    assert texts("SELECT 1;;\n;SELECT 2;;") == ["SELECT 1", "SELECT 2"]


def test_statement_positions_are_one_based_line_and_column():
    sql = "SELECT 1;\n  SELECT 2; SELECT 3;\n\n\tSELECT\n  4"
    pieces = split_statements(sql)
    assert [(p.line, p.column) for p in pieces] == [(1, 1), (2, 3), (2, 13), (4, 2)]
    for p in pieces:
        assert isinstance(p, StatementText)
        assert sql[p.start : p.start + len(p.sql)] == p.sql
    assert pieces[3].sql == "SELECT\n  4"


def test_position_after_a_multi_line_string():
    sql = "SELECT 'a\nb\nc';\nSELECT 2"
    pieces = split_statements(sql)
    assert [(p.line, p.column) for p in pieces] == [(1, 1), (4, 1)]


def test_position_after_a_leading_comment():
    pieces = split_statements("-- header\n-- more\n   SELECT 1")
    assert len(pieces) == 1
    assert (pieces[0].line, pieces[0].column) == (3, 4)
    assert pieces[0].sql.endswith("SELECT 1")


# ---------------------------------------------------------------- errors carry positions


@pytest.mark.parametrize(
    ("script", "line", "column"),
    [
        ("SELECT 1;\nSELECT 2;\nSELECT * FROM WHERE", 3, 15),
        ("\n\nSELECT * FROM WHERE", 3, 15),
        ("SELECT 1;\nSELECT 2;\n    CREATE NAMESPACE 1x", 3, 22),
        ("SELECT 1; SELECT * FROM WHERE", 1, 25),
        ("SELECT 1;\nSELECT *\nFROM WHERE", 3, 6),
        ("SELECT 1;\nSELECT 2;\nSELECT (1 + 2", 3, None),
        ("SELECT 1;\nSELECT 2;\nINSERT INTO t VALUES (1,", 3, None),
        ("SELECT 1;\nSELECT 2;\nCREATE TABLE t (id INT PRIMARY KEY", 3, None),
        ("SELECT 1;\nSELECT 2;\nSELECT 1 FROM t WHERE a = = 2", 3, None),
        ("SELECT 1;\nSELECT 2;\nDROP NAMESPACE", 3, None),
        ("SELECT 1;\nSELECT 2;\nSELECT 'abc", 3, None),
        ('SELECT 1;\nSELECT 2;\nSELECT "abc', 3, None),
    ],
    ids=[
        "sqlglot-error",
        "leading-blank-lines",
        "kalam-statement",
        "second-statement-on-line-1",
        "second-line-of-a-statement",
        "unclosed-paren",
        "unfinished-insert",
        "unfinished-create",
        "double-operator",
        "missing-name",
        "unterminated-string",
        "unterminated-identifier",
    ],
)
def test_syntax_errors_report_the_line_and_column_in_the_script(engine, script, line, column):
    with pytest.raises(SqlParseError) as info:
        engine.execute_script(script)
    exc = info.value
    assert exc.code == "SQL_PARSE_ERROR"
    assert exc.message.startswith("Syntax error")
    assert exc.line == line, exc
    assert exc.column is not None, exc
    if column is not None:
        assert exc.column == column, exc
    else:
        assert 1 <= exc.column <= len(script.splitlines()[line - 1]) + 1, exc
    assert f"line {line}" in str(exc)


def test_single_statement_error_position_through_execute(engine):
    with pytest.raises(SqlParseError) as info:
        engine.execute("\n  SELECT * FROM WHERE")
    assert (info.value.line, info.value.column) == (2, 17)


# ---------------------------------------------------------------- parse cache


def test_same_text_parses_to_the_same_statement_object():
    sql = "SELECT 42 AS parse_cache_probe WHERE 1 = ?"
    first = parse(sql)
    second = parse(sql)
    assert first is second
    assert first[0] is second[0]


def test_different_text_parses_to_different_statements():
    a = parse("SELECT 1 AS cache_a")
    b = parse("SELECT 1 AS cache_b")
    assert a[0] is not b[0]
    assert a[0].sql == "SELECT 1 AS cache_a"


def test_parsed_statements_are_immutable():
    stmt = parse("SELECT 1 AS frozen_probe")[0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        stmt.sql = "SELECT 2"  # type: ignore[misc]


def test_cached_statement_binds_new_parameters_each_time(engine):
    sql = "SELECT ? * 2 AS doubled"
    assert engine.execute(sql, [2]).scalar() == 4
    assert engine.execute(sql, [5]).scalar() == 10


def test_script_statements_keep_their_positions(engine):
    stmts = parse("SELECT 1;\n\n   SELECT 2")
    assert [(s.line, s.column) for s in stmts] == [(1, 1), (3, 4)]


def test_a_long_statement_is_tokenized_once(monkeypatch):
    # Splitting, placeholders, slips and the parse all read one token list: a
    # pasted 10,000-row VALUES list must not be scanned once per step.
    import sqlglot

    from engine.sql import parser

    calls: list[int] = []
    real = sqlglot.tokenize

    def counting(sql, *args, **kwargs):
        calls.append(len(sql))
        return real(sql, *args, **kwargs)

    monkeypatch.setattr(sqlglot, "tokenize", counting)
    rows = ", ".join(f"({i}, 'row {i}')" for i in range(500))
    (stmt,) = parser.parse(f"INSERT INTO tokenized_once VALUES {rows}")
    assert len(stmt.rows) == 500
    assert len(calls) == 1, calls
