"""``kalam serve`` as a process: it announces where it listens, owns the data
directory (a second server gets a clear error), runs the flush scheduler,
and on SIGTERM / SIGINT lets in-flight statements finish, keeps every
acknowledged write and removes ``server.json``."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest

pytest.register_assert_rewrite("server_fixtures")
from server_fixtures import REPO, STOP_DEADLINE, serve_command, start_server  # noqa: E402

from engine import Engine  # noqa: E402

pytest_plugins = ["server_fixtures"]

WRITERS = 4
ACKED_BEFORE_STOP = 120


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_with_writes_in_flight_keeps_every_acknowledged_write(
    tmp_path: Path, sig: int
) -> None:
    srv = start_server(tmp_path / "data")
    srv.ok("CREATE TABLE t (id INT PRIMARY KEY, w INT)")
    token = srv.token()
    acked: list[list[int]] = [[] for _ in range(WRITERS)]
    enough = threading.Event()
    failures: list[str] = []

    def writer(w: int) -> None:
        with httpx.Client(timeout=STOP_DEADLINE) as c:
            for i in range(100_000):
                row = w * 1_000_000 + i
                try:
                    r = c.post(
                        f"{srv.url}/v1/api/sql",
                        json={"sql": "INSERT INTO t VALUES ($1, $2)", "params": [row, w]},
                        headers={"Authorization": f"Bearer {token}"},
                    )
                except httpx.HTTPError:
                    return  # the server is gone: this write was never acknowledged
                if r.status_code != 200:
                    # Only a refusal because the server is stopping is expected.
                    if r.status_code != 503:
                        failures.append(r.text)
                    return
                acked[w].append(row)
                if sum(map(len, acked)) >= ACKED_BEFORE_STOP:
                    enough.set()

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(WRITERS)]
    for t in threads:
        t.start()
    assert enough.wait(STOP_DEADLINE), srv.log()
    assert srv.stop(sig) == 0, srv.log()
    for t in threads:
        t.join(STOP_DEADLINE)
    assert not failures, failures
    assert not (srv.data_dir / "server.json").exists()
    with Engine.open(srv.data_dir, background_jobs=False) as eng:
        stored = {r[0] for r in eng.execute("SELECT id FROM t").rows()}
    every_acked = {row for rows in acked for row in rows}
    assert len(every_acked) >= ACKED_BEFORE_STOP
    assert every_acked <= stored, f"lost: {sorted(every_acked - stored)[:10]}"


def test_a_second_server_on_the_same_directory_gets_a_clear_error(tmp_path: Path) -> None:
    srv = start_server(tmp_path / "data")
    try:
        before = (srv.data_dir / "server.json").read_text()
        second = subprocess.run(
            serve_command(srv.data_dir, "--port", "0"),
            capture_output=True,
            text=True,
            timeout=STOP_DEADLINE,
            cwd=REPO,
        )
        assert second.returncode == 1
        assert "already serves" in second.stderr
        assert str(srv.proc.pid) in second.stderr and srv.url in second.stderr
        # The running server's file is untouched and it still answers.
        assert (srv.data_dir / "server.json").read_text() == before
        assert srv.rows("SELECT 1 AS one") == [["1"]]
    finally:
        srv.stop()


def test_port_zero_announces_the_chosen_port_and_binds_loopback(tmp_path: Path) -> None:
    srv = start_server(tmp_path / "data")
    try:
        info = json.loads((srv.data_dir / "server.json").read_text())
        assert set(info) == {"url", "pid", "secret", "flight_url", "version"}
        assert info["url"].startswith("http://127.0.0.1:") and info["pid"] == srv.proc.pid
        assert len(bytes.fromhex(info["secret"])) == 32
        assert f"listening on {info['url']}" in srv.log()
    finally:
        srv.stop()


def test_token_ttl_sets_the_lifetime_of_issued_tokens(tmp_path: Path) -> None:
    srv = start_server(tmp_path / "data", extra=["--token-ttl", "120"])
    try:
        r = srv.client.post(
            f"{srv.url}/v1/api/auth/local", json={"secret": srv.secret, "user": "root"}
        )
        assert r.json()["expires_in"] == 120
        import jwt

        claims = jwt.decode(r.json()["access_token"], options={"verify_signature": False})
        assert claims["exp"] - claims["iat"] == 120
    finally:
        srv.stop()


def test_the_server_runs_the_flush_scheduler(tmp_path: Path) -> None:
    srv = start_server(tmp_path / "data")
    try:
        srv.ok("CREATE TABLE f (id INT PRIMARY KEY) WITH (FLUSH_POLICY = 'rows:5')")
        srv.ok("INSERT INTO f VALUES (1), (2), (3), (4), (5), (6)")
        deadline = time.monotonic() + STOP_DEADLINE
        while srv.rows("SELECT count(*) FROM system.segments WHERE table_name = 'f'") == [["0"]]:
            assert time.monotonic() < deadline, "no flush within the deadline"
            time.sleep(0.1)  # polling interval, bounded by the deadline
        assert srv.rows("SELECT count(*) FROM f") == [["6"]]
    finally:
        srv.stop()


def test_a_bad_token_ttl_is_a_usage_error(tmp_path: Path) -> None:
    r = subprocess.run(
        [*serve_command(tmp_path / "d", "--port", "0"), "--token-ttl", "0"],
        capture_output=True,
        text=True,
        timeout=STOP_DEADLINE,
        cwd=REPO,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
    )
    assert r.returncode == 2 and "token-ttl" in r.stderr
    assert not (tmp_path / "d").exists()  # refused before the directory was touched
