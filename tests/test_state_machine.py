"""Differential test: random INSERT / UPDATE / DELETE / FLUSH / reopen /
ALTER (ADD, DROP, RENAME COLUMN, INT -> TEXT) steps applied to the engine and to DuckDB, compared after every step.

The engine's table ``t`` (a USER table read by two users, or a SHARED one) is
modelled in DuckDB as one table with a ``scope`` column holding the user (or
``''`` for SHARED) and a primary key on ``(scope, id)``. Every step runs the
same SQL text on both sides (DuckDB's gets ``scope = ...`` added); the two must
agree on success vs error, on rows affected (an UPDATE counts the rows it
matched, including those it leaves identical, as DuckDB does) and, after
every step, on the columns and the sorted rows each user sees.
"""

from __future__ import annotations

from typing import Any

import duckdb
from helpers_differential import USERS, EngineBesideDuckDB, machine_settings
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import initialize, invariant, rule

from engine import KalamError

KEYS = st.integers(0, 15)
INTS = st.integers(-6, 6)
TEXTS = st.sampled_from(["", "a", "b", "ab", "ba", "c", "zz"])
NAMES = ("v", "w", "x", "y", "z")  # value columns come and go under these names
SQL_TYPES = {"INT": "INTEGER", "TEXT": "VARCHAR"}
MAX_VALUE_COLUMNS = 4


def lit(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    return str(value)


class Differential(EngineBesideDuckDB):
    dir_prefix = "kalam-diff-"

    def __init__(self) -> None:
        super().__init__()
        self.cols: dict[str, str] = {"v": "INT", "w": "TEXT"}  # value column -> type, in order
        self.both(
            f"CREATE {self.table_type} TABLE t (id INT PRIMARY KEY, v INT, w TEXT)",
            "CREATE TABLE t (scope VARCHAR, id INTEGER, v INTEGER, w VARCHAR, "
            "PRIMARY KEY (scope, id))",
        )

    # ---- helpers
    def scope(self, user: str) -> str:
        return user if self.table_type == "USER" else ""

    def both(
        self, engine_sql: str, duck_sql: str, user: str = "root", *, may_fail: bool = False
    ) -> tuple[Any, Any]:
        """Run on both sides; each side's result or its error. Only statements
        that ``may_fail`` (INSERTs with duplicate keys) may fail, and then on
        both sides."""
        self.log.append(f"[{user}] {engine_sql}")
        try:
            mine: Any = self.eng.execute(engine_sql, user=user)
        except KalamError as exc:
            mine = exc
        try:
            theirs: Any = self.duck.execute(duck_sql).fetchall()
        except duckdb.Error as exc:
            theirs = exc
        if isinstance(mine, Exception) != isinstance(theirs, Exception):
            raise AssertionError(
                f"divergence on {engine_sql!r} as {user}:\n  engine: {mine!r}\n  duckdb: {theirs!r}"
                f"\nrecent steps:\n  " + "\n  ".join(self.log[-12:])
            )
        if isinstance(mine, Exception) and not may_fail:
            raise AssertionError(f"{engine_sql!r} failed on both sides:\n  {mine!r}\n  {theirs!r}")
        return mine, theirs

    def column(self, data: st.DataObject, kind: str | None = None) -> tuple[str, str] | None:
        choices = [("id", "INT")] + list(self.cols.items())
        if kind is not None:
            choices = [c for c in choices if c[1] == kind]
        return data.draw(st.sampled_from(choices)) if choices else None

    def value(self, data: st.DataObject, kind: str, *, nullable: bool = True) -> Any:
        if nullable and data.draw(st.integers(0, 4)) == 0:  # NULL one time in five
            return None
        return data.draw(INTS if kind == "INT" else TEXTS)

    def predicate(self, data: st.DataObject, depth: int = 0) -> str:
        shapes = ["cmp", "between", "in", "null", "false", "contradiction"]
        if depth < 2:
            shapes += ["not", "and", "or", "and", "or"]
        shape = data.draw(st.sampled_from(shapes))
        if shape in ("not", "and", "or"):
            left = self.predicate(data, depth + 1)
            if shape == "not":
                return f"NOT ({left})"
            return f"({left}) {shape.upper()} ({self.predicate(data, depth + 1)})"
        if shape == "false":
            return data.draw(st.sampled_from(["1 = 0", "false", "1 = 1", "true"]))
        if shape == "contradiction":
            name, _ = self.column(data, "INT") or ("id", "INT")
            return f"{name} > 5 AND {name} < 3"
        name, kind = self.column(data)  # type: ignore[misc]
        if shape == "cmp":
            op = data.draw(st.sampled_from(["=", "<>", "<", "<=", ">", ">="]))
            return f"{name} {op} {lit(self.value(data, kind, nullable=False))}"
        if shape == "between":
            lo, hi = (self.value(data, kind, nullable=False) for _ in range(2))
            return f"{name} BETWEEN {lit(lo)} AND {lit(hi)}"
        if shape == "in":
            values = data.draw(
                st.lists(st.none() | (INTS if kind == "INT" else TEXTS), min_size=1, max_size=3)
            )
            neg = data.draw(st.sampled_from(["", "NOT "]))
            return f"{name} {neg}IN ({', '.join(lit(v) for v in values)})"
        return f"{name} IS {data.draw(st.sampled_from(['', 'NOT ']))}NULL"

    def where(self, data: st.DataObject) -> str | None:
        return self.predicate(data) if data.draw(st.integers(0, 5)) else None

    def new_value_expr(self, data: st.DataObject, name: str, kind: str) -> str:
        shape = data.draw(st.sampled_from(["lit", "null", "self", "case"]))
        if shape == "null":
            return "NULL"
        if shape == "self":
            if kind == "INT":
                return f"{name} + {data.draw(st.integers(-3, 3))}"
            return f"{name} || {lit(data.draw(TEXTS))}"
        if shape == "case":
            then = lit(self.value(data, kind))
            return f"CASE WHEN {self.predicate(data, 1)} THEN {then} ELSE {name} END"
        return lit(self.value(data, kind, nullable=False))

    # ---- rules
    @initialize(data=st.data())
    def seed(self, data: st.DataObject) -> None:
        """Start every example with rows for each writer, so that DML has targets."""
        for user in self.writers:
            self.insert_rows(
                data, user, data.draw(st.lists(KEYS, min_size=3, max_size=8, unique=True))
            )

    def insert_rows(self, data: st.DataObject, user: str, keys: list[int]) -> None:
        names = [n for n in self.cols if data.draw(st.integers(0, 3))]  # mostly all columns
        tuples = [[k, *(self.value(data, self.cols[n]) for n in names)] for k in keys]
        values = ", ".join("(" + ", ".join(lit(x) for x in t) + ")" for t in tuples)
        collist = ", ".join(["id", *names])
        scope = lit(self.scope(user))
        duck_values = ", ".join(
            "(" + ", ".join([scope, *(lit(x) for x in t)]) + ")" for t in tuples
        )
        mine, theirs = self.both(
            f"INSERT INTO t ({collist}) VALUES {values}",
            f"INSERT INTO t (scope, {collist}) VALUES {duck_values}",
            user,
            may_fail=True,
        )
        if not isinstance(mine, Exception):
            assert mine.rows_affected == theirs[0][0] == len(keys)

    @rule(data=st.data())
    def insert(self, data: st.DataObject) -> None:
        """Random keys, duplicates included: both sides accept or both reject."""
        user = data.draw(st.sampled_from(self.writers))
        self.insert_rows(data, user, data.draw(st.lists(KEYS, min_size=1, max_size=4)))

    @rule(data=st.data())
    def update(self, data: st.DataObject) -> None:
        if not self.cols:
            return
        user = data.draw(st.sampled_from(self.writers))
        targets = data.draw(
            st.lists(st.sampled_from(list(self.cols)), min_size=1, max_size=2, unique=True)
        )
        exprs = {n: self.new_value_expr(data, n, self.cols[n]) for n in targets}
        where = self.where(data)
        sets = ", ".join(f"{n} = {e}" for n, e in exprs.items())
        mine_where = f" WHERE {where}" if where else ""
        in_scope = f"scope = {lit(self.scope(user))}" + (f" AND ({where})" if where else "")
        mine, theirs = self.both(
            f"UPDATE t SET {sets}{mine_where}", f"UPDATE t SET {sets} WHERE {in_scope}", user
        )
        # Every row the WHERE matched in the user's scope, changed or not.
        matched = theirs[0][0]
        assert mine.rows_affected == matched, (self.log[-1], mine.message, matched)
        assert mine.message == f"Updated {matched} row(s)"

    @rule(data=st.data())
    def delete(self, data: st.DataObject) -> None:
        user = data.draw(st.sampled_from(self.writers))
        where = self.where(data)
        in_scope = f"scope = {lit(self.scope(user))}" + (f" AND ({where})" if where else "")
        mine, theirs = self.both(
            "DELETE FROM t" + (f" WHERE {where}" if where else ""),
            f"DELETE FROM t WHERE {in_scope}",
            user,
        )
        assert mine.rows_affected == theirs[0][0], (self.log[-1], mine.message, theirs)
        assert mine.message == f"Deleted {theirs[0][0]} row(s)"

    @rule(data=st.data())
    def change_by_key(self, data: st.DataObject) -> None:
        """UPDATE or DELETE rows named by primary key (often existing ones)."""
        user = data.draw(st.sampled_from(self.writers))
        keys = data.draw(st.lists(KEYS, min_size=1, max_size=3))
        where = f"id = {keys[0]}" if len(keys) == 1 else f"id IN ({', '.join(map(str, keys))})"
        in_scope = f"scope = {lit(self.scope(user))} AND {where}"
        if self.cols and data.draw(st.booleans()):
            name = data.draw(st.sampled_from(list(self.cols)))
            new = lit(self.value(data, self.cols[name]))
            sql = f"UPDATE t SET {name} = {new}"
            mine, theirs = self.both(f"{sql} WHERE {where}", f"{sql} WHERE {in_scope}", user)
            # The keys that exist in the user's scope, whether or not the value changes.
            assert mine.rows_affected == theirs[0][0], (self.log[-1], mine.message, theirs)
        else:
            mine, theirs = self.both(
                f"DELETE FROM t WHERE {where}", f"DELETE FROM t WHERE {in_scope}", user
            )
            assert mine.rows_affected == theirs[0][0], (self.log[-1], mine.message, theirs)

    @rule()
    def flush(self) -> None:
        self.log.append("FLUSH TABLE t")
        self.eng.flush("t")

    @rule()
    def reopen(self) -> None:
        self.log.append("close + reopen")
        self.eng.close()
        self.eng = self.open_engine()

    @rule(data=st.data())
    def alter(self, data: st.DataObject) -> None:
        """One rule for every ALTER form, so schema changes do not crowd out DML."""
        forms = []
        if len(self.cols) < MAX_VALUE_COLUMNS:
            forms.append(self.add_column)
        if self.cols:
            forms += [self.drop_column, self.rename_column]
        if "INT" in self.cols.values():
            forms.append(self.widen_to_text)
        data.draw(st.sampled_from(forms))(data)

    def add_column(self, data: st.DataObject) -> None:
        name = data.draw(st.sampled_from([n for n in NAMES if n not in self.cols]))
        kind = data.draw(st.sampled_from(["INT", "TEXT"]))
        default = data.draw(st.none() | (INTS if kind == "INT" else TEXTS))
        tail = f" DEFAULT {lit(default)}" if default is not None else ""
        self.both(
            f"ALTER TABLE t ADD COLUMN {name} {kind}{tail}",
            f"ALTER TABLE t ADD COLUMN {name} {SQL_TYPES[kind]}{tail}",
        )
        self.cols[name] = kind

    def drop_column(self, data: st.DataObject) -> None:
        name = data.draw(st.sampled_from(list(self.cols)))
        self.both(f"ALTER TABLE t DROP COLUMN {name}", f"ALTER TABLE t DROP COLUMN {name}")
        del self.cols[name]

    def rename_column(self, data: st.DataObject) -> None:
        old = data.draw(st.sampled_from(list(self.cols)))
        new = data.draw(st.sampled_from([n for n in NAMES if n not in self.cols]))
        sql = f"ALTER TABLE t RENAME COLUMN {old} TO {new}"
        self.both(sql, sql)
        self.cols = {(new if n == old else n): k for n, k in self.cols.items()}

    def widen_to_text(self, data: st.DataObject) -> None:
        name = data.draw(st.sampled_from([n for n, k in self.cols.items() if k == "INT"]))
        self.both(
            f"ALTER TABLE t ALTER COLUMN {name} TYPE TEXT",
            f"ALTER TABLE t ALTER COLUMN {name} TYPE VARCHAR",
        )
        self.cols[name] = "TEXT"

    # ---- the comparison
    @invariant()
    def same_contents(self) -> None:
        wanted = ["id", *self.cols]
        for user in USERS:
            result = self.eng.execute("SELECT * FROM t", user=user)
            mine = sorted(result.rows(), key=repr)
            theirs = sorted(
                self.duck.execute(
                    f"SELECT {', '.join(wanted)} FROM t WHERE scope = ?", [self.scope(user)]
                ).fetchall(),
                key=repr,
            )
            if result.columns != wanted or mine != theirs:
                only_mine = [r for r in mine if r not in theirs]
                only_theirs = [r for r in theirs if r not in mine]
                raise AssertionError(
                    f"contents diverge for {user} after {self.log[-1]!r}\n"
                    f"  engine columns {result.columns}, duckdb columns {wanted}\n"
                    f"  only in engine: {only_mine}\n  only in duckdb: {only_theirs}\n"
                    "recent steps:\n  " + "\n  ".join(self.log[-12:])
                )


class SharedDifferential(Differential):
    table_type = "SHARED"


SETTINGS = machine_settings(max_examples=200, stateful_step_count=20)

TestUserTableMatchesDuckDB = Differential.TestCase
TestUserTableMatchesDuckDB.settings = SETTINGS
TestSharedTableMatchesDuckDB = SharedDifferential.TestCase
TestSharedTableMatchesDuckDB.settings = settings(SETTINGS, max_examples=60)
