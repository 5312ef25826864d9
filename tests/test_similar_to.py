"""``SIMILAR TO`` matches the whole string with SQL's pattern rules, in a
SELECT and in the predicates of UPDATE and DELETE, rows hot or cold.

DataFusion 55 read the pattern as a regular expression searched anywhere in
the string: ``'apple' SIMILAR TO 'ppl'`` was TRUE, ``'apple' SIMILAR TO
'a%'`` FALSE, and ``DELETE FROM t WHERE s SIMILAR TO 'a%'`` deleted only the
row holding ``'a%b'``. DuckDB deviates from SQL too (its SIMILAR TO is a
whole-string regular expression where ``%`` and ``_`` are literal), so the
expected rows here are PostgreSQL's.
"""

from __future__ import annotations

from typing import Any

import pytest

from engine import Engine
from engine.errors import UnsupportedStatementError
from engine.sql.similar import to_regex

WORDS = ["apple", "a%b", "xapple", "a.ple", "Apple", "ab", "abab", "a", "", "a\nb", "a_b", "b$"]


@pytest.fixture(params=["hot", "cold"])
def eng(request: pytest.FixtureRequest, tmp_path: Any):  # type: ignore[no-untyped-def]
    with Engine.open(str(tmp_path), background_jobs=False, durability="async") as e:
        e.execute("CREATE TABLE w (id BIGINT PRIMARY KEY, s TEXT)")
        for i, word in enumerate(WORDS):
            e.execute("INSERT INTO w VALUES (?, ?)", [i, word])
        e.execute("INSERT INTO w VALUES (99, NULL)")
        if request.param == "cold":
            e.execute("FLUSH TABLE w WAIT")
        yield e


@pytest.mark.parametrize(
    ("pattern", "matches"),
    [
        ("'a%'", ["apple", "a%b", "a.ple", "ab", "abab", "a", "a\nb", "a_b"]),
        ("'ppl'", []),  # was apple, xapple (found inside)
        ("'%ppl%'", ["apple", "xapple", "Apple"]),
        ("'a_ple'", ["apple", "a.ple"]),
        ("'(ab)+'", ["ab", "abab"]),
        ("'a|ab'", ["ab", "a"]),
        ("'a.ple'", ["a.ple"]),  # `.` is literal
        ("'b$'", ["b$"]),  # `$` is literal
        ("'a\\%b'", ["a%b"]),
        ("'a#_b' ESCAPE '#'", ["a_b"]),
        ("'a_b' ESCAPE ''", ["a%b", "a\nb", "a_b"]),
        ("'[^a]%'", ["xapple", "Apple", "b$"]),
        ("'a{1,2}b?'", ["ab", "a"]),
        ("'%'", WORDS),
    ],
)
def test_similar_to_matches_the_whole_string_with_sql_rules(
    eng: Engine, pattern: str, matches: list[str]
) -> None:
    rows = eng.execute(f"SELECT s FROM w WHERE s SIMILAR TO {pattern} ORDER BY id").rows()
    assert [r[0] for r in rows] == matches
    negated = eng.execute(f"SELECT s FROM w WHERE s NOT SIMILAR TO {pattern} ORDER BY id").rows()
    assert [r[0] for r in negated] == [w for w in WORDS if w not in matches]  # NULL: neither


def test_delete_and_update_with_similar_to_change_the_rows_a_select_shows(eng: Engine) -> None:
    # Deleted only 'a%b' before.
    assert eng.execute("DELETE FROM w WHERE s SIMILAR TO 'a%'").rows_affected == 8
    assert eng.execute("UPDATE w SET s = 'z' WHERE s SIMILAR TO '%pp%'").rows_affected == 2
    eng.execute("FLUSH TABLE w WAIT")
    rows = eng.execute("SELECT s FROM w ORDER BY id").rows()
    assert [r[0] for r in rows] == ["z", "z", "", "b$", None]


@pytest.mark.parametrize(
    ("sql", "names"),
    [
        ("SELECT s FROM w WHERE s SIMILAR TO s", "pattern must be a string literal"),
        ("SELECT s FROM w WHERE s SIMILAR TO '[[:alpha:]]'", "POSIX classes"),
        ("SELECT s FROM w WHERE s SIMILAR TO 'a' ESCAPE '##'", "one character"),
        ("DELETE FROM w WHERE s SIMILAR TO 'a\\'", "ends with its escape"),
    ],
)
def test_a_similar_to_that_cannot_be_translated_exactly_is_refused(
    eng: Engine, sql: str, names: str
) -> None:
    with pytest.raises(UnsupportedStatementError, match=names):
        eng.execute(sql)
    assert eng.execute("SELECT count(*) FROM w").scalar() == len(WORDS) + 1


def test_the_translation_escapes_what_is_literal_in_similar_to() -> None:
    assert to_regex("a%_.^$") == "^(?s:a.*.\\.\\^\\$)$"
    assert to_regex("[a-c]|x+") == "^(?s:[a-c]|x+)$"
