"""Statements reach DataFusion as the user wrote them, so reads and writes
never disagree.

An expression catalogue runs through every path that evaluates expressions:
SELECT, UPDATE SET (point and scan), DELETE WHERE, INSERT ... VALUES (with
bound parameters) and INSERT ... SELECT, over rows that are hot, cold (after
``FLUSH TABLE``) and mixed. Each path must produce exactly what SELECT
produces. Before, UPDATE / DELETE / INSERT VALUES re-rendered expressions
through sqlglot: ``to_char(ts, '%Y')`` stored ``'YYYY'`` and ``to_hex``
became an unknown ``hex``.

Also: a query naming ``_seq`` next to ``*`` (its text used to be re-rendered
in another dialect), and ``x <op> ANY / SOME / ALL (subquery)``, which
DataFusion 55 answers wrongly when the subquery's column shares a name with
``x``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pyarrow as pa
import pytest

from engine import Engine
from engine.errors import SqlParseError, UnsupportedStatementError

COLUMNS = {
    "id": "INT PRIMARY KEY",
    "a": "INT",
    "b": "INT",
    "f": "DOUBLE",
    "s": "TEXT",
    "t2": "TEXT",
    "ts": "TIMESTAMP",
    "d": "DATE",
    "flag": "BOOLEAN",
}
ARROW = {
    "id": pa.int32(),
    "a": pa.int32(),
    "b": pa.int32(),
    "f": pa.float64(),
    "s": pa.string(),
    "t2": pa.string(),
    "ts": pa.timestamp("us"),
    "d": pa.date32(),
    "flag": pa.bool_(),
}
ROWS = [
    (1, 255, 7, 2.25, "Hello World", "a,b,c", dt.datetime(2021, 3, 4, 5, 6, 7),
     dt.date(2021, 3, 4), True),
    (2, -12, 5, -0.5, "kalam db", "x,y", dt.datetime(2022, 12, 31, 23, 59, 59),
     dt.date(2020, 2, 29), False),
    (3, 0, 3, 9.0, "  padded  ", "one", dt.datetime(2020, 1, 1), dt.date(2019, 7, 15), True),
    (4, 42, None, None, None, "p,q", None, None, None),
    (5, 1000, 10, 0.125, "HELLO again", "", dt.datetime(2023, 6, 15, 12, 30),
     dt.date(2023, 6, 15), False),
]  # fmt: skip
IDS = [r[0] for r in ROWS]

# (expression template, type of the column that stores its value). ``{c}``
# names column ``c`` (or, for INSERT ... VALUES, a parameter holding its value).
CATALOGUE: list[tuple[str, str]] = [
    ("to_char({ts}, '%Y')", "TEXT"),
    ("to_char({d}, '%Y-%m')", "TEXT"),
    ("to_hex({a})", "TEXT"),
    ("{s} ~ '^H'", "BOOLEAN"),
    ("{s} ~* '^h'", "BOOLEAN"),
    ("{s} !~ 'o'", "BOOLEAN"),
    ("{s} !~* 'HELLO'", "BOOLEAN"),
    ("regexp_like({s}, 'l+')", "BOOLEAN"),
    ("regexp_replace({s}, '[aeiou]', '_', 'g')", "TEXT"),
    ("{s} || '-' || {t2}", "TEXT"),
    ("{ts} + INTERVAL '1 day'", "TIMESTAMP"),
    ("{ts} - INTERVAL '2 hours'", "TIMESTAMP"),
    ("{d} + INTERVAL '1 month'", "DATE"),
    ("date_trunc('month', {ts})", "TIMESTAMP"),
    ("date_part('year', {ts})", "DOUBLE"),
    ("extract(month FROM {d})", "DOUBLE"),
    ("{a}::text", "TEXT"),
    ("CAST({f} AS BIGINT)", "BIGINT"),
    ("TRY_CAST(to_char({ts}, '%Y') AS INT)", "BIGINT"),
    ("TRY_CAST({t2} AS INT) IS NULL", "BOOLEAN"),
    ("coalesce({s}, 'none')", "TEXT"),
    ("nullif({a}, 0)", "BIGINT"),
    ("CASE WHEN {a} > 100 THEN 'big' WHEN {a} < 0 THEN 'neg' ELSE 'small' END", "TEXT"),
    ("upper({s})", "TEXT"),
    ("lower({s})", "TEXT"),
    ("substr({s}, 2, 3)", "TEXT"),
    ("length({s})", "BIGINT"),
    ("replace({s}, 'l', 'L')", "TEXT"),
    ("split_part({t2}, ',', 2)", "TEXT"),
    ("lpad({t2}, 6, '*')", "TEXT"),
    ("btrim({s})", "TEXT"),
    ("starts_with({s}, 'H')", "BOOLEAN"),
    ("abs({a})", "BIGINT"),
    ("round({f}, 1)", "DOUBLE"),
    ("ceil({f})", "DOUBLE"),
    ("floor({f})", "DOUBLE"),
    ("power({b}, 2)", "DOUBLE"),
    ("sqrt(abs({a}))", "DOUBLE"),
    ("{a} % 7", "BIGINT"),
    ("md5({s})", "TEXT"),
    ("sha256({s})", "BYTES"),
    ("array_to_string(make_array({a}, {b}, 3), '-')", "TEXT"),
    ("cardinality(string_to_array({t2}, ','))", "BIGINT"),
    ("{a} IN (0, 42, 255)", "BOOLEAN"),
    ("{a} BETWEEN 0 AND 100", "BOOLEAN"),
    ("{s} LIKE '%o%'", "BOOLEAN"),
    ("{s} ILIKE 'hello%'", "BOOLEAN"),
    ("{a} & 15", "BIGINT"),
    ("{a} | 256", "BIGINT"),
    ("{a} << 2", "BIGINT"),
    ("{f} * 2 + {a}", "DOUBLE"),
    ("{a} / 7", "BIGINT"),
    ("NOT {flag}", "BOOLEAN"),
    ("{flag} AND {a} > 10", "BOOLEAN"),
    ("concat({s}, {a})", "TEXT"),
    ("strpos({s}, 'l')", "BIGINT"),
    ("greatest({a}, {b})", "BIGINT"),
    ("{b} IS DISTINCT FROM 5", "BOOLEAN"),
    ("{s} IS NULL", "BOOLEAN"),
]
PLACEMENTS = ("hot", "cold", "mixed")


def expr(k: int, **names: str) -> str:
    template = CATALOGUE[k][0]
    return template.format(**{c: names.get(c, c) for c in COLUMNS})


def v_columns() -> str:
    return ", ".join(f"v{k} {kind}" for k, (_, kind) in enumerate(CATALOGUE))


def all_exprs(**names: str) -> str:
    return ", ".join(f"{expr(k, **names)} AS v{k}" for k in range(len(CATALOGUE)))


def insert_rows(eng: Engine, table: str, rows: list[tuple[Any, ...]], user: str = "root") -> None:
    marks = ", ".join("(" + ", ".join("?" for _ in COLUMNS) + ")" for _ in rows)
    eng.execute(f"INSERT INTO {table} ({', '.join(COLUMNS)}) VALUES {marks}",
                [x for r in rows for x in r], user=user)  # fmt: skip


def place(eng: Engine, table: str, placement: str, users: tuple[str, ...] = ("root",)) -> None:
    """Lay ROWS out in ``table`` for each user: all hot, all cold, or mixed
    (rows 1-3 flushed, 4-5 hot, row 2 rewritten in the hot store after the flush)."""
    split = {"hot": 0, "cold": len(ROWS), "mixed": 3}[placement]
    if split:
        for u in users:
            insert_rows(eng, table, ROWS[:split], u)
        eng.execute(f"FLUSH TABLE {table} WAIT")
    for u in users:
        if split < len(ROWS):
            insert_rows(eng, table, ROWS[split:], u)
        if placement == "mixed":
            eng.execute(f"UPDATE {table} SET a = a + 1 WHERE id = 2", user=u)
            eng.execute(f"UPDATE {table} SET a = a - 1 WHERE id = 2", user=u)


def create(eng: Engine, name: str, extra: str = "", kind: str = "SHARED") -> None:
    cols = ", ".join(f"{c} {t}" for c, t in COLUMNS.items()) + (f", {extra}" if extra else "")
    eng.execute(f"CREATE {kind} TABLE {name} ({cols})")


def by_id(table: pa.Table) -> dict[int, list[Any]]:
    rows = table.to_pylist()
    return {r["id"]: [r[f"v{k}"] for k in range(len(CATALOGUE))] for r in rows}


@pytest.fixture(scope="module")
def catalogue_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """Every path run once per placement; tests below compare the outcomes."""
    out: dict[str, dict[str, Any]] = {}
    eng = Engine.open(tmp_path_factory.mktemp("as_written") / "db", background_jobs=False)
    try:
        for placement in PLACEMENTS:
            out[placement] = _run_paths(eng, placement)
    finally:
        eng.close()
    return out


def _run_paths(eng: Engine, placement: str) -> dict[str, Any]:
    p = placement
    runs: dict[str, Any] = {}
    create(eng, f"src_{p}")
    place(eng, f"src_{p}", p)
    selected = eng.execute(f"SELECT id, {all_exprs()} FROM src_{p} ORDER BY id").table
    runs["select"] = by_id(selected)
    runs["select_table"] = selected

    # UPDATE: one row by primary key (the point path), then the rest (a scan).
    create(eng, f"upd_{p}", v_columns())
    place(eng, f"upd_{p}", p)
    sets = ", ".join(f"v{k} = {expr(k)}" for k in range(len(CATALOGUE)))
    assert eng.execute(f"UPDATE upd_{p} SET {sets} WHERE id = 1").rows_affected == 1
    assert eng.execute(f"UPDATE upd_{p} SET {sets} WHERE id <> 1").rows_affected == len(ROWS) - 1
    vs = ", ".join(f"v{k}" for k in range(len(CATALOGUE)))
    runs["update"] = by_id(eng.execute(f"SELECT id, {vs} FROM upd_{p}").table)

    # INSERT ... SELECT
    eng.execute(f"CREATE TABLE ins_sel_{p} (id INT PRIMARY KEY, {v_columns()})")
    eng.execute(f"INSERT INTO ins_sel_{p} SELECT id, {all_exprs()} FROM src_{p}")
    runs["insert_select"] = by_id(eng.execute(f"SELECT id, {vs} FROM ins_sel_{p}").table)

    # INSERT ... VALUES: each row's column values bound as typed parameters.
    eng.execute(f"CREATE TABLE ins_val_{p} (id INT PRIMARY KEY, {v_columns()})")
    for row in ROWS:
        params = {c: pa.scalar(v, type=ARROW[c]) for c, v in zip(COLUMNS, row, strict=True)}
        values = ", ".join(expr(k, **{c: f":{c}" for c in COLUMNS}) for k in range(len(CATALOGUE)))
        eng.execute(f"INSERT INTO ins_val_{p} VALUES (:id, {values})", params)
    runs["insert_values"] = by_id(eng.execute(f"SELECT id, {vs} FROM ins_val_{p}").table)

    # DELETE: expression k runs as user e<k> on that user's own copy of the rows,
    # deleting the rows whose value equals row 1's (bound with its exact type).
    users = tuple(f"e{k}" for k in range(len(CATALOGUE)))
    create(eng, f"del_{p}", kind="USER")
    place(eng, f"del_{p}", p, users)
    first = selected.slice(0, 1)
    runs["select_where"], runs["delete"], runs["left"] = {}, {}, {}
    for k, user in enumerate(users):
        pred = f"({expr(k)}) IS NOT DISTINCT FROM :v"
        params = {"v": first.column(f"v{k}")[0]}
        found = eng.execute(f"SELECT id FROM del_{p} WHERE {pred}", params, user=user)
        runs["select_where"][k] = sorted(found.table.column("id").to_pylist())
        runs["delete"][k] = eng.execute(
            f"DELETE FROM del_{p} WHERE {pred}", params, user=user
        ).rows_affected
        left = eng.execute(f"SELECT id FROM del_{p}", user=user).table.column("id").to_pylist()
        runs["left"][k] = sorted(left)
    return runs


@pytest.mark.parametrize("placement", PLACEMENTS)
@pytest.mark.parametrize("path", ["update", "insert_select", "insert_values"])
def test_every_write_path_stores_what_select_computes(catalogue_runs, placement, path):
    runs = catalogue_runs[placement]
    expected, got = runs["select"], runs[path]
    assert sorted(got) == IDS
    for k, (template, _) in enumerate(CATALOGUE):
        for i in IDS:
            assert got[i][k] == expected[i][k], (template, i, got[i][k], expected[i][k])


@pytest.mark.parametrize("placement", PLACEMENTS)
def test_delete_and_select_where_pick_the_rows_select_computes(catalogue_runs, placement):
    runs = catalogue_runs[placement]
    expected = runs["select"]
    for k, (template, _) in enumerate(CATALOGUE):
        match = sorted(i for i in IDS if expected[i][k] == expected[1][k])
        assert runs["select_where"][k] == match, template
        assert runs["delete"][k] == len(match), template
        assert runs["left"][k] == [i for i in IDS if i not in match], template


def test_catalogue_covers_forty_expressions_with_real_values(catalogue_runs):
    assert len(CATALOGUE) >= 40
    values = catalogue_runs["hot"]["select"]
    for k, (template, _) in enumerate(CATALOGUE):
        column = [values[i][k] for i in IDS]
        assert any(v is not None for v in column), template  # evaluated, not all NULL


def test_known_values_of_the_functions_that_used_to_be_re_rendered(catalogue_runs):
    values = catalogue_runs["cold"]["update"]
    assert values[1][0] == "2021"  # to_char(ts, '%Y'): used to store 'YYYY'
    assert values[1][2] == "ff"  # to_hex(a): used to fail with "Invalid function 'hex'"


# ------------------------------------------------------------- single cases


@pytest.fixture
def eng(engine: Engine) -> Engine:
    engine.execute("CREATE TABLE t (id INT PRIMARY KEY, a INT, s TEXT, ts TIMESTAMP)")
    engine.execute(
        "INSERT INTO t VALUES (1, 255, 'hello', '2021-03-04 05:06:07'), "
        "(2, 16, 'world', '2022-01-01 00:00:00'), (3, NULL, 'hi', NULL)"
    )
    return engine


def ids(eng: Engine, sql: str, params: Any = None) -> list[int]:
    return sorted(eng.execute(sql, params).table.column("id").to_pylist())


def test_update_set_to_char_stores_the_same_text_as_select(eng):
    assert eng.execute("UPDATE t SET s = to_char(ts, '%Y') WHERE id = 1").rows_affected == 1
    eng.execute("UPDATE t SET s = to_char(ts, '%Y') WHERE id > 1")
    assert eng.execute("SELECT id, s FROM t ORDER BY id").table.to_pylist() == [
        {"id": 1, "s": "2021"},
        {"id": 2, "s": "2022"},
        {"id": 3, "s": None},
    ]


def test_delete_where_to_char_deletes_the_rows_select_finds(eng):
    assert ids(eng, "SELECT id FROM t WHERE to_char(ts, '%Y') = '2021'") == [1]
    assert eng.execute("DELETE FROM t WHERE to_char(ts, '%Y') = '2021'").rows_affected == 1
    assert ids(eng, "SELECT id FROM t") == [2, 3]


def test_update_set_to_hex_works(eng):
    eng.execute("UPDATE t SET s = to_hex(a)")
    assert eng.execute("SELECT s FROM t ORDER BY id").table.column("s").to_pylist() == [
        "ff",
        "10",
        None,
    ]


def test_update_keeps_bound_parameters_of_every_style(eng):
    eng.execute("UPDATE t SET s = to_hex(?) WHERE id = ?", [4095, 1])
    eng.execute("UPDATE t SET s = upper(:word) || to_hex(a + :k) WHERE a < :lim",
                {"word": "x", "k": 1, "lim": 100})  # fmt: skip
    eng.execute("UPDATE t SET s = $1 || s WHERE id = $2", ["<", 3])
    rows = eng.execute("SELECT s FROM t ORDER BY id").table.column("s").to_pylist()
    assert rows == ["fff", "X11", "<hi"]


def test_insert_values_expressions_see_parameters_and_subqueries(eng):
    eng.execute("INSERT INTO t (id, a, s) VALUES (4, (SELECT max(a) FROM t) + ?, lower(?))",
                [1, "ABC"])  # fmt: skip
    assert eng.execute("SELECT a, s FROM t WHERE id = 4").table.to_pylist() == [
        {"a": 256, "s": "abc"}
    ]


def test_update_and_delete_keep_the_table_alias_as_written(eng):
    eng.execute("UPDATE t AS x SET s = upper(x.s) WHERE x.id = 1")
    assert eng.execute("SELECT s FROM t WHERE id = 1").table.column("s").to_pylist() == ["HELLO"]
    assert eng.execute("DELETE FROM t AS x WHERE x.a > 100").rows_affected == 1
    assert ids(eng, "SELECT id FROM t") == [2, 3]


def test_datafusion_syntax_error_in_a_set_value_points_at_the_users_text(eng):
    # sqlglot accepts `#`, DataFusion does not: the position is where the user wrote it.
    sql = "UPDATE t SET s = 'a',\n  a = a # 2 WHERE id > 0"
    with pytest.raises(SqlParseError) as info:
        eng.execute(sql)
    assert (info.value.line, info.value.column) == (2, 9)
    assert ids(eng, "SELECT id FROM t WHERE s = 'a'") == []  # nothing changed


def test_datafusion_syntax_error_in_a_where_predicate_points_at_the_users_text(eng):
    with pytest.raises(SqlParseError) as info:
        eng.execute("DELETE FROM t\nWHERE a # 2 = 1")
    assert (info.value.line, info.value.column) == (2, 9)
    assert ids(eng, "SELECT id FROM t") == [1, 2, 3]


# ---------------------------------------------------- hidden columns with *


@pytest.mark.parametrize("placement", ["hot", "cold"])
def test_star_with_seq_keeps_the_query_text_as_written(eng, placement):
    if placement == "cold":
        eng.execute("FLUSH TABLE t WAIT")
    result = eng.execute("SELECT *, _seq FROM t WHERE s ~ '^h' ORDER BY id").table
    assert result.column_names == ["id", "a", "s", "ts", "_seq"]
    assert result.column("id").to_pylist() == [1, 3]
    assert all(seq > 0 for seq in result.column("_seq").to_pylist())


def test_qualified_star_and_a_join_of_two_tables_leave_hidden_columns_out(eng):
    eng.execute("CREATE TABLE u (id INT PRIMARY KEY, z TEXT)")
    eng.execute("INSERT INTO u VALUES (1, 'one')")
    joined = eng.execute(
        "SELECT *, t._seq > 0 AS newer FROM t JOIN u ON t.id = u.id WHERE to_hex(t.a) = 'ff'"
    ).table
    assert joined.column_names == ["id", "a", "s", "ts", "id", "z", "newer"]
    qualified = eng.execute("SELECT x.*, x._deleted FROM t AS x WHERE x.id = 2").table
    assert qualified.column_names == ["id", "a", "s", "ts", "_deleted"]


def test_delete_with_a_star_subquery_compares_only_visible_columns(eng):
    eng.execute("CREATE TABLE k (id INT PRIMARY KEY)")
    eng.execute("INSERT INTO k VALUES (2), (3)")
    assert eng.execute("DELETE FROM t WHERE id IN (SELECT * FROM k)").rows_affected == 2
    assert ids(eng, "SELECT id FROM t") == [1]


def test_explain_of_a_star_with_seq_plans_without_hidden_duplicates(eng):
    plan = eng.execute("EXPLAIN SELECT *, _seq FROM t").table.to_pylist()
    assert any(r["plan_type"] == "logical_plan" for r in plan)


# ----------------------------------------------------- ANY / SOME / ALL


@pytest.fixture
def q(engine: Engine) -> Engine:
    """t: ids 1..5 with groups 1,1,2,2,NULL; u: the values 1 and 3."""
    engine.execute("CREATE TABLE t (id INT PRIMARY KEY, g INT)")
    engine.execute("INSERT INTO t VALUES (1, 1), (2, 1), (3, 2), (4, 2), (5, NULL)")
    engine.execute("CREATE TABLE u (id INT PRIMARY KEY, x INT)")
    engine.execute("INSERT INTO u VALUES (1, 1), (2, 3)")
    return engine


# (predicate over t, ids it holds for). Subqueries over t itself whose column
# is named like the left side are what DataFusion 55 gets wrong on its own.
QUANTIFIED = [
    ("id = ANY (SELECT id FROM t WHERE g = 2)", [3, 4]),
    ("id = SOME (SELECT id FROM t WHERE g = 2)", [3, 4]),
    ("id <> ANY (SELECT id FROM t WHERE g = 2)", [1, 2, 3, 4, 5]),
    ("id <> ALL (SELECT id FROM t WHERE g = 2)", [1, 2, 5]),
    ("id = ALL (SELECT id FROM t WHERE g = 2)", []),
    ("id < ANY (SELECT id FROM t WHERE g = 2)", [1, 2, 3]),
    ("id <= ALL (SELECT id FROM t WHERE g = 2)", [1, 2, 3]),
    ("id > ANY (SELECT id FROM t WHERE g = 2)", [4, 5]),
    ("id >= ALL (SELECT id FROM t WHERE g = 2)", [4, 5]),
    ("id > ALL (SELECT id AS id FROM t WHERE g = 2)", [5]),
    ("g < ANY (SELECT g FROM t WHERE g = 2)", [1, 2]),
    ("id + 0 < ANY (SELECT id FROM t WHERE g = 2)", [1, 2, 3]),
    ("id = ANY (SELECT DISTINCT id FROM t WHERE g = 2)", [3, 4]),
    ("id < ANY (SELECT id FROM t WHERE g = 2 ORDER BY id LIMIT 1)", [1, 2]),
    ("id = ANY (SELECT id FROM t WHERE g = 2 UNION SELECT id FROM t WHERE id = 1)", [1, 3, 4]),
    ("id = ANY (SELECT x FROM u)", [1, 3]),
    ("id <> ALL (SELECT x FROM u)", [2, 4, 5]),
    ("id <= ANY (SELECT t2.id FROM t AS t2 WHERE t2.g = t.g)", [1, 2, 3, 4]),
    ("id = ANY (SELECT * FROM (SELECT id FROM t WHERE g = 2))", [3, 4]),
    ("id <> ALL (SELECT * FROM (SELECT id FROM t WHERE g = 2))", [1, 2, 5]),
    ("id = ANY (make_array(1, 3))", [1, 3]),
    ("(id > 2) = ANY (SELECT g IS DISTINCT FROM 1 FROM t WHERE id = 3)", [3, 4, 5]),
]


@pytest.mark.parametrize("placement", ["hot", "cold"])
@pytest.mark.parametrize(("pred", "expected"), QUANTIFIED, ids=[p for p, _ in QUANTIFIED])
def test_select_update_and_delete_agree_on_quantified_comparisons(q, placement, pred, expected):
    if placement == "cold":
        q.execute("FLUSH TABLE t WAIT")
    assert ids(q, f"SELECT id FROM t WHERE {pred}") == expected
    assert q.execute(f"UPDATE t SET g = -1 WHERE {pred}").rows_affected == len(expected)
    assert ids(q, "SELECT id FROM t WHERE g = -1") == expected
    q.execute("UPDATE t SET g = CASE WHEN id < 3 THEN 1 WHEN id < 5 THEN 2 END")  # undo
    assert q.execute(f"DELETE FROM t WHERE {pred}").rows_affected == len(expected)
    assert ids(q, "SELECT id FROM t") == [i for i in range(1, 6) if i not in expected]


def test_quantified_comparison_with_a_star_subquery_it_cannot_route_is_refused(q):
    for sql in (
        "SELECT id FROM t WHERE id < ANY (SELECT * FROM (SELECT id FROM t))",
        "DELETE FROM t WHERE id > ALL (SELECT * FROM (SELECT id FROM t))",
    ):
        with pytest.raises(UnsupportedStatementError, match="name the subquery's column"):
            q.execute(sql)
    assert ids(q, "SELECT id FROM t") == [1, 2, 3, 4, 5]


def test_quantified_comparison_binds_parameters_inside_the_subquery(q):
    sql = "FROM t WHERE id = ANY (SELECT id FROM t WHERE g = ?)"
    assert ids(q, f"SELECT id {sql}", [2]) == [3, 4]
    assert q.execute(f"DELETE {sql}", [1]).rows_affected == 2
    assert ids(q, "SELECT id FROM t") == [3, 4, 5]


def test_explain_shows_the_routed_plan_of_a_quantified_comparison(q):
    plan = q.execute("EXPLAIN SELECT id FROM t WHERE id = ANY (SELECT id FROM t WHERE g = 2)")
    text = "\n".join(r["plan"] for r in plan.table.to_pylist())
    assert "__kalam_any_0" in text


def test_on_conflict_do_update_evaluates_its_expressions_as_written(tmp_path):
    from engine import Engine

    with Engine.open(tmp_path, background_jobs=False) as eng:
        eng.execute("CREATE TABLE up (id BIGINT PRIMARY KEY, ts TIMESTAMP, a BIGINT, s TEXT)")
        eng.execute("INSERT INTO up VALUES (1, TIMESTAMP '2021-03-04 05:06:07', 255, 'old')")
        want = eng.execute("SELECT to_char(ts, '%Y') || '-' || to_hex(a) FROM up").scalar()
        assert want == "2021-ff"
        eng.execute(
            "INSERT INTO up AS x VALUES (1, NULL, 0, 'new') ON CONFLICT (id) DO UPDATE "
            "SET s = to_char(x.ts, '%Y') || '-' || to_hex(x.a) WHERE x.s ~ '^o'"
        )
        assert eng.execute("SELECT s FROM up").scalar() == want
