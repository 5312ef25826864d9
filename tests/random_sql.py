"""A seeded generator of SELECT statements for ``test_random_queries.py``.

Two small tables with NULLs, duplicates, negatives and odd strings, and
queries that combine what users combine: arithmetic and CASE/COALESCE over
nullable integers, three-valued predicates (IN lists with NULL, BETWEEN,
LIKE), GROUP BY with HAVING, window functions, set operations, the four
join kinds over derived tables and UNIONs, CTEs, IN / EXISTS / scalar
subqueries (correlated or not) anywhere a predicate goes, and ORDER BY with
LIMIT / OFFSET over hot and cold rows (a total order: ``Queries.ordered``). Integer division
is written ``/`` (PostgreSQL's and DataFusion's meaning); ``duckdb_sql``
spells it ``//`` for DuckDB, whose ``/`` is a float division.
"""

from __future__ import annotations

import random
from typing import Any

SETUP = [
    "CREATE TABLE t1 (id BIGINT PRIMARY KEY, a INT, b BIGINT, c DOUBLE, s TEXT)",
    "CREATE TABLE t2 (id BIGINT PRIMARY KEY, a INT, x INT, s TEXT)",
]
# DML applied after a flush in the "mixed" layout: hot versions over cold rows.
CHURN = [
    "UPDATE t1 SET a = a + 1 WHERE id % 3 = 0",
    "DELETE FROM t1 WHERE id % 7 = 0",
    "UPDATE t2 SET s = 'q' WHERE id % 4 = 1",
    "DELETE FROM t2 WHERE id % 5 = 0",
]
_INTS = [None, 0, 1, 2, -1, 3, 10, -7, 100]
_FLOATS = [None, 0.0, 1.5, -2.25, 3.0, 1e10, -0.5]
_TEXTS = [None, "", "a", "b", "ab", "B", "abc", "a%", "zz"]


def rows(seed: int) -> dict[str, list[tuple[Any, ...]]]:
    rnd = random.Random(seed)
    pick = rnd.choice
    return {
        "t1": [(i, pick(_INTS), pick(_INTS), pick(_FLOATS), pick(_TEXTS)) for i in range(1, 41)],
        "t2": [(i, pick(_INTS), pick(_INTS), pick(_TEXTS)) for i in range(1, 31)],
    }


def duckdb_sql(sql: str) -> str:
    return sql.replace(" / ", " // ")


class Queries:
    """``Queries(seed).next()``: the next statement of a deterministic stream."""

    def __init__(self, seed: int) -> None:
        self.rnd = random.Random(seed)
        self.ordered = False  # the last statement's rows come in a defined order

    def pick(self, options: list[str]) -> str:
        return self.rnd.choice(options)

    # ------------------------------------------------------------ values
    def number(self, depth: int = 0) -> str:
        r = self.rnd.random()
        if depth > 2 or r < 0.35:
            return self.pick(["a", "b", "id", "0", "1", "2", "3", "-1", "5"])
        if r < 0.45:
            return f"CASE WHEN {self.predicate(depth + 1)} THEN {self.number(depth + 1)} ELSE {self.number(depth + 1)} END"
        if r < 0.52:
            return f"COALESCE({self.number(depth + 1)}, {self.number(depth + 1)})"
        if r < 0.57:
            return f"abs({self.number(depth + 1)})"
        op = self.pick(["+", "-", "*", "/", "%"])
        if op in "/%":
            return f"({self.number(depth + 1)} {op} NULLIF({self.number(depth + 1)}, 0))"
        return f"({self.number(depth + 1)} {op} {self.number(depth + 1)})"

    def text(self, depth: int = 0) -> str:
        r = self.rnd.random()
        if depth > 1 or r < 0.5:
            return "s"
        if r < 0.7:
            return "'" + self.pick(["a", "b", "", "ab"]) + "'"
        if r < 0.8:
            return f"upper({self.text(depth + 1)})"
        if r < 0.9:
            return f"({self.text(depth + 1)} || {self.text(depth + 1)})"
        return f"substr({self.text(depth + 1)}, 1, 2)"

    # -------------------------------------------------------- predicates
    def predicate(self, depth: int = 0) -> str:
        r = self.rnd.random()
        if depth > 2 or r < 0.4:
            return self.atom(depth)
        if r < 0.64:
            return f"({self.predicate(depth + 1)} AND {self.predicate(depth + 1)})"
        if r < 0.88:
            return f"({self.predicate(depth + 1)} OR {self.predicate(depth + 1)})"
        return f"NOT ({self.predicate(depth + 1)})"

    def atom(self, depth: int) -> str:
        k = self.rnd.random()
        n = lambda: self.number(depth + 1)  # noqa: E731
        no = lambda: self.pick(["", "NOT "])  # noqa: E731
        if k < 0.35:
            return f"{n()} {self.pick(['=', '<>', '<', '<=', '>', '>='])} {n()}"
        if k < 0.43:
            return f"{n()} IS {no()}NULL"
        if k < 0.51:
            items = ", ".join(self.pick(["1", "2", "NULL", "0", "-1"]) for _ in range(3))
            return f"{n()} {no()}IN ({items})"
        if k < 0.59:
            return f"{n()} {no()}BETWEEN {n()} AND {n()}"
        if k < 0.67:
            pattern = self.pick(["a%", "%b", "_", "%", "ab", ""])
            return f"{self.text(depth + 1)} {no()}LIKE '{pattern}'"
        if k < 0.74:
            return (
                f"t1.c {self.pick(['<', '>', '=', '<>'])} {self.pick(['0', '1.5', '-1', 'NULL'])}"
            )
        if k < 0.8:
            return (
                f"{self.text(depth + 1)} {self.pick(['=', '<', '>', '<>'])} {self.text(depth + 1)}"
            )
        if k < 0.88:
            where = self.pick(
                ["x > 0", "TRUE", "t2.a = t1.a", "t2.x < t1.b", "t2.s IS NULL", "x IS NOT NULL"]
            )
            value = self.pick(["x", "t2.a", "x + 1", "max(x)", "t1.a"])
            group = " GROUP BY x" if value == "x" and self.rnd.random() < 0.3 else ""
            return f"t1.a {no()}IN (SELECT {value} FROM t2 WHERE {where}{group})"
        if k < 0.94:
            where = self.pick(["t2.a = t1.a", "t2.x < t1.a", "t2.s = t1.s", "x IS NULL"])
            return f"{no()}EXISTS (SELECT 1 FROM t2 WHERE {where})"
        agg = self.pick(["max(x)", "count(*)", "min(t2.a)", "sum(x)"])
        where = self.pick(["t2.a = t1.a", "t2.x < t1.a", "TRUE", "t2.s = t1.s"])
        return f"t1.b {self.pick(['=', '<', '>', '<>'])} (SELECT {agg} FROM t2 WHERE {where})"

    # ----------------------------------------------------------- queries
    def next(self) -> str:
        self.ordered = False
        k = self.rnd.random()
        where = self.predicate()
        if k < 0.3:
            cols = ", ".join(
                self.pick([self.number(), self.text(), "c", f"({self.predicate()})"]) + f" AS c{i}"
                for i in range(self.rnd.randint(1, 3))
            )
            sql = f"SELECT id, {cols} FROM t1 WHERE {where}"
            if self.rnd.random() < 0.4:
                # A total order (id breaks every tie), so the rows compare as a list.
                key = self.pick(["id", "a, id", "a DESC, id", "s NULLS FIRST, id DESC", "c, id"])
                limit = self.pick(["", " LIMIT 5", " LIMIT 3 OFFSET 2", " OFFSET 30"])
                sql += f" ORDER BY {key}{limit}"
                self.ordered = True
            return sql
        if k < 0.5:
            g = self.pick(["a", "s", "a % 3", "b IS NULL", "upper(s)"])
            agg = self.pick(
                [
                    "count(*)",
                    "count(a)",
                    "sum(b)",
                    "min(s)",
                    "max(a)",
                    "avg(a)",
                    "count(DISTINCT a)",
                    "sum(c)",
                    "bool_or(a > 1)",
                    "string_agg(s, ',' ORDER BY s)",
                ]
            )
            having = ""
            if self.rnd.random() < 0.3:
                having = " HAVING " + self.pick(
                    ["count(*) > 1", "sum(a) IS NULL", "max(b) > 0", "min(a) < 2"]
                )
            return f"SELECT {g} AS g, {agg} AS v FROM t1 WHERE {where} GROUP BY {g}{having}"
        if k < 0.62:
            w = self.pick(
                [
                    "row_number() OVER (PARTITION BY a ORDER BY id)",
                    "sum(b) OVER (PARTITION BY s ORDER BY id)",
                    "rank() OVER (ORDER BY a)",
                    "lag(a) OVER (ORDER BY id)",
                    "count(*) OVER (PARTITION BY a)",
                    "max(c) OVER (ORDER BY id ROWS BETWEEN 1 PRECEDING AND 1 FOLLOWING)",
                ]
            )
            return f"SELECT id, {w} AS w FROM t1 WHERE {where}"
        if k < 0.72:
            op = self.pick(["UNION", "UNION ALL", "INTERSECT", "EXCEPT"])
            bound = self.pick(["0", "1", "2"])
            return f"SELECT a FROM t1 WHERE {where} {op} SELECT x FROM t2 WHERE x IS NULL OR x > {bound}"
        if k < 0.86:
            return self.join(where)
        return self.joins()

    def qualified(self, tables: list[tuple[str, list[str]]], depth: int = 0) -> str:
        """A predicate over the qualified columns of ``tables`` (alias, columns)."""
        cols = [f"{t}.{c}" for t, cs in tables for c in cs]
        r = self.rnd.random()
        if depth < 2 and r < 0.3:
            op = self.pick(["AND", "OR"])
            return f"({self.qualified(tables, depth + 1)} {op} {self.qualified(tables, depth + 1)})"
        if depth < 2 and r < 0.38:
            return f"NOT ({self.qualified(tables, depth + 1)})"
        c1, c2 = self.pick(cols), self.pick(cols)
        return self.pick(
            [
                f"{c1} = {c2}",
                f"{c1} < {c2}",
                f"{c1} IS NULL",
                f"{c1} IS NOT NULL",
                f"COALESCE({c1}, {self.pick(['0', '2', '-1'])}) = {self.pick(['0', '2', '7'])}",
                f"{c1} IN (1, 2, {self.pick(['5', 'NULL'])})",
                f"{c1} + {c2} > {self.pick(['0', '3'])}",
                f"CASE WHEN {c1} IS NULL THEN 1 ELSE 0 END = {self.pick(['0', '1'])}",
            ]
        )

    def joins(self) -> str:
        """Two or three tables joined with mixed kinds, ON conditions over
        either side and a WHERE over any of them (the NULL-padded ones too)."""
        t1 = ("t1", ["id", "a", "b"])
        t2 = ("t2", ["id", "a", "x"])
        t3 = ("u", ["id", "a", "b"])  # t1 again
        kinds = ["JOIN", "LEFT JOIN", "RIGHT JOIN", "FULL JOIN"]
        on2 = self.pick(
            [
                "t1.a = t2.a",
                "t1.b = t2.x",
                "t1.a = t2.a AND t2.x > 0",
                "t1.a = t2.x AND t1.b IS NOT NULL",
            ]
        )
        sql = f"FROM t1 {self.pick(kinds)} t2 ON {on2}"
        tables = [t1, t2]
        if self.rnd.random() < 0.5:
            on3 = self.pick(["u.a = t2.x", "u.id = t1.id", "u.a = t1.a AND u.b > 0", "u.b = t2.a"])
            sql += f" {self.pick(kinds)} t1 AS u ON {on3}"
            tables.append(t3)
        where = self.qualified(tables)
        names = [f"{t}.{c}" for t, cs in tables for c in cs[:2]]
        if self.rnd.random() < 0.3:
            g = self.pick(names)
            return f"SELECT {g} AS g, count(*) AS n, sum({self.pick(names)}) AS s {sql} WHERE {where} GROUP BY {g}"
        cols = ", ".join(f"{n} AS c{i}" for i, n in enumerate(names))
        return f"SELECT {cols} {sql} WHERE {where}"

    def join(self, where: str) -> str:
        kind = self.pick(["JOIN", "LEFT JOIN", "RIGHT JOIN", "FULL JOIN"])
        on = self.pick(
            [
                "t1.a = t2.a",
                "t1.a = t2.x",
                "t1.s = t2.s",
                "t1.a = t2.a AND t2.x > 0",
                "t1.id = t2.id",
            ]
        )
        source = self.pick(
            [
                "t2",
                "(SELECT * FROM t2 WHERE x IS NOT NULL) AS t2",
                "(SELECT id, a, x, s FROM t2 UNION ALL SELECT id + 100, x, a, s FROM t2) AS t2",
            ]
        )
        select, tail = self.pick(
            [
                "t1.id AS i1, t2.id AS i2|",
                "t2.x AS v, count(*) AS n| GROUP BY t2.x",
                "DISTINCT t2.s AS v|",
                "t1.id AS i1, t2.x + 1 AS v|",
            ]
        ).split("|")
        # Unqualified names in the generated predicate mean t1's columns.
        for name in ("id", "a", "b", "c", "s"):
            where = where.replace(f"({name} ", f"(t1.{name} ").replace(f" {name} ", f" t1.{name} ")
        sql = f"SELECT {select} FROM t1 {kind} {source} ON {on} WHERE {where}{tail}"
        if self.rnd.random() < 0.3:
            sql = f"WITH j AS ({sql}) SELECT * FROM j"
        return sql
