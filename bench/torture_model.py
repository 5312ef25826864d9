"""What the torture harness expects the data directory to hold, and the random
statements that change it.

A ``Model`` tracks a SHARED and a USER table: the current name, the columns in
table order (each with a key of our own that survives RENAME COLUMN, the way
the engine's column ids do), every live row per scope, and the primary keys
deleted since they were last written. ``Generator.next`` picks a random
statement that must succeed against that state and returns it with the exact
``ops`` it performs; the driver applies the ops only once the child
acknowledged the statement. ``compare`` checks what was read back from the data
directory against a model and lists every difference as a ``Problem``.

Nothing here imports the engine: the model is independent of the code it
checks.
"""

from __future__ import annotations

import copy
import random
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

NS = "torture"
USERS = ("alice", "bob")
ADMIN = "root"  # DDL, FLUSH and SHARED-table writes need a privileged role
BYSTANDER = "carol"  # never writes: must see no rows of the USER table
PK = "id"

INT_TYPES = ("SMALLINT", "INT", "BIGINT")
# Type changes that can never fail, per current type.
WIDENINGS = {"SMALLINT": ("INT", "BIGINT", "TEXT"), "INT": ("BIGINT", "TEXT"), "BIGINT": ("TEXT",)}
# Values stay this far inside each type's range, so `c = c + k` never overflows.
LIMIT = {"SMALLINT": 32_000, "INT": 2_100_000_000, "BIGINT": 9_200_000_000_000_000_000}
TEXT_CHARS = "abcxyz XYZ019_'\"%,;\\é漢🙂\n"

Op = tuple[Any, ...]
Row = dict[int, Any]  # column key -> value (the pk is not stored in here)


@dataclass
class Col:
    key: int
    name: str
    type: str
    default: Any = None  # what an INSERT that omits the column stores
    omittable: bool = True  # False when the default is unknown (after a resync)


@dataclass
class Table:
    ident: str  # "shared" / "user": stays the same across RENAME TO
    kind: str  # SHARED / USER
    name: str
    cols: list[Col]  # the primary key is not listed; it is always `id BIGINT`
    rows: dict[str, dict[int, Row]] = field(default_factory=dict)
    deleted: dict[str, set[int]] = field(default_factory=dict)

    @property
    def qualified(self) -> str:
        return f"{NS}.{self.name}"

    def scopes(self) -> tuple[str, ...]:
        """Scopes the generator writes to (the user each one is written as)."""
        return (ADMIN,) if self.kind == "SHARED" else USERS

    def read_scopes(self) -> tuple[str, ...]:
        """Scopes the checker reads: for USER tables also a user who never wrote."""
        return (ADMIN,) if self.kind == "SHARED" else (*USERS, BYSTANDER)

    def live(self, scope: str) -> dict[int, Row]:
        return self.rows.setdefault(scope, {})

    def gone(self, scope: str) -> set[int]:
        return self.deleted.setdefault(scope, set())

    def col(self, key: int) -> Col:
        return next(c for c in self.cols if c.key == key)

    def schema(self) -> list[tuple[str, str]]:
        return [(PK, "BIGINT")] + [(c.name, c.type) for c in self.cols]

    def expected(self, scope: str) -> dict[int, dict[str, Any]]:
        """Live rows of ``scope`` as ``SELECT *`` returns them, by primary key."""
        return {
            pk: {PK: pk, **{c.name: row.get(c.key) for c in self.cols}}
            for pk, row in self.rows.get(scope, {}).items()
        }


@dataclass
class Model:
    tables: dict[str, Table]
    next_key: int = 1
    next_name: int = 1
    dropped: dict[str, list[str]] = field(default_factory=dict)  # names free to reuse
    ignored_tables: set[str] = field(default_factory=set)  # extras already reported
    ignored_dirs: set[str] = field(default_factory=set)  # stray directories already reported

    def copy(self) -> Model:
        return copy.deepcopy(self)

    def key(self) -> int:
        self.next_key += 1
        return self.next_key - 1

    def fresh_name(self, prefix: str) -> str:
        self.next_name += 1
        return f"{prefix}{self.next_name - 1}"

    def apply(self, ops: list[Op]) -> None:
        for op in ops:
            apply_op(self, op)


def initial_model() -> Model:
    """The two tables ``create_statements`` creates, empty."""
    model = Model(tables={})
    for ident, kind, name in (("shared", "SHARED", "s0"), ("user", "USER", "u0")):
        cols = [
            Col(model.key(), "a", "INT"),
            Col(model.key(), "b", "TEXT"),
            Col(model.key(), "c", "SMALLINT", default=7),
        ]
        model.tables[ident] = Table(ident, kind, name, cols)
    return model


def create_statements(model: Model, rng: random.Random) -> list[str]:
    out = [f"CREATE NAMESPACE {NS}"]
    for t in model.tables.values():
        cols = ", ".join(
            f"{c.name} {c.type}"
            + (f" DEFAULT {literal(c.default)}" if c.default is not None else "")
            for c in t.cols
        )
        policy = f"rows:{rng.randint(10, 80)}" + (",interval:2" if rng.random() < 0.5 else "")
        out.append(
            f"CREATE {t.kind} TABLE {t.qualified} ({PK} BIGINT PRIMARY KEY, {cols}) "
            f"WITH (FLUSH_POLICY = '{policy}')"
        )
    return out


def literal(value: Any) -> str:
    return f"'{value}'" if isinstance(value, str) else str(value)


def apply_op(model: Model, op: Op) -> None:
    kind, ident = op[0], op[1]
    t = model.tables[ident]
    if kind == "put":
        _, _, scope, pk, row = op
        t.live(scope)[pk] = dict(row)
        t.gone(scope).discard(pk)
    elif kind == "del":
        _, _, scope, pk = op
        t.live(scope).pop(pk)
        t.gone(scope).add(pk)
    elif kind == "add":
        _, _, col = op
        t.cols.append(copy.copy(col))
        for rows in t.rows.values():
            for row in rows.values():
                row[col.key] = col.default  # older rows read the default (or NULL)
        if col.name in model.dropped.get(ident, []):
            model.dropped[ident].remove(col.name)
    elif kind == "drop":
        _, _, key = op
        col = t.col(key)
        t.cols.remove(col)
        for rows in t.rows.values():
            for row in rows.values():
                row.pop(key, None)
        model.dropped.setdefault(ident, []).append(col.name)
    elif kind == "rename_col":
        _, _, key, name = op
        col = t.col(key)
        model.dropped.setdefault(ident, []).append(col.name)
        if name in model.dropped[ident]:
            model.dropped[ident].remove(name)
        col.name = name
    elif kind == "retype":
        _, _, key, new_type = op
        col = t.col(key)
        col.type = new_type
        if new_type == "TEXT":
            for rows in t.rows.values():
                for row in rows.values():
                    if row.get(key) is not None:
                        row[key] = str(row[key])
            if col.default is not None:
                col.default = str(col.default)
    elif kind == "rename":
        t.name = op[2]
    else:
        raise ValueError(f"unknown op {op!r}")


# ---------------------------------------------------------------- statements


@dataclass
class Stmt:
    kind: str
    sql: str
    params: list[Any]
    user: str
    ops: list[Op]
    affected: tuple[int, int] | None  # acceptable rows_affected (inclusive), if checked
    what: str  # the writes, as the ack line shows them

    def to_json(self, n: int) -> dict[str, Any]:
        return {
            "n": n,
            "sql": self.sql,
            "params": self.params,
            "user": self.user,
            "what": self.what,
        }


WEIGHTS = {
    "insert": 30,
    "update_pk": 14,
    "update_range": 5,
    "update_where": 3,
    "delete_pk": 8,
    "delete_range": 3,
    "delete_where": 2,
    "add_col": 3,
    "drop_col": 2,
    "rename_col": 2,
    "modify": 3,
    "flush": 3,
    "flush_wait": 2,
    "rename_table": 1,
}
MAX_COLS = 7
BIG_SCOPE = 400  # live rows per scope above which deletes get likelier


class Generator:
    """Random statements that must succeed against ``model`` as it is now."""

    def __init__(self, rng: random.Random, model: Model) -> None:
        self.rng = rng
        self.model = model

    def next(self) -> Stmt:
        rng = self.rng
        t = rng.choice(sorted(self.model.tables.values(), key=lambda x: x.ident))
        scope = rng.choice(t.scopes())
        weights = dict(WEIGHTS)
        if len(t.live(scope)) > BIG_SCOPE:
            weights["delete_range"] = 20
        for _ in range(20):
            kind = rng.choices(list(weights), weights=list(weights.values()))[0]
            stmt = getattr(self, f"_{kind}")(t, scope)
            if stmt is not None:
                return stmt
        return self._insert(t, scope)

    # -- values
    def value(self, ctype: str) -> Any:
        rng = self.rng
        if ctype == "TEXT":
            return "".join(rng.choice(TEXT_CHARS) for _ in range(rng.randint(0, 10)))
        small = rng.random() < 0.5
        bound = 1000 if small else LIMIT[ctype] - 1000
        return rng.randint(-bound, bound)

    def maybe_null(self, ctype: str) -> Any:
        return None if self.rng.random() < 0.1 else self.value(ctype)

    def fresh_pks(self, t: Table, scope: str, n: int) -> list[int]:
        rng, live, gone = self.rng, t.live(scope), t.gone(scope)
        out: list[int] = []
        space = max(64, 2 * len(live) + 16)
        while len(out) < n:
            # Now and then write a deleted key again.
            reuse = gone and rng.random() < 0.15
            pk = rng.choice(sorted(gone)) if reuse else rng.randrange(space)
            if pk not in live and pk not in out:
                out.append(pk)
        return out

    def describe(self, t: Table, ops: list[Op]) -> str:
        parts = []
        for op in ops:
            if op[0] == "put":
                row = {t.col(k).name: v for k, v in op[4].items()}
                parts.append(f"{op[2]}:{op[3]}={row}")
            elif op[0] == "del":
                parts.append(f"{op[2]}:{op[3]}=deleted")
        return f"{t.qualified} " + ("; ".join(parts) if parts else "no rows")

    def dml(
        self,
        kind: str,
        t: Table,
        sql: str,
        params: list[Any],
        scope: str,
        ops: list[Op],
        lo: int,
        hi: int,
    ) -> Stmt:
        return Stmt(kind, sql, params, scope, ops, (lo, hi), self.describe(t, ops))

    # -- DML
    def _insert(self, t: Table, scope: str) -> Stmt:
        rng = self.rng
        n = rng.choice((1, 1, 1, 2, 3, 5))
        pks = self.fresh_pks(t, scope, n)
        given = [c for c in t.cols if not c.omittable or rng.random() < 0.85]
        ops: list[Op] = []
        params: list[Any] = []
        for pk in pks:
            row = {c.key: c.default for c in t.cols}
            params.append(pk)
            for c in given:
                row[c.key] = self.maybe_null(c.type)
                params.append(row[c.key])
            ops.append(("put", t.ident, scope, pk, row))
        names = ", ".join([PK] + [c.name for c in given])
        marks = "(" + ", ".join("?" * (len(given) + 1)) + ")"
        sql = f"INSERT INTO {t.qualified} ({names}) VALUES " + ", ".join([marks] * n)
        return self.dml("insert", t, sql, params, scope, ops, n, n)

    def _update_pk(self, t: Table, scope: str) -> Stmt | None:
        live = t.live(scope)
        if not live:
            return None
        rng = self.rng
        pk = rng.choice(sorted(live))
        cols = rng.sample(t.cols, rng.randint(1, min(3, len(t.cols))))
        row = dict(live[pk])
        for c in cols:
            row[c.key] = self.maybe_null(c.type)
        sets = ", ".join(f"{c.name} = ?" for c in cols)
        sql = f"UPDATE {t.qualified} SET {sets} WHERE {PK} = ?"
        params = [row[c.key] for c in cols] + [pk]
        changed = int(row != live[pk])
        ops: list[Op] = [("put", t.ident, scope, pk, row)] if changed else []
        return self.dml("update_pk", t, sql, params, scope, ops, 1, 1)  # matched, changed or not

    def pk_range(self, t: Table, scope: str) -> tuple[int, int]:
        live = sorted(t.live(scope))
        width = self.rng.randint(1, 40 if len(live) > BIG_SCOPE else 12)
        lo = self.rng.choice(live) if live and self.rng.random() < 0.8 else self.rng.randrange(200)
        return lo, lo + width

    def _update_range(self, t: Table, scope: str) -> Stmt | None:
        ints = [c for c in t.cols if c.type in INT_TYPES]
        if not ints or not t.live(scope):
            return None
        c = self.rng.choice(ints)
        k = self.rng.randint(-50, 50) or 1
        lo, hi = self.pk_range(t, scope)
        matched = {pk: r for pk, r in t.live(scope).items() if lo <= pk < hi}
        ops: list[Op] = []
        for pk, r in sorted(matched.items()):
            if r.get(c.key) is not None:
                new = r[c.key] + k
                if abs(new) > LIMIT[c.type]:
                    return None
                ops.append(("put", t.ident, scope, pk, {**r, c.key: new}))
        sql = f"UPDATE {t.qualified} SET {c.name} = {c.name} + ? WHERE {PK} >= ? AND {PK} < ?"
        n = len(matched)  # an UPDATE counts the rows it matched, changed or not
        return self.dml("update_range", t, sql, [k, lo, hi], scope, ops, n, n)

    def threshold(self, t: Table, scope: str) -> tuple[Col, str, int, list[int]] | None:
        """A predicate ``col < x`` / ``col > x`` on an integer column matching a few rows."""
        ints = [c for c in t.cols if c.type in INT_TYPES]
        if not ints:
            return None
        c = self.rng.choice(ints)
        values = sorted(
            (r[c.key], pk) for pk, r in t.live(scope).items() if r.get(c.key) is not None
        )
        if not values:
            return None
        j = self.rng.randrange(min(4, len(values)))
        if self.rng.random() < 0.5:
            x = values[j][0] + 1
            return c, "<", x, [pk for v, pk in values if v < x]
        x = values[-1 - j][0] - 1
        return c, ">", x, [pk for v, pk in values if v > x]

    def _update_where(self, t: Table, scope: str) -> Stmt | None:
        found = self.threshold(t, scope)
        if found is None:
            return None
        c, op, x, pks = found
        target = self.rng.choice(t.cols)
        value = self.maybe_null(target.type)
        ops: list[Op] = []
        for pk in sorted(pks):
            old = t.live(scope)[pk]
            if old.get(target.key) != value:
                ops.append(("put", t.ident, scope, pk, {**old, target.key: value}))
        sql = f"UPDATE {t.qualified} SET {target.name} = ? WHERE {c.name} {op} ?"
        return self.dml("update_where", t, sql, [value, x], scope, ops, len(pks), len(pks))

    def _delete_pk(self, t: Table, scope: str) -> Stmt | None:
        live = t.live(scope)
        sql = f"DELETE FROM {t.qualified} WHERE {PK} = ?"
        if not live or self.rng.random() < 0.1:  # a key that is not there
            pk = self.fresh_pks(t, scope, 1)[0]
            return self.dml("delete_pk", t, sql, [pk], scope, [], 0, 0)
        pk = self.rng.choice(sorted(live))
        return self.dml("delete_pk", t, sql, [pk], scope, [("del", t.ident, scope, pk)], 1, 1)

    def _delete_range(self, t: Table, scope: str) -> Stmt | None:
        lo, hi = self.pk_range(t, scope)
        pks = sorted(pk for pk in t.live(scope) if lo <= pk < hi)
        ops: list[Op] = [("del", t.ident, scope, pk) for pk in pks]
        sql = f"DELETE FROM {t.qualified} WHERE {PK} >= ? AND {PK} < ?"
        return self.dml("delete_range", t, sql, [lo, hi], scope, ops, len(ops), len(ops))

    def _delete_where(self, t: Table, scope: str) -> Stmt | None:
        found = self.threshold(t, scope)
        if found is None:
            return None
        c, op, x, pks = found
        ops: list[Op] = [("del", t.ident, scope, pk) for pk in sorted(pks)]
        sql = f"DELETE FROM {t.qualified} WHERE {c.name} {op} ?"
        return self.dml("delete_where", t, sql, [x], scope, ops, len(ops), len(ops))

    # -- DDL and flushes (run as the admin user)
    def ddl(self, kind: str, t: Table, sql: str, ops: list[Op], what: str) -> Stmt:
        return Stmt(kind, sql, [], ADMIN, ops, None, f"{t.qualified} {what}")

    def new_col_name(self, t: Table, prefix: str) -> str:
        free = [n for n in self.model.dropped.get(t.ident, []) if n not in {c.name for c in t.cols}]
        if free and self.rng.random() < 0.4:
            return self.rng.choice(free)  # a dropped / renamed-away name comes back
        return self.model.fresh_name(prefix)

    def _add_col(self, t: Table, scope: str) -> Stmt | None:
        if len(t.cols) >= MAX_COLS:
            return None
        ctype = self.rng.choice((*INT_TYPES, "TEXT"))
        default = None
        if self.rng.random() < 0.4:
            default = (
                f"d{self.rng.randrange(1000)}" if ctype == "TEXT" else self.rng.randint(-99, 99)
            )
        col = Col(self.model.key(), self.new_col_name(t, "c"), ctype, default)
        clause = f" DEFAULT {literal(default)}" if default is not None else ""
        sql = f"ALTER TABLE {t.qualified} ADD COLUMN {col.name} {ctype}{clause}"
        what = f"add column {col.name} {ctype}{clause}"
        return self.ddl("add_col", t, sql, [("add", t.ident, col)], what)

    def _drop_col(self, t: Table, scope: str) -> Stmt | None:
        if len(t.cols) < 2:
            return None
        c = self.rng.choice(t.cols)
        sql = f"ALTER TABLE {t.qualified} DROP COLUMN {c.name}"
        return self.ddl("drop_col", t, sql, [("drop", t.ident, c.key)], f"drop column {c.name}")

    def _rename_col(self, t: Table, scope: str) -> Stmt | None:
        c = self.rng.choice(t.cols)
        name = self.new_col_name(t, "r")
        sql = f"ALTER TABLE {t.qualified} RENAME COLUMN {c.name} TO {name}"
        ops: list[Op] = [("rename_col", t.ident, c.key, name)]
        return self.ddl("rename_col", t, sql, ops, f"rename column {c.name} to {name}")

    def _modify(self, t: Table, scope: str) -> Stmt | None:
        widenable = [c for c in t.cols if c.type in WIDENINGS]
        if not widenable:
            return None
        c = self.rng.choice(widenable)
        new_type = self.rng.choice(WIDENINGS[c.type])
        sql = f"ALTER TABLE {t.qualified} MODIFY COLUMN {c.name} {new_type}"
        ops: list[Op] = [("retype", t.ident, c.key, new_type)]
        return self.ddl("modify", t, sql, ops, f"modify column {c.name} {c.type} -> {new_type}")

    def _flush(self, t: Table, scope: str) -> Stmt:
        return self.ddl("flush", t, f"FLUSH TABLE {t.qualified}", [], "flush (job)")

    def _flush_wait(self, t: Table, scope: str) -> Stmt:
        return self.ddl("flush_wait", t, f"FLUSH TABLE {t.qualified} WAIT", [], "flush (wait)")

    def _rename_table(self, t: Table, scope: str) -> Stmt:
        name = self.model.fresh_name(t.name.rstrip("0123456789") or "t")
        sql = f"ALTER TABLE {t.qualified} RENAME TO {name}"
        return self.ddl("rename_table", t, sql, [("rename", t.ident, name)], f"rename to {name}")


# ---------------------------------------------------------------- checking


@dataclass
class ActualTable:
    """One table as read back from a reopened data directory."""

    name: str
    kind: str
    schema: list[tuple[str, str]]
    rows: dict[str, list[dict[str, Any]]]  # scope -> SELECT * rows (duplicates kept)
    counts: dict[str, int]  # scope -> SELECT COUNT(*)
    points: dict[tuple[str, int], list[dict[str, Any]]] = field(default_factory=dict)


@dataclass
class Actual:
    tables: dict[str, ActualTable]
    stray_dirs: dict[str, str] = field(default_factory=dict)  # directory name -> what is in it


@dataclass(frozen=True)
class Problem:
    category: str  # lost / duplicated / wrong_value / resurrected / unexpected / ...
    detail: str


def compare(model: Model, actual: Actual) -> tuple[list[Problem], int]:
    """Every difference between ``model`` and ``actual``, and how many row
    facts were checked (each expected live row and each deleted key)."""
    problems: list[Problem] = []
    checked = 0
    names = {t.name for t in model.tables.values()}
    for name in sorted(set(actual.tables) - names - model.ignored_tables):
        problems.append(Problem("extra_table", f"{NS}.{name} exists but was never created"))
    for t in model.tables.values():
        got = actual.tables.get(t.name)
        if got is None:
            # Every row it should hold is lost too: that keeps ``judge`` from
            # preferring a candidate just because its table cannot be compared.
            problems.append(Problem("missing_table", f"{t.qualified} is gone"))
            for scope in t.read_scopes():
                checked += len(t.rows.get(scope, {}))
                problems += [
                    Problem("lost", f"{t.qualified}[{scope}] id={pk}: table gone")
                    for pk in sorted(t.rows.get(scope, {}))
                ]
            continue
        if got.schema != t.schema():
            problems.append(
                Problem("schema", f"{t.qualified}: expected {t.schema()}, found {got.schema}")
            )
        for scope in t.read_scopes():
            want = t.expected(scope)
            gone = t.deleted.get(scope, set())
            checked += len(want) + len(gone)
            problems += _compare_scope(t, scope, want, gone, got)
    problems += [
        Problem("stray_dir", f"storage/{NS}/{name}: {what}")
        for name, what in sorted(actual.stray_dirs.items())
        if name not in model.ignored_dirs
    ]
    return problems, checked


def _compare_scope(
    t: Table, scope: str, want: dict[int, dict[str, Any]], gone: set[int], got: ActualTable
) -> list[Problem]:
    where = f"{t.qualified}[{scope}]"
    out: list[Problem] = []
    rows = got.rows.get(scope, [])
    by_pk: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by_pk[r.get(PK)].append(r)
    for pk, expected in sorted(want.items()):
        have = by_pk.get(pk, [])
        if not have:
            out.append(Problem("lost", f"{where} id={pk}: expected {expected}, missing"))
            continue
        if len(have) > 1:
            out.append(Problem("duplicated", f"{where} id={pk}: {len(have)} copies {have}"))
        wrong = [h for h in have if h != expected]
        if wrong:
            out.append(
                Problem("wrong_value", f"{where} id={pk}: expected {expected}, found {wrong[0]}")
            )
    for pk, have in sorted(by_pk.items(), key=lambda kv: repr(kv[0])):
        if pk not in want:
            category = "resurrected" if pk in gone else "unexpected"
            out.append(Problem(category, f"{where} id={pk}: found {have}"))
    if got.counts.get(scope, len(rows)) != len(rows):
        out.append(
            Problem("count", f"{where}: COUNT(*) = {got.counts[scope]}, SELECT * gave {len(rows)}")
        )
    for (pscope, pk), have in sorted(got.points.items()):
        if pscope != scope:
            continue
        expect = [want[pk]] if pk in want else []
        if have != expect:
            out.append(
                Problem("point_lookup", f"{where} WHERE id = {pk}: expected {expect}, got {have}")
            )
    return out


def resync(model: Model, actual: Actual) -> Model:
    """A model of what ``actual`` holds, for the cycles after a failed check.

    Keeps column keys and defaults where name and type still match; a column
    the model does not know gets ``omittable=False`` (its default is unknown).
    Keys that vanished count as deleted, so a later reappearance is reported.
    Raises ``LookupError`` when a table is gone (nothing left to continue on).
    """
    new = model.copy()
    new.ignored_tables |= set(actual.tables) - {t.name for t in model.tables.values()}
    new.ignored_dirs |= set(actual.stray_dirs)
    for t in new.tables.values():
        got = actual.tables.get(t.name)
        if got is None:
            raise LookupError(f"{t.qualified} is gone")
        known = {(c.name, c.type): c for c in t.cols}
        cols = []
        for name, ctype in got.schema[1:]:
            c = known.get((name, ctype))
            cols.append(copy.copy(c) if c else Col(new.key(), name, ctype, None, omittable=False))
        t.cols = cols
        for scope in t.read_scopes():
            before = set(t.live(scope))
            rows: dict[int, Row] = {}
            for r in got.rows.get(scope, []):
                rows.setdefault(r[PK], {c.key: r.get(c.name) for c in cols})
            t.rows[scope] = rows
            t.deleted[scope] = (t.gone(scope) | before) - set(rows)
    return new


def judge(candidates: list[Model], actual: Actual) -> tuple[int, list[Problem], int]:
    """Which candidate state ``actual`` is (the model without, then with, the
    statement in flight): the index of the best match, its problems, and the
    number of row facts checked. Both outcomes of the in-flight statement pass;
    anything else is reported against the closer one."""
    outcomes = [compare(c, actual) for c in candidates]
    best = min(range(len(candidates)), key=lambda i: len(outcomes[i][0]))
    return best, *outcomes[best]
