"""UPDATE and DELETE survive restarts and a SIGKILL of the writing process.

- Three consecutive restarts (with and without flushes in between) keep the
  result of a mix of UPDATEs and DELETEs, for every table type x placement.
- A child process (``dml_child.py``) runs a deterministic plan of statements
  and prints one line per acknowledged statement; the parent SIGKILLs it after
  N acknowledgements (read from the pipe, no sleeps) and checks the data dir
  holds exactly the state after some step >= N: nothing acknowledged is lost
  and no statement is half applied.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import conftest_dml
import pytest
from conftest_dml import USERS, Db
from crash_runs import killed_after, repo_env
from dml_child import apply, plan, replay

from engine import Engine

# Fixtures shared with the other DML/ALTER modules (conftest.py belongs to another suite).
db = conftest_dml.db

CHILD = Path(__file__).with_name("dml_child.py")


def mixed_changes(db: Db) -> None:
    """UPDATEs and DELETEs over hot and cold rows, mirrored on the model."""
    for user in USERS if db.table_type == "USER" else ("root",):
        db.expect_update(lambda r: r.id % 3 == 0, user=user, v=lambda r: (r.v or 0) + 1)
        db.execute("UPDATE t SET v = v + 1 WHERE id % 3 = 0", user=user)
        db.expect_delete(lambda r: r.id in (2, 7), user=user)
        db.execute("DELETE FROM t WHERE id IN (2, 7)", user=user)
        db.expect_update(lambda r: r.id >= 8, user=user, s=lambda r: "late")
        db.execute("UPDATE t SET s = 'late' WHERE id >= 8", user=user)
        db.expect_delete(lambda r: r.id == 10, user=user)
        db.execute("DELETE FROM t WHERE id = 10", user=user)
    db.check("after the changes")


def test_changes_survive_three_restarts(db):
    mixed_changes(db)
    for i in range(3):
        db.restart()
        db.check(f"after restart {i + 1}")
        db.check_tombstones(f"after restart {i + 1}")


def test_changes_survive_three_restarts_with_flushes_between(db):
    if not db.flushable:
        pytest.skip("STREAM tables are never flushed")
    mixed_changes(db)
    for i in range(3):
        db.flush()
        db.check(f"after flush {i + 1}")
        db.restart()
        db.check(f"after restart {i + 1}")
    assert db.execute("SELECT count(*) FROM t WHERE _deleted = true").scalar() == 0


# ---------------------------------------------------------------- SIGKILL


def run_child_until(
    data_dir: Path, table_type: str, durability: str, acks: int, log: Path
) -> list[tuple[int, str]]:
    """Start the child, read ``acks`` acknowledgements, SIGKILL it."""
    with log.open("w") as err:
        proc = subprocess.Popen(
            [sys.executable, str(CHILD), str(data_dir), table_type, durability],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            env=repo_env(),
        )
        seen: list[tuple[int, str]] = []
        with killed_after(proc, guard_s=180):
            assert proc.stdout is not None
            for line in proc.stdout:
                if line.startswith("ack "):
                    _, step, affected = line.split()
                    seen.append((int(step), affected))
                if len(seen) == acks or line.startswith("done"):
                    break
    assert len(seen) == acks, f"child stopped after {len(seen)} acks:\n{log.read_text()}"
    assert proc.returncode == -signal.SIGKILL
    return seen


def visible_state(eng: Engine, table_type: str) -> dict[str, dict[int, tuple[int, str]]]:
    users = USERS if table_type == "USER" else ("root",)
    out = {}
    for user in users:
        rows = eng.execute("SELECT id, v, s FROM t", user=user).rows()
        assert len(rows) == len({r[0] for r in rows}), f"duplicate keys for {user}: {rows}"
        out[user if table_type == "USER" else ""] = {i: (v, s) for i, v, s in rows}
    return out


@pytest.mark.parametrize("durability", ["sync", "async"])
@pytest.mark.parametrize(
    ("table_type", "acks"),
    [
        ("USER", 4),
        ("USER", 40),
        ("USER", 120),
        ("SHARED", 40),
        ("SHARED", 120),
        ("STREAM", 60),
    ],
)
def test_sigkill_keeps_every_acknowledged_statement(tmp_path, table_type, acks, durability):
    data_dir = tmp_path / "data"
    steps = plan(table_type)
    seen = run_child_until(data_dir, table_type, durability, acks, tmp_path / "child.log")

    # The child reported the row counts the model predicts.
    state = replay(table_type, [])
    states = [replay(table_type, [])]
    for i, step in enumerate(steps):
        expected = apply(table_type, step, state)
        states.append(replay(table_type, [], state))
        if i < len(seen) and expected is not None:
            assert seen[i] == (i, str(expected)), (step, seen[i])

    # What survived is the state after some step >= the last acknowledged one.
    eng = Engine.open(data_dir, background_jobs=False)
    try:
        after = visible_state(eng, table_type)
        matches = [k for k in range(acks, len(states)) if _same(states[k], after, table_type)]
        assert matches, f"state after kill matches no step >= {acks}: {after}"
        k = matches[0]
        # ... and stays exactly that across restarts and (non-STREAM) flushes.
        for _ in range(3):
            if table_type != "STREAM":
                eng.flush("t")
            eng.close()
            eng = Engine.open(data_dir, background_jobs=False)
            assert _same(states[k], visible_state(eng, table_type), table_type)
    finally:
        eng.close()


def _same(model: dict[str, dict[int, tuple[int, str]]], seen: dict, table_type: str) -> bool:
    scopes = USERS if table_type == "USER" else ("",)
    return all(model.get(s, {}) == seen.get(s, {}) for s in scopes)
