"""The catalogue of typical mistakes: each one gets our own message (what is
wrong, in SQL type names, with a hint where one helps) and, where the mistake
is a token, a caret under that token. DataFusion's own wording ("Utf8",
"Internal error", "please file a bug report") never reaches the user."""

from __future__ import annotations

import pytest

from engine import Engine
from engine.errors import (
    ColumnNotFoundError,
    FunctionNotFoundError,
    KalamError,
    NamespaceNotFoundError,
    QueryError,
    SqlParseError,
    TableNotFoundError,
    TypeMismatchError,
)

SCHEMA = [
    "CREATE TABLE users (id BIGINT PRIMARY KEY, name TEXT, age INT, born DATE, "
    "seen TIMESTAMP, score DOUBLE, active BOOLEAN)",
    "CREATE TABLE orders (id BIGINT PRIMARY KEY, user_id BIGINT, total DOUBLE)",
    "INSERT INTO users (id, name, age, born, seen, score, active) VALUES "
    "(1, 'ana', 30, DATE '1994-01-02', TIMESTAMP '2024-01-01 10:00:00', 1.5, true)",
    "INSERT INTO orders (id, user_id, total) VALUES (1, 1, 9.5)",
]

#: Words that only DataFusion's own messages use.
FOREIGN = (
    "Utf8",
    "Int64(",
    "Internal error",
    "bug report",
    "DataFusion",
    "caused by",
    "Arrow error",
)

# (statement, error class, fragments the message contains, column of the caret or None)
CASES: list[tuple[str, type[KalamError], tuple[str, ...], int | None]] = [
    # ---- aggregates over the wrong type
    (
        "SELECT sum(name) FROM users",
        TypeMismatchError,
        ("sum()", "TEXT", "cast name to a number"),
        8,
    ),
    (
        "SELECT avg(name) FROM users",
        TypeMismatchError,
        ("avg()", "TEXT", "cast name to a number"),
        8,
    ),
    ("SELECT avg(born) FROM users", TypeMismatchError, ("avg()", "DATE", "needs a number"), 8),
    ("SELECT sum(active) FROM users", TypeMismatchError, ("sum()", "BOOLEAN", "a number"), 8),
    ("SELECT sum(seen) FROM users", TypeMismatchError, ("sum()", "TIMESTAMP"), 8),
    # ---- scalar functions over the wrong type / count
    ("SELECT upper(age) FROM users", TypeMismatchError, ("upper()", "INT", "cast age to text"), 8),
    ("SELECT lower(id) FROM users", TypeMismatchError, ("lower()", "BIGINT", "to text"), 8),
    ("SELECT round(name) FROM users", TypeMismatchError, ("round()", "TEXT", "a number"), 8),
    ("SELECT sqrt('x')", TypeMismatchError, ("sqrt()", "TEXT", "a number"), 8),
    ("SELECT abs(name) FROM users", TypeMismatchError, ("abs()", "TEXT"), 8),
    ("SELECT min(id, 2) FROM users", QueryError, ("min() takes 1 argument, got 2",), 8),
    ("SELECT substr(name) FROM users", QueryError, ("substr() needs a start position",), 8),
    # ---- unknown names
    ("SELECT nope FROM users", ColumnNotFoundError, ("Unknown column nope", "id, name, age"), 8),
    ("SELECT id FROM users WHERE nope = 1", ColumnNotFoundError, ("Unknown column nope",), 28),
    ("SELECT id FROM users ORDER BY nope", ColumnNotFoundError, ("Unknown column nope",), 31),
    ("SELECT count(*) FROM users GROUP BY nope", ColumnNotFoundError, ("nope",), 37),
    (
        "SELECT u.id FROM users u JOIN orders o ON u.id = o.uid",
        ColumnNotFoundError,
        ("Unknown column o.uid", "did you mean o.id?"),
        50,
    ),
    ("SELECT x.id FROM users u", ColumnNotFoundError, ("Unknown column x.id", "u.id"), 8),
    ("SELECT u.nope FROM users u", ColumnNotFoundError, ("Unknown column u.nope",), 8),
    ("SELECT\n  id,\n  nmae\nFROM users", ColumnNotFoundError, ("nmae",), 3),
    ("SELECT id FROM nope", TableNotFoundError, ("default.nope",), 16),
    ("SELECT * FROM users u JOIN nope n ON u.id = n.id", TableNotFoundError, ("nope",), 28),
    ("SELECT id FROM users WHERE id IN (SELECT x FROM nope)", TableNotFoundError, ("nope",), 49),
    ("SELECT id FROM nons.users", NamespaceNotFoundError, ("nons", "CREATE NAMESPACE"), 16),
    ("SELECT foo(id) FROM users", FunctionNotFoundError, ("Unknown function foo()",), 8),
    ("SELECT lenght(name) FROM users", FunctionNotFoundError, ("lenght()", "did you mean"), 8),
    ("SELECT id, florr(score) FROM users", FunctionNotFoundError, ("florr()",), 12),
    ("SELECT row_number() FROM users", QueryError, ("window function", "OVER"), 8),
    ("SELECT id, rank() FROM users", QueryError, ("rank() is a window function",), 12),
    # ---- operators and comparisons
    ("SELECT id + name FROM users", TypeMismatchError, ("BIGINT + TEXT", "cast the TEXT"), 11),
    ("SELECT name * 2 FROM users", TypeMismatchError, ("TEXT * BIGINT",), 13),
    ("SELECT seen + 1 FROM users", TypeMismatchError, ("TIMESTAMP + BIGINT", "INTERVAL"), 13),
    ("SELECT id FROM users WHERE age = 'x'", TypeMismatchError, ("'x' is not a valid INT",), 34),
    ("SELECT id FROM users WHERE age IN ('old')", TypeMismatchError, ("'old'", "INT"), 36),
    (
        "SELECT id FROM users WHERE born > 'yesterday'",
        TypeMismatchError,
        ("'yesterday'", "DATE"),
        35,
    ),
    ("SELECT id FROM users WHERE seen > 'soon'", TypeMismatchError, ("'soon'", "TIMESTAMP"), 35),
    ("SELECT id FROM users WHERE age BETWEEN 'a' AND 'b'", TypeMismatchError, ("'a'", "INT"), 40),
    ("SELECT * FROM users WHERE name = 1", TypeMismatchError, ("'ana'", "BIGINT", "quoted"), None),
    ("SELECT CAST(name AS INT) FROM users", TypeMismatchError, ("'ana'", "INT", "TRY_CAST"), None),
    ("SELECT CAST(300 AS TINYINT)", TypeMismatchError, ("300 does not fit in TINYINT",), 13),
    ("SELECT CAST(id AS FOO) FROM users", TypeMismatchError, ("Unknown type FOO", "BIGINT"), 19),
    ("SELECT id FROM users WHERE name LIKE 1", TypeMismatchError, ("LIKE", "TEXT and BIGINT"), 33),
    (
        "SELECT id FROM users WHERE name",
        TypeMismatchError,
        ("WHERE needs a true/false", "TEXT"),
        28,
    ),
    ("SELECT id FROM users WHERE name = 'a' AND age", TypeMismatchError, ("AND", "INT"), 39),
    (
        "SELECT NOT name FROM users",
        TypeMismatchError,
        ("NOT needs a true/false value, got TEXT",),
        8,
    ),
    ("SELECT -name FROM users", TypeMismatchError, ("minus sign needs a number",), 8),
    ("SELECT 1 / 0", QueryError, ("Division by zero", "NULLIF"), None),
    ("SELECT id / 0 FROM users", QueryError, ("Division by zero",), None),
    ("SELECT INTERVAL 'often'", TypeMismatchError, ("'often' is not a valid INTERVAL",), 17),
    ("SELECT to_timestamp('x')", TypeMismatchError, ("'x' is not a valid TIMESTAMP",), 21),
    # ---- grouping
    (
        "SELECT id, name FROM users GROUP BY id",
        QueryError,
        ("name must be listed in GROUP BY",),
        12,
    ),
    ("SELECT name, count(*) FROM users", QueryError, ("name must be listed in GROUP BY",), 8),
    (
        "SELECT id FROM users WHERE count(*) > 1",
        QueryError,
        ("cannot be used in WHERE", "HAVING"),
        22,
    ),
    ("SELECT id FROM users HAVING id > 1", QueryError, ("HAVING may only use",), 22),
    (
        "SELECT sum(count(*)) FROM users",
        QueryError,
        ("cannot be nested", "count() inside sum()"),
        8,
    ),
    ("SELECT id FROM users GROUP BY 5", QueryError, ("GROUP BY 5", "1 column(s)"), 31),
    ("SELECT id FROM users ORDER BY 9", QueryError, ("ORDER BY 9", "1 column(s)"), 31),
    # ---- joins, subqueries, set operations
    (
        "SELECT id FROM users u JOIN orders o ON u.id = o.user_id",
        QueryError,
        ("Ambiguous reference to column id", "qualify"),
        8,
    ),
    ("SELECT * FROM users u, orders u", QueryError, ("The name u is given to two tables",), None),
    (
        "SELECT id FROM users WHERE id IN (SELECT id, name FROM users)",
        QueryError,
        ("must return one column", "returns 2 (id, name)"),
        34,
    ),
    ("SELECT id, name FROM users UNION SELECT id FROM orders", QueryError, ("UNION",), 28),
    # ---- LIMIT, units
    (
        "SELECT id FROM users LIMIT 'a'",
        TypeMismatchError,
        ("LIMIT needs an integer, got TEXT",),
        22,
    ),
    ("SELECT id FROM users LIMIT -1", QueryError, ("LIMIT must be 0 or more, got -1",), 22),
    ("SELECT date_trunc('fortnight', seen) FROM users", QueryError, ("'fortnight'", "day"), 19),
    ("SELECT extract(fortnight FROM seen) FROM users", QueryError, ("'fortnight'", "month"), 16),
    # ---- syntax slips
    ("SELECT id, FROM users", SqlParseError, ("a comma before FROM",), 10),
    ("SELECT id, name, FROM users", SqlParseError, ("a comma before FROM",), 16),
    ("SELECT id,, name FROM users", SqlParseError, ("two commas in a row",), 10),
    ("SELECT id FROM users WHERE id IN (1, 2,)", SqlParseError, ("a comma before ')'",), 39),
    ("SELECT id FROM users ORDER BY id,", SqlParseError, ("end of the statement",), 33),
    ("SELECT id, name\nFROM users\nGROUP BY id, name,\nORDER BY id", SqlParseError, ("ORDER",), 18),
    ("SELECT id FROM users WHERE", SqlParseError, ("incomplete expression",), 22),
    ("SELECT id FROM users WHERE id = 1 OR", SqlParseError, ("incomplete expression",), 35),
    ("SELECT count(DISTINCT) FROM users", SqlParseError, ("Syntax error",), None),
]


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory):
    with Engine.open(tmp_path_factory.mktemp("catalogue"), background_jobs=False) as eng:
        for sql in SCHEMA:
            eng.execute(sql)
        yield eng


def test_the_catalogue_holds_at_least_fifty_mistakes():
    assert len(CASES) >= 50
    assert len({sql for sql, *_ in CASES}) == len(CASES)


@pytest.mark.parametrize(
    ("sql", "error", "fragments", "column"), CASES, ids=[c[0][:60] for c in CASES]
)
def test_each_mistake_gets_our_own_message_and_caret(engine, sql, error, fragments, column):
    with pytest.raises(KalamError) as caught:
        engine.execute(sql)
    err = caught.value
    assert type(err) is error, f"{type(err).__name__}: {err.message}"
    for fragment in fragments:
        assert fragment.lower() in err.message.lower(), err.message
    for word in FOREIGN:
        assert word not in err.message, err.message
    if column is not None:
        assert err.column == column, (err.line, err.column, err.message)


def test_a_caret_points_at_the_line_it_is_on(engine):
    with pytest.raises(ColumnNotFoundError) as caught:
        engine.execute("SELECT id,\n       nope\nFROM users")
    assert (caught.value.line, caught.value.column) == (2, 8)


def test_an_error_in_the_second_statement_of_a_script_points_into_that_statement(engine):
    with pytest.raises(TableNotFoundError) as caught:
        engine.execute_script("SELECT 1;\nSELECT *\n  FROM nope")
    assert (caught.value.line, caught.value.column) == (3, 8)


def test_an_unrecognised_datafusion_message_is_cleaned_of_its_wrappers():
    from engine.exec.diagnose import explain

    raw = (
        "DataFusion error: Optimizer rule 'x_rule' failed\ncaused by\nInternal error: "
        "something odd.\nThis issue was likely caused by a bug in DataFusion's code. Please "
        "help us to resolve this by filing a bug report in our issue tracker: "
        "https://github.com/apache/datafusion/issues."
    )
    err = explain(raw).error
    assert isinstance(err, QueryError)
    assert err.message == "something odd."


def test_a_misspelt_bare_column_gets_a_bare_suggestion(engine):
    with pytest.raises(ColumnNotFoundError) as caught:
        engine.execute("SELECT nmae FROM users")
    assert caught.value.message.startswith("Unknown column nmae; did you mean name?")


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT id, '' FROM users WHERE id = 1",
        "SELECT id, 'from here' FROM users WHERE id = 1",
        'SELECT id, name AS "from" FROM users WHERE id = 1',
        "SELECT id, 'order by' AS o FROM users WHERE id = 1",
    ],
)
def test_a_comma_before_a_string_or_quoted_name_that_spells_a_keyword_is_no_slip(engine, sql):
    # Only the keyword tokens count: a literal '' or 'from ...' after a comma
    # is a value, not a dangling comma.
    assert engine.execute(sql).rows()[0][0] == 1
