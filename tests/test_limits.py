"""No statement can crash the process: size, nesting and expression length
are refused with ``StatementTooComplexError`` before anything is planned."""

from __future__ import annotations

import pytest

from engine import Engine
from engine.errors import StatementTooComplexError
from engine.sql import limits, parser


@pytest.fixture
def eng(tmp_path):
    with Engine.open(tmp_path, background_jobs=False) as e:
        e.execute("CREATE TABLE t (id BIGINT PRIMARY KEY, v BIGINT)")
        e.execute("INSERT INTO t VALUES (1, 1), (2, 2)")
        yield e


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT " + "+".join(["1"] * 10_000),
        "UPDATE t SET v = 0 WHERE " + " OR ".join(f"id = {i}" for i in range(20_000)),
        "DELETE FROM t WHERE " + " OR ".join(f"id = {i}" for i in range(20_000)),
        "SELECT " + "(" * 60 + "1" + ")" * 60,
        "SELECT * FROM t WHERE id IN " + "(SELECT id FROM t WHERE id IN " * 50 + "(1)" + ")" * 50,
    ],
    ids=["10k-plus", "20k-or-update", "20k-or-delete", "60-parens", "50-subqueries"],
)
def test_statements_that_would_overflow_the_planner_are_refused_and_change_nothing(eng, sql):
    with pytest.raises(StatementTooComplexError) as caught:
        eng.execute(sql)
    assert caught.value.code == "STATEMENT_TOO_COMPLEX"
    assert caught.value.line == 1 and caught.value.column > 1
    assert eng.execute("SELECT id, v FROM t ORDER BY id").rows() == [(1, 1), (2, 2)]


def test_expressions_within_the_limits_still_run(eng):
    assert eng.execute("SELECT " + "+".join(["1"] * (limits.MAX_TERMS + 1))).scalar() == 1001
    nested = "(" * (limits.MAX_NESTING - 1) + "1" + ")" * (limits.MAX_NESTING - 1)
    assert eng.execute(f"SELECT {nested}").scalar() == 1
    long_or = " OR ".join(f"id = {i}" for i in range(900))
    assert eng.execute(f"SELECT count(*) FROM t WHERE {long_or}").scalar() == 2
    in_list = ", ".join(str(i) for i in range(5_000))
    assert eng.execute(f"SELECT count(*) FROM t WHERE id IN ({in_list})").scalar() == 2


def test_a_statement_over_the_size_limit_is_refused(eng):
    values = ", ".join(f"({i}, {i})" for i in range(3, 120_000))
    with pytest.raises(StatementTooComplexError, match="too large"):
        eng.execute(f"INSERT INTO t VALUES {values}")
    assert eng.execute("SELECT count(*) FROM t").scalar() == 2


def test_the_parse_cache_is_bounded_by_bytes(eng):
    for i in range(200):
        parser.parse(f"SELECT {i} AS c, '{'x' * 60_000}' AS pad")
    assert parser._cache_bytes <= parser._CACHE_CHARS
    assert sum(len(k) for k in parser._cache) == parser._cache_bytes
