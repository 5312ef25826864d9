"""PostgreSQL ``to_char`` date/time patterns in DataFusion's (chrono's) words.

DataFusion 55 reads ``to_char``'s pattern as a chrono format (``%Y-%m``),
so PostgreSQL's ``to_char(d, 'YYYY-MM')`` answered the text ``YYYY-MM`` for
every row. A pattern with no ``%`` is read as PostgreSQL's and
translated; one with a ``%`` (outside double-quoted text) is a chrono
format, kept as written.

Translated exactly (upper or lower case, as PostgreSQL reads them):
``YYYY YY MM DD DDD HH24 HH12 HH MI SS MS US IYYY IW``, the fill-mode
(``FM``) forms ``FMDD FMMM FMDDD FMHH24 FMHH12 FMHH FMMI FMSS`` (no leading
zeros), ``AM PM`` (``am pm`` lower case), ``Mon Dy`` (``Jan``, ``Tue``) and
``FMMonth FMDay`` (``January``, ``Tuesday``). Text in double quotes and
anything but a letter stands for itself. Every other pattern (``Month``
padded to nine characters, ``MON``, ``Q``, ``D``, ``TZ``, a number's
``999D99``, ...) is refused by name rather than answered wrongly.
"""

from __future__ import annotations

import re

from engine.errors import UnsupportedStatementError

# Longest first: ``MM`` must not take the start of ``MI`` or ``Month``.
_CASE_FREE = {
    "FMHH24": "%-H",
    "FMHH12": "%-I",
    "FMDDD": "%-j",
    "FMHH": "%-I",
    "FMDD": "%-d",
    "FMMM": "%-m",
    "FMMI": "%-M",
    "FMSS": "%-S",
    "YYYY": "%Y",
    "IYYY": "%G",
    "HH24": "%H",
    "HH12": "%I",
    "DDD": "%j",
    "YY": "%y",
    "MM": "%m",
    "DD": "%d",
    "HH": "%I",
    "MI": "%M",
    "SS": "%S",
    "MS": "%3f",
    "US": "%6f",
    "IW": "%V",
}
_CASED = {
    "FMMonth": "%B",
    "FMDay": "%A",
    "Mon": "%b",
    "Dy": "%a",
    "AM": "%p",
    "PM": "%p",
    "am": "%P",
    "pm": "%P",
}
# Patterns whose start is a shorter one above (``Month`` is not ``Mon`` and
# ``th``; ``SSSS`` is seconds past midnight, not ``SS`` twice).
_REFUSED = ("MONTH", "SSSSS", "SSSS")
_LONGEST = max(len(k) for k in (*_CASE_FREE, *_CASED))
SUPPORTED = "YYYY, YY, MM, DD, DDD, HH24, HH12, MI, SS, MS, US, IYYY, IW, Mon, Dy, AM, PM, FM forms"


def is_postgres_pattern(pattern: str) -> bool:
    """Whether ``pattern`` is read as PostgreSQL's: no ``%`` outside its
    double-quoted text."""
    return "%" not in re.sub(r'"[^"]*"?', "", pattern)


def chrono_format(pattern: str) -> str:
    """``pattern`` (PostgreSQL's) as a chrono format; raises
    ``UnsupportedStatementError`` naming a pattern it cannot translate
    exactly."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == '"':
            end = pattern.find('"', i + 1)
            if end < 0:
                end = len(pattern)
            out.append(pattern[i + 1 : end].replace("%", "%%"))
            i = end + 1
            continue
        if not ch.isalpha():
            out.append("%%" if ch == "%" else ch)
            i += 1
            continue
        refused = next((r for r in _REFUSED if pattern[i : i + len(r)].upper() == r), None)
        for size in range(0 if refused else min(_LONGEST, len(pattern) - i), 0, -1):
            piece = pattern[i : i + size]
            found = _CASED.get(piece) or _CASE_FREE.get(piece.upper())
            if found is not None:
                out.append(found)
                i += size
                break
        else:
            word = pattern[i : i + len(refused)] if refused else ch
            j = i + len(word)
            while not refused and j < len(pattern) and pattern[j].isalpha():
                word += pattern[j]
                j += 1
            raise UnsupportedStatementError(
                f"to_char: the pattern {word!r} in {pattern!r} is not supported. "
                f"Hint: use {SUPPORTED}, or a chrono format such as '%Y-%m-%d'"
            )
    return "".join(out)
