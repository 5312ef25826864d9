"""``to_char`` with PostgreSQL's patterns (``engine/sql/pg_formats.py``):
DataFusion 55 read ``'YYYY-MM'`` as a chrono format and answered the text
``YYYY-MM`` for every row. Expected texts are PostgreSQL's for the same
values (its documented patterns); chrono formats still work as written."""

from __future__ import annotations

import pytest

from engine import Engine
from engine.errors import KalamError, UnsupportedStatementError
from engine.sql.pg_formats import chrono_format, is_postgres_pattern


@pytest.mark.parametrize(
    ("pattern", "chrono"),
    [
        ("YYYY-MM-DD", "%Y-%m-%d"),
        ("yyyy-mm-dd hh24:mi:ss", "%Y-%m-%d %H:%M:%S"),
        ("YYYYMMDD", "%Y%m%d"),
        ("HH12:MI AM", "%I:%M %p"),
        ("HH:MI pm", "%I:%M %P"),
        ("SS.MS / SS.US", "%S.%3f / %S.%6f"),
        ("DDD IYYY-IW", "%j %G-%V"),
        ("FMDD/FMMM FMHH24:FMMI:FMSS FMDDD FMHH12", "%-d/%-m %-H:%-M:%-S %-j %-I"),
        ("Dy, DD Mon YY", "%a, %d %b %y"),
        ("FMDay FMMonth", "%A %B"),
        ('YYYY "year" MM "100%"', "%Y year %m 100%%"),
    ],
)
def test_patterns_in_chronos_words(pattern: str, chrono: str) -> None:
    assert is_postgres_pattern(pattern)
    assert chrono_format(pattern) == chrono


@pytest.mark.parametrize(
    ("pattern", "named"),
    [
        ("Month", "Month"),
        ("MONTH YYYY", "MONTH"),
        ("Q", "Q"),
        ("YYYY-Q", "Q"),
        ("SSSS", "SSSS"),
        ("Day", "Day"),
        ("MON", "MON"),
        ("999D99", "D"),
        ("DDth", "th"),
        ("TZ", "TZ"),
    ],
)
def test_a_pattern_not_translated_exactly_is_refused_by_name(pattern: str, named: str) -> None:
    with pytest.raises(UnsupportedStatementError, match=f"the pattern '{named}'"):
        chrono_format(pattern)


def test_a_percent_sign_makes_it_a_chrono_format() -> None:
    assert not is_postgres_pattern("%Y-%m")
    assert is_postgres_pattern('YYYY "%"')


@pytest.fixture(params=["hot", "cold"])
def table(engine: Engine, request: pytest.FixtureRequest) -> Engine:
    engine.execute("CREATE TABLE t (id INT PRIMARY KEY, d DATE, ts TIMESTAMP)")
    engine.execute(
        "INSERT INTO t VALUES (1, DATE '2024-03-05', TIMESTAMP '2024-03-05 14:07:09.123456'), "
        "(2, DATE '2023-12-31', TIMESTAMP '2023-12-31 00:00:00'), (3, NULL, NULL)"
    )
    if request.param == "cold":
        engine.flush("t")
    return engine


def test_postgres_patterns_answer_as_postgres(table: Engine) -> None:
    got = table.execute(
        "SELECT to_char(d, 'YYYY-MM'), to_char(ts, 'YYYY-MM-DD HH24:MI:SS.MS'), "
        "to_char(ts, 'FMDay, FMDD Mon YYYY HH12:MI am'), to_char(d, 'DDD') "
        "FROM t ORDER BY id"
    ).rows()
    assert got == [
        ("2024-03", "2024-03-05 14:07:09.123", "Tuesday, 5 Mar 2024 02:07 pm", "065"),
        ("2023-12", "2023-12-31 00:00:00.000", "Sunday, 31 Dec 2023 12:00 am", "365"),
        (None, None, None, None),
    ]


def test_grouping_by_the_same_to_char(table: Engine) -> None:
    got = table.execute(
        "SELECT to_char(ts, 'YYYY') AS y, count(*) FROM t "
        "GROUP BY to_char(ts, 'YYYY') ORDER BY y NULLS LAST"
    ).rows()
    assert got == [("2023", 1), ("2024", 1), (None, 1)]
    where = table.execute("SELECT id FROM t WHERE to_char(d, 'MM') = '03'").rows()
    assert where == [(1,)]


def test_chrono_formats_are_kept(table: Engine) -> None:
    got = table.execute("SELECT to_char(d, '%Y/%m/%d') FROM t WHERE id = 1").rows()
    assert got == [("2024/03/05",)]


def test_a_refused_pattern_changes_nothing(table: Engine) -> None:
    with pytest.raises(KalamError, match="'Q'"):
        table.execute("UPDATE t SET d = NULL WHERE to_char(d, 'Q') = '1'")
    assert table.execute("SELECT count(d) FROM t").rows() == [(2,)]
