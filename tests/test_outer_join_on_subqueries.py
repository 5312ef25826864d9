"""Subqueries in a LEFT / RIGHT / FULL join's ON, beside DuckDB.

The engine refused them all ("a correlated subquery in a JOIN's ON
condition") once DataFusion 55 had refused them, and DataFusion refused IN /
NOT IN anywhere in an outer join's ON. In an outer join's ON a FALSE or
UNKNOWN condition NULL-extends the preserved side's row instead of dropping
it, so ``engine/sql/outer_join_on.py`` moves each subquery where the query
keeps that meaning: into a derived table of a LEFT join's non-preserved
side, or into a value computed per distinct key of the columns it names,
joined one to one (or, naming both sides, per pair of values) and tested in
the ON. The matrix runs IN / NOT IN / EXISTS / NOT EXISTS / scalar / ANY /
ALL, uncorrelated and correlated with either side or both, under LEFT,
RIGHT and FULL joins, over rows with NULLs and duplicates on both sides,
hot, flushed (cold), flushed with hot versions over them (mixed), and in
USER tables whose other user's rows must stay invisible; also inside
DELETE and UPDATE predicates.

Found on the way and fixed, each with its tests below: an inner join's
``IN (SELECT ...)`` in ON was refused too (it now filters its table or
moves to the WHERE); ``SELECT *`` over a decorrelated subquery listed the
decorrelation's own columns; a decorrelated ``count(*)`` over a RIGHT /
FULL join missed the rows the join padded its first table in; and an
``IS NOT DISTINCT FROM`` join made DataFusion 55 pair NULL keys in the
INNER join below it (the rewrite joins on ``struct(..) = struct(..)``).
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import duckdb
import pytest
from helpers_differential import Statement, engine_beside_duckdb

from engine import Engine
from engine.errors import KalamError, QueryError, UnsupportedStatementError

# (id, a, b): duplicate a and b values and NULLs in both, on every side.
P = [(1, 1, 10), (2, 1, 20), (3, 2, None), (4, None, 30), (5, 3, 10), (6, 4, 40), (7, 1, 10)]
Q = [(1, 1, 10), (2, 1, 20), (3, 2, None), (4, None, 30), (5, 3, 50), (6, 5, 10), (7, 3, 10)]
R = [(1, 1, 10), (2, 2, None), (3, 3, 20), (4, 3, 30), (5, 1, 10)]
CHURN = (
    "UPDATE p SET b = 20 WHERE id = 5",
    "DELETE FROM q WHERE id = 2",
    "INSERT INTO q VALUES (8, 4, 40)",
    "UPDATE r SET b = 50 WHERE id = 4",
)
BOB = {"p": [(50, 1, 10), (51, 2, 20)], "q": [(60, 1, 20), (61, 4, 40)], "r": [(70, 1, 20)]}

CONDITIONS = [
    # the non-preserved side of a LEFT join only, or nothing
    "q.b IN (SELECT b FROM r)",
    "q.b NOT IN (SELECT b FROM r)",
    "EXISTS (SELECT 1 FROM r WHERE r.a = q.a)",
    "NOT EXISTS (SELECT 1 FROM r WHERE r.b = q.b)",
    "q.b > (SELECT avg(b) FROM r)",
    "q.b > ANY (SELECT b FROM r)",
    "(SELECT count(*) FROM r WHERE r.a = q.a) = 0",
    "EXISTS (SELECT 1 FROM r)",
    "NOT EXISTS (SELECT 1 FROM r WHERE r.a > 100)",
    # the preserved side of a LEFT join only
    "p.b IN (SELECT b FROM r)",
    "p.b NOT IN (SELECT b FROM r)",
    "p.b NOT IN (SELECT b FROM r WHERE r.b IS NOT NULL)",
    "NOT EXISTS (SELECT 1 FROM r WHERE r.a = p.a)",
    "p.b > (SELECT avg(b) FROM r)",
    "p.b < (SELECT count(*) FROM r WHERE r.a = p.a) * 20",
    "p.b >= ALL (SELECT b FROM r WHERE r.a = p.a)",
    "(p.b IS NULL OR p.b IN (SELECT b FROM r))",
    # both sides
    "EXISTS (SELECT 1 FROM r WHERE r.a = p.a AND r.b = q.b)",
    "NOT EXISTS (SELECT 1 FROM r WHERE r.a = p.a AND r.b > q.b)",
    "q.b = (SELECT max(b) FROM r WHERE r.a = p.a)",
    "q.b <> ALL (SELECT b FROM r WHERE r.a = p.a)",
    "p.a IN (SELECT a FROM r WHERE r.b = q.b)",
    "p.b NOT IN (SELECT b FROM r WHERE r.a = q.a)",
    "(q.b IN (SELECT b FROM r) OR p.b NOT IN (SELECT b FROM r WHERE r.a = q.a))",
]
KINDS = ["LEFT JOIN", "RIGHT JOIN", "FULL JOIN"]
MATRIX = [
    f"SELECT p.id, q.id FROM p {kind} q ON p.a = q.a AND {cond}"
    for kind, cond in itertools.product(KINDS, CONDITIONS)
]
OTHER = [
    # no other condition: every pair is a candidate
    *[f"SELECT * FROM p {kind} q ON {cond}" for kind in KINDS for cond in CONDITIONS[17:20]],
    "SELECT * FROM p LEFT JOIN q ON p.a = q.a AND q.b IN (SELECT b FROM r)",
    "SELECT * FROM p FULL JOIN q ON p.a = q.a AND p.b NOT IN (SELECT b FROM r)",
    "SELECT p.a, q2.a FROM p FULL JOIN q AS q2 ON q2.a = p.a AND EXISTS (SELECT 1 FROM q "
    "WHERE q.b = p.b AND EXISTS (SELECT 1 FROM q AS r WHERE r.b > q.b AND r.a <> p.a))",
    "SELECT p.id, x.id FROM p LEFT JOIN (SELECT * FROM q WHERE q.id < 6) AS x "
    "ON x.a = p.a AND x.b NOT IN (SELECT b FROM r WHERE r.a = p.a)",
    "WITH c AS (SELECT * FROM q WHERE id > 1) "
    "SELECT p.id, c.id FROM p RIGHT JOIN c ON c.a = p.a AND p.b IN (SELECT b FROM r)",
    "SELECT p.id, q.id, r.id FROM p, q LEFT JOIN r ON r.a = q.a "
    "AND r.b NOT IN (SELECT b FROM p AS p3 WHERE p3.a = q.a) WHERE p.a = q.a",
    "SELECT p.id, q.id, s.id FROM p JOIN r AS s ON s.a = p.a LEFT JOIN q ON q.a = p.a "
    "AND q.b NOT IN (SELECT b FROM r WHERE r.a = s.a)",
    "SELECT p.id, q.id, s.id FROM p LEFT JOIN q ON q.a = p.a AND EXISTS (SELECT 1 FROM r "
    "WHERE r.b = q.b) LEFT JOIN r AS s ON s.a = q.a AND s.b NOT IN (SELECT b FROM q AS q3 "
    "WHERE q3.a = p.a)",
    "SELECT p.id, q.id FROM p RIGHT JOIN q ON p.a = q.a AND EXISTS (SELECT 1 FROM r "
    "WHERE r.a = p.a AND r.b = q.b) RIGHT JOIN r AS s ON s.a = q.a",
    "SELECT p.id, q.id, s.id FROM p FULL JOIN q ON p.a = q.a FULL JOIN r AS s "
    "ON s.a = coalesce(p.a, q.a) AND s.b NOT IN (SELECT b FROM q AS q4 WHERE q4.a = p.a)",
    "SELECT p.id, q.id FROM p LEFT JOIN q ON CASE WHEN p.b > 15 "
    "THEN EXISTS (SELECT 1 FROM r WHERE r.a = q.a) ELSE q.a = p.a END",
    "SELECT count(*), count(q.id) FROM p LEFT JOIN q ON p.a = q.a "
    "AND q.b IN (SELECT b FROM r) WHERE p.id > 1",
    "SELECT p.a, count(q.id) FROM p FULL JOIN q ON p.a = q.a "
    "AND p.b NOT IN (SELECT b FROM r) GROUP BY p.a",
    "SELECT x.id FROM (SELECT p.id FROM p LEFT JOIN q ON p.a = q.a "
    "AND q.b IN (SELECT b FROM r)) AS x",
    "SELECT p.id, (SELECT count(*) FROM q LEFT JOIN r ON r.a = q.a "
    "AND r.b IN (SELECT b FROM p AS p5) WHERE q.a = p.a) AS n FROM p",
    "SELECT p.id FROM p WHERE p.id NOT IN (SELECT q.id FROM q FULL JOIN r ON r.a = q.a "
    "AND r.b NOT IN (SELECT b FROM p AS p6 WHERE p6.a = r.a) WHERE q.id IS NOT NULL)",
    "SELECT p.id, q.id FROM p LEFT JOIN q ON p.a = q.a AND q.b = (SELECT r.b FROM r WHERE r.id = 9)",
    # a * over a USING join: the merged column listed once, the added ones not at all
    "SELECT * FROM p LEFT JOIN q USING (a) LEFT JOIN r ON r.a = q.a "
    "AND r.b NOT IN (SELECT b FROM p AS p2 WHERE p2.a = q.id)",
    "SELECT * FROM p JOIN q USING (id) FULL JOIN r ON r.a = q.a "
    "AND p.b NOT IN (SELECT b FROM r AS r2 WHERE r2.a = p.a)",
    "SELECT * FROM p RIGHT JOIN q ON p.a = q.a AND (p.b + q.b) IN (SELECT b + 10 FROM r)",
    # a NULL-padded column as D's key, under a WHERE that makes the padding
    # join inner: its NULLs must not start to match (DataFusion's IS NOT
    # DISTINCT FROM join made the join below it NULL-equal too)
    "SELECT * FROM p AS x LEFT JOIN q AS y ON x.a = y.a RIGHT JOIN r AS z "
    "ON NOT EXISTS (SELECT 1 FROM r AS rz WHERE rz.a = y.a) WHERE y.id IS NOT NULL",
    # two conditions naming both sides: one D for both, or q's rows repeat
    "SELECT p.id, q.id FROM p FULL JOIN q ON EXISTS (SELECT 1 FROM r WHERE r.a = p.a "
    "AND r.b = q.b) AND EXISTS (SELECT 1 FROM r WHERE r.b = p.b AND r.a = q.a)",
]
PLACEMENTS = ["hot", "cold", "mixed", "user"]


def _statements() -> list[Statement]:
    out: list[Statement] = []
    for name, rows in (("p", P), ("q", Q), ("r", R)):
        out.append(f"CREATE TABLE {name} (id BIGINT PRIMARY KEY, a INT, b INT)")
        out += [(f"INSERT INTO {name} VALUES (?, ?, ?)", row) for row in rows]
    return out


def _open(path: str, placement: str) -> tuple[Engine, Any, str | None]:
    if placement != "user":
        engine, duck = engine_beside_duckdb(
            path, _statements(), layout=placement, flush=("p", "q", "r"), churn=CHURN
        )
        return engine, duck, None
    # USER tables: alice's rows beside bob's, flushed, then hot versions over them.
    engine = Engine.open(path, background_jobs=False, durability="async")
    duck = duckdb.connect()
    for name, rows in (("p", P), ("q", Q), ("r", R)):
        engine.execute(
            f"CREATE TABLE {name} (id BIGINT PRIMARY KEY, a INT, b INT) WITH (TYPE = 'USER')"
        )
        duck.execute(f"CREATE TABLE {name} (id BIGINT, a INT, b INT)")
        for row in rows:
            engine.execute(f"INSERT INTO {name} VALUES (?, ?, ?)", list(row), user="alice")
            duck.execute(f"INSERT INTO {name} VALUES (?, ?, ?)", list(row))
        for row in BOB[name]:
            engine.execute(f"INSERT INTO {name} VALUES (?, ?, ?)", list(row), user="bob")
        engine.execute(f"FLUSH TABLE {name} WAIT")
    for sql in CHURN:
        engine.execute(sql, user="alice")
        duck.execute(sql)
    return engine, duck, "alice"


@pytest.fixture(scope="module", params=PLACEMENTS)
def pair(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    engine, duck, user = _open(str(tmp_path_factory.mktemp(f"ojon-{request.param}")), request.param)
    yield engine, duck, user
    duck.close()
    engine.close()


@pytest.fixture(params=PLACEMENTS)
def fresh(request: pytest.FixtureRequest, tmp_path: Any) -> Any:
    """A pair per test, for statements that write."""
    engine, duck, user = _open(str(tmp_path), request.param)
    yield engine, duck, user
    duck.close()
    engine.close()


def _normal(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    def value(v: Any) -> Any:
        return round(v, 9) if isinstance(v, float) and not math.isnan(v) else v

    return sorted((tuple(value(v) for v in row) for row in rows), key=repr)


def _same_as_duckdb(engine: Engine, duck: Any, user: str | None, sql: str) -> None:
    try:
        expected = _normal(duck.execute(sql).fetchall())
    except duckdb.Error:
        with pytest.raises(KalamError):
            engine.execute(sql, user=user)
        return
    assert _normal(engine.execute(sql, user=user).rows()) == expected


@pytest.mark.parametrize("sql", MATRIX + OTHER)
def test_subquery_in_an_outer_join_condition_matches_duckdb(
    pair: tuple[Engine, Any, str | None], sql: str
) -> None:
    _same_as_duckdb(*pair, sql)


def test_a_null_in_not_in_unmatches_the_pair_and_keeps_the_preserved_row(
    pair: tuple[Engine, Any, str | None],
) -> None:
    engine, _, user = pair
    # r.b holds a NULL: `p.b NOT IN (...)` is never TRUE, so no pair
    # matches, yet every p row stays, NULL-extended (a WHERE would drop all).
    sql = "SELECT p.id, q.id FROM p LEFT JOIN q ON p.a = q.a AND p.b NOT IN (SELECT b FROM r)"
    rows = engine.execute(sql, user=user).rows()
    assert sorted(rows) == [(i, None) for i, _, _ in P]


def test_a_full_join_keeps_each_unmatched_row_of_both_sides_once(
    pair: tuple[Engine, Any, str | None],
) -> None:
    engine, duck, user = pair
    # Naming both sides, the rewrite repeats q's rows per value of p.a; an
    # unmatched q row must still show exactly once.
    sql = (
        "SELECT p.id, q.id FROM p FULL JOIN q ON p.a = q.a "
        "AND EXISTS (SELECT 1 FROM r WHERE r.a = p.a AND r.b = q.b)"
    )
    rows = engine.execute(sql, user=user).rows()
    unmatched_q = [j for i, j in rows if i is None]
    assert len(unmatched_q) == len(set(unmatched_q))
    assert _normal(rows) == _normal(duck.execute(sql).fetchall())


def test_select_star_over_the_rewritten_join_shows_only_the_tables_columns(
    pair: tuple[Engine, Any, str | None],
) -> None:
    engine, _, user = pair
    result = engine.execute(
        "SELECT * FROM p FULL JOIN q ON p.a = q.a AND p.b NOT IN (SELECT b FROM r)", user=user
    )
    assert result.columns == ["id", "a", "b", "id", "a", "b"]


def test_an_ambiguous_column_in_the_condition_is_an_error(
    pair: tuple[Engine, Any, str | None],
) -> None:
    engine, _, user = pair
    with pytest.raises(QueryError, match="Ambiguous"):
        engine.execute(
            "SELECT p.id FROM p LEFT JOIN q ON p.a = q.a AND b IN (SELECT b FROM r)", user=user
        )


def _table(engine: Engine, duck: Any, user: str | None, name: str) -> None:
    sql = f"SELECT id, a, b FROM {name}"
    assert _normal(engine.execute(sql, user=user).rows()) == _normal(duck.execute(sql).fetchall())


@pytest.mark.parametrize(
    "sql",
    [
        "DELETE FROM p WHERE id IN (SELECT p2.id FROM p AS p2 LEFT JOIN q ON p2.a = q.a "
        "AND q.b IN (SELECT b FROM r) WHERE q.id IS NULL)",
        "DELETE FROM q WHERE id NOT IN (SELECT q2.id FROM p FULL JOIN q AS q2 ON p.a = q2.a "
        "AND p.b NOT IN (SELECT b FROM r WHERE r.b IS NOT NULL) WHERE p.id IS NOT NULL)",
        "UPDATE p SET b = -1 WHERE EXISTS (SELECT 1 FROM q RIGHT JOIN r ON r.a = q.a "
        "AND EXISTS (SELECT 1 FROM p AS p3 WHERE p3.a = q.a AND p3.b = r.b) "
        "WHERE r.a = p.a AND q.id IS NULL)",
        "UPDATE p SET b = (SELECT count(*) FROM q FULL JOIN r ON r.a = q.a AND r.b NOT IN "
        "(SELECT b FROM p AS p2 WHERE p2.a = r.a) WHERE q.a = p.a OR r.a = p.a)",
        "DELETE FROM p USING q LEFT JOIN r ON r.a = q.a AND r.b IN (SELECT b FROM p AS p2) "
        "WHERE p.id = q.id AND r.id IS NULL",
        "UPDATE q SET b = (SELECT count(r.id) FROM p LEFT JOIN r ON r.a = p.a "
        "AND r.b NOT IN (SELECT b FROM q AS q4 WHERE q4.a = p.a) WHERE p.a = q.a)",
    ],
)
def test_dml_predicate_with_such_a_join_matches_duckdb(
    fresh: tuple[Engine, Any, str | None], sql: str
) -> None:
    engine, duck, user = fresh
    engine.execute(sql, user=user)
    duck.execute(sql)
    for name in ("p", "q", "r"):
        _table(engine, duck, user, name)


def test_a_subquery_naming_a_column_of_an_enclosing_query_is_refused_by_name(
    pair: tuple[Engine, Any, str | None],
) -> None:
    engine, _, user = pair
    # The join's sides would become derived tables, which cannot see p.
    with pytest.raises(UnsupportedStatementError, match="enclosing query in a JOIN's ON"):
        engine.execute(
            "SELECT p.id FROM p WHERE EXISTS (SELECT 1 FROM q LEFT JOIN r ON r.a = q.a "
            "AND r.b > (SELECT min(b) FROM r AS r2 WHERE r2.a = p.a) WHERE q.id = p.id)",
            user=user,
        )


def test_parameters_inside_the_moved_subquery_keep_their_values(
    pair: tuple[Engine, Any, str | None],
) -> None:
    engine, duck, user = pair
    # The subquery moves ahead of the ON's other conditions in the text.
    sql = (
        "SELECT p.id, q.id FROM p LEFT JOIN q ON p.a = q.a AND p.b IN (SELECT b FROM r "
        "WHERE r.a <> ? AND r.b = q.b) AND p.b > ? AND q.id <> ?"
    )
    got = engine.execute(sql, [3, 15, 2], user=user).rows()
    assert _normal(got) == _normal(duck.execute(sql, [3, 15, 2]).fetchall())


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM p WHERE p.b = (SELECT max(b) FROM r WHERE r.a > p.a) OR p.id = 1",
        "SELECT * FROM p AS x JOIN q AS y ON x.b > 5 AND y.b > ANY (SELECT b FROM r)",
        "SELECT * FROM p AS x FULL JOIN q AS y ON x.b > 5 JOIN r AS z "
        "ON NOT EXISTS (SELECT 1 FROM r AS rz WHERE rz.a = x.a AND rz.b > z.b)",
        "SELECT * FROM p JOIN q USING (a) WHERE p.b = (SELECT max(b) FROM r WHERE r.a > p.a)",
        "SELECT x.* FROM (SELECT * FROM p WHERE p.b = (SELECT max(b) FROM r WHERE r.a > p.a) "
        "OR p.id = 1) AS x",
    ],
)
def test_select_star_over_a_decorrelated_subquery_shows_only_the_tables_columns(
    pair: tuple[Engine, Any, str | None], sql: str
) -> None:
    # The decorrelation (engine/sql/subqueries.py) joins a derived table to
    # the query; a `*` listed its columns too (a subquery moved from an
    # inner join's ON to the WHERE, or a WHERE's own).
    engine, duck, user = pair
    result = engine.execute(sql, user=user)
    assert len(result.columns) == len(duck.execute(sql).description)
    _same_as_duckdb(engine, duck, user, sql)


def test_a_full_join_condition_on_one_side_next_to_one_on_both_keeps_rows_once(
    fresh: tuple[Engine, Any, str | None],
) -> None:
    engine, duck, user = fresh
    # q rows with b = 10 now meet the EXISTS for p.a = 1, 3 and 4: each
    # such q row is repeated per value, and a copy for an `a` whose p rows
    # all fail `p.b IN (...)` showed as an unmatched q row beside the match.
    for sql in ("INSERT INTO r VALUES (9, 3, 10)", "INSERT INTO r VALUES (10, 4, 10)"):
        engine.execute(sql, user=user)
        duck.execute(sql)
    _same_as_duckdb(
        engine,
        duck,
        user,
        "SELECT p.id, q.id FROM p FULL JOIN q ON EXISTS (SELECT 1 FROM r WHERE r.a = p.a "
        "AND r.b = q.b) AND p.b IN (SELECT b FROM r WHERE r.b > 15)",
    )


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT p.id, (SELECT count(*) FROM q FULL JOIN r ON r.a = q.a AND q.b > 15 "
        "WHERE r.a > p.a) AS n FROM p",
        "SELECT p.id, (SELECT count(*) FROM q FULL JOIN r ON r.a = q.a AND r.b IN (SELECT 10) "
        "WHERE r.a = p.a) AS n FROM p",
        "SELECT p.id, (SELECT count(*) FROM (q LEFT JOIN r AS r3 ON r3.id = q.id) FULL JOIN r "
        "ON r.a = q.a AND q.b > 15 WHERE r.a > p.a OR q.a > p.a) AS n FROM p",
        "SELECT p.id, (SELECT count(*) FROM q RIGHT JOIN r ON r.a = q.a AND q.b > 15 "
        "WHERE r.a > p.a) AS n FROM p",
        # y sits in a parenthesised join once its ON is rewritten: the
        # decorrelation must still see it by name
        "SELECT p2.id, (SELECT count(*) FROM p AS x FULL JOIN q AS y ON x.a IN (SELECT a FROM r "
        "AS rz WHERE rz.b = y.b) AND x.b > 5 JOIN r AS z ON z.a = y.a AND NOT (NOT EXISTS "
        "(SELECT 1 FROM r AS rz WHERE rz.a = y.a AND rz.b > z.b)) WHERE y.a = p2.a OR z.a > p2.a "
        "OR x.b < p2.b) AS n FROM p AS p2",
    ],
)
def test_a_decorrelated_count_over_a_full_join_counts_the_rows_it_pads(
    pair: tuple[Engine, Any, str | None], sql: str
) -> None:
    # The decorrelation counted rows by a marker on the FROM's first item,
    # which a RIGHT / FULL join pads: r's rows matching no q went uncounted.
    _same_as_duckdb(*pair, sql)
