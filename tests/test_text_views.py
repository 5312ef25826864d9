"""TEXT read from segments stays Utf8View inside DataFusion (no cast per
value at the scan, ``engine/exec/cast.py``) while hot rows and the warm cache
hold Utf8. Every string operation must give the same answer, with the same
result type (Utf8), whichever tier the rows are in, and whatever tier the
other side of a join, UNION or comparison is in."""

from __future__ import annotations

import pyarrow as pa
import pytest

ROWS = [
    (1, "Alpha", "x-1"),
    (2, "beta", "x-2"),
    (3, "  Gamma  ", None),
    (4, "", "y-4"),
    (5, None, "x-5"),
    (6, "ümlaut ß", "y-6"),
    (7, "alpha", "x-1"),
    (8, "a%b_c", "x-8"),
    (9, "beta", "beta"),
]

EXPRS = [
    "upper(s)",
    "lower(s)",
    "length(s)",
    "char_length(s)",
    "octet_length(s)",
    "substr(s, 2, 3)",
    "left(s, 2)",
    "right(s, 2)",
    "trim(s)",
    "ltrim(s)",
    "rtrim(s)",
    "btrim(s, ' a')",
    "lpad(s, 8, '*')",
    "rpad(s, 8, '*')",
    "concat(s, '|', t)",
    "s || '!'",
    "s || t",
    "replace(s, 'a', 'A')",
    "reverse(s)",
    "repeat(s, 2)",
    "split_part(t, '-', 2)",
    "strpos(s, 'a')",
    "starts_with(s, 'al')",
    "ends_with(s, 'a')",
    "s LIKE '%a%'",
    "s ILIKE 'AL%'",
    "s NOT LIKE '%a'",
    "regexp_like(s, '^[a-z]+$')",
    "regexp_replace(s, '[aeiou]', '#', 'g')",
    "initcap(s)",
    "md5(s)",
    "ascii(s)",
    "translate(s, 'ab', 'AB')",
    "coalesce(s, t, 'none')",
    "nullif(s, 'beta')",
    "CASE WHEN s = 'beta' THEN t ELSE s END",
    "s = t",
    "s = 'alpha'",
    "s < 'b'",
    "s IN ('beta', 'alpha', 'zeta', '')",
    "s IS NULL",
    "CAST(s AS VARCHAR)",
    "CAST(length(s) AS TEXT) || s",
    "arrow_typeof(s)",
    "arrow_typeof(upper(s))",
    "arrow_typeof(coalesce(s, t))",
]

QUERIES = [
    "SELECT s, count(*) AS n FROM {t} GROUP BY s ORDER BY s NULLS FIRST",
    "SELECT DISTINCT t FROM {t} ORDER BY t",
    "SELECT min(s), max(s), count(DISTINCT s), string_agg(s, ',' ORDER BY id) FROM {t}",
    "SELECT id FROM {t} WHERE s > 'a' AND t LIKE 'x%' ORDER BY id",
    "SELECT id, s FROM {t} ORDER BY s DESC NULLS LAST, id LIMIT 4",
    "SELECT a.id, b.id FROM {t} a JOIN {t} b ON a.s = b.s ORDER BY 1, 2",
    "SELECT a.id, b.id FROM {t} a JOIN {other} b ON a.s = b.s ORDER BY 1, 2",
    "SELECT a.id, b.id FROM {other} a LEFT JOIN {t} b ON a.t = b.t ORDER BY 1, 2",
    "SELECT s FROM {t} UNION SELECT s FROM {other} ORDER BY 1 NULLS FIRST",
    "SELECT s FROM {other} UNION ALL SELECT t FROM {t} ORDER BY 1 NULLS FIRST",
    "SELECT s FROM {t} INTERSECT SELECT s FROM {other} ORDER BY 1",
    "SELECT s FROM {t} EXCEPT SELECT t FROM {other} ORDER BY 1",
    "SELECT id FROM {t} WHERE s IN (SELECT t FROM {other}) ORDER BY id",
    "SELECT id FROM {t} WHERE s NOT IN (SELECT s FROM {other} WHERE s IS NOT NULL) ORDER BY id",
    "SELECT id FROM {t} x WHERE EXISTS (SELECT 1 FROM {other} y WHERE y.t = x.s) ORDER BY id",
    "SELECT * FROM {t} ORDER BY id",
    "SELECT s AS s1, s AS s2, t FROM {t} WHERE id < 4 ORDER BY id",
    "SELECT named_struct('s', s, 'n', id) AS r, make_array(s, t) AS a FROM {t} ORDER BY id",
]


@pytest.fixture(params=["files", "warm cache"])
def tiers(request, engines):
    """``h``/``h2``: hot rows only; ``c``/``c2``: the same rows flushed to a
    segment (``c`` with one row updated in hot over it, back to its value),
    read from the segment files (Utf8View) or from the warm cache (Utf8)."""
    engine = engines.open(
        background_jobs=False, **({"segment_cache_mb": 0} if request.param == "files" else {})
    )
    values = ", ".join(
        "({}, {}, {})".format(i, "NULL" if s is None else repr(s), "NULL" if t is None else repr(t))
        for i, s, t in ROWS
    )
    for name in ("h", "c", "h2", "c2"):
        engine.execute(f"CREATE TABLE {name} (id INT PRIMARY KEY, s TEXT, t TEXT)")
        engine.execute(f"INSERT INTO {name} VALUES {values}")
    for name in ("c", "c2"):
        engine.flush(name)
    engine.execute("UPDATE c SET s = 'x' WHERE id = 2")
    engine.execute("UPDATE c SET s = 'beta' WHERE id = 2")
    return engine


def _rows(table: pa.Table) -> list[tuple[object, ...]]:
    return list(zip(*(c.to_pylist() for c in table.columns), strict=True))


def _same(engine, sql_hot: str, sql_cold: str) -> None:
    want = engine.execute(sql_hot).to_arrow()
    got = engine.execute(sql_cold).to_arrow()
    assert _rows(got) == _rows(want), sql_cold
    assert got.schema.types == want.schema.types, sql_cold
    assert not any(pa.types.is_string_view(ty) for ty in got.schema.types), sql_cold


@pytest.mark.parametrize("expr", EXPRS)
@pytest.mark.parametrize("cold", ["c", "c2"])
def test_a_string_expression_answers_the_same_over_cold_and_hot_rows(tiers, expr, cold):
    _same(
        tiers,
        f"SELECT id, {expr} AS v FROM h ORDER BY id",
        f"SELECT id, {expr} AS v FROM {cold} ORDER BY id",
    )


@pytest.mark.parametrize("query", QUERIES)
@pytest.mark.parametrize("other", ["h2", "c2"])
def test_string_queries_answer_the_same_over_cold_and_hot_rows(tiers, query, other):
    _same(tiers, query.format(t="h", other="h2"), query.format(t="c", other=other))


def test_result_text_columns_are_utf8_for_every_client_path(tiers):
    for name in ("c", "c2"):
        table = tiers.execute(f"SELECT s, upper(t) AS u FROM {name} ORDER BY id").to_arrow()
        assert table.schema.types == [pa.string(), pa.string()]
        assert tiers.execute(f"SELECT arrow_typeof(s) FROM {name} LIMIT 1").rows() == [("Utf8",)]


def test_dml_over_cold_text_writes_utf8_rows_that_read_back_equal(tiers):
    tiers.execute("UPDATE c SET t = upper(s) || t WHERE s LIKE '%a%'")
    tiers.execute("UPDATE h SET t = upper(s) || t WHERE s LIKE '%a%'")
    tiers.execute("DELETE FROM c WHERE s = 'beta'")
    tiers.execute("DELETE FROM h WHERE s = 'beta'")
    tiers.execute("INSERT INTO c2 SELECT id + 100, s, t FROM c")
    tiers.execute("INSERT INTO h2 SELECT id + 100, s, t FROM h")
    _same(tiers, "SELECT * FROM h ORDER BY id", "SELECT * FROM c ORDER BY id")
    _same(tiers, "SELECT * FROM h2 ORDER BY id", "SELECT * FROM c2 ORDER BY id")
    tiers.flush("c2")
    _same(tiers, "SELECT * FROM h2 ORDER BY id", "SELECT * FROM c2 ORDER BY id")


def test_a_type_error_on_cold_text_is_the_error_hot_text_gives(tiers):
    from engine.errors import KalamError

    codes = []
    for name in ("h", "c"):
        with pytest.raises(KalamError) as err:
            tiers.execute(f"SELECT s - 1 FROM {name}")
        codes.append(err.value.code)
    assert codes[0] == codes[1]
