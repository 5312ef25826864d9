"""Rows, placements and the comparison shared by the joins / set operations /
windows / DISTINCT / LIMIT matrix (``test_joins_matrix.py``) and its focused
tests (``test_joins_wrong_answers.py``).

Tables a, b, c hold NULLs, duplicates, negatives and INT's maximum; e is
empty; u is a USER table (alice's rows besides bob's: DuckDB holds only
alice's, the session user's). Placements: ``hot`` (never flushed), ``cold``
(all flushed) and ``mixed`` (perturbed and extra rows flushed, then updated,
deleted and re-inserted hot, so each side of a join has hot rows over cold
ones). DuckDB orders NULLs as PostgreSQL (and DataFusion) do: last when
ascending, first when descending.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

import duckdb

from engine import Engine

A = [
    (1, 1, 10, "a"),
    (2, 1, 10, "a"),
    (3, 2, -5, "b"),
    (4, None, 7, None),
    (5, 3, None, "c"),
    (6, 2, 0, "b"),
    (7, -1, 2147483647, ""),
    (8, None, None, "z"),
]
B = [(1, 1, 100, "a"), (2, 2, 200, "b"), (3, 2, None, None), (4, None, 5, "x"), (5, 4, -3, "c")]
B += [(6, 1, 100, "a")]
C = [(1, 1, 1.5), (2, 3, None), (3, None, -2.0), (4, 5, 0.0)]
U_ALICE = [(1, 1, 11), (2, None, 12), (3, 2, 13)]
U_BOB = [(1, 1, 901), (4, 3, 904), (5, None, 905)]
TABLES: dict[str, tuple[str, list[str], list[tuple[Any, ...]]]] = {
    "a": ("(k BIGINT PRIMARY KEY, g INT, x INT, s TEXT)", ["k", "g", "x", "s"], A),
    "b": ("(k BIGINT PRIMARY KEY, g INT, y INT, s TEXT)", ["k", "g", "y", "s"], B),
    "c": ("(k BIGINT PRIMARY KEY, g INT, z DOUBLE)", ["k", "g", "z"], C),
    "e": ("(k BIGINT PRIMARY KEY, g INT, x INT)", ["k", "g", "x"], []),
}
PLACEMENTS = ("hot", "cold", "mixed")
USER = "alice"


def lit(v: Any) -> str:
    if v is None:
        return "NULL"
    if isinstance(v, str):
        return "'" + v.replace("'", "''") + "'"
    return repr(v)


def values(rows: list[tuple[Any, ...]]) -> str:
    return ", ".join("(" + ", ".join(lit(v) for v in r) + ")" for r in rows)


def load_engine(engine: Engine, placement: str) -> None:
    engine.execute("CREATE USER alice")
    engine.execute("CREATE USER bob")
    for name, (cols, _, _) in TABLES.items():
        engine.execute(f"CREATE TABLE {name} {cols}")
    engine.execute("CREATE USER TABLE u (k BIGINT PRIMARY KEY, g INT, v INT)")
    if placement in ("hot", "cold"):
        for name, (_, _, rows) in TABLES.items():
            if rows:
                engine.execute(f"INSERT INTO {name} VALUES {values(rows)}")
        engine.execute(f"INSERT INTO u VALUES {values(U_ALICE)}", user="alice")
        engine.execute(f"INSERT INTO u VALUES {values(U_BOB)}", user="bob")
        if placement == "cold":
            for name in [*TABLES, "u"]:
                engine.execute(f"FLUSH TABLE {name} WAIT")
        return
    for name, (_, names, rows) in TABLES.items():
        # Even keys flushed with wrong values then updated; keys 4 and 7 only
        # inserted after the flush; three extra rows flushed then deleted.
        first = [
            (r[0], *("q" if n == "s" else 99 for n in names[1:])) if r[0] % 2 == 0 else r
            for r in rows
            if r[0] % 2 == 0 or r[0] % 3 != 1 or r[0] == 1
        ]
        extra = [(100 + i, *("a" if n == "s" else 1 for n in names[1:])) for i in range(3)]
        engine.execute(f"INSERT INTO {name} VALUES {values(first + extra)}")
        engine.execute(f"FLUSH TABLE {name} WAIT")
        for r in rows:
            if r[0] % 2 == 0:
                sets = ", ".join(f"{n} = {lit(v)}" for n, v in zip(names[1:], r[1:], strict=True))
                engine.execute(f"UPDATE {name} SET {sets} WHERE k = {r[0]}")
            elif r[0] % 3 == 1 and r[0] != 1:
                engine.execute(f"INSERT INTO {name} VALUES {values([r])}")
        engine.execute(f"DELETE FROM {name} WHERE k >= 100")
    engine.execute(f"INSERT INTO u VALUES {values([*U_ALICE[:2], (9, 9, 9)])}", user="alice")
    engine.execute(f"INSERT INTO u VALUES {values(U_BOB)}", user="bob")
    engine.execute("FLUSH TABLE u WAIT")
    engine.execute("DELETE FROM u WHERE k = 9", user="alice")
    engine.execute(f"INSERT INTO u VALUES {values(U_ALICE[2:])}", user="alice")
    engine.execute("UPDATE u SET v = v + 1000 WHERE k = 1", user="bob")
    engine.execute("DELETE FROM u WHERE k = 4", user="bob")


def load_duck() -> Any:
    duck = duckdb.connect()
    duck.execute("SET default_null_order = 'nulls_last_on_asc_first_on_desc'")
    for name, (cols, _, rows) in TABLES.items():
        duck.execute(f"CREATE TABLE {name} {cols.replace(' PRIMARY KEY', '')}")
        if rows:
            duck.execute(f"INSERT INTO {name} VALUES {values(rows)}")
    duck.execute("CREATE TABLE u (k BIGINT, g INT, v INT)")
    duck.execute(f"INSERT INTO u VALUES {values(U_ALICE)}")
    return duck


def _norm(v: Any) -> Any:
    if isinstance(v, Decimal):
        v = float(v)
    if isinstance(v, float):
        return "NaN" if math.isnan(v) else round(v, 9)
    return v


def canon(rows: list[tuple[Any, ...]], *, ordered: bool) -> list[tuple[Any, ...]]:
    """Rows to compare: values rounded (an INT and a DOUBLE of one value are
    equal), sorted unless the query fixes the order."""
    out = [tuple(_norm(v) for v in r) for r in rows]
    return out if ordered else sorted(out, key=repr)


def sub_multiset(part: list[tuple[Any, ...]], whole: list[tuple[Any, ...]]) -> bool:
    rest = list(whole)
    for row in part:
        if row not in rest:
            return False
        rest.remove(row)
    return True
