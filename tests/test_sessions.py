"""Per-caller state lives in sessions: one user's ``USE`` never changes what
another's unqualified names mean."""

from __future__ import annotations

import threading

import pytest

from engine import Engine
from engine.errors import PermissionDeniedError


@pytest.fixture
def eng(tmp_path):
    with Engine.open(tmp_path, background_jobs=False) as e:
        e.execute("CREATE NAMESPACE app")
        e.execute(
            "CREATE STREAM TABLE app.notes (id BIGINT PRIMARY KEY, body TEXT) "
            "WITH (TTL_SECONDS = 3600)"
        )
        e.execute("CREATE USER TABLE default.notes (id BIGINT PRIMARY KEY, body TEXT)")
        for who in ("alice", "bob"):
            e.execute(f"CREATE USER {who}")
        yield e


def test_use_by_one_user_never_redirects_another_users_writes(eng):
    eng.execute("USE app", user="alice")
    eng.execute("INSERT INTO notes VALUES (1, 'bob private diary')", user="bob")
    assert eng.execute("SELECT count(*) FROM app.notes", user="alice").scalar() == 0
    assert eng.execute("SELECT body FROM notes", user="alice").rows() == []  # app.notes
    assert eng.execute("SELECT body FROM default.notes", user="bob").rows() == [
        ("bob private diary",)
    ]
    assert eng.namespace == "default"  # root's session is untouched too


def test_connections_have_sessions_of_their_own(eng):
    one = eng.connect(user="alice")
    two = eng.connect(user="alice")
    one.execute("USE app")
    assert (one.namespace, two.namespace) == ("app", "default")
    one.execute("INSERT INTO notes VALUES (7, 'stream')")
    two.execute("INSERT INTO notes VALUES (7, 'mine')")
    assert one.execute("SELECT body FROM notes").rows() == [("stream",)]
    assert two.execute("SELECT body FROM notes").rows() == [("mine",)]
    assert eng.execute("SELECT body FROM notes", user="alice").rows() == [("mine",)]


def test_sessions_interleaving_on_threads_never_see_each_others_namespace(eng):
    eng.execute("INSERT INTO app.notes VALUES (1, 'in app')")
    for who in ("alice", "bob"):
        eng.execute(f"INSERT INTO default.notes VALUES (1, '{who} in default')", user=who)
    barrier = threading.Barrier(2, timeout=30)
    seen: dict[str, set] = {"alice": set(), "bob": set()}

    def run(who: str, ns: str) -> None:
        conn = eng.connect(user=who)
        for _ in range(20):
            conn.execute(f"USE {ns}")
            barrier.wait()  # both have switched before either reads
            seen[who].update(conn.execute("SELECT body FROM notes").rows())
            barrier.wait()

    threads = [
        threading.Thread(target=run, args=("alice", "app")),
        threading.Thread(target=run, args=("bob", "default")),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert seen == {"alice": {("in app",)}, "bob": {("bob in default",)}}


def test_flush_through_the_api_needs_the_flush_role(eng):
    eng.execute("INSERT INTO notes VALUES (1, 'x')", user="alice")
    with pytest.raises(PermissionDeniedError, match="FLUSH"):
        eng.flush("default.notes", user="alice")
    assert eng.execute("SELECT count(*) FROM system.segments").scalar() == 0
    eng.flush("default.notes")  # root
    assert eng.execute("SELECT count(*) FROM system.segments").scalar() == 1
