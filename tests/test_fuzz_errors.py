"""Whatever a caller sends, what comes back is a result or a ``KalamError``
with a stable code, never a raw Python / DataFusion exception and never an
``InternalError`` (which would mean an engine bug)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import Engine, KalamError
from engine.errors import InternalError

VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.sampled_from(["\ud800", "a\udfffb", "\x00", "'", "--", "2021-01-01", "1e400"]),
    st.binary(max_size=4),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=1),
)

TEMPLATES = [
    "SELECT * FROM t WHERE id = ?",
    "SELECT * FROM t WHERE id < ?",
    "SELECT * FROM t WHERE id IN (?, 1)",
    "SELECT * FROM t WHERE v = ?",
    "SELECT * FROM t WHERE f > ?",
    "SELECT ? + 1",
    "SELECT id FROM t WHERE ts > ?",
    "INSERT INTO t (id, v) VALUES (?, 'x')",
    "INSERT INTO t (id, v, f) VALUES (100, ?, 1.0)",
    "INSERT INTO t (id, f) VALUES (101, ?)",
    "INSERT INTO t (id, ts) VALUES (102, ?)",
    "UPDATE t SET v = ? WHERE id = 1",
    "UPDATE t SET f = ? WHERE id = 2",
    "UPDATE t SET n = ? WHERE id = 3",
    "DELETE FROM t WHERE id = ?",
    "DELETE FROM t WHERE v = ?",
    "UPDATE t SET n = n + ? WHERE id = 1",
]

FRAGMENTS = st.sampled_from(
    [
        "SELECT",
        "*",
        "FROM",
        "t",
        "WHERE",
        "id",
        "=",
        "1",
        "(",
        ")",
        ",",
        "'x'",
        "INSERT",
        "INTO",
        "VALUES",
        "UPDATE",
        "SET",
        "DELETE",
        "ALTER TABLE t",
        "ADD COLUMN",
        "DROP",
        "ORDER BY",
        "GROUP BY",
        "::",
        "BIGINT",
        "NULL",
        "_seq",
        "system.tables",
        "JOIN",
        "ON",
        "CAST(",
        "AS",
        ";",
        "$1",
        ":name",
        "?",
        "9223372036854775808",
        "1e999",
        "E'\\\\x'",
        "ANY",
        "LIMIT",
        "-",
        "||",
    ]
)


@pytest.fixture(scope="module")
def eng(tmp_path_factory):
    with Engine.open(tmp_path_factory.mktemp("fuzz"), background_jobs=False) as e:
        e.execute(
            "CREATE TABLE t (id BIGINT PRIMARY KEY, v TEXT, f DOUBLE, n BIGINT, ts TIMESTAMP)"
        )
        e.execute(
            "INSERT INTO t (id, v, f, n) VALUES (1, 'a', 1.5, 10), (2, 'b', 'NaN'::double, 20)"
        )
        e.execute("INSERT INTO t (id, v, f, n) VALUES (3, 'c', 3.0, 9223372036854775800)")
        e.flush("t")
        e.execute("INSERT INTO t (id, v, f, n) VALUES (4, 'd', 4.0, 40)")
        yield e


def _only_kalam_errors(eng: Engine, sql: str, params=None) -> None:
    try:
        eng.execute(sql, params)
    except InternalError as exc:  # an engine bug: fail with what escaped
        raise AssertionError(f"{sql!r} {params!r}: {exc.message}") from exc
    except KalamError as exc:
        assert exc.code and exc.code.isupper()


@settings(
    max_examples=300, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck)
)
@given(template=st.sampled_from(TEMPLATES), value=VALUES)
def test_any_parameter_value_gives_a_result_or_a_kalam_error(eng, template, value):
    _only_kalam_errors(eng, template, [value])


@settings(
    max_examples=300, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck)
)
@given(words=st.lists(FRAGMENTS, min_size=1, max_size=12))
def test_any_statement_text_gives_a_result_or_a_kalam_error(eng, words):
    _only_kalam_errors(eng, " ".join(words))


@pytest.mark.parametrize(
    ("sql", "params"),
    [
        ("SELECT * FROM t WHERE id = ?", [None]),
        ("SELECT * FROM t WHERE id < ?", [2**63]),
        ("SELECT * FROM t WHERE v = ?", ["\ud800"]),
        ("SELECT " + "(" * 60 + "1" + ")" * 60, None),
        ("DELETE SELECT", None),
        ("ALTER TABLE t SET", None),
    ],
    ids=["pk-none", "pk-2**63", "lone-surrogate", "60-parens", "delete-select", "alter-set"],
)
def test_inputs_that_used_to_escape_as_raw_exceptions(eng, sql, params):
    _only_kalam_errors(eng, sql, params)
