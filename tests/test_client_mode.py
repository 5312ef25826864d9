"""Sharing a data directory through ``kalam serve`` (issue 10, "it just works
with several notebooks"): ``Engine.open`` finds the server and returns a
client whose results and errors are the embedded engine's; a stale
``server.json`` is ignored; a directory held by a plain embedded process
gives an error naming the path, the pid, the command and how to share it.

The client is compared with an embedded engine statement by statement: both
run the same SQL (the embedded one on a directory of its own) and must give
equal ``Result`` fields and equal errors (class, message, line, column).
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from helpers_proc import HOLDER, Child
from IPython.core.completer import provisionalcompleter
from server_fixtures import RunningServer, start_server
from test_magic_support import cell, ip, line  # noqa: F401

from engine import Engine, KalamError
from engine.cli import main as kalam_main
from engine.errors import DataDirInUseError, LiveQueryClosedError, ServerUnavailableError
from engine.remote import RemoteEngine
from kalam_magic import KalamCellError


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """One ``kalam serve`` for the module; tests use their own namespaces and users."""
    srv = start_server(tmp_path_factory.mktemp("served") / "data")
    yield srv
    assert srv.stop() == 0


@pytest.fixture
def remote(served: RunningServer) -> Any:
    eng = Engine.open(served.data_dir)
    yield eng
    eng.close()


@pytest.fixture
def embedded(tmp_path: Path) -> Any:
    eng = Engine.open(tmp_path / "embedded")
    yield eng
    eng.close()


def outcome(eng: Any, sql: str, params: Any = None, user: str | None = None) -> tuple[Any, ...]:
    """What a statement gives, comparable across engines (elapsed time left out)."""
    try:
        r = eng.execute(sql, params, user=user)
    except KalamError as err:
        return ("error", type(err).__name__, err.code, err.message, err.line, err.column)
    table = r.table
    return ("ok", r.is_query, r.message, r.rows_affected, table.schema, table.to_pylist())


def both(remote: Any, embedded: Any, statements: list[Any]) -> None:
    """Run ``statements`` (sql, or (sql, params[, user])) on both; assert equal outcomes."""
    for item in statements:
        sql, params, user = (item, None, None) if isinstance(item, str) else (*item, None)[:3]
        got, want = outcome(remote, sql, params, user), outcome(embedded, sql, params, user)
        assert got == want, sql


# ---------------------------------------------------------------- discovery


def test_engine_open_finds_the_running_server(served, remote):
    assert isinstance(remote, RemoteEngine)
    assert remote.url == served.url
    assert remote.data_dir == served.data_dir.resolve()
    assert served.url in repr(remote) and "data" in repr(remote)
    assert remote.execute("SELECT 41 + 1 AS answer").scalar() == 42
    # The secret never shows in a repr.
    assert served.secret not in repr(remote.server)


def test_embedded_true_never_becomes_a_client_and_names_the_server(served):
    with pytest.raises(DataDirInUseError) as info:
        Engine.open(served.data_dir, embedded=True)
    err = info.value
    assert err.fields["pid"] == served.proc.pid
    assert "serve" in err.fields["command"]
    assert "Kalam server" in err.message and str(served.data_dir.resolve()) in err.message


def test_a_stale_server_file_is_ignored(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    dead = Child("print('bye', flush=True)")
    assert dead.line() == "bye"
    assert dead.wait() == 0
    for pid in (dead.proc.pid, os.getpid()):  # gone / alive but not a server
        record = {"url": "http://127.0.0.1:9", "pid": pid, "secret": "00" * 32}
        (data / "server.json").write_text(json.dumps(record))
        with Engine.open(data) as eng:
            assert isinstance(eng, Engine)
            assert eng.execute("SELECT 1").scalar() == 1


# ---------------------------------------------------------------- same results, same errors


TYPES_TABLE = (
    "CREATE TABLE cm.vals (id BIGINT PRIMARY KEY, i INT, f DOUBLE, t TEXT, b BOOLEAN, "
    "ts TIMESTAMP, d DATE)"
)


def test_results_are_the_embedded_results(remote, embedded):
    both(
        remote,
        embedded,
        [
            "CREATE NAMESPACE cm",
            TYPES_TABLE,
            "INSERT INTO cm.vals VALUES (1, 10, 1.5, 'one', true, "
            "'2025-01-02 03:04:05', '2025-01-02'), (2, NULL, NULL, NULL, NULL, NULL, NULL)",
            ("INSERT INTO cm.vals (id, i, t) VALUES (?, ?, ?)", [3, -7, "ünï"]),
            ("INSERT INTO cm.vals (id, t) VALUES (:id, :t)", {"id": 9007199254740993, "t": "big"}),
            "SELECT * FROM cm.vals ORDER BY id",
            "SELECT count(*) AS n, sum(i) AS s, avg(f) AS a FROM cm.vals",
            "UPDATE cm.vals SET t = 'changed' WHERE id = 2",
            "DELETE FROM cm.vals WHERE id = 3",
            "SELECT id, t FROM cm.vals ORDER BY id",
            "SELECT table_name, table_type FROM system.tables WHERE namespace = 'cm'",
            "SHOW NAMESPACES",
            ("SELECT id FROM cm.vals WHERE ts > ?", ["2025-01-01T00:00:00"]),
        ],
    )


def test_errors_have_the_same_class_message_and_position(remote, embedded):
    setup = [
        "CREATE NAMESPACE ce",
        "CREATE TABLE ce.t (id INT PRIMARY KEY, name TEXT NOT NULL)",
        "INSERT INTO ce.t VALUES (1, 'a')",
    ]
    both(remote, embedded, setup)
    both(
        remote,
        embedded,
        [
            "SELEC 1",
            "SELECT * FROM\n  ce.t WHERE (",
            "SELECT * FROM ce.missing",
            "SELECT nope FROM ce.t",
            "INSERT INTO ce.t VALUES (1, 'dup')",
            "INSERT INTO ce.t (id) VALUES (2)",
            "INSERT INTO ce.t VALUES ('x', 'y')",
            "CREATE NAMESPACE ce",
            ("SELECT * FROM ce.t WHERE id = ?", []),
            ("SELECT * FROM ce.t WHERE id = :id", {"other": 1}),
            "SELECT 1; SELECT 2",
            "",
        ],
    )


def test_user_isolation_and_roles_are_the_embedded_ones(remote, embedded):
    both(
        remote,
        embedded,
        [
            "CREATE NAMESPACE iso",
            "CREATE TABLE iso.notes (id INT PRIMARY KEY, body TEXT) WITH (TYPE = 'USER')",
            ("INSERT INTO iso.notes VALUES (1, 'alice note')", None, "alice"),
            ("INSERT INTO iso.notes VALUES (1, 'bob note')", None, "bob"),
            ("SELECT * FROM iso.notes", None, "alice"),
            ("SELECT * FROM iso.notes", None, "bob"),
            ("SELECT count(*) FROM iso.notes", None, "carol"),
            ("CREATE NAMESPACE not_for_users", None, "alice"),
            ("CREATE TABLE iso.shared_t (id INT PRIMARY KEY)", None, "bob"),
            ("UPDATE iso.notes SET body = 'x' WHERE id = 1", None, "carol"),
            ("SELECT user_id, role FROM system.users ORDER BY user_id", None, "alice"),
        ],
    )
    # Over the network the rows stay the user's own.
    assert remote.execute("SELECT body FROM iso.notes", user="bob").rows() == [("bob note",)]


def test_use_is_remembered_per_user_and_per_connection(remote):
    remote.execute("CREATE NAMESPACE usens")
    remote.execute("CREATE TABLE usens.here (id INT PRIMARY KEY)")
    remote.execute("INSERT INTO usens.here VALUES (5)")
    assert remote.execute("USE usens", user="dana").message == "Using namespace usens"
    assert remote.execute("SELECT id FROM here", user="dana").scalar() == 5
    with pytest.raises(KalamError):
        remote.execute("SELECT id FROM here", user="erin")  # erin is still in default
    conn = remote.connect(user="erin")
    conn.execute_script("USE usens; SELECT 1")
    assert conn.namespace == "usens"
    assert conn.execute("SELECT id FROM here").scalar() == 5
    assert remote.connect(user="erin").namespace == "default"


def test_a_script_with_a_syntax_error_runs_nothing_and_points_into_the_script(remote, embedded):
    for eng in (remote, embedded):
        eng.execute("CREATE TABLE scr (id INT PRIMARY KEY)")
    script = "INSERT INTO scr VALUES (1);\nSELECT 1;\n  SELEC 2"
    errors = []
    for eng in (remote, embedded):
        with pytest.raises(KalamError) as info:
            eng.execute_script(script)
        errors.append((type(info.value), info.value.message, info.value.line, info.value.column))
        assert eng.execute("SELECT count(*) FROM scr").scalar() == 0
    assert errors[0] == errors[1] and errors[0][2] == 3
    # An execution error later in a script keeps the earlier statements, as embedded.
    for eng in (remote, embedded):
        with pytest.raises(KalamError):
            eng.execute_script("INSERT INTO scr VALUES (2); SELECT * FROM nowhere")
        assert eng.execute("SELECT id FROM scr").rows() == [(2,)]


def test_insert_arrow_and_flush_through_the_server(remote, embedded):
    data = pa.table({"id": [1, 2, 3], "x": [1.5, None, 3.5], "label": ["a", "b", None]})
    for eng in (remote, embedded):
        first = eng.insert_arrow("bulk", data)
        assert first.message == "Inserted 3 row(s) into new table default.bulk"
        assert eng.insert_arrow("bulk", pa.table({"id": [4], "x": [4.5]})).rows_affected == 1
        assert eng.flush("bulk").message.startswith("Flush")
    rows = "SELECT * FROM bulk ORDER BY id"
    assert remote.execute(rows).table == embedded.execute(rows).table
    both(
        remote,
        embedded,
        [
            "SELECT column_name, data_type FROM system.columns "
            "WHERE table_name = 'bulk' ORDER BY column_name"
        ],
    )


def test_kalam_sql_uses_the_server(served, capsys):
    code = kalam_main(["sql", "SELECT 6 * 7 AS n", "--data-dir", str(served.data_dir)])
    assert code == 0
    assert capsys.readouterr().out.split() == ["n", "--", "42", "(1", "row)"]
    code = kalam_main(["sql", "SELECT 1", "--data-dir", str(served.data_dir), "--embedded"])
    assert code == 1
    assert "is in use by another process" in capsys.readouterr().err


# ---------------------------------------------------------------- server lifecycle


def test_client_follows_a_restarted_server_then_reports_a_lost_one(tmp_path):
    data = tmp_path / "data"
    first = start_server(data)
    try:
        eng = Engine.open(data)
        assert isinstance(eng, RemoteEngine)
        eng.execute("CREATE TABLE life (id INT PRIMARY KEY)")
        eng.execute("INSERT INTO life VALUES (1)")
    finally:
        assert first.stop() == 0
    second = start_server(data)
    try:
        assert second.url != first.url or second.secret != first.secret
        assert eng.execute("SELECT id FROM life").rows() == [(1,)]
    finally:
        assert second.stop() == 0
    with pytest.raises(ServerUnavailableError) as info:
        eng.execute("SELECT 1")
    assert "cannot be reached" in info.value.message and str(data.resolve()) in info.value.message
    assert eng.lost
    eng.close()
    # With no server, the directory opens embedded again.
    with Engine.open(data) as again:
        assert isinstance(again, Engine)
        assert again.execute("SELECT id FROM life").rows() == [(1,)]


# ---------------------------------------------------------------- held by an embedded process


def test_in_use_error_names_path_pid_command_and_how_to_share(tmp_path):
    data = tmp_path / "data"
    holder = Child(HOLDER, str(data))
    try:
        assert holder.line() == "ready"
        with pytest.raises(DataDirInUseError) as info:
            Engine.open(data)
        err = info.value
        assert str(data.resolve()) in err.message
        assert f"(process {holder.proc.pid})" in err.message
        assert "Engine.open(sys.argv[1])" in err.message  # the holder's command line
        assert "open since" in err.message
        assert f"kalam serve --data-dir {data.resolve()}" in err.message
        assert "make lab" in err.message
        assert "Engine.open(sys.argv[1])" in err.fields["command"]
        # owner.json is what a reader of the directory can see too.
        owner = json.loads((data / "owner.json").read_text())
        assert owner["pid"] == holder.proc.pid
        holder.send("release")
        assert holder.line() == "closed"
        assert holder.wait() == 0
    finally:
        holder.close()
    assert not (data / "owner.json").exists()  # removed by a clean close


def _completions(shell: Any, text: str) -> list[tuple[str, str]]:
    with provisionalcompleter():
        return [(c.text, c.type) for c in shell.Completer.completions(text, len(text))]


def test_completion_says_why_when_the_directory_is_held_elsewhere(ip, tmp_path):  # noqa: F811
    busy = tmp_path / "busy"
    holder = Child(HOLDER, str(busy))
    try:
        assert holder.line() == "ready"
        ip.run_line_magic("config", f"Kalam.data_dir = {str(busy)!r}")
        found = _completions(ip, "%%kalam\nSELECT * FROM us")
    finally:
        holder.send("release")
        holder.close()
    assert len(found) == 1
    text, why = found[0]
    assert text == "us"  # choosing it changes nothing
    assert why.startswith("Kalam completion unavailable: DataDirInUseError")
    assert f"(process {holder.proc.pid})" in why and "\n" not in why


def test_the_magic_is_a_client_and_completion_works_through_it(ip, served):  # noqa: F811
    ip.run_line_magic("config", f"Kalam.data_dir = {str(served.data_dir)!r}")
    cell(ip, "CREATE NAMESPACE mg; CREATE TABLE mg.things (id INT PRIMARY KEY, label TEXT)")
    cell(ip, "INSERT INTO mg.things VALUES (1, 'x')")
    out = line(ip, "SELECT label FROM mg.things")
    assert out.scalar() == "x"
    magics = ip.magics_manager.registry["KalamMagics"]
    assert isinstance(magics.engine(), RemoteEngine)
    assert _completions(ip, "%%kalam\nSELECT * FROM mg.th") == [("mg.things", "table")]
    assert _completions(ip, "%%kalam\nSELECT mg.things.la") == [("mg.things.label", "column")]
    # An error renders exactly as embedded: class, message, position in the cell.
    with pytest.raises(KalamCellError) as info:
        cell(ip, "SELECT 1;\nSELECT * FROM mg.nothing")
    assert info.value.headline() == (
        "TableNotFoundError: Table 'mg.nothing' does not exist (line 3, column 15)"
    )


def test_completion_reports_a_server_that_went_away(ip, tmp_path):  # noqa: F811
    srv = start_server(tmp_path / "gone")
    try:
        ip.run_line_magic("config", f"Kalam.data_dir = {str(srv.data_dir)!r}")
        cell(ip, "CREATE TABLE gone_t (id INT PRIMARY KEY)")
        assert _completions(ip, "%%kalam\nSELECT * FROM gone_") == [("gone_t", "table")]
    finally:
        assert srv.stop(signal.SIGTERM) == 0
    found = _completions(ip, "%%kalam\nSELECT * FROM gone_")
    assert len(found) == 1 and "ServerUnavailableError" in found[0][1]
    assert "cannot be reached" in found[0][1]


def test_serverctl_starts_reuses_and_stops_a_background_server(tmp_path, capsys):
    from engine import serverctl

    data = tmp_path / "lab-data"
    try:
        assert serverctl.main(["start", "--data-dir", str(data)]) == 0
        info = json.loads((data / "server.json").read_text())
        assert int((data / "kalam-serve.pid").read_text()) == info["pid"]
        assert serverctl.main(["start", "--data-dir", str(data)]) == 0  # reused, not a second one
        assert "already running" in capsys.readouterr().out
        with Engine.open(data) as eng:
            assert isinstance(eng, RemoteEngine) and eng.url == info["url"]
    finally:
        assert serverctl.main(["stop", "--data-dir", str(data)]) == 0
    assert not (data / "server.json").exists() and not (data / "kalam-serve.pid").exists()
    assert "server stopped" in (data / "kalam-serve.log").read_text()
    assert serverctl.main(["status", "--data-dir", str(data)]) == 1


# ---------------------------------------------------------------- live queries


COLS = ["id", "name", "price", "at"]


def test_a_subscription_through_the_server_sees_what_embedded_sees(remote, embedded):
    setup = [
        "CREATE NAMESPACE lv",
        "CREATE TABLE lv.items (id BIGINT PRIMARY KEY, name TEXT, price DOUBLE, at TIMESTAMP)",
        "INSERT INTO lv.items VALUES (1, 'a', 1.5, '2025-01-01 00:00:00'), (2, 'b', 2.5, NULL)",
    ]
    both(remote, embedded, setup)
    query = "SUBSCRIBE TO SELECT id, name, price, at FROM lv.items WHERE price > 1"
    subs = [remote.subscribe(query), embedded.subscribe(query)]
    try:
        assert subs[0].schema == subs[1].schema
        assert subs[0].initial.sort_by("id") == subs[1].initial.sort_by("id")
        writes = [
            "INSERT INTO lv.items VALUES (3, 'c', 9.0, '2025-02-03 04:05:06')",
            "UPDATE lv.items SET name = 'b2' WHERE id = 2",
            "INSERT INTO lv.items VALUES (4, 'cheap', 0.5, NULL)",  # filtered out
            "DELETE FROM lv.items WHERE id = 1",
        ]
        both(remote, embedded, writes)
        seen: list[list[tuple[Any, ...]]] = [[], []]
        for i, sub in enumerate(subs):
            for _ in range(3):
                change = sub.get(timeout=30)
                assert change is not None
                old = change.old_values.to_pylist() if change.old_values is not None else None
                seen[i].append((change.change_type, change.rows.to_pylist(), old))
        assert seen[0] == seen[1]
        assert [kind for kind, _, _ in seen[0]] == ["insert", "update", "delete"]
        # As a statement (what %%kalam SUBSCRIBE runs), the result carries the subscription.
        results = [eng.execute(query) for eng in (remote, embedded)]
        subs += [r.subscription for r in results]
        assert [(r.is_query, r.columns, len(r)) for r in results] == [(True, COLS, 2)] * 2
        assert results[0].message == f"Subscribed: live query {results[0].subscription.id}"
        # KILL LIVE QUERY ends the remote subscription like the embedded one.
        remote.execute(f"KILL LIVE QUERY '{subs[0].id}'")
        with pytest.raises(LiveQueryClosedError):
            subs[0].get(timeout=30)
        assert subs[0].closed
    finally:
        for sub in subs:
            sub.close()


# ---------------------------------------------------------------- interrupts

ENDLESS = "SELECT value FROM range(0, 1000000000000) WHERE value % 1000 = 7"


def _running(eng: Any, sql: str) -> list[str]:
    rows = eng.execute(
        "SELECT query_id FROM system.live_queries WHERE kind = 'query' AND sql = :sql",
        {"sql": sql},
    ).rows()
    return [r[0] for r in rows]


def test_an_interrupted_statement_is_killed_on_the_server(tmp_path, monkeypatch):
    import threading
    import time

    # A server of its own: if the kill failed, the endless statement would
    # keep the module's server from stopping.
    srv = start_server(tmp_path / "data")
    remote, watcher = Engine.open(srv.data_dir), Engine.open(srv.data_dir)
    real_post = remote._post
    request_ended = threading.Event()
    answers: list[Exception] = []

    def interrupted_post(user: str, body: dict[str, Any]) -> Any:
        # The request goes out for real; once the server runs it, the caller
        # is interrupted while it waits for the answer (a kernel interrupt
        # raises KeyboardInterrupt exactly there). No signal is sent, so
        # nothing depends on which thread a signal lands in.
        def send() -> None:
            try:
                real_post(user, body)
            except Exception as exc:  # the cancelled request's answer, checked below
                answers.append(exc)
            finally:
                request_ended.set()

        threading.Thread(target=send, daemon=True).start()
        deadline = time.monotonic() + 120
        while not _running(watcher, ENDLESS):
            assert time.monotonic() < deadline, "the statement never started on the server"
            time.sleep(0.05)  # polling, bounded by the deadline
        raise KeyboardInterrupt

    monkeypatch.setattr(remote, "_post", interrupted_post)
    try:
        with pytest.raises(KeyboardInterrupt):
            remote.execute(ENDLESS)
        # The client killed its statement on the server: it leaves the running
        # list and the abandoned request is answered.
        deadline = time.monotonic() + 120
        while _running(watcher, ENDLESS) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _running(watcher, ENDLESS) == []
        assert request_ended.wait(120)
        monkeypatch.undo()
        assert remote.execute("SELECT 41 + 1").scalar() == 42
    finally:
        remote.close()
        watcher.close()
        code = srv.stop()
    assert code == 0
