"""DROP USER takes the user's rows with it; a scope whose hot manifest copy was
lost is recovered from its manifest.json on open."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine import Engine
from engine.core import Database
from engine.storage import keys


def _notes(eng: Engine) -> None:
    eng.execute("CREATE USER TABLE notes (id BIGINT PRIMARY KEY, body TEXT)")
    for who in ("alice", "bob"):
        eng.execute(f"CREATE USER {who}")
        eng.execute(f"INSERT INTO notes VALUES (1, '{who} cold'), (2, '{who} cold')", user=who)
    eng.flush("notes")
    for who in ("alice", "bob"):
        eng.execute(f"INSERT INTO notes VALUES (3, '{who} hot')", user=who)
        eng.execute("DELETE FROM notes WHERE id = 2", user=who)


@pytest.mark.parametrize("recreate", ["CREATE USER bob", None], ids=["explicit", "first-use"])
def test_drop_user_removes_their_rows_and_a_new_user_of_that_name_starts_empty(
    tmp_path: Path, recreate: str | None
) -> None:
    with Engine.open(tmp_path, background_jobs=False) as eng:
        _notes(eng)
        result = eng.execute("DROP USER bob")
        assert result.rows_affected == 2
        assert not (tmp_path / "storage" / "default" / "notes" / "bob").exists()
        if recreate:
            eng.execute(recreate)
        assert eng.execute("SELECT count(*) FROM notes", user="bob").scalar() == 0
        assert eng.execute("SELECT id, body FROM notes ORDER BY id", user="alice").rows() == [
            (1, "alice cold"),
            (3, "alice hot"),
        ]
        eng.execute("INSERT INTO notes VALUES (1, 'new bob')", user="bob")  # no key clash
    with Engine.open(tmp_path, background_jobs=False) as eng:
        assert eng.execute("SELECT id, body FROM notes", user="bob").rows() == [(1, "new bob")]


def test_a_drop_user_interrupted_before_its_directories_went_is_finished_on_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Engine.open(tmp_path, background_jobs=False) as eng:
        _notes(eng)
        with monkeypatch.context() as patch:
            original = Database.stage_scope_removal

            def noted_only(self, txn, table, scope):  # the crash: noted, not done
                original(self, txn, table, scope)
                return lambda: None

            patch.setattr(Database, "stage_scope_removal", noted_only)
            eng.execute("DROP USER bob")
        assert (tmp_path / "storage" / "default" / "notes" / "bob" / "manifest.json").exists()
    with Engine.open(tmp_path, background_jobs=False) as eng:
        assert not (tmp_path / "storage" / "default" / "notes" / "bob").exists()
        assert eng.execute("SELECT count(*) FROM notes", user="bob").scalar() == 0
        assert eng.execute("SELECT count(*) FROM notes", user="alice").scalar() == 2


@pytest.mark.parametrize("kind", ["USER", "SHARED"])
def test_a_cold_only_scope_whose_hot_manifest_copy_is_lost_reads_from_manifest_json(
    tmp_path: Path, kind: str
) -> None:
    with Engine.open(tmp_path, background_jobs=False) as eng:
        who = "alice" if kind == "USER" else "root"
        eng.execute(f"CREATE {kind} TABLE t (id BIGINT PRIMARY KEY, v TEXT)")
        eng.execute("INSERT INTO t VALUES (1, 'a'), (2, 'b')", user=who)
        eng.flush("t")
        table_id = eng.catalog.get_table("default", "t").table_id
        scope = "alice" if kind == "USER" else ""
        txn = eng.db.begin()
        txn.batch.delete(keys.manifest_key(table_id, scope))
        txn.commit()
    with Engine.open(tmp_path, background_jobs=False) as eng:
        who = "alice" if kind == "USER" else "root"
        assert eng.execute("SELECT id, v FROM t ORDER BY id", user=who).rows() == [
            (1, "a"),
            (2, "b"),
        ]


def test_a_users_seq_values_reveal_nothing_about_other_users_writes(tmp_path: Path) -> None:
    """The same statements give alice the same _seq values whether or not bob
    wrote in between (a frozen clock makes the counter the only moving part)."""

    def alice_seqs(bob_writes: bool, where: Path) -> list[int]:
        with Engine.open(where, background_jobs=False, clock_ms=lambda: 1_750_000_000_000) as eng:
            eng.execute("CREATE USER TABLE notes (id BIGINT PRIMARY KEY, body TEXT)")
            eng.execute("INSERT INTO notes VALUES (1, 'a')", user="alice")
            if bob_writes:
                eng.execute("INSERT INTO notes SELECT value, 'b' FROM range(0, 50)", user="bob")
                eng.execute("UPDATE notes SET body = 'bb'", user="bob")
            eng.execute("INSERT INTO notes VALUES (2, 'a')", user="alice")
            eng.execute("UPDATE notes SET body = 'a2' WHERE id = 1", user="alice")
            return [
                r[0] for r in eng.execute("SELECT _seq FROM notes ORDER BY id", user="alice").rows()
            ]

    quiet = alice_seqs(False, tmp_path / "quiet")
    busy = alice_seqs(True, tmp_path / "busy")
    assert quiet == busy
    assert len(set(quiet)) == 2


def test_seqs_stay_monotonic_per_scope_across_restarts_with_a_clock_that_steps_back(
    tmp_path: Path,
) -> None:
    now = [1_750_000_000_000]
    with Engine.open(tmp_path, background_jobs=False, clock_ms=lambda: now[0]) as eng:
        eng.execute("CREATE USER TABLE notes (id BIGINT PRIMARY KEY, body TEXT)")
        eng.execute("INSERT INTO notes VALUES (1, 'a'), (2, 'b')", user="alice")
        first = eng.execute("SELECT max(_seq) FROM notes", user="alice").scalar()
    now[0] -= 60_000
    with Engine.open(tmp_path, background_jobs=False, clock_ms=lambda: now[0]) as eng:
        eng.execute("INSERT INTO notes VALUES (3, 'c')", user="alice")
        assert eng.execute("SELECT _seq FROM notes WHERE id = 3", user="alice").scalar() > first
