"""Bound parameters: ``?`` and ``$n`` take a sequence, ``:name`` takes a mapping;
values are bound, never spliced into SQL, and ``{name}`` templates are refused."""

from __future__ import annotations

import datetime as dt

import pytest

from engine import parameter_names
from engine.errors import ParameterError


@pytest.fixture
def t(engine):
    engine.execute(
        "CREATE TABLE t (id INT PRIMARY KEY, name TEXT, at TIMESTAMP, day DATE, b BYTES)"
    )
    engine.execute(
        "INSERT INTO t VALUES (1, 'a', '2024-01-01 00:00:00', '2024-01-01', X'01'), "
        "(2, 'b', '2024-06-01 12:30:00', '2024-06-01', X'02'), (3, 'c', NULL, NULL, NULL)"
    )
    return engine


def ids(result):
    return [r[0] for r in result.rows()]


# ---------------------------------------------------------------- the three styles


def test_question_marks_bind_a_sequence_in_order(t):
    result = t.execute("SELECT id FROM t WHERE id >= ? AND name <> ? ORDER BY id", [1, "b"])
    assert ids(result) == [1, 3]


@pytest.mark.parametrize("count", [2, 3, 5, 12])
def test_many_question_marks(engine, count):
    sql = "SELECT " + ", ".join("?" for _ in range(count))
    assert engine.execute(sql, list(range(count))).rows() == [tuple(range(count))]


def test_question_marks_accept_a_tuple(t):
    assert ids(t.execute("SELECT id FROM t WHERE id = ?", (2,))) == [2]


def test_dollar_numbers_bind_a_sequence_by_position(t):
    result = t.execute("SELECT id FROM t WHERE id = $2 OR id = $1 ORDER BY id", [3, 1])
    assert ids(result) == [1, 3]


def test_dollar_number_used_twice(engine):
    assert engine.execute("SELECT $1 + $1", [21]).scalar() == 42


@pytest.mark.parametrize("sql", ["SELECT $1,$2", "SELECT $1 , $2", "SELECT ($1)+($2)"])
def test_dollar_numbers_without_spaces(engine, sql):
    result = engine.execute(sql, [1, 2])
    assert sum(result.rows()[0]) == 3


def test_names_bind_a_mapping(t):
    result = t.execute(
        "SELECT id FROM t WHERE name = :name OR id = :id ORDER BY id", {"name": "c", "id": 1}
    )
    assert ids(result) == [1, 3]


def test_name_used_twice_binds_the_same_value(engine):
    assert engine.execute("SELECT :x * :x", {"x": 7}).scalar() == 49


def test_extra_names_in_the_mapping_are_ignored(t):
    assert ids(t.execute("SELECT id FROM t WHERE id = :id", {"id": 2, "unused": 9})) == [2]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (dt.datetime(2024, 6, 1, 12, 30), [2]),
        (dt.date(2024, 1, 1), [1]),
        (b"\x02", [2]),
        (None, []),
    ],
)
def test_typed_values_bind_in_predicates(t, value, expected):
    column = {dt.datetime: "at", dt.date: "day", bytes: "b"}.get(type(value), "name")
    assert ids(t.execute(f"SELECT id FROM t WHERE {column} = ?", [value])) == expected


def test_values_are_never_spliced_into_sql(t):
    hostile = "x'; DROP TABLE t; --"
    assert ids(t.execute("SELECT id FROM t WHERE name = ?", [hostile])) == []
    t.execute("INSERT INTO t (id, name) VALUES (?, ?)", [4, hostile])
    assert t.execute("SELECT name FROM t WHERE id = 4").scalar() == hostile
    assert len(t.execute("SELECT * FROM t")) == 4


def test_colons_that_are_not_placeholders(t):
    assert t.execute("SELECT 'a:b' AS s, CAST(1 AS BIGINT)::TEXT AS c").rows() == [("a:b", "1")]
    assert ids(t.execute("SELECT id FROM t WHERE name = 'x:y'")) == []


def test_parameter_names_lists_named_placeholders_in_order(engine):
    assert parameter_names("SELECT :b, :a, :b; SELECT :c") == ["b", "a", "c"]
    assert parameter_names("SELECT ':not_me', ?") == []


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("sql", "params", "phrases"),
    [
        ("SELECT id FROM t WHERE id = ? OR id = ?", [1], ("2", "1")),
        ("SELECT id FROM t WHERE id = ?", [1, 2], ("1", "2")),
        ("SELECT id FROM t WHERE id = $2", [1], ()),
        ("SELECT id FROM t WHERE id = ?", None, ("no parameters",)),
        ("SELECT id FROM t WHERE id = ?", {"id": 1}, ("sequence",)),
        ("SELECT id FROM t WHERE id = :id", [1], ("mapping",)),
        ("SELECT id FROM t WHERE id = :id", {"other": 1}, (":id",)),
        ("SELECT id FROM t WHERE id = :id AND name = :name", {"id": 1}, (":name",)),
        ("SELECT id FROM t WHERE id = 1", [1], ("no placeholders",)),
        ("SELECT id FROM t WHERE id = ? OR id = :id", [1], ()),
    ],
    ids=[
        "too-few",
        "too-many",
        "dollar-gap",
        "none-given",
        "mapping-for-qmark",
        "sequence-for-name",
        "missing-name",
        "second-name-missing",
        "no-placeholders",
        "mixed-styles",
    ],
)
def test_wrong_parameters_are_a_parameter_error(t, expect_error, sql, params, phrases):
    exc = expect_error(t, sql, ParameterError, "PARAMETER_ERROR", *phrases, params=params)
    assert isinstance(exc, ValueError)


def test_wrong_parameter_count_in_insert_changes_nothing(t, expect_error):
    expect_error(
        t,
        "INSERT INTO t (id, name) VALUES (?, ?)",
        ParameterError,
        "PARAMETER_ERROR",
        params=[9],
    )


def test_missing_named_parameter_in_insert_changes_nothing(t, expect_error):
    expect_error(
        t,
        "INSERT INTO t (id, name) VALUES (:id, :name)",
        ParameterError,
        "PARAMETER_ERROR",
        ":name",
        params={"id": 9},
    )


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT id FROM t WHERE name = {name}",
        "INSERT INTO t (id, name) VALUES (9, {name})",
    ],
)
def test_brace_templates_are_refused_pointing_to_colon_name(t, expect_error, sql):
    exc = expect_error(
        t, sql, ParameterError, "PARAMETER_ERROR", "{name}", ":name", params={"name": "a"}
    )
    assert exc.line == 1 and exc.column is not None


def test_brace_inside_a_string_without_a_name_is_plain_text(engine):
    assert engine.execute("SELECT '{}' AS s").scalar() == "{}"
