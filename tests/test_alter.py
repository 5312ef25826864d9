"""ALTER TABLE: ADD / DROP / RENAME / MODIFY columns, defaults and NOT NULL,
table options, RENAME TO, schema versions and stable column ids.

Each form runs on data that is hot only, cold only and both (``alt``
fixture, USER and SHARED tables, plus STREAM with hot data), and
``alt.verify()`` checks schema and rows now, after a restart and after a
flush and another restart.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from conftest import Engines, FakeClock, create_table_sql

from engine import Engine, KalamError
from engine.errors import (
    ColumnNotFoundError,
    InvalidOptionError,
    NotNullViolationError,
    SchemaError,
    TableExistsError,
    TableNotFoundError,
    TypeMismatchError,
)

USERS = ("root", "bob")
PLACEMENTS = ("hot", "cold", "both")
TYPE_PLACEMENTS = [(t, p) for t in ("USER", "SHARED") for p in PLACEMENTS] + [("STREAM", "hot")]
BASE = "id INT PRIMARY KEY, v INT, s TEXT"


class AlterDb:
    """An engine with a table ``t``, its expected columns and rows per scope."""

    def __init__(self, engines: Engines, table_type: str, placement: str) -> None:
        self.engines = engines
        self.table_type = table_type
        self.placement = placement
        self.eng = engines.open(background_jobs=False)
        self.columns: list[str] = []
        self.rows: dict[str, dict[int, dict[str, Any]]] = {s: {} for s in self.scopes}

    @property
    def scopes(self) -> tuple[str, ...]:
        return USERS if self.table_type == "USER" else ("",)

    def scope(self, user: str) -> str:
        return user if self.table_type == "USER" else ""

    @property
    def writers(self) -> tuple[str, ...]:
        return USERS if self.table_type == "USER" else ("root",)

    @property
    def flushable(self) -> bool:
        return self.table_type != "STREAM"

    def execute(self, sql: str, params: Any = None, *, user: str = "root") -> Any:
        return self.eng.execute(sql, params, user=user)

    def setup(self, columns: str, rows_by_user: dict[str, list[dict[str, Any]]]) -> None:
        """Create ``t`` and lay the rows out per placement: all hot, all in
        segments, or the first half in segments and the rest hot."""
        self.eng.execute(create_table_sql(self.table_type, "t", columns))
        self.columns = [c.strip().split()[0] for c in columns.split(",")]
        halves: dict[str, tuple[list[dict[str, Any]], list[dict[str, Any]]]] = {}
        for user in self.writers:
            rows = rows_by_user.get(user, [])
            cut = {"hot": 0, "cold": len(rows), "both": len(rows) // 2}[self.placement]
            halves[user] = (rows[:cut], rows[cut:])
        for part in (0, 1):
            for user in self.writers:
                self.insert(halves[user][part], user=user)
            if part == 0 and self.placement != "hot":
                self.eng.flush("t")
        self.check("after setup")

    def setup_base(self) -> None:
        """``t (id INT PRIMARY KEY, v INT, s TEXT)``: ids 1..6 for every user."""
        self.setup(BASE, {u: [self.base_row(u, i) for i in range(1, 7)] for u in USERS})

    @staticmethod
    def base_row(user: str, i: int) -> dict[str, Any]:
        if user == "bob":
            return {"id": i, "v": -i, "s": f"b{i}"}
        return {"id": i, "v": i * 10, "s": f"r{i}"}

    def insert(self, rows: list[dict[str, Any]], *, user: str = "root") -> None:
        if not rows:
            return
        names = list(rows[0])
        marks = ", ".join("(" + ", ".join("?" for _ in names) + ")" for _ in rows)
        flat = [r[n] for r in rows for n in names]
        self.execute(f"INSERT INTO t ({', '.join(names)}) VALUES {marks}", flat, user=user)
        for r in rows:
            full = {c: r.get(c) for c in self.columns}
            self.rows[self.scope(user)][r["id"]] = full

    # ---- model edits
    def model_add(self, name: str, fill: Any = None) -> None:
        self.columns.append(name)
        for scope in self.rows.values():
            for r in scope.values():
                r[name] = fill

    def model_drop(self, name: str) -> None:
        self.columns.remove(name)
        for scope in self.rows.values():
            for r in scope.values():
                del r[name]

    def model_rename(self, old: str, new: str) -> None:
        self.columns[self.columns.index(old)] = new
        for scope in self.rows.values():
            for r in scope.values():
                r[new] = r.pop(old)

    def model_map(self, name: str, fn: Any) -> None:
        for scope in self.rows.values():
            for r in scope.values():
                r[name] = fn(r[name])

    # ---- checks
    def check(self, when: str = "") -> None:
        for user in USERS:
            result = self.execute("SELECT * FROM t", user=user)
            assert result.columns == self.columns, f"columns {when}"
            actual = sorted(result.rows(), key=repr)
            expected = sorted(
                (tuple(r[c] for c in self.columns) for r in self.rows[self.scope(user)].values()),
                key=repr,
            )
            assert actual == expected, f"rows of {user} {when}"
        described = [r[0] for r in self.execute("DESCRIBE TABLE t").rows()]
        assert described == self.columns, f"DESCRIBE {when}"

    def restart(self) -> None:
        self.eng = self.engines.reopen(self.eng, background_jobs=False)

    def verify(self) -> None:
        """Schema and rows hold now, after a restart, and after a flush + restart."""
        self.check("right after the change")
        self.restart()
        self.check("after a restart")
        if self.flushable:
            self.eng.flush("t")
            self.check("after a flush")
            self.restart()
            self.check("after a flush and a restart")

    def schema_version(self, name: str = "t") -> int:
        return self.execute(
            "SELECT schema_version FROM system.tables WHERE table_name = ?", [name]
        ).scalar()

    def column_ids(self) -> dict[str, int]:
        return {r[0]: r[5] for r in self.execute("DESCRIBE TABLE t").rows()}

    def result_type(self, column: str) -> pa.DataType:
        return self.execute(f"SELECT {column} FROM t").table.schema.field(column).type


@pytest.fixture(params=TYPE_PLACEMENTS, ids=[f"{t}-{p}" for t, p in TYPE_PLACEMENTS])
def alt(request: pytest.FixtureRequest, engines: Engines) -> AlterDb:
    table_type, placement = request.param
    return AlterDb(engines, table_type, placement)


@pytest.fixture
def base(alt: AlterDb) -> AlterDb:
    alt.setup_base()
    return alt


def alter(db: AlterDb, sql: str, *, table: str = "t", renamed_to: str | None = None) -> None:
    """Run an ALTER and check it bumped the schema version by one."""
    before = db.schema_version(table)
    result = db.execute(sql)
    assert not result.is_query
    assert db.schema_version(renamed_to or table) == before + 1, sql


# ---------------------------------------------------------------- ADD COLUMN


def test_add_column_existing_rows_read_null(base):
    alter(base, "ALTER TABLE t ADD COLUMN n INT")
    base.model_add("n")
    base.insert([{"id": 7, "v": 70, "s": "r7", "n": 5}])
    base.verify()


def test_add_without_the_column_keyword(base):
    alter(base, "ALTER TABLE t ADD n BIGINT")
    base.model_add("n")
    base.verify()
    assert base.result_type("n") == pa.int64()


def test_add_column_with_default_existing_rows_read_the_default(base):
    alter(base, "ALTER TABLE t ADD COLUMN d TEXT DEFAULT 'dflt'")
    base.model_add("d", "dflt")
    base.check()
    base.execute("INSERT INTO t (id, v, s) VALUES (8, 80, 'r8')")
    base.rows[base.scope("root")][8] = {"id": 8, "v": 80, "s": "r8", "d": "dflt"}
    base.verify()


def test_add_not_null_column_with_default(base):
    alter(base, "ALTER TABLE t ADD COLUMN k INT NOT NULL DEFAULT 0")
    base.model_add("k", 0)
    with pytest.raises(NotNullViolationError):
        base.execute("INSERT INTO t VALUES (9, 1, 'x', NULL)")
    with pytest.raises(NotNullViolationError):
        base.execute("UPDATE t SET k = NULL WHERE id = 1")
    base.verify()


def test_add_not_null_without_default_on_a_non_empty_table_is_an_error(base, expect_error):
    version = base.schema_version()
    expect_error(
        base.eng,
        "ALTER TABLE t ADD COLUMN k INT NOT NULL",
        NotNullViolationError,
        "NOT_NULL_VIOLATION",
        "k",
        users=USERS,
    )
    assert base.schema_version() == version
    base.verify()


def test_add_not_null_without_default_counts_other_users_rows(engines):
    db = AlterDb(engines, "USER", "cold")
    db.setup(BASE, {"bob": [{"id": 1, "v": 1, "s": "b"}]})
    with pytest.raises(NotNullViolationError):
        db.execute("ALTER TABLE t ADD COLUMN k INT NOT NULL")  # root has no rows, bob has
    db.verify()


def test_add_not_null_without_default_on_an_empty_table(engines):
    db = AlterDb(engines, "SHARED", "hot")
    db.setup(BASE, {})
    alter(db, "ALTER TABLE t ADD COLUMN k INT NOT NULL")
    db.model_add("k")
    with pytest.raises(NotNullViolationError):
        db.execute("INSERT INTO t (id) VALUES (1)")
    db.insert([{"id": 1, "v": None, "s": None, "k": 3}])
    db.verify()


def test_adding_an_existing_column_is_an_error(base, expect_error):
    expect_error(
        base.eng, "ALTER TABLE t ADD COLUMN v TEXT", SchemaError, "SCHEMA_ERROR", "v", users=USERS
    )


# ---------------------------------------------------------------- DROP COLUMN


@pytest.mark.parametrize("sql", ["ALTER TABLE t DROP COLUMN s", "ALTER TABLE t DROP s"])
def test_dropped_column_is_gone_everywhere(base, sql):
    alter(base, sql)
    base.model_drop("s")
    base.verify()
    for bad in (
        "SELECT s FROM t",
        "SELECT id FROM t WHERE s = 'r1'",
        "INSERT INTO t (id, s) VALUES (50, 'x')",
        "UPDATE t SET s = 'x'",
        "DELETE FROM t WHERE s = 'r1'",
    ):
        with pytest.raises(ColumnNotFoundError):
            base.execute(bad)
    base.check("after statements naming the dropped column failed")


@pytest.mark.parametrize("column", ["id", "_seq", "_deleted"])
def test_primary_key_and_system_columns_cannot_be_dropped(base, expect_error, column):
    version = base.schema_version()
    expect_error(
        base.eng,
        f"ALTER TABLE t DROP COLUMN {column}",
        SchemaError,
        "SCHEMA_ERROR",
        column,
        users=USERS,
    )
    assert base.schema_version() == version


def test_dropping_an_unknown_column_is_an_error(base, expect_error):
    expect_error(
        base.eng,
        "ALTER TABLE t DROP COLUMN nope",
        ColumnNotFoundError,
        "COLUMN_NOT_FOUND",
        "nope",
        users=USERS,
    )


def test_dropping_and_re_adding_a_name_never_brings_old_values_back(base):
    old_id = base.column_ids()["s"]
    alter(base, "ALTER TABLE t DROP COLUMN s")
    base.model_drop("s")
    alter(base, "ALTER TABLE t ADD COLUMN s TEXT")
    base.model_add("s")
    assert base.column_ids()["s"] > old_id
    base.verify()
    base.insert([{"id": 20, "v": 1, "s": "new"}])
    base.verify()


# ---------------------------------------------------------------- RENAME COLUMN


def test_renamed_column_keeps_its_values(base):
    col_id = base.column_ids()["v"]
    alter(base, "ALTER TABLE t RENAME COLUMN v TO w")
    base.model_rename("v", "w")
    assert base.column_ids()["w"] == col_id
    with pytest.raises(ColumnNotFoundError):
        base.execute("SELECT v FROM t")
    # Filters on the new name reach hot rows and segment statistics alike.
    assert base.execute("SELECT id FROM t WHERE w = 30").rows() == [(3,)]
    assert base.execute("SELECT id FROM t WHERE w >= 50 ORDER BY id").rows() == [(5,), (6,)]
    base.verify()
    base.insert([{"id": 7, "w": 70, "s": "r7"}])
    assert base.execute("SELECT id FROM t WHERE w > 55 ORDER BY id").rows() == [(6,), (7,)]
    base.verify()


def test_renaming_to_an_existing_name_is_an_error(base, expect_error):
    expect_error(
        base.eng, "ALTER TABLE t RENAME COLUMN v TO s", SchemaError, "SCHEMA_ERROR", users=USERS
    )


def test_renaming_an_unknown_column_is_an_error(base, expect_error):
    expect_error(
        base.eng,
        "ALTER TABLE t RENAME COLUMN nope TO w",
        ColumnNotFoundError,
        "COLUMN_NOT_FOUND",
        users=USERS,
    )


def test_rename_and_rename_back(base):
    alter(base, "ALTER TABLE t RENAME COLUMN s TO label")
    alter(base, "ALTER TABLE t RENAME COLUMN v TO s")
    base.model_rename("s", "label")
    base.model_rename("v", "s")
    base.verify()


# ---------------------------------------------------------------- column types


@pytest.mark.parametrize(
    "sql",
    [
        "ALTER TABLE t MODIFY COLUMN v BIGINT",
        "ALTER TABLE t MODIFY v BIGINT",
        "ALTER TABLE t ALTER COLUMN v TYPE BIGINT",
    ],
)
def test_widen_int_to_bigint(base, sql):
    alter(base, sql)
    assert base.result_type("v") == pa.int64()
    base.insert([{"id": 9, "v": 5_000_000_000, "s": "big"}])
    assert base.execute("SELECT id FROM t WHERE v > 4000000000").rows() == [(9,)]
    base.verify()
    assert base.result_type("v") == pa.int64()


def test_widen_real_to_double(alt):
    rows = [{"id": i, "r": i + 0.5} for i in range(1, 7)]
    alt.setup("id INT PRIMARY KEY, r REAL", {u: rows for u in USERS})
    assert alt.result_type("r") == pa.float32()
    alter(alt, "ALTER TABLE t MODIFY COLUMN r DOUBLE")
    assert alt.result_type("r") == pa.float64()
    alt.insert([{"id": 7, "r": 0.1}])  # not representable as REAL
    alt.verify()
    assert alt.execute("SELECT r FROM t WHERE id = 7").scalar() == 0.1


def test_float_is_the_four_byte_float_as_in_datafusion(base):
    """FLOAT and REAL are the 4-byte float; DOUBLE PRECISION the 8-byte one."""
    alter(base, "ALTER TABLE t ADD COLUMN f FLOAT")
    alter(base, "ALTER TABLE t ADD COLUMN d DOUBLE PRECISION")
    base.model_add("f")
    base.model_add("d")
    assert base.result_type("f") == pa.float32()
    assert base.result_type("d") == pa.float64()
    alter(base, "ALTER TABLE t MODIFY COLUMN f DOUBLE")  # a widening
    assert base.result_type("f") == pa.float64()
    base.verify()


@pytest.mark.parametrize(
    ("column", "values", "texts"),
    [
        ("INT", [7, -3, None], ["7", "-3", None]),
        ("DOUBLE", [1.5, -2.25, None], ["1.5", "-2.25", None]),
        ("BOOLEAN", [True, False, None], ["true", "false", None]),
    ],
)
def test_any_type_widens_to_text(alt, column, values, texts):
    rows = [{"id": i, "x": x} for i, x in enumerate(values, start=1)]
    alt.setup(f"id INT PRIMARY KEY, x {column}", {u: rows for u in USERS})
    alter(alt, "ALTER TABLE t ALTER COLUMN x TYPE TEXT")
    alt.model_map("x", lambda x: texts[values.index(x)] if x is not None else None)
    assert alt.result_type("x") == pa.string()
    alt.insert([{"id": 9, "x": "free text"}])
    alt.verify()


def test_narrowing_succeeds_when_every_value_fits(alt):
    rows = [{"id": i, "b": i * 1000, "t": str(i)} for i in range(1, 7)]
    alt.setup("id INT PRIMARY KEY, b BIGINT, t TEXT", {u: rows for u in USERS})
    alter(alt, "ALTER TABLE t MODIFY COLUMN b INT")
    alter(alt, "ALTER TABLE t ALTER COLUMN t TYPE INT")
    alt.model_map("t", int)
    assert alt.result_type("b") == pa.int32()
    assert alt.result_type("t") == pa.int32()
    assert alt.execute("SELECT id FROM t WHERE t = 4").rows() == [(4,)]
    alt.verify()


@pytest.mark.parametrize("where", ["first", "last"])
@pytest.mark.parametrize(
    ("decl", "bad", "target", "shown"),
    [
        ("BIGINT", 5_000_000_000, "INT", "5000000000"),
        ("TEXT", "abc", "INT", "abc"),
        ("DOUBLE", 1.5, "INT", "1.5"),
        ("DOUBLE", 1e300, "REAL", "1e+300"),
    ],
)
def test_narrowing_fails_naming_a_value_that_does_not_fit(
    alt, expect_error, where, decl, bad, target, shown
):
    good = {"BIGINT": 1, "TEXT": "1", "DOUBLE": 1.0}[decl]
    rows = [{"id": i, "x": good} for i in range(1, 7)]
    rows[0 if where == "first" else -1]["x"] = bad  # first: in a segment (cold/both)
    alt.setup(f"id INT PRIMARY KEY, x {decl}", {u: rows for u in USERS})
    version = alt.schema_version()
    expect_error(
        alt.eng,
        f"ALTER TABLE t ALTER COLUMN x TYPE {target}",
        TypeMismatchError,
        "TYPE_MISMATCH",
        shown,
        users=USERS,
    )
    assert alt.schema_version() == version
    alt.verify()


def test_narrowing_checks_every_users_rows(engines, expect_error):
    db = AlterDb(engines, "USER", "both")
    db.setup(
        "id INT PRIMARY KEY, x BIGINT",
        {
            "root": [{"id": 1, "x": 1}, {"id": 2, "x": 2}],
            "bob": [{"id": 1, "x": 9_000_000_000}, {"id": 2, "x": 2}],
        },
    )
    expect_error(
        db.eng,
        "ALTER TABLE t MODIFY x INT",
        TypeMismatchError,
        "TYPE_MISMATCH",
        "9000000000",
        users=USERS,
    )
    db.verify()


def test_narrowing_ignores_deleted_rows(fresh_db):
    """Only live values must fit: a deleted row (a hot tombstone that still
    carries its last values) does not block the change."""
    db = fresh_db
    db.setup("id INT PRIMARY KEY, x TEXT", {u: [{"id": 1, "x": "1"}] for u in USERS})
    for user in db.writers:
        db.execute("INSERT INTO t VALUES (2, 'abc')", user=user)
        db.execute("DELETE FROM t WHERE id = 2", user=user)
    alter(db, "ALTER TABLE t ALTER COLUMN x TYPE INT")
    db.model_map("x", int)
    db.verify()


def test_narrowing_ignores_segment_values_an_update_replaced(fresh_db):
    """An older version in a segment that an UPDATE replaced does not block
    the change and must not break reads afterwards."""
    db = fresh_db
    db.setup(
        "id INT PRIMARY KEY, x TEXT",
        {u: [{"id": 1, "x": "abc"}, {"id": 2, "x": "2"}] for u in USERS},
    )
    for user in db.writers:
        db.execute("UPDATE t SET x = '7' WHERE id = 1", user=user)
    for scope in db.rows.values():
        scope[1]["x"] = "7"
    alter(db, "ALTER TABLE t ALTER COLUMN x TYPE INT")
    db.model_map("x", int)
    db.verify()


@pytest.fixture(params=["USER", "SHARED"])
def fresh_db(request: pytest.FixtureRequest, engines: Engines) -> AlterDb:
    """An empty ``AlterDb`` whose ``setup`` puts every row in segments."""
    return AlterDb(engines, request.param, "cold")


def test_changing_the_primary_key_type_is_an_error(base, expect_error):
    expect_error(
        base.eng, "ALTER TABLE t MODIFY COLUMN id BIGINT", SchemaError, "SCHEMA_ERROR", users=USERS
    )


# ---------------------------------------------------------------- defaults and NOT NULL


def test_set_default_applies_to_new_rows_only(base):
    base.execute("UPDATE t SET v = NULL WHERE id = 1", user="root")
    base.rows[base.scope("root")][1]["v"] = None
    alter(base, "ALTER TABLE t ALTER COLUMN v SET DEFAULT 42")
    base.execute("INSERT INTO t (id, s) VALUES (10, 'new')")
    base.rows[base.scope("root")][10] = {"id": 10, "v": 42, "s": "new"}
    base.verify()
    described = {r[0]: r[3] for r in base.execute("DESCRIBE TABLE t").rows()}
    assert described["v"] == "42"
    alter(base, "ALTER TABLE t ALTER COLUMN v DROP DEFAULT")
    base.execute("INSERT INTO t (id, s) VALUES (11, 'newer')")
    base.rows[base.scope("root")][11] = {"id": 11, "v": None, "s": "newer"}
    base.verify()
    assert {r[0]: r[3] for r in base.execute("DESCRIBE TABLE t").rows()}["v"] is None


def test_set_not_null_fails_while_nulls_exist(base, expect_error):
    # The NULL sits in the first row: in a segment for cold and both.
    for user in base.writers:
        base.execute("UPDATE t SET v = NULL WHERE id = 1", user=user)
    if base.flushable and base.placement != "hot":
        base.eng.flush("t")
    for scope in base.rows.values():
        scope[1]["v"] = None
    expect_error(
        base.eng,
        "ALTER TABLE t ALTER COLUMN v SET NOT NULL",
        NotNullViolationError,
        "NOT_NULL_VIOLATION",
        "v",
        users=USERS,
    )
    for user in base.writers:
        base.execute("UPDATE t SET v = 0 WHERE v IS NULL", user=user)
    base.model_map("v", lambda v: 0 if v is None else v)
    alter(base, "ALTER TABLE t ALTER COLUMN v SET NOT NULL")
    with pytest.raises(NotNullViolationError):
        base.execute("INSERT INTO t (id, s) VALUES (30, 'x')")
    with pytest.raises(NotNullViolationError):
        base.execute("UPDATE t SET v = NULL WHERE id = 2")
    base.verify()
    assert not {r[0]: r[2] for r in base.execute("DESCRIBE TABLE t").rows()}["v"]
    alter(base, "ALTER TABLE t ALTER COLUMN v DROP NOT NULL")
    base.insert([{"id": 31, "v": None, "s": "x"}])
    base.verify()


def test_set_not_null_fails_for_a_column_added_without_default(base, expect_error):
    alter(base, "ALTER TABLE t ADD COLUMN n INT")
    base.model_add("n")
    expect_error(
        base.eng,
        "ALTER TABLE t ALTER COLUMN n SET NOT NULL",
        NotNullViolationError,
        "NOT_NULL_VIOLATION",
        users=USERS,
    )


def test_set_not_null_checks_other_users_rows(engines, expect_error):
    db = AlterDb(engines, "USER", "both")
    db.setup(
        BASE,
        {
            "root": [{"id": 1, "v": 1, "s": "a"}],
            "bob": [{"id": 1, "v": None, "s": "b"}, {"id": 2, "v": 2, "s": "c"}],
        },
    )
    expect_error(
        db.eng,
        "ALTER TABLE t ALTER COLUMN v SET NOT NULL",
        NotNullViolationError,
        "NOT_NULL_VIOLATION",
        users=USERS,
    )


# ---------------------------------------------------------------- table options


def test_set_flush_policy_is_recorded_and_used(base):
    if not base.flushable:
        pytest.skip("STREAM tables have no flush policy")
    alter(base, "ALTER TABLE t SET (FLUSH_POLICY = 'rows:3')")
    options = base.execute("SELECT options FROM system.tables WHERE table_name = 't'").scalar()
    assert '"row_limit":3' in options
    base.restart()
    options = base.execute("SELECT options FROM system.tables WHERE table_name = 't'").scalar()
    assert '"row_limit":3' in options
    base.insert([{"id": 40 + i, "v": i, "s": "p"} for i in range(3)])
    assert ("rows", "t") in [(reason, t.name) for reason, t in base.eng.scheduler.due()]
    base.eng.scheduler.tick()
    assert base.eng.scheduler.due() == []
    base.verify()


def test_set_ttl_seconds_changes_what_a_stream_table_shows(engines, clock):
    db = AlterDb(engines, "STREAM", "hot")
    db.setup(BASE, {"root": [{"id": 1, "v": 1, "s": "old"}]})
    clock.advance(120)
    db.insert([{"id": 2, "v": 2, "s": "new"}])
    alter(db, "ALTER TABLE t SET (TTL_SECONDS = 60)")
    del db.rows[""][1]  # two minutes old, TTL now one minute
    options = db.execute("SELECT options FROM system.tables WHERE table_name = 't'").scalar()
    assert '"ttl_seconds":60' in options
    db.verify()


@pytest.mark.parametrize(
    ("table_type", "sql"),
    [
        ("SHARED", "ALTER TABLE t SET (TTL_SECONDS = 60)"),
        ("STREAM", "ALTER TABLE t SET (FLUSH_POLICY = 'rows:5')"),
        ("SHARED", "ALTER TABLE t SET (FLUSH_POLICY = 'sometimes')"),
        ("STREAM", "ALTER TABLE t SET (TTL_SECONDS = 0)"),
        ("SHARED", "ALTER TABLE t SET (COLOUR = 'red')"),
    ],
)
def test_invalid_table_options_are_errors(engines, expect_error, table_type, sql):
    db = AlterDb(engines, table_type, "hot")
    db.setup(BASE, {"root": [{"id": 1, "v": 1, "s": "a"}]})
    version = db.schema_version()
    expect_error(db.eng, sql, InvalidOptionError, "INVALID_OPTION")
    assert db.schema_version() == version


# ---------------------------------------------------------------- RENAME TO


def test_rename_table_moves_data_and_storage(base, data_dir: Path):
    alter(base, "ALTER TABLE t RENAME TO t2", renamed_to="t2")
    storage = data_dir / "storage" / "default"
    assert not (storage / "t").exists()
    if base.placement != "hot":
        assert (storage / "t2").is_dir()
    for sql in ("SELECT * FROM t", "INSERT INTO t VALUES (100, 1, 'x')", "DESCRIBE TABLE t"):
        with pytest.raises(TableNotFoundError):
            base.execute(sql)
    tables = [r[1] for r in base.execute("SHOW TABLES").rows()]
    assert "t2" in tables and "t" not in tables
    # AlterDb's checks read ``t``: compare by hand, then rename back at the end.
    for when in ("now", "after a restart"):
        for user in USERS:
            expected = sorted(
                (tuple(r[c] for c in base.columns) for r in base.rows[base.scope(user)].values()),
                key=repr,
            )
            assert sorted(base.execute("SELECT * FROM t2", user=user).rows(), key=repr) == expected
        if when == "now":
            base.restart()
    if base.flushable:
        base.execute("INSERT INTO t2 VALUES (100, 1, 'x')")
        base.rows[base.scope("root")][100] = {"id": 100, "v": 1, "s": "x"}
        base.eng.flush("t2")
        assert (storage / "t2").is_dir() and not (storage / "t").exists()
    alter(base, "ALTER TABLE t2 RENAME TO t", table="t2", renamed_to="t")
    base.verify()


def test_rename_table_to_an_existing_name_is_an_error(base, expect_error):
    base.execute("CREATE SHARED TABLE other (id INT PRIMARY KEY)")
    expect_error(
        base.eng, "ALTER TABLE t RENAME TO other", TableExistsError, "TABLE_EXISTS", users=USERS
    )


def test_a_new_table_under_the_old_name_starts_empty(base):
    alter(base, "ALTER TABLE t RENAME TO t2", renamed_to="t2")
    base.execute(create_table_sql(base.table_type, "t", BASE))
    assert base.execute("SELECT count(*) FROM t").scalar() == 0
    base.restart()
    assert base.execute("SELECT count(*) FROM t").scalar() == 0
    assert base.execute("SELECT count(*) FROM t2").scalar() == 6


# ---------------------------------------------------------------- versions and ids


def test_every_change_bumps_the_schema_version_and_history_lists_them(base):
    changes = [
        "ALTER TABLE t ADD COLUMN a INT",
        "ALTER TABLE t RENAME COLUMN a TO b",
        "ALTER TABLE t MODIFY COLUMN b BIGINT",
        "ALTER TABLE t ALTER COLUMN b SET DEFAULT 1",
        "ALTER TABLE t ALTER COLUMN b DROP DEFAULT",
        "ALTER TABLE t ALTER COLUMN s SET NOT NULL",
        "ALTER TABLE t ALTER COLUMN s DROP NOT NULL",
        "ALTER TABLE t DROP COLUMN b",
    ]
    if base.flushable:
        changes.append("ALTER TABLE t SET (FLUSH_POLICY = 'rows:1000')")
    for sql in changes:
        alter(base, sql)
    with pytest.raises(KalamError):
        base.execute("ALTER TABLE t DROP COLUMN id")
    assert base.schema_version() == 1 + len(changes)
    history = base.execute("DESCRIBE TABLE t HISTORY").rows()
    assert [h[0] for h in history] == list(range(1, len(changes) + 2))
    assert [h[4] for h in history] == [False] * len(changes) + [True]
    base.restart()
    assert base.schema_version() == 1 + len(changes)
    assert [h[0] for h in base.execute("DESCRIBE TABLE t HISTORY").rows()] == list(
        range(1, len(changes) + 2)
    )


def test_column_ids_are_stable_and_never_reused(base):
    ids = base.column_ids()
    assert ids == {"id": 1, "v": 2, "s": 3}
    alter(base, "ALTER TABLE t ADD COLUMN a INT")
    assert base.column_ids()["a"] == 4
    alter(base, "ALTER TABLE t DROP COLUMN a")
    alter(base, "ALTER TABLE t ADD COLUMN b INT")
    assert base.column_ids()["b"] == 5
    alter(base, "ALTER TABLE t RENAME COLUMN b TO a")
    alter(base, "ALTER TABLE t MODIFY COLUMN a BIGINT")
    assert base.column_ids() == {"id": 1, "v": 2, "s": 3, "a": 5}
    base.restart()
    alter(base, "ALTER TABLE t DROP COLUMN a")
    alter(base, "ALTER TABLE t ADD COLUMN a INT")
    assert base.column_ids() == {"id": 1, "v": 2, "s": 3, "a": 6}


def test_three_schema_versions_across_two_flushes(fresh_db):
    db = fresh_db
    db.setup("id INT PRIMARY KEY, a INT", {u: [{"id": 1, "a": 1}] for u in USERS})
    alter(db, "ALTER TABLE t ADD COLUMN b TEXT")  # version 2
    db.model_add("b")
    for u in db.writers:
        db.insert([{"id": 2, "a": 2, "b": "two"}], user=u)
    db.eng.flush("t")
    alter(db, "ALTER TABLE t ADD COLUMN c INT DEFAULT 9")  # version 3
    db.model_add("c", 9)
    alter(db, "ALTER TABLE t RENAME COLUMN a TO aa")  # version 4
    db.model_rename("a", "aa")
    for u in db.writers:
        db.insert([{"id": 3, "aa": 3, "b": "three", "c": 3}], user=u)
    db.check()
    assert db.rows[db.scope("root")] == {
        1: {"id": 1, "aa": 1, "b": None, "c": 9},
        2: {"id": 2, "aa": 2, "b": "two", "c": 9},
        3: {"id": 3, "aa": 3, "b": "three", "c": 3},
    }
    db.verify()
    alter(db, "ALTER TABLE t DROP COLUMN b")
    db.model_drop("b")
    db.verify()


def test_old_segments_read_through_the_current_schema(fresh_db):
    db = fresh_db
    rows = [{"id": i, "v": i, "s": f"s{i}"} for i in range(1, 31)]
    db.setup(BASE, {u: rows for u in USERS})  # one segment per scope
    alter(db, "ALTER TABLE t RENAME COLUMN v TO n")
    alter(db, "ALTER TABLE t MODIFY COLUMN n BIGINT")
    alter(db, "ALTER TABLE t DROP COLUMN s")
    alter(db, "ALTER TABLE t ADD COLUMN s TEXT DEFAULT 'later'")
    db.model_rename("v", "n")
    db.model_drop("s")
    db.model_add("s", "later")
    assert db.result_type("n") == pa.int64()
    assert db.execute("SELECT id, s FROM t WHERE n = 17").rows() == [(17, "later")]
    assert db.execute("SELECT count(*) FROM t WHERE n BETWEEN 5 AND 9").scalar() == 5
    db.verify()


def test_the_next_query_after_alter_sees_the_new_schema(base):
    select = "SELECT * FROM t WHERE id = ?"
    assert base.execute(select, [1]).columns == ["id", "v", "s"]
    base.execute("ALTER TABLE t ADD COLUMN n INT DEFAULT 5")
    assert base.execute(select, [1]).columns == ["id", "v", "s", "n"]
    assert base.execute(select, [1]).rows() == [(1, 10, "r1", 5)]
    base.execute("ALTER TABLE t RENAME COLUMN v TO w")
    assert base.execute(select, [1]).columns == ["id", "w", "s", "n"]
    base.execute("ALTER TABLE t DROP COLUMN s")
    assert base.execute(select, [1]).rows() == [(1, 10, 5)]
    base.execute("ALTER TABLE t MODIFY COLUMN w TEXT")
    assert base.execute(select, [1]).rows() == [(1, "10", 5)]
    assert base.execute("SELECT w FROM t WHERE id = 1").table.schema.field("w").type == pa.string()


# ---------------------------------------------------------------- DDL vs DML


@pytest.mark.parametrize("placement", ["hot", "cold"])
def test_alter_waits_for_a_running_update(engines: Engines, clock: FakeClock, placement):
    """An ALTER issued while an UPDATE is between reading its targets and
    writing them waits (or fails cleanly); the UPDATE's rows are never lost
    or written under the wrong column."""
    db = AlterDb(engines, "SHARED", placement)
    db.setup_base()
    eng: Engine = db.eng
    reading_done = threading.Event()
    release = threading.Event()
    original_begin = eng.db.begin
    updater: list[threading.Thread] = []

    def begin_then_pause() -> Any:
        # UPDATE calls begin() after its SELECT found the targets: hold it there.
        if threading.current_thread() in updater:
            reading_done.set()
            assert release.wait(timeout=60)
        return original_begin()

    eng.db.begin = begin_then_pause  # type: ignore[method-assign]
    outcome: dict[str, Any] = {}

    def run(name: str, sql: str) -> None:
        try:
            outcome[name] = eng.execute(sql)
        except KalamError as exc:
            outcome[name] = exc

    update = threading.Thread(target=run, args=("update", "UPDATE t SET v = v + 100"))
    updater.append(update)
    update.start()
    assert reading_done.wait(timeout=60)
    alter_thread = threading.Thread(
        target=run, args=("alter", "ALTER TABLE t RENAME COLUMN v TO w")
    )
    alter_thread.start()
    alter_thread.join(timeout=0.5)
    # The ALTER must not complete while the UPDATE is mid-flight.
    assert alter_thread.is_alive() or isinstance(outcome.get("alter"), KalamError)
    release.set()
    update.join(timeout=60)
    alter_thread.join(timeout=60)
    eng.db.begin = original_begin  # type: ignore[method-assign]
    assert outcome["update"].rows_affected == 6
    db.model_map("v", lambda v: v + 100)
    if not isinstance(outcome["alter"], KalamError):
        db.model_rename("v", "w")
    db.verify()
