"""PEP 249 type objects and constructors.

A cursor's ``description`` gives each column's Arrow ``DataType`` as its
``type_code`` (as ADBC drivers do); the type objects below compare equal to
the Arrow types of their group, so ``col.type_code == kalam.NUMBER`` works.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from typing import Any

import pyarrow as pa
import pyarrow.types as pat


class DBAPITypeObject:
    """A PEP 249 type group, equal to every Arrow type it covers."""

    def __init__(self, name: str, test: Callable[[pa.DataType], bool]) -> None:
        self.name = name
        self._test = test

    def __repr__(self) -> str:
        return f"<kalam type {self.name}>"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, DBAPITypeObject):
            return other is self
        if isinstance(other, pa.DataType):
            return bool(self._test(other))
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.name)


STRING = DBAPITypeObject(
    "STRING", lambda t: pat.is_string(t) or pat.is_large_string(t) or pat.is_string_view(t)
)
BINARY = DBAPITypeObject(
    "BINARY",
    lambda t: pat.is_binary(t) or pat.is_large_binary(t) or pat.is_fixed_size_binary(t),
)
NUMBER = DBAPITypeObject(
    "NUMBER", lambda t: pat.is_integer(t) or pat.is_floating(t) or pat.is_decimal(t)
)
DATETIME = DBAPITypeObject("DATETIME", lambda t: pat.is_temporal(t) and not pat.is_interval(t))
ROWID = DBAPITypeObject("ROWID", lambda t: False)  # Kalam has no row ids


def Date(year: int, month: int, day: int) -> dt.date:  # noqa: N802 - PEP 249 names
    return dt.date(year, month, day)


def Time(hour: int, minute: int, second: int) -> dt.time:  # noqa: N802
    return dt.time(hour, minute, second)


def Timestamp(  # noqa: N802
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, second)


def DateFromTicks(ticks: float) -> dt.date:  # noqa: N802
    return dt.date(*time.localtime(ticks)[:3])


def TimeFromTicks(ticks: float) -> dt.time:  # noqa: N802
    return dt.time(*time.localtime(ticks)[3:6])


def TimestampFromTicks(ticks: float) -> dt.datetime:  # noqa: N802
    return dt.datetime(*time.localtime(ticks)[:6])


def Binary(value: Any) -> bytes:  # noqa: N802
    return bytes(value)
