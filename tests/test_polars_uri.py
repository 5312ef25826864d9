"""``kalam://`` URIs: polars' ``read_database_uri(..., engine="adbc")`` and
``kalam.connect`` reaching a real ``kalam serve`` Flight SQL port.

Polars picks the ADBC driver from the URI's scheme (``adbc_driver_kalam``,
installed with Kalam) and calls its ``dbapi.connect(uri)``; these tests drive
polars itself, so they fail if that import path or the URI's login,
namespace or USER-table isolation break.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING
from urllib.parse import quote, urlsplit

import adbc_driver_manager
import polars as pl
import pytest
from adbc_driver_kalam import InvalidUriError, KalamUri, parse_uri

import kalam
from engine.errors import TableNotFoundError

if TYPE_CHECKING:
    from kalam_fixtures import KalamServer

pytest_plugins = ["server_fixtures", "kalam_fixtures"]

ODD_PASSWORD = "p@ss:w/rd?#%"  # every character a URI gives a meaning to


@pytest.fixture(scope="module")
def uri_of(kalam_server: KalamServer) -> Iterator[Callable[..., str]]:
    """``uri_of(user, password, **query)``: a ``kalam://`` URI of the server,
    whose ``shop`` namespace holds a SHARED and a USER table."""
    port = urlsplit(kalam_server.flight_url).port
    setup = [
        ("dana", "CREATE NAMESPACE shop"),
        ("dana", "CREATE TABLE shop.items (id BIGINT PRIMARY KEY, name TEXT, price DOUBLE)"),
        ("dana", "INSERT INTO shop.items VALUES (1, 'pen', 1.5), (2, 'ink', 7.25)"),
        (
            "dana",
            "CREATE TABLE shop.notes (id BIGINT PRIMARY KEY, body TEXT) WITH (TYPE = 'USER')",
        ),
        ("dana", f"CREATE USER carol WITH PASSWORD '{ODD_PASSWORD}' ROLE user"),
        ("alice", "INSERT INTO shop.notes VALUES (1, 'alice one'), (2, 'alice two')"),
        ("bob", "INSERT INTO shop.notes VALUES (1, 'bob one')"),
    ]
    for user, sql in setup:
        with kalam.connect(kalam_server.flight_url, user=user, password=f"{user}-pw") as con:
            con.execute(sql)

    def uri(user: str, password: str | None = None, **query: str) -> str:
        login = quote(user, safe="")
        if password is not None:
            login += ":" + quote(password, safe="")
        tail = "&".join(f"{k}={v}" for k, v in query.items())
        return f"kalam://{login}@127.0.0.1:{port}" + (f"?{tail}" if tail else "")

    yield uri


def read(uri: str, query: str) -> pl.DataFrame:
    return pl.read_database_uri(query, uri, engine="adbc")


# ------------------------------------------------------------------ polars
def test_polars_reads_a_query_through_a_kalam_uri(uri_of: Callable[..., str]) -> None:
    df = read(uri_of("alice", "alice-pw"), "SELECT id, name, price FROM shop.items ORDER BY id")
    assert df.rows() == [(1, "pen", 1.5), (2, "ink", 7.25)]
    assert df.schema == {"id": pl.Int64, "name": pl.String, "price": pl.Float64}


def test_polars_sees_only_the_uri_users_rows_of_a_user_table(
    uri_of: Callable[..., str],
) -> None:
    query = "SELECT id, body FROM shop.notes ORDER BY id"
    assert read(uri_of("alice", "alice-pw"), query).rows() == [(1, "alice one"), (2, "alice two")]
    assert read(uri_of("bob", "bob-pw"), query).rows() == [(1, "bob one")]
    assert read(uri_of("carol", ODD_PASSWORD), query).rows() == []


def test_a_wrong_password_is_refused_with_a_clear_error(uri_of: Callable[..., str]) -> None:
    with pytest.raises(adbc_driver_manager.Error) as caught:
        read(uri_of("alice", "not-her-password"), "SELECT 1")
    message = str(caught.value)
    assert "AUTHENTICATION_FAILED" in message
    assert "not-her-password" not in message


def test_an_unknown_user_is_refused_like_a_wrong_password(uri_of: Callable[..., str]) -> None:
    with pytest.raises(adbc_driver_manager.Error, match="AUTHENTICATION_FAILED"):
        read(uri_of("mallory", "alice-pw"), "SELECT 1")


def test_a_percent_encoded_password_logs_in(uri_of: Callable[..., str]) -> None:
    df = read(uri_of("carol", ODD_PASSWORD), "SELECT count(*) AS n FROM shop.items")
    assert df["n"].to_list() == [2]


def test_the_password_may_come_from_the_environment(
    uri_of: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KALAM_PASSWORD", "bob-pw")
    df = read(uri_of("bob"), "SELECT body FROM shop.notes")
    assert df["body"].to_list() == ["bob one"]


def test_the_namespace_option_resolves_unqualified_names(uri_of: Callable[..., str]) -> None:
    df = read(uri_of("alice", "alice-pw", namespace="shop"), "SELECT name FROM items ORDER BY id")
    assert df["name"].to_list() == ["pen", "ink"]
    with pytest.raises(adbc_driver_manager.Error, match="TABLE_NOT_FOUND"):
        read(uri_of("alice", "alice-pw"), "SELECT name FROM items")


def test_a_uri_namespace_does_not_move_the_users_other_sessions(
    uri_of: Callable[..., str], kalam_server: KalamServer
) -> None:
    read(uri_of("bob", "bob-pw", namespace="shop"), "SELECT id FROM notes")
    with kalam.connect(kalam_server.flight_url, user="bob", password="bob-pw") as con:
        with pytest.raises(TableNotFoundError, match="default.notes"):
            con.execute("SELECT id FROM notes")
        # The user's own USE is untouched by calls that name a namespace.
        con.execute("USE shop")
        read(uri_of("bob", "bob-pw", namespace="default"), "SELECT 1 AS one")
        assert con.execute("SELECT id FROM notes").fetchall() == [(1,)]
        con.execute("USE default")


def test_an_invalid_namespace_is_an_error_naming_it(uri_of: Callable[..., str]) -> None:
    with pytest.raises(adbc_driver_manager.Error, match="INVALID_NAME") as caught:
        read(uri_of("alice", "alice-pw", namespace="Bad-Name"), "SELECT 1")
    assert "Bad-Name" in str(caught.value)


def test_a_malformed_uri_fails_before_any_connection_with_its_reason(
    uri_of: Callable[..., str],
) -> None:
    good = uri_of("alice", "alice-pw")
    with pytest.raises(adbc_driver_manager.ProgrammingError, match="Unknown option 'nmaespace'"):
        read(good + "?nmaespace=shop", "SELECT 1")
    with pytest.raises(adbc_driver_manager.ProgrammingError, match="names no port"):
        read("kalam://alice:alice-pw@127.0.0.1", "SELECT 1")
    with pytest.raises(adbc_driver_manager.ProgrammingError, match="needs a user"):
        read(good.replace("alice:alice-pw@", ""), "SELECT 1")


# ------------------------------------------------------------ kalam.connect
def test_kalam_connect_takes_the_same_uri(uri_of: Callable[..., str]) -> None:
    with kalam.connect(uri_of("alice", "alice-pw", namespace="shop")) as con:
        assert con.execute("SELECT id, body FROM notes ORDER BY id").fetchall() == [
            (1, "alice one"),
            (2, "alice two"),
        ]
    with pytest.raises(kalam.OperationalError, match="Invalid user name or password") as caught:
        kalam.connect(uri_of("alice", "wrong"))
    assert caught.value.code == "AUTHENTICATION_FAILED"  # type: ignore[attr-defined]
    with pytest.raises(kalam.InterfaceError, match="tls='maybe'"):
        kalam.connect(uri_of("alice", "alice-pw", tls="maybe"))


def test_kalam_connect_keywords_fill_in_what_the_uri_leaves_out(
    uri_of: Callable[..., str],
) -> None:
    with kalam.connect(uri_of("bob"), password="bob-pw") as con:
        assert con.execute("SELECT body FROM shop.notes").fetchall() == [("bob one",)]
    with pytest.raises(kalam.InterfaceError, match="user"):
        kalam.connect(uri_of("bob", "bob-pw"), user="alice")


# ------------------------------------------------------------------ parsing
@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("kalam://h:1", KalamUri("h", 1)),
        (
            "kalam://a%40b:p%3Aw@127.0.0.1:8081?namespace=shop&tls=true",
            KalamUri("127.0.0.1", 8081, "a@b", "p:w", "shop", True),
        ),
        ("KALAM://u@[::1]:9?tls=0", KalamUri("::1", 9, "u", None, None, False)),
    ],
)
def test_uris_parse_into_their_parts(uri: str, expected: KalamUri) -> None:
    got = parse_uri(uri, environ={})
    assert got == expected and got.password == expected.password


def test_the_flight_location_follows_the_tls_option() -> None:
    assert parse_uri("kalam://h:5?tls=false", environ={}).flight_url == "grpc://h:5"
    assert parse_uri("kalam://h:5?tls=yes", environ={}).flight_url == "grpc+tls://h:5"
    assert parse_uri("kalam://[::1]:5", environ={}).flight_url == "grpc://[::1]:5"


def test_credentials_missing_from_the_uri_come_from_the_environment() -> None:
    env = {"KALAM_USER": "eve", "KALAM_PASSWORD": "env-pw"}
    assert parse_uri("kalam://h:1", environ=env) == KalamUri("h", 1, "eve", "env-pw")
    assert parse_uri("kalam://ann:pw@h:1", environ=env) == KalamUri("h", 1, "ann", "pw")


@pytest.mark.parametrize(
    ("uri", "reason"),
    [
        ("grpc://h:1", "Not a kalam:// URI"),
        ("kalam://:1", "names no host"),
        ("kalam://h", "names no port"),
        ("kalam://h:99999", "invalid port"),
        ("kalam://h:1/shop", "?namespace=NAME"),
        ("kalam://h:1?namespace=a&namespace=b", "given twice"),
        ("kalam://h:1?namespace=", "has no value"),
        ("kalam://h:1?tls=maybe", "use true or false"),
        ("kalam://h:1?user=x", "Unknown option 'user'"),
    ],
)
def test_an_unusable_uri_says_what_is_wrong(uri: str, reason: str) -> None:
    with pytest.raises(InvalidUriError, match=reason.replace("?", r"\?")):
        parse_uri(uri, environ={})


def test_a_password_never_appears_in_an_error() -> None:
    with pytest.raises(InvalidUriError) as caught:
        parse_uri("kalam://ann:hunter2@h:1/x", environ={})
    assert "hunter2" not in str(caught.value) and "ann:***@h:1" in str(caught.value)


# ------------------------------------------------------------------ README
def test_the_readme_polars_uri_snippet_runs_against_a_server(
    uri_of: Callable[..., str], kalam_server: KalamServer
) -> None:
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme.split("`read_database_uri` takes a `kalam://` URI", 1)[1]
    snippet = re.search(r"```python\n(.*?)```", section, re.DOTALL).group(1)  # type: ignore[union-attr]
    written = "kalam://alice:secret@127.0.0.1:8081?namespace=app"
    assert written in snippet
    with kalam.connect(kalam_server.flight_url, user="dana", password="dana-pw") as con:
        con.execute("CREATE NAMESPACE IF NOT EXISTS app")
        con.execute("CREATE TABLE app.events (id BIGINT PRIMARY KEY, kind TEXT)")
        con.execute("INSERT INTO app.events VALUES (2, 'view'), (1, 'click')")
    scope: dict[str, object] = {"pl": pl}
    code = snippet.replace(written, uri_of("alice", "alice-pw", namespace="app"))
    exec(compile(code, "README.md", "exec"), scope)  # noqa: S102 - the README's own code
    assert scope["df"].rows() == [(1, "click"), (2, "view")]  # type: ignore[attr-defined]
