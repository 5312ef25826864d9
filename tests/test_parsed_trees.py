"""``engine.sql.tokens.parsed`` keeps the trees of recent texts: every caller
still gets a tree of its own, since the rewrites change the trees they read."""

from __future__ import annotations

from sqlglot import exp

from engine.sql import tokens


def test_a_rewrite_changing_its_tree_does_not_change_the_next_readers() -> None:
    sql = "SELECT a + 1 FROM t WHERE b IN (SELECT b FROM u)"
    first = tokens.parsed(sql)
    assert first is not None
    first[0].find(exp.Where).pop()  # what a rewrite does to its copy
    second = tokens.parsed(sql)
    assert second is not None
    assert second[0] is not first[0]
    assert second[0].find(exp.Where) is not None
    assert second[0].sql(dialect=second[1]) == tokens.parsed(sql)[0].sql(dialect=second[1])  # type: ignore[index]


def test_unreadable_text_is_none_every_time() -> None:
    assert tokens.parsed("SELECT FROM WHERE (((") is None
    assert tokens.parsed("SELECT FROM WHERE (((") is None


def test_long_texts_are_not_kept() -> None:
    values = ", ".join(f"({i})" for i in range(5_000))
    sql = f"INSERT INTO t VALUES {values}"
    assert len(sql) > tokens._TREE_TEXT_LIMIT
    assert tokens.parsed(sql) is not None
    assert sql not in tokens._trees


def test_only_the_last_few_texts_are_kept() -> None:
    for i in range(tokens._TREES_SIZE + 5):
        tokens.parsed(f"SELECT {i}")
    assert len(tokens._trees) == tokens._TREES_SIZE
    assert "SELECT 0" not in tokens._trees


def test_rewrites_that_peek_at_the_shared_tree_leave_it_as_read() -> None:
    from engine.sql import row_values, scalar_nulls

    def columns_of(schema, table):
        return {"t": ["id", "a"], "u": ["id", "a"]}.get(table)

    texts = [
        "SELECT id FROM t WHERE a NOT IN (SELECT a FROM u)",
        "SELECT id FROM t WHERE (SELECT a FROM u WHERE id = 5) IS NULL",
        "SELECT id FROM t WHERE (a, id) IN (SELECT a, id FROM u)",
        "SELECT id FROM t WHERE upper(a) IN ('X', 'Y')",
    ]
    for sql in texts:
        before = tokens.peeked(sql).sql()
        for rewrite in (row_values.row_comparisons, scalar_nulls.nullable_scalars):
            done = rewrite(sql, columns_of)
            if done is not None:
                assert done[1] != sql
        assert tokens.peeked(sql).sql() == before, sql
        assert tokens.parsed(sql)[0].sql() == before, sql
    assert row_values.row_comparisons(texts[3], columns_of) is None


def test_fresh_names_skip_the_names_a_query_already_uses() -> None:
    read = tokens.parsed("SELECT x1 AS __kalam_rv1, x3 AS __kalam_rv3 FROM t AS __kalam_rv2")
    assert read is not None
    names = tokens.FreshNames(read[0], "__kalam_rv")
    assert [names.next() for _ in range(3)] == ["__kalam_rv4", "__kalam_rv5", "__kalam_rv6"]
    assert tokens.FreshNames(read[0], "__kalam_zz").next() == "__kalam_zz1"


def test_a_row_comparison_next_to_a_column_named_like_its_derived_table(engine) -> None:  # type: ignore[no-untyped-def]
    engine.execute("CREATE TABLE t (id INT PRIMARY KEY, a INT, b INT)")
    engine.execute("CREATE TABLE u (id INT PRIMARY KEY, a INT, b INT)")
    engine.execute("INSERT INTO t VALUES (1, 1, 2), (2, 3, 4), (3, 5, NULL)")
    engine.execute("INSERT INTO u VALUES (1, 1, 2), (2, 5, 6)")
    got = engine.execute(
        "SELECT __kalam_rv1.id AS __kalam_rv1 FROM t AS __kalam_rv1 "
        "WHERE (a, b) IN (SELECT a, b FROM u) ORDER BY 1"
    ).rows()
    assert got == [(1,)]


# Each pass that looks at the shared tree before taking its own copy
# (subquery_forms.exact_exists, numeric_semantics.exact_numbers,
# constant_exists.computed_once, subqueries.decorrelate,
# checked_ints.checked_arithmetic, date_intervals, row_values, scalar_nulls,
# pg_functions):
# a query each of them rewrites, and one it only looks at.
_PASS_QUERIES = [
    # exact_exists: an aggregate, LIMIT 0, OFFSET, a UNION, an ORDER BY
    "SELECT id FROM t WHERE EXISTS (SELECT max(a) FROM u WHERE u.a = t.a) ORDER BY id",
    "SELECT id FROM t WHERE EXISTS (SELECT 1 FROM u WHERE u.a = t.a LIMIT 0) ORDER BY id",
    "SELECT id FROM t WHERE EXISTS (SELECT a FROM u WHERE u.a >= t.a OFFSET 1) ORDER BY id",
    "SELECT id FROM t WHERE EXISTS (SELECT a FROM u WHERE u.a = t.a UNION "
    "SELECT a FROM u WHERE u.id = t.id) ORDER BY id",
    "SELECT id FROM t WHERE EXISTS (SELECT a FROM u WHERE u.a = t.a ORDER BY a) ORDER BY id",
    "SELECT (SELECT max(a) FROM u LIMIT 1 OFFSET 1) AS m FROM t ORDER BY id",
    # exact_numbers: a cast to an integer, -0.0 in an IN list and a sort key
    "SELECT id, CAST(d AS INT) AS i FROM t ORDER BY id",
    "SELECT id FROM t WHERE f IN (-0.0, 2.5) ORDER BY id",
    "SELECT id FROM t ORDER BY f * -1, id",
    # constant_exists and decorrelate
    "SELECT id FROM t WHERE EXISTS (SELECT 1 FROM u WHERE u.a > 2) ORDER BY id",
    "SELECT id, (SELECT a FROM u WHERE u.id = t.id) AS x FROM t ORDER BY id",
    "SELECT id FROM t WHERE a NOT IN (SELECT a FROM u) OR id = 1 ORDER BY id",
    # checked_ints (and mixed DECIMAL / DOUBLE)
    "SELECT id, a + 1, -a, d + f FROM t ORDER BY id",
    "SELECT sum(b) FROM t",
    # date_intervals: a DATE plus a time of day, and plus whole days
    "SELECT id, DATE '2024-01-01' + INTERVAL '1 hour' AS x FROM t ORDER BY id",
    "SELECT id, DATE '2024-01-01' + INTERVAL '1 day' AS x FROM t ORDER BY id",
    "SELECT id FROM t WHERE INTERVAL '1 day' < INTERVAL '25 hours' ORDER BY id",
    # pg_functions: to_char with PostgreSQL's pattern
    "SELECT id, to_char(DATE '2024-01-05', 'YYYY-MM') AS m FROM t ORDER BY id",
    # looked at, left alone
    "SELECT id FROM t WHERE EXISTS (SELECT 1 FROM u WHERE u.a = t.a) ORDER BY id",
    "SELECT id FROM t WHERE a IN (SELECT a FROM u) ORDER BY id",
    "SELECT id, d * 2 FROM t ORDER BY d, id",
]


def test_no_rewrite_changes_the_tree_it_shares_with_the_next_query(engine) -> None:  # type: ignore[no-untyped-def]
    """The passes look at the tree kept for a text before they copy it: a
    look that changed it would change the next run of the same text (a
    notebook re-running a cell), so each query runs twice with the same
    answer, and every kept tree still reads as its text parsed afresh."""
    import sqlglot

    engine.execute(
        "CREATE TABLE t (id INT PRIMARY KEY, a INT, b BIGINT, d DECIMAL(10, 2), f DOUBLE)"
    )
    engine.execute("CREATE TABLE u (id INT PRIMARY KEY, a INT)")
    engine.execute(
        "INSERT INTO t VALUES (1, 1, 10, 1.50, 0.0), (2, 3, 20, 2.50, 2.5), "
        "(3, NULL, 30, -0.50, -1.0)"
    )
    engine.execute("INSERT INTO u VALUES (1, 1), (2, 3), (3, 5)")
    for sql in _PASS_QUERIES:
        first = engine.execute(sql).rows()
        assert engine.execute(sql).rows() == first, sql
        for text, (tree, dialect) in list(tokens._trees.items()):
            fresh = sqlglot.parse_one(text, read=dialect)
            assert tree.sql(dialect=dialect) == fresh.sql(dialect=dialect), (sql, text)
