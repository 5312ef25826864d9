"""A query a rewrite changes reaches DataFusion rendered back from sqlglot,
and must mean the same there.

Rendered in PostgreSQL's spelling, ``to_char(d, '%Y')`` became ``TO_CHAR(d,
'YYYY')``, which DataFusion (chrono formats) prints as the text ``YYYY``,
and ``isnan`` / ``to_hex`` / ``signum`` became functions DataFusion does not
know. Any query a rewrite touches (an IN list with a NULL, a RIGHT join, an
IN subquery under OR, ...) went through that rendering.
"""

from __future__ import annotations

from typing import Any

import pytest
import sqlglot
from datafusion import SessionContext

from engine import Engine
from engine.sql.dialect import Kalam, KalamPostgres

FUNCTIONS = [
    "isnan(c)",
    "to_hex(i)",
    "signum(c)",
    "to_char(d, '%Y')",
    "to_char(ts, '%Y-%m-%d %H:%M')",
    "to_timestamp('2024-01-02 03:04', '%Y-%m-%d %H:%M')",
    "to_date('2024-01-02', '%Y-%m-%d')",
    "date_part('year', d)",
    "strpos(s, 'b')",
    "btrim(s, 'a')",
    "log10(c)",
    "median(i)",
    "array_has(arr, 2)",
    "regexp_like(s, 'b')",
]


@pytest.mark.parametrize("dialect", [KalamPostgres, Kalam], ids=lambda d: d.__name__)
@pytest.mark.parametrize("call", FUNCTIONS)
def test_a_rendered_function_means_the_same_to_datafusion(dialect: Any, call: str) -> None:
    ctx = SessionContext()
    ctx.sql(
        "CREATE TABLE t AS SELECT * FROM (VALUES (1, 2.5, 'abc', [1, 2, 3], DATE '2024-03-05', "
        "TIMESTAMP '2024-03-05 10:11:12')) AS v(i, c, s, arr, d, ts)"
    )
    sql = f"SELECT {call} AS x FROM t"
    rendered = sqlglot.parse_one(sql, read=dialect).sql(dialect=dialect)
    assert ctx.sql(rendered).to_pylist() == ctx.sql(sql).to_pylist(), rendered


def test_to_char_in_a_rewritten_query_keeps_its_format(engine: Engine) -> None:
    engine.execute("CREATE TABLE e (id BIGINT PRIMARY KEY, d DATE, c DOUBLE)")
    engine.execute("INSERT INTO e VALUES (1, '2024-03-05', 1.5), (2, '2023-01-01', 2.5)")
    # `IN (1, NULL)` is rewritten before DataFusion sees it (an IN list with a NULL).
    rows = engine.execute(
        "SELECT to_char(d, '%Y') AS y, isnan(c) AS n FROM e WHERE id IN (1, NULL) ORDER BY id"
    ).rows()
    assert rows == [("2024", False)]
