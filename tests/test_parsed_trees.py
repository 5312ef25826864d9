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
