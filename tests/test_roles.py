"""Users and roles: CREATE / ALTER / DROP USER, what each role may run, who may
read the system tables (through every query shape), and EXECUTE AS USER.

Roles from least to most privileged: ``user`` (USER and STREAM tables, its
own rows, reads SHARED tables), ``service`` (also SHARED tables and FLUSH),
``dba`` and ``system`` (everything). ``root`` has role ``system``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from engine import Engine, KalamError
from engine.errors import (
    InvalidNameError,
    InvalidOptionError,
    PermissionDeniedError,
    SqlParseError,
)

ROLES = ("user", "service", "dba", "system")
ACTOR = {"user": "usr", "service": "svc", "dba": "dbx", "system": "sysx"}
RANK = {role: i for i, role in enumerate(ROLES)}


def users(eng: Engine) -> dict[str, str]:
    return dict(eng.execute("SELECT user, role FROM system.users").rows())


def make_actors(eng: Engine) -> None:
    for role, name in ACTOR.items():
        eng.execute(f"CREATE USER {name} ROLE {role}")


@pytest.fixture
def engine(open_engine: Callable[..., Engine]) -> Engine:
    """Durability is not under test here: skip the per-statement fsync."""
    return open_engine(durability="async", background_jobs=False)


# ---------------------------------------------------------------- users


def test_root_exists_with_role_system(engine: Engine) -> None:
    assert users(engine) == {"root": "system"}


def test_create_user_defaults_to_role_user_and_takes_every_role(engine: Engine) -> None:
    engine.execute("CREATE USER plain")
    for role in ROLES:
        engine.execute(f"CREATE USER a_{role} ROLE {role}")
    engine.execute("CREATE USER quoted ROLE 'service'")
    engine.execute("CREATE USER shouty ROLE DBA")
    assert users(engine) == {
        "root": "system",
        "plain": "user",
        "a_user": "user",
        "a_service": "service",
        "a_dba": "dba",
        "a_system": "system",
        "quoted": "service",
        "shouty": "dba",
    }


def test_a_user_id_used_for_the_first_time_is_created_with_role_user(engine: Engine) -> None:
    engine.execute("SELECT 1", user="newcomer")
    engine.execute_script("SELECT 1; SELECT 2", user="scripted")
    assert users(engine) == {"root": "system", "newcomer": "user", "scripted": "user"}
    with pytest.raises(PermissionDeniedError):
        engine.execute("CREATE SHARED TABLE s (id INT PRIMARY KEY)", user="newcomer")


def test_creating_an_existing_user_is_an_error(engine: Engine) -> None:
    engine.execute("CREATE USER ann ROLE service")
    with pytest.raises(KalamError) as info:
        engine.execute("CREATE USER ann ROLE dba")
    assert info.value.code == "USER_EXISTS"
    assert "ann" in info.value.message
    assert users(engine)["ann"] == "service"


def test_an_unknown_role_is_an_error_that_lists_the_roles(engine: Engine) -> None:
    with pytest.raises(InvalidOptionError) as info:
        engine.execute("CREATE USER ann ROLE admin")
    assert "admin" in info.value.message
    for role in ROLES:
        assert role in info.value.message
    assert "ann" not in users(engine)


@pytest.mark.parametrize("name", ["a b", "..", "x/y", "é"])
def test_user_names_come_from_the_allowlist(engine: Engine, name: str) -> None:
    with pytest.raises((InvalidNameError, SqlParseError)):
        engine.execute(f"CREATE USER '{name}'")
    with pytest.raises(InvalidNameError):
        engine.execute("SELECT 1", user=name)
    assert users(engine) == {"root": "system"}


@pytest.mark.parametrize(
    "sql",
    [
        "CREATE USER bob ROLE",
        "CREATE USER bob ROLES dba",
        "CREATE USER bob ROLE dba extra",
        "CREATE USER bob dba",
    ],
)
def test_malformed_create_user_is_a_syntax_error_not_a_guess(engine: Engine, sql: str) -> None:
    with pytest.raises(SqlParseError):
        engine.execute(sql)
    assert "bob" not in users(engine)


def test_alter_user_changes_the_role_and_what_the_user_may_do(engine: Engine) -> None:
    engine.execute("CREATE USER ann")
    create_shared = "CREATE SHARED TABLE s (id INT PRIMARY KEY)"
    with pytest.raises(PermissionDeniedError):
        engine.execute(create_shared, user="ann")
    engine.execute("ALTER USER ann ROLE service")
    assert users(engine)["ann"] == "service"
    engine.execute(create_shared, user="ann")
    engine.execute("ALTER USER ann ROLE user")
    with pytest.raises(PermissionDeniedError):
        engine.execute("INSERT INTO s VALUES (1)", user="ann")


def test_alter_or_drop_of_an_unknown_user_is_an_error(engine: Engine) -> None:
    for sql in ("ALTER USER ghost ROLE dba", "DROP USER ghost"):
        with pytest.raises(KalamError) as info:
            engine.execute(sql)
        assert info.value.code == "USER_NOT_FOUND"
        assert "ghost" in info.value.message
    assert users(engine) == {"root": "system"}


def test_drop_user_removes_it_and_the_name_comes_back_as_a_plain_user(engine: Engine) -> None:
    engine.execute("CREATE USER ops ROLE dba")
    engine.execute("DROP USER ops")
    assert "ops" not in users(engine)
    engine.execute("SELECT 1", user="ops")
    assert users(engine)["ops"] == "user"
    with pytest.raises(PermissionDeniedError):
        engine.execute("SELECT * FROM system.users", user="ops")


@pytest.mark.parametrize("sql", ["DROP USER root", "ALTER USER root ROLE user"])
def test_root_can_be_neither_dropped_nor_demoted(engine: Engine, sql: str) -> None:
    with pytest.raises(PermissionDeniedError):
        engine.execute(sql)
    assert users(engine)["root"] == "system"


def test_only_system_grants_or_takes_away_the_system_role(engine: Engine) -> None:
    make_actors(engine)
    for sql in (
        "CREATE USER boss ROLE system",
        "ALTER USER svc ROLE system",
        "ALTER USER sysx ROLE user",
        "DROP USER sysx",
    ):
        with pytest.raises(PermissionDeniedError):
            engine.execute(sql, user="dbx")
    assert users(engine) == {
        "root": "system",
        "usr": "user",
        "svc": "service",
        "dbx": "dba",
        "sysx": "system",
    }
    engine.execute("CREATE USER boss ROLE dba", user="dbx")
    engine.execute("ALTER USER boss ROLE system", user="sysx")
    assert users(engine)["boss"] == "system"


def test_users_and_roles_survive_a_restart(engine: Engine, reopen: Callable[..., Engine]) -> None:
    engine.execute("CREATE USER ops ROLE dba")
    engine.execute("SELECT 1", user="alice")
    engine.execute("ALTER USER alice ROLE service")
    again = reopen(engine)
    assert users(again) == {"root": "system", "ops": "dba", "alice": "service"}
    again.execute("SELECT * FROM system.users", user="ops")


# ---------------------------------------------------------------- what each role may run

SETUP = [
    "CREATE NAMESPACE spare",
    "CREATE USER TABLE notes (id INT PRIMARY KEY, v TEXT)",
    "CREATE STREAM TABLE events (id INT) WITH (TTL_SECONDS = 3600)",
    "CREATE SHARED TABLE board (id INT PRIMARY KEY, v TEXT)",
    "INSERT INTO board VALUES (1, 'pinned')",
    "CREATE USER target",
]
# (what, statement, the least role that may run it)
CAPABILITIES = [
    ("create-user-table", "CREATE USER TABLE mine (id INT PRIMARY KEY)", "user"),
    ("create-stream-table", "CREATE STREAM TABLE ev (id INT) WITH (TTL_SECONDS = 60)", "user"),
    ("create-user-by-type", "CREATE TABLE mine (id INT PRIMARY KEY) WITH (TYPE = 'USER')", "user"),
    ("insert-own-rows", "INSERT INTO notes VALUES (9, 'mine')", "user"),
    ("update-own-rows", "UPDATE notes SET v = 'changed' WHERE id = 1", "user"),
    ("delete-own-rows", "DELETE FROM notes WHERE id = 1", "user"),
    ("write-stream", "INSERT INTO events VALUES (1)", "user"),
    ("read-shared", "SELECT * FROM board", "user"),
    ("read-shared-in-join", "SELECT n.v, b.v FROM notes n JOIN board b ON n.id = b.id", "user"),
    ("show-and-describe", "DESCRIBE board", "user"),
    ("create-shared-table", "CREATE SHARED TABLE pub (id INT PRIMARY KEY)", "service"),
    ("create-untyped-table", "CREATE TABLE pub (id INT PRIMARY KEY)", "service"),
    (
        "create-shared-by-type",
        "CREATE TABLE pub (id INT PRIMARY KEY) WITH (TYPE = 'SHARED')",
        "service",
    ),
    ("insert-shared", "INSERT INTO board VALUES (2, 'new')", "service"),
    ("insert-select-shared", "INSERT INTO board SELECT id + 10, v FROM notes", "service"),
    ("update-shared", "UPDATE board SET v = 'edited'", "service"),
    ("delete-shared", "DELETE FROM board WHERE id = 1", "service"),
    ("flush-shared", "FLUSH TABLE board WAIT", "service"),
    ("flush-user-table", "FLUSH TABLE notes WAIT", "service"),
    ("flush-all", "FLUSH ALL WAIT", "service"),
    ("drop-table", "DROP TABLE board", "dba"),
    ("drop-user-table", "DROP TABLE notes", "dba"),
    ("alter-table", "ALTER TABLE board ADD COLUMN extra INT", "dba"),
    ("alter-own-user-table", "ALTER TABLE notes ADD COLUMN extra INT", "dba"),
    ("create-namespace", "CREATE NAMESPACE more", "dba"),
    ("drop-namespace", "DROP NAMESPACE spare", "dba"),
    ("create-user", "CREATE USER newbie", "dba"),
    ("alter-user", "ALTER USER target ROLE service", "dba"),
    ("drop-user", "DROP USER target", "dba"),
    ("repair-table", "REPAIR TABLE board", "dba"),
]


@pytest.fixture
def prepared(engine: Engine) -> Engine:
    engine.execute_script(";".join(SETUP))
    make_actors(engine)
    for name in ACTOR.values():
        engine.execute("INSERT INTO notes VALUES (1, ?)", [name], user=name)
    return engine


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(
    ("sql", "least"), [pytest.param(sql, least, id=what) for what, sql, least in CAPABILITIES]
)
def test_each_role_may_run_exactly_what_its_rank_allows(
    prepared: Engine,
    expect_error: Callable[..., KalamError],
    role: str,
    sql: str,
    least: str,
) -> None:
    actor = ACTOR[role]
    if RANK[role] >= RANK[least]:
        prepared.execute(sql, user=actor)
    else:
        exc = expect_error(
            prepared,
            sql,
            PermissionDeniedError,
            "PERMISSION_DENIED",
            user=actor,
            users=("root", actor),
        )
        assert role in exc.message or least in exc.message, exc.message


def test_a_user_writes_only_its_own_rows(prepared: Engine) -> None:
    prepared.execute("UPDATE notes SET v = 'mine'", user="usr")
    prepared.execute("DELETE FROM notes", user="svc")
    assert prepared.execute("SELECT id, v FROM notes", user="usr").rows() == [(1, "mine")]
    assert prepared.execute("SELECT id, v FROM notes", user="dbx").rows() == [(1, "dbx")]
    assert prepared.execute("SELECT id, v FROM notes", user="svc").rows() == []


# ---------------------------------------------------------------- reading system tables

SYSTEM_TABLES = (
    "namespaces",
    "tables",
    "columns",
    "jobs",
    "manifests",
    "segments",
    "stats",
    "users",
)
# Every shape a query can take to reach system.users.
SHAPES = {
    "plain": "SELECT * FROM system.users",
    "upper-case": "SELECT * FROM SYSTEM.USERS",
    "quoted": 'SELECT * FROM "system"."users"',
    "derived-table": "SELECT * FROM (SELECT user FROM system.users) s",
    "scalar-subquery": "SELECT (SELECT count(*) FROM system.users) AS n",
    "exists-subquery": "SELECT 1 AS one WHERE EXISTS (SELECT 1 FROM system.users)",
    "in-subquery": "SELECT id FROM notes WHERE v IN (SELECT user FROM system.users)",
    "cte": "WITH u AS (SELECT * FROM system.users) SELECT count(*) FROM u",
    "nested-cte": "WITH a AS (SELECT user FROM system.users), b AS (SELECT * FROM a) "
    "SELECT * FROM b",
    "union": "SELECT 'x' AS user UNION ALL SELECT user FROM system.users",
    "union-distinct": "SELECT user FROM system.live_queries UNION SELECT user FROM system.users",
    "intersect": "SELECT v FROM notes INTERSECT SELECT user FROM system.users",
    "explain": "EXPLAIN SELECT * FROM system.users",
    "explain-verbose": "EXPLAIN VERBOSE SELECT * FROM system.users",
    "explain-analyze": "EXPLAIN ANALYZE SELECT * FROM system.users",
    "join": "SELECT n.id FROM notes n JOIN system.users u ON u.user = n.v",
    "left-join": "SELECT n.id FROM notes n LEFT JOIN system.users u ON u.user = n.v",
    "cross-join": "SELECT count(*) FROM notes, system.users",
    "join-two-system-tables": "SELECT count(*) FROM system.live_queries q "
    "JOIN system.users u ON q.user = u.user",
    "insert-select": "INSERT INTO notes SELECT 100, user FROM system.users LIMIT 1",
    "update-subquery": "UPDATE notes SET v = (SELECT max(user) FROM system.users)",
    "delete-subquery": "DELETE FROM notes WHERE v IN (SELECT user FROM system.users)",
}


@pytest.fixture(scope="module")
def readers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """One engine for the read checks (they change nothing when refused, and the
    few allowed writes do not matter to later reads)."""
    eng = Engine.open(
        Path(tmp_path_factory.mktemp("readers")), durability="async", background_jobs=False
    )
    eng.execute("CREATE USER TABLE notes (id INT PRIMARY KEY, v TEXT)")
    make_actors(eng)
    for name in ACTOR.values():
        eng.execute("INSERT INTO notes VALUES (1, ?)", [name], user=name)
    eng.execute("CREATE TABLE t (id INT PRIMARY KEY)")
    eng.execute("INSERT INTO t VALUES (1)")
    eng.flush("t")
    yield eng
    eng.close()


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("name", SYSTEM_TABLES)
def test_system_tables_are_readable_by_dba_and_system_only(
    readers: Engine, role: str, name: str
) -> None:
    sql = f"SELECT * FROM system.{name}"
    if role in ("dba", "system"):
        assert readers.execute(sql, user=ACTOR[role]).is_query
        return
    with pytest.raises(PermissionDeniedError) as info:
        readers.execute(sql, user=ACTOR[role])
    assert info.value.code == "PERMISSION_DENIED"
    assert f"system.{name}" in info.value.message


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_the_system_table_restriction_holds_through_every_query_shape(
    readers: Engine, role: str, shape: str
) -> None:
    sql = SHAPES[shape]
    actor = ACTOR[role]
    if role in ("dba", "system"):
        readers.execute(sql, user=actor)
        return
    before = readers.execute("SELECT id, v FROM notes ORDER BY id", user=actor).rows()
    with pytest.raises(PermissionDeniedError) as info:
        readers.execute(sql, user=actor)
    assert "system.users" in info.value.message
    assert readers.execute("SELECT id, v FROM notes ORDER BY id", user=actor).rows() == before


def test_the_restriction_holds_inside_execute_as(readers: Engine) -> None:
    for role in ("user", "service"):
        with pytest.raises(PermissionDeniedError):
            readers.execute(f"EXECUTE AS USER '{ACTOR[role]}' (SELECT * FROM system.users)")


@pytest.mark.parametrize("role", ROLES)
def test_every_role_reads_live_queries_but_plain_roles_see_only_their_own(
    readers: Engine, role: str
) -> None:
    actor = ACTOR[role]
    seen = readers.execute("SELECT user, sql FROM system.live_queries", user=actor).rows()
    assert (actor, "SELECT user, sql FROM system.live_queries") in seen
    if role in ("user", "service"):
        assert {user for user, _ in seen} == {actor}


# ---------------------------------------------------------------- EXECUTE AS USER

# target role -> the user acted as; "self" is the actor itself
TARGETS = {"system": "root", "dba": "dbz", "service": "svz", "user": "usz"}


def allowed(actor_role: str, target: str) -> bool:
    if target == "self" or actor_role == "system":
        return True
    if actor_role == "user":
        return False
    return RANK[target] <= RANK[actor_role]


@pytest.fixture(scope="module")
def actors(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    eng = Engine.open(
        Path(tmp_path_factory.mktemp("actors")), durability="async", background_jobs=False
    )
    make_actors(eng)
    for role, name in TARGETS.items():
        if name != "root":
            eng.execute(f"CREATE USER {name} ROLE {role}")
    eng.execute("CREATE USER TABLE whoami (id INT PRIMARY KEY, name TEXT)")
    for name in [*ACTOR.values(), *TARGETS.values()]:
        eng.execute("INSERT INTO whoami VALUES (1, ?)", [name], user=name)
    yield eng
    eng.close()


@pytest.mark.parametrize("target", [*TARGETS, "self"])
@pytest.mark.parametrize("actor_role", ROLES)
def test_execute_as_user_follows_the_role_matrix(
    actors: Engine, actor_role: str, target: str
) -> None:
    actor = ACTOR[actor_role]
    name = actor if target == "self" else TARGETS[target]
    before = users(actors)
    sql = f"EXECUTE AS USER '{name}' (SELECT name FROM whoami)"
    if allowed(actor_role, target):
        # The inner statement really runs as the target: it sees the target's rows.
        assert actors.execute(sql, user=actor).rows() == [(name,)]
    else:
        with pytest.raises(PermissionDeniedError) as info:
            actors.execute(sql, user=actor)
        assert info.value.code == "PERMISSION_DENIED"
        assert name in info.value.message
    assert users(actors) == before


def test_execute_as_accepts_an_unquoted_name(actors: Engine) -> None:
    assert actors.execute("EXECUTE AS USER usz (SELECT name FROM whoami)").rows() == [("usz",)]


def test_execute_as_checks_the_inner_statement_against_the_targets_role(
    engine: Engine,
) -> None:
    make_actors(engine)
    engine.execute("CREATE TABLE board (id INT PRIMARY KEY)")
    for actor, inner in [
        ("root", "DROP TABLE board"),
        ("dbx", "DROP TABLE board"),
        ("root", "CREATE SHARED TABLE other (id INT PRIMARY KEY)"),
    ]:
        target = "svc" if actor == "dbx" else "usr"
        with pytest.raises(PermissionDeniedError):
            engine.execute(f"EXECUTE AS USER '{target}' ({inner})", user=actor)
    assert engine.execute("SHOW TABLES").rows() == [("default", "board", "SHARED")]
    engine.execute("EXECUTE AS USER 'svc' (INSERT INTO board VALUES (1))", user="dbx")
    assert engine.execute("SELECT id FROM board").rows() == [(1,)]


def test_execute_as_a_new_user_creates_it_with_role_user(engine: Engine) -> None:
    engine.execute("CREATE USER TABLE whoami (id INT PRIMARY KEY, name TEXT)")
    engine.execute("EXECUTE AS USER 'fresh' (INSERT INTO whoami VALUES (1, 'fresh'))")
    assert users(engine)["fresh"] == "user"
    assert engine.execute("SELECT name FROM whoami", user="fresh").rows() == [("fresh",)]
    assert engine.execute("SELECT name FROM whoami").rows() == []


def test_a_refused_execute_as_creates_no_user(engine: Engine) -> None:
    engine.execute("SELECT 1", user="alice")
    before = users(engine)
    with pytest.raises(PermissionDeniedError):
        engine.execute("EXECUTE AS USER 'ghost' (SELECT 1)", user="alice")
    assert users(engine) == before
