"""``%kalam --connect grpc://...`` / ``http://...``: the magic as a client of
a real ``kalam serve`` (Flight SQL and HTTP), with the same results, ``-o``,
errors and completion as on a data directory."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest
from test_magic_support import cell, ip, line  # noqa: F401

pytest.register_assert_rewrite("server_fixtures", "kalam_fixtures")
from kalam_fixtures import PASSWORDS, KalamServer  # noqa: E402

from kalam_magic import CellResult, KalamCellError  # noqa: E402
from kalam_magic.completion import Catalog  # noqa: E402

pytest_plugins = ["server_fixtures", "kalam_fixtures"]


def _url(server: KalamServer, kind: str) -> str:
    base = server.flight_url if kind == "flight" else server.http_url
    scheme, rest = base.split("://", 1)
    return f"{scheme}://dana:$pw@{rest}"


@pytest.mark.parametrize("kind", ["flight", "http"])
def test_connect_to_a_server_runs_cells_there(
    ip: Any,  # noqa: F811
    kalam_server: KalamServer,
    kind: str,
) -> None:
    ip.user_ns["pw"] = PASSWORDS["dana"]
    line(ip, f"--connect {_url(kalam_server, kind)}")
    table = f"app.magic_{kind}"
    cell(
        ip,
        f"CREATE NAMESPACE IF NOT EXISTS app; "
        f"CREATE TABLE {table} (id BIGINT PRIMARY KEY, name TEXT); "
        f"INSERT INTO {table} VALUES (1, 'a'), (2, 'b')",
    )
    ip.user_ns["wanted"] = 2
    out = cell(ip, f"SELECT id, name FROM {table} WHERE id <= :wanted ORDER BY id", "-o df")
    assert isinstance(out, CellResult)
    assert out.result.rows() == [(1, "a"), (2, "b")]
    assert isinstance(ip.user_ns["df"], pd.DataFrame)
    assert ip.user_ns["df"]["name"].tolist() == ["a", "b"]
    # The rows are on the server: its HTTP API sees them too.
    assert kalam_server.running.rows(f"SELECT count(*) FROM {table}") == [["2"]]
    with pytest.raises(KalamCellError) as err:
        cell(ip, f"SELECT nope FROM {table}")
    assert err.value.code == "COLUMN_NOT_FOUND"
    magics = ip.magics_manager.registry["KalamMagics"]
    assert "app" in Catalog(magics.engine(), magics.settings.user).namespaces()


def test_a_wrong_password_leaves_the_previous_target_in_effect(
    ip: Any,  # noqa: F811
    kalam_server: KalamServer,
) -> None:
    cell(ip, "CREATE TABLE local_only (id INT PRIMARY KEY)")
    ip.user_ns["pw"] = "wrong"
    with pytest.raises(KalamCellError) as err:
        line(ip, f"--connect {_url(kalam_server, 'flight')}")
    assert err.value.code == "AUTHENTICATION_FAILED"
    assert cell(ip, "SELECT count(*) AS n FROM local_only").result.scalar() == 0


def test_connecting_back_to_a_directory_leaves_the_server(
    ip: Any,  # noqa: F811
    kalam_server: KalamServer,
    tmp_path: Any,
) -> None:
    ip.user_ns["pw"] = PASSWORDS["dana"]
    line(ip, f"--connect {_url(kalam_server, 'flight')}")
    magics = ip.magics_manager.registry["KalamMagics"]
    server_engine = magics.engine()
    line(ip, f"--connect {tmp_path / 'other'}")
    assert server_engine.closed
    assert magics.settings.user == "root"  # the local user is back
    cell(ip, "CREATE TABLE here (id INT PRIMARY KEY)")
    assert cell(ip, "SELECT count(*) FROM here").result.scalar() == 0


def test_another_user_cannot_be_chosen_on_a_server_connection(
    ip: Any,  # noqa: F811
    kalam_server: KalamServer,
) -> None:
    ip.user_ns["pw"] = PASSWORDS["dana"]
    line(ip, f"--connect {_url(kalam_server, 'http')}")
    with pytest.raises(KalamCellError) as err:
        cell(ip, "SELECT 1", "--user alice")
    assert err.value.code == "PERMISSION_DENIED"
