"""Dates and intervals DataFusion 55 answers wrongly, rewritten before it
plans them.

**Comparing intervals.** DataFusion compares intervals part by part
(months, then days, then nanoseconds): ``INTERVAL '1 day' = INTERVAL '24
hours'`` was FALSE, ``INTERVAL '25 hours' > INTERVAL '1 day'`` FALSE, and
the length of a timestamp difference (a duration, which it reads as
nanoseconds only) never reached an interval with days in it: ``ts2 - ts1 >
INTERVAL '30 days'`` was FALSE for a difference of 60 days, the query a
notebook writes to find old rows. PostgreSQL and DuckDB compare lengths,
with a month of 30 days and a day of 24 hours. So an INTERVAL literal that
is compared (a side of ``=`` / ``<`` / ..., BETWEEN or IN) and holds months
or days is written as its length in nanoseconds, which compares exactly
with durations and with other literals so written. (An interval computed
in the query, e.g. ``ts - ts - INTERVAL '1 day'``, is still compared part by
part: a known gap. The name DataFusion gives an unaliased comparison then
shows the nanoseconds.)

**A DATE plus or minus an INTERVAL with a time of day is a TIMESTAMP.**

DataFusion 55 computes ``DATE '2024-01-01' + INTERVAL '1 hour'`` as a DATE
and drops the hour: 2024-01-01, where PostgreSQL and DuckDB answer
2024-01-01 01:00:00. ``- INTERVAL '1 hour'`` also gave 2024-01-01, not
2023-12-31 23:00:00. So where one side of ``+`` / ``-`` is certainly a DATE
and the other an INTERVAL literal holding a part smaller than a day, the
DATE is cast to a TIMESTAMP first: ``TIMESTAMP(6)``, microseconds, the
engine's TIMESTAMP type, whose range (±294,000 years) holds every DATE. (A
plain ``CAST(... AS TIMESTAMP)`` is nanoseconds there, which fails after
2262, e.g. for the common ``9999-12-31``.)

An interval of whole days, months or years keeps the DATE result, as
DataFusion computes it: the value is exact. PostgreSQL answers a TIMESTAMP
at midnight there, the same instant. Keeping the DATE keeps the plans over
date columns (TPC-H's ``l_shipdate <= DATE '1998-12-01' - INTERVAL '90'
DAY``) as they are.

Whether an interval has a part smaller than a day is asked of DataFusion
itself, once per interval text, so it is read exactly as the query will
read it. A DATE is certain for a DATE column of a base table (and of a
derived table or CTE, through its values), a cast to DATE (``DATE '...'``,
``'...'::date``), ``CURRENT_DATE``, a DATE plus or minus whole days, and
``COALESCE`` / ``CASE`` / ``min`` / ``max`` of those. Anything else is left
as written (a known gap).

A cast is transparent in DataFusion's output names, so an unaliased
projection keeps the name it had.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from typing import Any

import pyarrow as pa
from sqlglot import exp
from sqlglot.errors import SqlglotError

from engine.sql.checked_ints import render
from engine.sql.column_types import SchemaOf, column_types
from engine.sql.numeric_semantics import choices, derived_columns
from engine.sql.tokens import DIALECT, parsed, peeked

_INTERVAL = re.compile(r"\bINTERVAL\b", re.IGNORECASE)
TIMESTAMP_US = "TIMESTAMP(6)"  # Timestamp(Microsecond) in DataFusion
# PostgreSQL (and DuckDB) compare intervals as lengths: a month is 30 days,
# a day 24 hours.
_DAYS_A_MONTH = 30
_NANOS_A_DAY = 86_400 * 10**9
_COMPARISONS = (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.NullSafeEQ, exp.NullSafeNEQ)
_CHOICES = (exp.Coalesce, exp.Case, exp.If, exp.Min, exp.Max, exp.Greatest, exp.Least)

# interval text -> (months, days, nanoseconds) as DataFusion reads it (None:
# it cannot, so the query fails as written with DataFusion's own error).
_PARTS_SIZE = 256
_parts_of: OrderedDict[str, tuple[int, int, int] | None] = OrderedDict()
_parts_lock = threading.Lock()
_reader: list[Any] = []  # one SessionContext, made on first use


def timestamps_where_timed(sql: str, schema_of: SchemaOf | None) -> tuple[exp.Expr, str] | None:
    """(tree, text) of ``sql`` with each DATE that meets an interval with a
    time of day cast to a TIMESTAMP; None when there is none."""
    if _INTERVAL.search(sql) is None or (shared := peeked(sql)) is None:
        return None
    # Looked at on the shared tree first: only an interval with a time of
    # day needs the column types, and only a date that meets one a copy.
    if not any(_timed(i) for i in shared.find_all(exp.Interval)):
        return None
    try:
        if not _dated(shared, schema_of, dry=True):
            return None
        read = parsed(sql)
        if read is None:
            return None
        tree, dialect = read
        if not _dated(tree, schema_of):
            return None
    except SqlglotError:
        return None
    text = render(tree, dialect)
    return None if text is None else (tree, text)


def _dated(tree: exp.Expr, schema_of: SchemaOf | None, *, dry: bool = False) -> bool:
    """Cast the DATE side of each ``DATE ± timed interval`` in ``tree`` to a
    TIMESTAMP (in place); whether any was. ``dry``: whether any would be,
    changing nothing."""
    types: dict[int, pa.DataType] = {}
    if schema_of is not None:
        types = column_types(tree, schema_of)[0]
    derived = derived_columns(tree, {})
    is_date = _DateTest(types, derived)
    found: list[exp.Expr] = []
    for step in tree.find_all(exp.Add, exp.Sub):
        date = _date_side(step, is_date)
        if date is not None:
            if dry:
                return True
            found.append(date)
    for date in found:
        # Wrapped in place: the nodes inside stay the same objects.
        cast = exp.Cast(this=exp.Null(), to=exp.DataType.build(TIMESTAMP_US, dialect=DIALECT))
        date.replace(cast)
        cast.set("this", date)
    return bool(found)


def _date_side(step: exp.Expr, is_date: _DateTest) -> exp.Expr | None:
    """The DATE operand of ``step`` when its other operand is an interval
    with a time of day (``interval - date`` is not SQL: left alone)."""
    left, right = step.this, step.expression
    if _timed_interval(right) and is_date(left):
        return left
    if isinstance(step, exp.Add) and _timed_interval(left) and is_date(right):
        return right
    return None


def _timed_interval(node: exp.Expr) -> bool:
    while isinstance(node, exp.Paren | exp.Neg):
        node = node.this
    return isinstance(node, exp.Interval) and _timed(node) is True


class _DateTest:
    """Whether a node's value is certainly a DATE (as DataFusion types it)."""

    def __init__(self, types: dict[int, pa.DataType], derived: dict[int, list[exp.Expr]]) -> None:
        self._types, self._derived = types, derived

    def __call__(self, node: exp.Expr) -> bool:
        while isinstance(node, exp.Paren):
            node = node.this
        if isinstance(node, exp.Cast):
            return node.to.this == exp.DataType.Type.DATE
        if isinstance(node, exp.CurrentDate):
            return True
        if isinstance(node, exp.Column):
            arrow = self._types.get(id(node))
            if arrow is not None:
                return bool(pa.types.is_date(arrow))
            values = self._derived.get(id(node)) or []
            return bool(values) and all(self(v) for v in values)
        if isinstance(node, exp.Add | exp.Sub):
            # A DATE plus or minus whole days stays a DATE.
            left, right = node.this, node.expression
            if _whole_interval(right) and self(left):
                return True
            return isinstance(node, exp.Add) and _whole_interval(left) and self(right)
        if isinstance(node, _CHOICES):
            values = choices(node)
            return bool(values) and all(self(v) for v in values)
        return False


def _whole_interval(node: exp.Expr) -> bool:
    while isinstance(node, exp.Paren | exp.Neg):
        node = node.this
    return isinstance(node, exp.Interval) and _timed(node) is False


def _timed(interval: exp.Interval) -> bool | None:
    """Whether ``interval`` holds a part smaller than a day; None when
    DataFusion cannot read it."""
    parts = _parts(interval)
    return None if parts is None else parts[2] != 0


def _parts(interval: exp.Interval) -> tuple[int, int, int] | None:
    """(months, days, nanoseconds) of ``interval`` as DataFusion reads it;
    None when it cannot."""
    text = interval.sql(dialect=DIALECT)
    with _parts_lock:
        if text in _parts_of:
            _parts_of.move_to_end(text)
            return _parts_of[text]
        if not _reader:
            from datafusion import SessionContext

            _reader.append(SessionContext())
        try:
            value = _reader[0].sql(f"SELECT {text} AS v").to_arrow_table().column(0)[0].as_py()
            parts: tuple[int, int, int] | None = (value.months, value.days, value.nanoseconds)
        except Exception:  # DataFusion cannot read it: its own error comes later
            parts = None
        _parts_of[text] = parts
        while len(_parts_of) > _PARTS_SIZE:
            _parts_of.popitem(last=False)
        return parts


# ------------------------------------------------- comparing intervals


def comparable_intervals(sql: str) -> tuple[exp.Expr, str] | None:
    """(tree, text) of ``sql`` with each INTERVAL literal compared to a value
    written as its length in nanoseconds; None when there is none."""
    if _INTERVAL.search(sql) is None or (shared := peeked(sql)) is None:
        return None
    if not _lengths(shared, dry=True):
        return None
    read = parsed(sql)
    if read is None:
        return None
    tree, dialect = read
    if not _lengths(tree):
        return None
    text = render(tree, dialect)
    return None if text is None else (tree, text)


def _lengths(tree: exp.Expr, *, dry: bool = False) -> bool:
    """Replace (in place) each compared interval literal with months or days
    by its length in nanoseconds; whether any was. ``dry``: whether any
    would be, changing nothing."""
    found: list[tuple[exp.Expr, int]] = []
    for node in tree.find_all(exp.Interval):
        top: exp.Expr = node
        sign = 1
        while isinstance(top.parent, exp.Paren | exp.Neg):
            sign = -sign if isinstance(top.parent, exp.Neg) else sign
            top = top.parent
        if not _compared(top):
            continue
        parts = _parts(node)
        if parts is None or parts[:2] == (0, 0):
            continue
        months, days, nanos = parts
        length = sign * ((months * _DAYS_A_MONTH + days) * _NANOS_A_DAY + nanos)
        if not -(2**63) <= length < 2**63:
            continue  # longer than DataFusion's nanoseconds hold: as written
        if dry:
            return True
        found.append((top, length))
    for top, length in found:
        top.replace(exp.Interval(this=exp.Literal.string(f"{length} nanoseconds")))
    return bool(found)


def _compared(node: exp.Expr) -> bool:
    """Whether ``node`` is an operand of a comparison (a side of ``=`` / ``<``
    / ..., of BETWEEN, of IN or an item of its list)."""
    parent = node.parent
    if isinstance(parent, (*_COMPARISONS, exp.Between)):
        return True
    return isinstance(parent, exp.In) and parent.args.get("query") is None
