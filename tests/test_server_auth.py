"""Passwords, tokens and roles over HTTP against a real ``kalam serve``: login,
Bearer and Basic, wrong passwords, lockout, dropped users, expired and forged
tokens, identity only from the token, the role matrix and USER isolation
(compared with the embedded engine), and passwords never stored or shown in
clear. Unit checks of ``engine.auth`` with the engine's injectable clock come
last."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import jwt
import pytest

pytest.register_assert_rewrite("server_fixtures")
from server_fixtures import RunningServer  # noqa: E402

from engine import Engine, auth  # noqa: E402
from engine.errors import AuthenticationError, KalamError  # noqa: E402

pytest_plugins = ["server_fixtures"]

PASSWORD = "Correct-Horse-7731"


def _code(r: object) -> str:
    return r.json()["error"]["code"]  # type: ignore[attr-defined,no-any-return]


def make_user(server: RunningServer, name: str, role: str = "user", pw: str = PASSWORD) -> None:
    server.ok(f"CREATE USER {name} WITH PASSWORD '{pw}' ROLE {role}")


# ---------------------------------------------------------------- login
def test_login_returns_a_bearer_token_that_runs_statements_as_that_user(
    server: RunningServer,
) -> None:
    make_user(server, "ann")
    r = server.login("ann", PASSWORD)
    assert r.status_code == 200, r.text
    doc = r.json()
    assert set(doc) == {"access_token", "token_type", "expires_in", "user"}
    assert doc["token_type"] == "Bearer" and doc["user"] == "ann"
    assert doc["expires_in"] == auth.DEFAULT_TOKEN_TTL
    res = server.ok("SELECT 1 AS one", headers={"Authorization": f"Bearer {doc['access_token']}"})
    assert res[0]["as_user"] == "ann"


def test_http_basic_auth_runs_as_the_named_user(server: RunningServer) -> None:
    make_user(server, "bea")
    res = server.ok("SELECT 1 AS one", headers=server.basic("bea", PASSWORD))
    assert res[0]["as_user"] == "bea"


def test_a_basic_credential_that_verified_stops_counting_once_it_no_longer_holds(
    server: RunningServer,
) -> None:
    # Repeated Basic requests skip the argon2 check after the first, but a
    # password change, a lockout or a dropped user still refuse at once.
    make_user(server, "bel")
    basic = server.basic("bel", PASSWORD)
    for _ in range(3):
        assert server.ok("SELECT 1", headers=basic)[0]["as_user"] == "bel"
    server.ok("ALTER USER bel SET PASSWORD 'Second-Pass-88'")
    assert server.post_sql("SELECT 1", headers=basic).status_code == 401
    fresh = server.basic("bel", "Second-Pass-88")
    assert server.ok("SELECT 1", headers=fresh)[0]["as_user"] == "bel"
    for _ in range(auth.MAX_FAILED_LOGINS):
        assert server.login("bel", "guess").status_code == 401
    r = server.post_sql("SELECT 1", headers=fresh)
    assert r.status_code == 401 and "locked" in r.json()["error"]["message"]
    server.ok("DROP USER bel")
    assert server.post_sql("SELECT 1", headers=fresh).status_code == 401


@pytest.mark.parametrize("how", ["login", "basic"])
def test_a_wrong_password_or_unknown_user_is_refused_alike(server: RunningServer, how: str) -> None:
    make_user(server, f"cat_{how}")
    for user, pw in ((f"cat_{how}", "wrong"), ("nobody_here", PASSWORD)):
        if how == "login":
            r = server.login(user, pw)
        else:
            r = server.post_sql("SELECT 1", headers=server.basic(user, pw))
        assert r.status_code == 401, r.text
        assert _code(r) == "AUTHENTICATION_FAILED"
        assert r.json()["error"]["message"] == "Invalid user name or password"


def test_a_user_without_a_password_cannot_log_in_with_one(server: RunningServer) -> None:
    server.ok("CREATE USER nopw")
    assert server.login("nopw", "").status_code in (400, 401)
    assert server.login("nopw", "anything").status_code == 401


def test_requests_without_credentials_or_with_garbage_are_401(server: RunningServer) -> None:
    for headers in (
        {},
        {"Authorization": "Bearer not.a.jwt"},
        {"Authorization": "Basic %%%"},
        {"Authorization": "Token abc"},
    ):
        r = server.post_sql("SELECT 1", user=None, headers=headers)
        assert r.status_code == 401, headers
        assert _code(r) == "AUTHENTICATION_FAILED"
        assert "Bearer" in r.headers["www-authenticate"]


def test_local_login_needs_the_secret_from_server_json(server: RunningServer) -> None:
    url = f"{server.url}/v1/api/auth/local"
    r = server.client.post(url, json={"secret": "0" * 64, "user": "root"})
    assert r.status_code == 403 and _code(r) == "PERMISSION_DENIED"
    r = server.client.post(url, json={"secret": server.secret, "user": "loc_user"})
    assert r.status_code == 200
    assert set(r.json()) == {"access_token", "token_type", "expires_in"}


def test_identity_comes_only_from_the_token_never_the_body(server: RunningServer) -> None:
    make_user(server, "dan")
    r = server.client.post(
        f"{server.url}/v1/api/sql",
        json={"sql": "SELECT * FROM system.users", "user": "root", "as_user": "root"},
        headers=server.basic("dan", PASSWORD),
    )
    assert r.status_code == 403 and _code(r) == "PERMISSION_DENIED"


# ---------------------------------------------------------------- lockout
def test_repeated_failures_lock_the_account_even_for_the_right_password(
    server: RunningServer,
) -> None:
    make_user(server, "eve")
    for _ in range(auth.MAX_FAILED_LOGINS):
        assert server.login("eve", "guess").status_code == 401
    r = server.login("eve", PASSWORD)
    assert r.status_code == 401
    assert "locked" in r.json()["error"]["message"]
    assert server.post_sql("SELECT 1", headers=server.basic("eve", PASSWORD)).status_code == 401
    rows = server.rows(
        "SELECT failed_login_attempts, locked_until IS NOT NULL FROM system.users "
        "WHERE user = 'eve'"
    )
    assert rows == [[auth.MAX_FAILED_LOGINS, True]]
    # A new password (set by a dba) lifts the lock.
    server.ok("ALTER USER eve SET PASSWORD 'Fresh-Start-99'")
    assert server.login("eve", "Fresh-Start-99").status_code == 200
    assert server.rows(
        "SELECT failed_login_attempts, locked_until FROM system.users WHERE user = 'eve'"
    ) == [[0, None]]


def test_a_successful_login_resets_the_failure_count(server: RunningServer) -> None:
    make_user(server, "fay")
    for _ in range(auth.MAX_FAILED_LOGINS - 1):
        server.login("fay", "guess")
    assert server.login("fay", PASSWORD).status_code == 200
    assert server.rows("SELECT failed_login_attempts FROM system.users WHERE user = 'fay'") == [[0]]


# ---------------------------------------------------------------- tokens
def test_a_token_of_a_dropped_user_stops_working_even_if_the_name_returns(
    server: RunningServer,
) -> None:
    make_user(server, "gil")
    token = server.login("gil", PASSWORD).json()["access_token"]
    bearer = {"Authorization": f"Bearer {token}"}
    assert server.post_sql("SELECT 1", headers=bearer).status_code == 200
    server.ok("DROP USER gil")
    r = server.post_sql("SELECT 1", headers=bearer)
    assert r.status_code == 401 and _code(r) == "AUTHENTICATION_FAILED"
    make_user(server, "gil")
    assert server.post_sql("SELECT 1", headers=bearer).status_code == 401


def test_a_password_change_revokes_earlier_tokens(server: RunningServer) -> None:
    make_user(server, "hal")
    bearer = {"Authorization": f"Bearer {server.login('hal', PASSWORD).json()['access_token']}"}
    server.ok("ALTER USER hal SET PASSWORD 'Another-One-42'")
    assert server.post_sql("SELECT 1", headers=bearer).status_code == 401


def _claims(server: RunningServer, token: str) -> dict[str, object]:
    return jwt.decode(token, options={"verify_signature": False})  # type: ignore[no-any-return]


def test_an_expired_token_is_refused(server: RunningServer) -> None:
    make_user(server, "ivy")
    good = server.login("ivy", PASSWORD).json()["access_token"]
    claims = _claims(server, good)
    secret = bytes.fromhex((server.data_dir / auth.SECRET_FILE).read_text())
    claims["exp"] = int(claims["iat"]) - 1  # type: ignore[call-overload]
    expired = jwt.encode(claims, secret, algorithm="HS256")
    r = server.post_sql("SELECT 1", headers={"Authorization": f"Bearer {expired}"})
    assert r.status_code == 401 and "expired" in r.json()["error"]["message"]


def test_a_token_signed_with_another_key_or_naming_another_user_is_refused(
    server: RunningServer,
) -> None:
    make_user(server, "jon")
    claims = _claims(server, server.login("jon", PASSWORD).json()["access_token"])
    forged = jwt.encode({**claims, "sub": "root"}, b"x" * 32, algorithm="HS256")
    assert (
        server.post_sql("SELECT 1", headers={"Authorization": f"Bearer {forged}"}).status_code
        == 401
    )
    unsigned = jwt.encode({**claims, "sub": "root"}, None, algorithm="none")
    assert (
        server.post_sql("SELECT 1", headers={"Authorization": f"Bearer {unsigned}"}).status_code
        == 401
    )


def test_the_token_secret_file_is_private(server: RunningServer) -> None:
    server.login("root", "x")  # any token operation creates it
    server.token("root")
    assert (server.data_dir / auth.SECRET_FILE).stat().st_mode & 0o777 == 0o600
    assert (server.data_dir / "server.json").stat().st_mode & 0o777 == 0o600


# ---------------------------------------------------------------- roles
ROLE_STATEMENTS = [
    "CREATE NAMESPACE rm_{n}",
    "CREATE TABLE rm.shared_{n} (id INT PRIMARY KEY) WITH (TYPE = 'SHARED')",
    "CREATE TABLE rm.user_{n} (id INT PRIMARY KEY) WITH (TYPE = 'USER')",
    "INSERT INTO rm.base_shared VALUES ({i})",
    "INSERT INTO rm.base_user VALUES ({i})",
    "SELECT count(*) FROM rm.base_shared",
    "SELECT count(*) FROM system.users",
    "SELECT count(*) FROM (SELECT user FROM system.users) s",
    "FLUSH TABLE rm.base_shared",
    "ALTER TABLE rm.base_shared ADD COLUMN c_{n} INT",
    "CREATE USER made_by_{n}",
    "EXECUTE AS USER root (SELECT 1)",
    "DROP TABLE rm.drop_me_{n}",
]


def _setup_roles(run: Callable[[str], object]) -> None:
    run("CREATE NAMESPACE rm")
    run("CREATE TABLE rm.base_shared (id INT PRIMARY KEY) WITH (TYPE = 'SHARED')")
    run("CREATE TABLE rm.base_user (id INT PRIMARY KEY) WITH (TYPE = 'USER')")
    for role in ("user", "service", "dba"):
        run(f"CREATE TABLE rm.drop_me_{role} (id INT PRIMARY KEY)")


def test_every_role_rule_holds_over_http_as_it_does_embedded(
    server: RunningServer, tmp_path: Path
) -> None:
    _setup_roles(lambda s: server.ok(s))
    for role in ("user", "service", "dba"):
        make_user(server, f"rm_{role}", role)
    outcomes_http: dict[tuple[str, str], str] = {}
    outcomes_embedded: dict[tuple[str, str], str] = {}
    with Engine.open(tmp_path / "embedded", durability="async", background_jobs=False) as eng:
        _setup_roles(eng.execute)
        for role in ("user", "service", "dba"):
            eng.execute(f"CREATE USER rm_{role} ROLE {role}")
        for i, (role, template) in enumerate(
            (r, t) for r in ("user", "service", "dba") for t in ROLE_STATEMENTS
        ):
            sql = template.format(n=role, i=i)
            r = server.post_sql(sql, headers=server.basic(f"rm_{role}", PASSWORD))
            outcomes_http[(role, template)] = "ok" if r.status_code == 200 else _code(r)
            try:
                eng.execute(sql, user=f"rm_{role}")
                outcomes_embedded[(role, template)] = "ok"
            except KalamError as exc:
                outcomes_embedded[(role, template)] = (
                    "PERMISSION_DENIED" if exc.code == "PERMISSION_DENIED" else exc.code
                )
    assert outcomes_http == {
        k: ("SQL_EXECUTION_ERROR" if v not in ("ok", "PERMISSION_DENIED") else v)
        for k, v in outcomes_embedded.items()
    }
    # The matrix is not trivial: each role is refused something and allowed something.
    for role in ("user", "service"):
        got = {v for (r, _), v in outcomes_http.items() if r == role}
        assert {"ok", "PERMISSION_DENIED"} <= got, (role, got)
    assert outcomes_http[("dba", "SELECT count(*) FROM system.users")] == "ok"


def test_user_tables_stay_isolated_per_token(server: RunningServer) -> None:
    server.ok(
        "CREATE NAMESPACE iso; CREATE TABLE iso.notes (id INT PRIMARY KEY, body TEXT) "
        "WITH (TYPE = 'USER')"
    )
    for who in ("kim", "lee"):
        make_user(server, who)
    kim, lee = server.basic("kim", PASSWORD), server.basic("lee", PASSWORD)
    server.ok("INSERT INTO iso.notes VALUES (1, 'kim-1'), (2, 'kim-2')", headers=kim)
    server.ok("INSERT INTO iso.notes VALUES (1, 'lee-1')", headers=lee)
    assert server.rows("SELECT id, body FROM iso.notes ORDER BY id", headers=kim) == [
        [1, "kim-1"],
        [2, "kim-2"],
    ]
    assert server.rows("SELECT id, body FROM iso.notes ORDER BY id", headers=lee) == [[1, "lee-1"]]
    assert server.ok("UPDATE iso.notes SET body = 'x'", headers=lee)[0]["row_count"] == 1
    assert server.ok("DELETE FROM iso.notes WHERE id = 2", headers=lee)[0]["row_count"] == 0
    assert server.rows("SELECT body FROM iso.notes ORDER BY id", headers=kim) == [
        ["kim-1"],
        ["kim-2"],
    ]
    r = server.post_sql("EXECUTE AS USER kim (SELECT * FROM iso.notes)", headers=lee)
    assert r.status_code == 403


def test_execute_as_reports_the_user_it_ran_as(server: RunningServer) -> None:
    server.ok("CREATE USER mia")
    (res,) = server.ok("EXECUTE AS USER mia (SELECT 1 AS one)")
    assert res["as_user"] == "mia"


# ---------------------------------------------------------------- secrecy
def test_a_password_never_appears_in_clear_anywhere(server: RunningServer) -> None:
    secret = "Unmistakable-Pass-5150"
    server.ok(f"CREATE USER nia WITH PASSWORD '{secret}' ROLE user")
    server.ok(f"ALTER USER nia SET PASSWORD '{secret}x'")
    bad = server.post_sql(f"ALTER USER ghost SET PASSWORD '{secret}'")
    assert bad.status_code >= 400 and secret not in bad.text
    bad = server.post_sql(f"CREATE USER nia WITH PASSWORD '{secret}' ROLE nonsense")
    assert bad.status_code >= 400 and secret not in bad.text
    table = server.post_sql("SELECT * FROM system.users").text
    assert secret not in table and "argon2" not in table
    assert secret not in server.post_sql("SELECT * FROM system.live_queries").text
    server.login("nia", secret)  # a failed login with the old password
    assert secret not in server.log()
    for path in server.data_dir.rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path


def test_only_a_dba_may_set_passwords(server: RunningServer) -> None:
    make_user(server, "oli")
    r = server.post_sql(
        "ALTER USER root SET PASSWORD 'Takeover-1'", headers=server.basic("oli", PASSWORD)
    )
    assert r.status_code == 403
    r = server.post_sql(
        "CREATE USER pam WITH PASSWORD 'x-1' ROLE dba", headers=server.basic("oli", PASSWORD)
    )
    assert r.status_code == 403


# ---------------------------------------------------------------- engine.auth units
@pytest.fixture
def clocked(tmp_path: Path) -> tuple[Engine, list[int]]:
    now = [1_800_000_000_000]
    eng = Engine.open(
        tmp_path / "d", durability="async", background_jobs=False, clock_ms=lambda: now[0]
    )
    yield eng, now  # type: ignore[misc]
    eng.close()


def test_a_token_expires_after_its_ttl_on_the_engine_clock(
    clocked: tuple[Engine, list[int]],
) -> None:
    eng, now = clocked
    eng.execute(f"CREATE USER qin WITH PASSWORD '{PASSWORD}'")
    token = auth.issue_token(eng.db, "qin", ttl_seconds=60)
    now[0] += 59_000
    assert auth.verify_token(eng.db, token) == "qin"
    now[0] += 1_000
    with pytest.raises(AuthenticationError, match="expired"):
        auth.verify_token(eng.db, token)


def test_a_lockout_ends_when_locked_until_passes(clocked: tuple[Engine, list[int]]) -> None:
    eng, now = clocked
    eng.execute(f"CREATE USER ray WITH PASSWORD '{PASSWORD}'")
    for _ in range(3):
        with pytest.raises(AuthenticationError):
            auth.verify_password(eng.db, "ray", "nope", max_failures=3, lockout_seconds=10)
    with pytest.raises(AuthenticationError, match="locked"):
        auth.verify_password(eng.db, "ray", PASSWORD)
    now[0] += 10_001
    assert auth.verify_password(eng.db, "ray", PASSWORD) == "ray"
    assert eng.users.get("ray").failed_login_attempts == 0


def test_failed_logins_and_hashes_survive_a_restart(tmp_path: Path) -> None:
    with Engine.open(tmp_path / "d", durability="async", background_jobs=False) as eng:
        eng.execute(f"CREATE USER sam WITH PASSWORD '{PASSWORD}'")
        with pytest.raises(AuthenticationError):
            auth.verify_password(eng.db, "sam", "nope")
    with Engine.open(tmp_path / "d", durability="async", background_jobs=False) as eng:
        assert eng.users.get("sam").failed_login_attempts == 1
        assert auth.verify_password(eng.db, "sam", PASSWORD) == "sam"


def test_user_reprs_and_statement_reprs_hide_the_password(tmp_path: Path) -> None:
    from engine.sql import parser

    (stmt,) = parser.parse(f"CREATE USER tia WITH PASSWORD '{PASSWORD}'")
    assert PASSWORD not in repr(stmt) and PASSWORD not in stmt.sql
    with Engine.open(tmp_path / "d", durability="async", background_jobs=False) as eng:
        result = eng.execute(f"CREATE USER tia WITH PASSWORD '{PASSWORD}'")
        assert PASSWORD not in result.statement
        user = eng.users.get("tia")
        assert "argon2" not in repr(user) and user.password_hash.startswith("$argon2id$")


@pytest.mark.parametrize(
    "sql",
    [
        "ALTER USER root SET PASSWORD '{pw}', '{pw}'",
        "CREATE USER uma WITH PASSWORD '{pw}' ROLE user '{pw}'",
        "CREATE USER uma WITH PASSWORD '{pw}' ROLE nonsense",
    ],
)
def test_a_mistyped_password_statement_leaks_nothing(tmp_path: Path, sql: str) -> None:
    from engine.sql import parser

    text = sql.format(pw=PASSWORD)
    (stmt,) = parser.parse(text)
    assert PASSWORD not in stmt.sql and PASSWORD not in repr(stmt)
    with Engine.open(tmp_path / "d", durability="async", background_jobs=False) as eng:
        with pytest.raises(KalamError) as caught:
            eng.execute(text)
        assert PASSWORD not in str(caught.value) and PASSWORD not in repr(caught.value)
