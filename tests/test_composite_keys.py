"""Composite primary keys: ``PRIMARY KEY (a, b)``.

The whole key identifies a row in every tier: uniqueness is checked against
hot and cold rows, the newest version of each full key wins the merge,
point lookups and UPDATE / DELETE / upsert address the full key, segments
are sorted by the key (first column first) and pruned on it, and a USER
table's keys are unique per user. Each behaviour is checked for every table
type and data placement (hot, cold, both, changed after a flush), and a
Hypothesis run compares random statement sequences with DuckDB.
"""

from __future__ import annotations

from typing import Any

import duckdb
import pyarrow.parquet as pq
import pytest
from conftest import STREAM_TTL_SECONDS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hs

from engine import Engine
from engine.errors import KalamError, PrimaryKeyViolationError, SchemaError
from engine.storage import keys
from engine.txn import Txn

PLACEMENTS = ("hot", "cold", "mixed", "updated", "deleted")
CASES = [("SHARED", p) for p in PLACEMENTS] + [("USER", p) for p in PLACEMENTS]
CASES += [("STREAM", "hot")]
USER = "alice"
COLUMNS = "region TEXT, n INT, v INT, note TEXT, PRIMARY KEY (region, n)"
SEED = [("eu", 1, 10, "a"), ("eu", 2, 20, "b"), ("us", 1, 30, "c"), ("us", 2, 40, "d")]


class Db:
    """A table ``t`` with key (region, n) of one type, rows placed per ``placement``."""

    def __init__(self, engine: Engine, kind: str) -> None:
        self.engine = engine
        self.kind = kind

    def sql(self, sql: str, params: Any = None, *, user: str = USER) -> Any:
        return self.engine.execute(sql, params, user=user if self.kind == "USER" else None)

    def create(self, columns: str = COLUMNS) -> None:
        ttl = f" WITH (TTL_SECONDS = {STREAM_TTL_SECONDS})" if self.kind == "STREAM" else ""
        self.engine.execute(f"CREATE {self.kind} TABLE t ({columns}){ttl}")

    def flush(self) -> None:
        if self.kind != "STREAM":
            self.engine.flush("t")

    def seed(self, placement: str) -> list[tuple[Any, ...]]:
        """Load SEED; returns the rows the table should then hold."""
        self.create()
        half = 2 if placement == "mixed" else len(SEED)
        for row in SEED[:half]:
            self.sql("INSERT INTO t VALUES ($1, $2, $3, $4)", list(row))
        if placement != "hot":
            self.flush()
        for row in SEED[half:]:
            self.sql("INSERT INTO t VALUES ($1, $2, $3, $4)", list(row))
        rows = list(SEED)
        if placement == "updated":
            self.sql("UPDATE t SET v = v + 1 WHERE region = 'eu' AND n = 1")
            rows[0] = ("eu", 1, 11, "a")
        if placement == "deleted":
            self.sql("DELETE FROM t WHERE region = 'us' AND n = 2")
            rows.pop()
        return rows

    def rows(self, *, user: str = USER) -> list[tuple[Any, ...]]:
        return self.sql("SELECT region, n, v, note FROM t ORDER BY region, n", user=user).rows()


@pytest.fixture(params=CASES, ids=[f"{k}-{p}" for k, p in CASES])
def case(request: pytest.FixtureRequest, engines: Any) -> tuple[Db, str]:
    kind, placement = request.param
    return Db(engines.open(background_jobs=False), kind), placement


# ---------------------------------------------------------------- DDL


def test_system_columns_show_each_key_column_and_its_position(engine: Engine) -> None:
    engine.execute("CREATE TABLE t (a INT, b TEXT, c INT, PRIMARY KEY (b, a))")
    rows = engine.execute(
        "SELECT column_name, is_primary_key, key_position FROM system.columns "
        "WHERE table_name = 't' ORDER BY ordinal"
    ).rows()
    assert rows == [("a", True, 2), ("b", True, 1), ("c", False, None)]
    single = "CREATE TABLE s (id INT PRIMARY KEY, x INT)"
    engine.execute(single)
    assert engine.execute(
        "SELECT key_position FROM system.columns WHERE table_name = 's' ORDER BY ordinal"
    ).rows() == [(1,), (None,)]


def test_key_columns_are_not_null(engine: Engine) -> None:
    engine.execute("CREATE TABLE t (a INT, b TEXT, PRIMARY KEY (a, b))")
    with pytest.raises(KalamError):
        engine.execute("INSERT INTO t VALUES (1, NULL)")
    assert engine.execute("SELECT count(*) FROM t").scalar() == 0


@pytest.mark.parametrize(
    "columns",
    [
        "a INT PRIMARY KEY, b INT PRIMARY KEY",
        "a INT PRIMARY KEY, b INT, PRIMARY KEY (a, b)",
        "a INT, b INT, PRIMARY KEY (a, c)",
        "a INT, b INT, PRIMARY KEY (a, a)",
        "a INT, b DOUBLE, PRIMARY KEY (a, b)",
    ],
)
def test_invalid_key_declarations_are_refused(engine: Engine, columns: str) -> None:
    with pytest.raises(SchemaError):
        engine.execute(f"CREATE TABLE t ({columns})")
    assert engine.execute("SHOW TABLES").table.num_rows == 0


def test_a_one_column_table_key_is_the_same_as_a_column_key(engine: Engine) -> None:
    engine.execute("CREATE TABLE t (a INT, b INT, PRIMARY KEY (a))")
    engine.execute("INSERT INTO t VALUES (1, 1)")
    with pytest.raises(PrimaryKeyViolationError, match="column 'a'"):
        engine.execute("INSERT INTO t VALUES (1, 2)")


# ---------------------------------------------------------------- every type and placement


def test_rows_read_back_once_per_full_key(case: tuple[Db, str]) -> None:
    db, placement = case
    expected = db.seed(placement)
    assert db.rows() == expected
    db.flush()
    assert db.rows() == expected


def test_the_full_key_must_be_unique_hot_and_cold(case: tuple[Db, str]) -> None:
    db, placement = case
    expected = db.seed(placement)
    with pytest.raises(PrimaryKeyViolationError, match=r"\(eu, 2\)"):
        db.sql("INSERT INTO t VALUES ('eu', 2, 0, 'dup')")
    with pytest.raises(PrimaryKeyViolationError):
        db.sql("INSERT INTO t VALUES ('xx', 9, 0, 'x'), ('xx', 9, 1, 'y')")
    db.sql("INSERT INTO t VALUES ('eu', 3, 50, 'e'), ('as', 1, 60, 'f')")  # parts reused
    assert db.rows() == sorted([*expected, ("eu", 3, 50, "e"), ("as", 1, 60, "f")])


def test_point_lookups_need_and_use_the_whole_key(case: tuple[Db, str]) -> None:
    db, placement = case
    db.seed(placement)
    r = db.sql("SELECT v FROM t WHERE region = 'us' AND n = 1")
    assert r.rows() == [(30,)]
    assert db.sql("SELECT v FROM t WHERE n = $1 AND region = $2", [2, "eu"]).rows() == [(20,)]
    assert db.sql("SELECT v FROM t WHERE region = 'us' AND n = 9").rows() == []
    assert db.sql("SELECT v FROM t WHERE region = 'us' AND n = NULL").rows() == []
    assert sorted(db.sql("SELECT v FROM t WHERE n = 1").rows()) == [
        (11,) if placement == "updated" else (10,),
        (30,),
    ]


def test_update_and_delete_address_the_full_key(case: tuple[Db, str]) -> None:
    db, placement = case
    expected = {(r[0], r[1]): r for r in db.seed(placement)}
    assert db.sql("UPDATE t SET note = 'z' WHERE region = 'eu' AND n = 2").rows_affected == 1
    expected[("eu", 2)] = ("eu", 2, 20, "z")
    assert db.sql("DELETE FROM t WHERE n = 1 AND region = 'us'").rows_affected == 1
    del expected[("us", 1)]
    db.sql("UPDATE t SET v = v * 10 WHERE n = 2")  # several keys, by scan
    for k in [k for k in expected if k[1] == 2]:
        r = expected[k]
        expected[k] = (r[0], r[1], r[2] * 10, r[3])
    assert db.rows() == sorted(expected.values())
    db.flush()
    assert db.rows() == sorted(expected.values())


def test_updating_a_key_column_is_refused(case: tuple[Db, str]) -> None:
    db, placement = case
    expected = db.seed(placement)
    with pytest.raises(SchemaError, match="primary key"):
        db.sql("UPDATE t SET n = 5 WHERE region = 'eu' AND n = 1")
    assert db.rows() == expected


def test_upsert_on_the_full_key_in_either_order(case: tuple[Db, str]) -> None:
    db, placement = case
    db.seed(placement)
    db.sql(
        "INSERT INTO t VALUES ('eu', 2, 5, 'x'), ('eu', 9, 7, 'new') "
        "ON CONFLICT (n, region) DO UPDATE SET v = t.v + EXCLUDED.v"
    )
    db.sql("INSERT INTO t VALUES ('us', 1, 0, 'ignored') ON CONFLICT DO NOTHING")
    got = {(r[0], r[1]): r[2:] for r in db.rows()}
    assert got[("eu", 2)] == (25, "b")
    assert got[("eu", 9)] == (7, "new")
    assert got[("us", 1)] == (30, "c")
    with pytest.raises(SchemaError):
        db.sql("INSERT INTO t VALUES ('eu', 2, 1, 'x') ON CONFLICT (n) DO NOTHING")


def test_user_tables_have_composite_keys_per_user(engines: Any) -> None:
    db = Db(engines.open(background_jobs=False), "USER")
    db.create()
    db.sql("INSERT INTO t VALUES ('eu', 1, 1, 'alice')", user="alice")
    db.sql("INSERT INTO t VALUES ('eu', 1, 2, 'bob')", user="bob")  # same key, other user
    db.flush()
    with pytest.raises(PrimaryKeyViolationError):
        db.sql("INSERT INTO t VALUES ('eu', 1, 3, 'again')", user="bob")
    db.sql("UPDATE t SET v = 9 WHERE region = 'eu' AND n = 1", user="bob")
    assert db.rows(user="alice") == [("eu", 1, 1, "alice")]
    assert db.rows(user="bob") == [("eu", 1, 9, "bob")]


# ---------------------------------------------------------------- segments, pruning, restart


def test_segments_are_sorted_by_the_key_and_pruned_on_its_first_column(engines: Any) -> None:
    db = Db(engines.open(background_jobs=False), "SHARED")
    db.create("a INT, b INT, v INT, PRIMARY KEY (a, b)")
    for lo in (0, 100):
        for a in range(lo + 9, lo - 1, -1):
            db.sql("INSERT INTO t VALUES ($1, $2, $3)", [a, 9 - a % 10, a])
        db.flush()
    r = db.sql("SELECT v FROM t WHERE a >= 100 AND a < 103 ORDER BY v")
    assert r.rows() == [(100,), (101,), (102,)]
    assert r.stats["default.t"]["segments_pruned"] == 1
    r = db.sql("SELECT v FROM t WHERE a = 105 AND b = 4")
    assert r.rows() == [(105,)]
    assert r.stats["default.t"]["segments_scanned"] == 1
    paths = db.sql("SELECT path FROM system.segments WHERE table_name = 't'").rows()
    data = pq.read_table(db.engine.data_dir / "storage" / "default" / "t" / paths[0][0])
    keys = list(zip(data.column("a").to_pylist(), data.column("b").to_pylist(), strict=True))
    assert keys == sorted(keys)


def test_hot_versions_hide_cold_versions_of_the_same_full_key(engines: Any) -> None:
    db = Db(engines.open(background_jobs=False), "SHARED")
    db.create("a INT, b INT, v INT, PRIMARY KEY (a, b)")
    db.sql("INSERT INTO t VALUES (1, 1, 1), (1, 2, 2), (2, 1, 3)")
    db.flush()
    db.sql("UPDATE t SET v = 10 WHERE a = 1 AND b = 2")
    db.sql("DELETE FROM t WHERE a = 2 AND b = 1")
    db.sql("INSERT INTO t VALUES (2, 1, 30)")
    assert db.sql("SELECT a, b, v FROM t ORDER BY a, b").rows() == [
        (1, 1, 1),
        (1, 2, 10),
        (2, 1, 30),
    ]
    db.flush()
    db.flush()
    assert db.sql("SELECT a, b, v FROM t ORDER BY a, b").rows() == [
        (1, 1, 1),
        (1, 2, 10),
        (2, 1, 30),
    ]


def test_composite_keys_survive_restart_flush_and_repair(engines: Any) -> None:
    eng = engines.open(background_jobs=False)
    eng.execute("CREATE USER TABLE t (a TEXT, b BIGINT, v INT, PRIMARY KEY (a, b))")
    eng.execute("INSERT INTO t VALUES ('k', 1, 1), ('k', 2, 2)", user="alice")
    eng.flush("t")
    eng.execute("DELETE FROM t WHERE a = 'k' AND b = 1", user="alice")
    eng.execute("INSERT INTO t VALUES ('k', 3, 3)", user="alice")
    eng = engines.reopen(eng, background_jobs=False)
    expected = [("k", 2, 2), ("k", 3, 3)]
    assert eng.execute("SELECT * FROM t ORDER BY b", user="alice").rows() == expected
    with pytest.raises(PrimaryKeyViolationError):
        eng.execute("INSERT INTO t VALUES ('k', 2, 0)", user="alice")
    eng.flush("t")
    eng.execute("REPAIR TABLE t")
    assert eng.execute("SELECT * FROM t ORDER BY b", user="alice").rows() == expected


def test_repair_rebuilds_a_lost_manifest_keeping_the_newest_version_of_each_full_key(
    engines: Any,
) -> None:
    eng = engines.open(background_jobs=False)
    eng.execute("CREATE TABLE t (a INT, b INT, v INT, PRIMARY KEY (a, b))")
    eng.execute("INSERT INTO t VALUES (1, 1, 1), (1, 2, 2), (2, 1, 3)")
    eng.flush("t")
    eng.execute("UPDATE t SET v = 20 WHERE a = 1 AND b = 2")
    eng.flush("t")
    table_id = eng.catalog.get_table("default", "t").table_id
    txn = Txn(eng.store)
    txn.batch.put(keys.manifest_key(table_id, ""), b"{damaged")
    txn.commit()
    eng.close()
    (eng.data_dir / "storage" / "default" / "t" / "manifest.json").write_bytes(b"{damaged")
    eng = engines.open(background_jobs=False)
    assert "both manifest copies" in eng.execute("REPAIR TABLE t").message
    assert eng.execute("SELECT a, b, v FROM t ORDER BY a, b").rows() == [
        (1, 1, 1),
        (1, 2, 20),
        (2, 1, 3),
    ]


def test_alter_keeps_the_key_and_refuses_to_drop_its_columns(engines: Any) -> None:
    eng = engines.open(background_jobs=False)
    eng.execute("CREATE TABLE t (a INT, b INT, v INT, PRIMARY KEY (a, b))")
    eng.execute("INSERT INTO t VALUES (1, 1, 1)")
    eng.flush("t")
    with pytest.raises(SchemaError):
        eng.execute("ALTER TABLE t DROP COLUMN b")
    with pytest.raises(SchemaError):
        eng.execute("ALTER TABLE t MODIFY COLUMN b BIGINT")
    eng.execute("ALTER TABLE t RENAME COLUMN b TO bb")
    eng.execute("ALTER TABLE t ADD COLUMN w TEXT")
    eng.execute("INSERT INTO t (a, bb, v) VALUES (1, 2, 2)")
    with pytest.raises(PrimaryKeyViolationError, match=r"\(a, bb\)"):
        eng.execute("INSERT INTO t (a, bb, v) VALUES (1, 1, 0)")
    eng.execute("UPDATE t SET w = 'x' WHERE a = 1 AND bb = 1")
    eng = engines.reopen(eng, background_jobs=False)
    assert eng.execute("SELECT a, bb, v, w FROM t ORDER BY bb").rows() == [
        (1, 1, 1, "x"),
        (1, 2, 2, None),
    ]


# ---------------------------------------------------------------- differential check vs DuckDB

_KEYS = hs.tuples(hs.sampled_from(["a", "b", "c"]), hs.integers(0, 3))
_STEPS = hs.lists(
    hs.one_of(
        hs.tuples(hs.just("insert"), _KEYS, hs.integers(0, 99)),
        hs.tuples(hs.just("upsert"), _KEYS, hs.integers(0, 99)),
        hs.tuples(hs.just("update"), _KEYS, hs.integers(0, 99)),
        hs.tuples(hs.just("bump"), hs.tuples(hs.just(""), hs.integers(0, 3)), hs.integers(0, 9)),
        hs.tuples(hs.just("delete"), _KEYS, hs.just(0)),
        hs.tuples(hs.just("flush"), hs.just(("", 0)), hs.just(0)),
    ),
    max_size=25,
)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(steps=_STEPS)
def test_random_statements_agree_with_duckdb(tmp_path_factory: Any, steps: list[Any]) -> None:
    eng = Engine.open(tmp_path_factory.mktemp("ck"), background_jobs=False)
    duck = duckdb.connect()
    try:
        ddl = "(k TEXT, n INT, v INT, PRIMARY KEY (k, n))"
        eng.execute(f"CREATE TABLE t {ddl}")
        duck.execute(f"CREATE TABLE t {ddl}")
        for op, (k, n), v in steps:
            if op == "flush":
                eng.flush("t")
                continue
            if op == "bump":
                sql, params = "UPDATE t SET v = v + $2 WHERE n = $1", [n, v]
            else:
                sql, params = {
                    "insert": ("INSERT INTO t VALUES ($1, $2, $3)", [k, n, v]),
                    "upsert": (
                        "INSERT INTO t VALUES ($1, $2, $3) ON CONFLICT (k, n) "
                        "DO UPDATE SET v = EXCLUDED.v",
                        [k, n, v],
                    ),
                    "update": ("UPDATE t SET v = $3 WHERE k = $1 AND n = $2", [k, n, v]),
                    "delete": ("DELETE FROM t WHERE k = $1 AND n = $2", [k, n]),
                }[op]
            failed_here = failed_there = False
            try:
                eng.execute(sql, params)
            except PrimaryKeyViolationError:
                failed_here = True
            try:
                duck.execute(sql, params)
            except duckdb.ConstraintException:
                failed_there = True
            assert failed_here == failed_there, (op, k, n)
            ours = eng.execute("SELECT k, n, v FROM t ORDER BY k, n").rows()
            theirs = duck.execute("SELECT k, n, v FROM t ORDER BY k, n").fetchall()
            assert ours == theirs, (op, k, n, v)
    finally:
        eng.close()
        duck.close()
