"""Opening and closing a data directory, durability (acceptance 3) and the
one-process-per-data-dir lock.

A child process that is SIGKILLed mid-stream must not lose a row whose INSERT
had returned; the ids it acknowledged are read from its stdout pipe, and it is
killed after a fixed number of acknowledgements (no sleeping)."""

from __future__ import annotations

import os
import signal

import pytest
from helpers_proc import HOLDER, OPENER, WRITER, Child

from engine import DURABILITY, Engine
from engine.errors import DataDirInUseError

RAW_LOCK_TEXT = ("LOCK", "Resource temporarily unavailable", "IO error", "lock hold")


# ---------------------------------------------------------------- open / close


def test_open_creates_the_data_directory_and_its_parents(tmp_path):
    target = tmp_path / "a" / "b" / "data"
    with Engine.open(target) as eng:
        assert target.is_dir()
        assert eng.execute("SELECT 1").scalar() == 1


def test_open_accepts_a_string_path(tmp_path):
    with Engine.open(str(tmp_path / "data")) as eng:
        assert eng.execute("SHOW NAMESPACES").rows()[0][0] == "default"


def test_context_manager_closes_and_releases_the_directory(data_dir):
    with Engine.open(data_dir) as eng:
        eng.execute("CREATE TABLE t (id INT PRIMARY KEY)")
        eng.execute("INSERT INTO t VALUES (1)")
    assert eng.closed
    with Engine.open(data_dir) as again:
        assert again.execute("SELECT id FROM t").rows() == [(1,)]


def test_context_manager_closes_on_error(data_dir):
    with pytest.raises(RuntimeError), Engine.open(data_dir) as eng:
        raise RuntimeError("boom")
    assert eng.closed
    Engine.open(data_dir).close()


def test_durability_settings_are_documented():
    assert set(DURABILITY) == {"sync", "async"}
    assert all(isinstance(help_text, str) and help_text for help_text in DURABILITY.values())


def test_async_durability_keeps_rows_across_close(data_dir):
    with Engine.open(data_dir, durability="async") as eng:
        eng.execute("CREATE TABLE t (id INT PRIMARY KEY, v TEXT)")
        eng.execute("INSERT INTO t VALUES (1, 'a'), (2, 'b')")
        assert eng.execute("SELECT count(*) FROM t").scalar() == 2
    with Engine.open(data_dir) as eng:
        assert eng.execute("SELECT id, v FROM t ORDER BY id").rows() == [(1, "a"), (2, "b")]


def test_unknown_durability_is_a_value_error(tmp_path):
    with pytest.raises(ValueError) as info:
        Engine.open(tmp_path / "data", durability="bogus")
    assert "bogus" in str(info.value)
    assert "sync" in str(info.value) and "async" in str(info.value)
    assert not (tmp_path / "data").exists()


# ---------------------------------------------------------------- close / reopen cycles


def insert_batch(eng, cycle: int) -> None:
    base = cycle * 10
    for table in ("u", "s", "st"):
        writer = "root" if table == "s" else "alice"
        eng.execute(
            f"INSERT INTO {table} VALUES (?, ?), (?, ?)",
            [base, f"{table}-{base}", base + 1, f"{table}-{base + 1}"],
            user=writer,
        )
    eng.execute("INSERT INTO u VALUES (?, ?)", [base, f"bob-{base}"], user="bob")


def expected_rows(cycles: int) -> dict[tuple[str, str], list[tuple[int, str]]]:
    out: dict[tuple[str, str], list[tuple[int, str]]] = {}
    for table in ("u", "s", "st"):
        rows = []
        for c in range(cycles):
            rows += [(c * 10, f"{table}-{c * 10}"), (c * 10 + 1, f"{table}-{c * 10 + 1}")]
        out[(table, "alice")] = rows
    out[("u", "bob")] = [(c * 10, f"bob-{c * 10}") for c in range(cycles)]
    return out


def test_every_table_type_survives_three_reopens_with_seq_increasing(engine, reopen, clock):
    """_seq grows per scope (alice's rows of USER tables; the shared scope of
    SHARED and STREAM tables) across reopens, even when the clock steps back.
    Scopes have counters of their own so that _seq reveals nothing about other
    users' writes (tests/test_users_lifecycle.py)."""
    engine.execute("CREATE USER TABLE u (id INT PRIMARY KEY, v TEXT)")
    engine.execute("CREATE SHARED TABLE s (id INT PRIMARY KEY, v TEXT)")
    engine.execute("CREATE STREAM TABLE st (id INT PRIMARY KEY, v TEXT) WITH (TTL_SECONDS = 86400)")
    scopes = {"u": "alice", "s": "shared", "st": "shared"}
    high = {"alice": 0, "shared": 0}
    for cycle in range(4):
        insert_batch(engine, cycle)
        new_seqs: dict[str, list[int]] = {"alice": [], "shared": []}
        for table, scope in scopes.items():
            new_seqs[scope] += [
                s
                for (s,) in engine.execute(
                    f"SELECT _seq FROM {table} WHERE id >= ?", [cycle * 10], user="alice"
                ).rows()
            ]
        for scope, seqs in new_seqs.items():
            assert min(seqs) > high[scope], f"_seq of {scope} went back after reopen {cycle}"
            high[scope] = max(seqs)
        if cycle == 3:
            break
        # The clock even steps back between runs: _seq must still grow.
        clock.advance(-60)
        engine = reopen(engine)
        for (table, user), rows in expected_rows(cycle + 1).items():
            got = engine.execute(f"SELECT id, v FROM {table} ORDER BY id", user=user).rows()
            assert got == rows, (cycle, table, user)
    assert engine.execute("SELECT count(*) FROM u", user="bob").scalar() == 4


def test_catalog_and_namespaces_survive_reopen(engine, reopen, snapshot):
    engine.execute("CREATE NAMESPACE app")
    engine.execute("CREATE USER TABLE app.u (id INT PRIMARY KEY, v TEXT NOT NULL DEFAULT 'x')")
    engine.execute("CREATE STREAM TABLE app.ev (id INT, v TEXT) WITH (TTL_SECONDS = 100)")
    engine.execute("INSERT INTO app.u (id) VALUES (1), (2)", user="alice")
    engine.execute("INSERT INTO app.ev VALUES (1, 'e')")
    before = snapshot(engine, users=("root", "alice"))
    for _ in range(3):
        engine = reopen(engine)
        assert snapshot(engine, users=("root", "alice")) == before


# ---------------------------------------------------------------- SIGKILL mid-stream

ACKS_BEFORE_KILL = 150


@pytest.mark.parametrize(
    ("table_type", "durability"),
    [("USER", "sync"), ("SHARED", "sync"), ("STREAM", "sync"), ("SHARED", "async")],
)
def test_sigkill_mid_stream_loses_no_acknowledged_row(
    data_dir, open_engine, table_type, durability
):
    user = "writer" if table_type == "USER" else "root"
    child = Child(WRITER, str(data_dir), table_type, durability, user)
    try:
        assert child.line() == "ready"
        acked = [int(child.line()) for _ in range(ACKS_BEFORE_KILL)]
        status = child.kill()
    finally:
        child.close()
    assert status == -signal.SIGKILL  # it died mid-stream, not by finishing
    assert acked == list(range(ACKS_BEFORE_KILL))

    eng = open_engine(clock_ms=None)  # the real clock, like the child's
    rows = eng.execute("SELECT id, payload FROM acks ORDER BY id", user=user).rows()
    ids = [r[0] for r in rows]
    assert set(acked) <= set(ids)
    # Each INSERT is atomic and they ran in order: what survived is a prefix, no holes.
    assert ids == list(range(len(ids)))
    assert all(payload == f"row-{i}" for i, payload in rows)
    # And writing continues with fresh _seq values.
    top = eng.execute("SELECT max(_seq) FROM acks", user=user).scalar()
    eng.execute("INSERT INTO acks VALUES (?, 'after')", [len(ids)], user=user)
    after = eng.execute("SELECT _seq FROM acks WHERE id = ?", [len(ids)], user=user).scalar()
    assert after > top


# ---------------------------------------------------------------- one process per data dir


def test_second_process_gets_data_dir_in_use(data_dir):
    holder = Child(HOLDER, str(data_dir))
    try:
        assert holder.line() == "ready"
        with pytest.raises(DataDirInUseError) as info:
            Engine.open(data_dir)
        exc = info.value
        assert exc.code == "DATA_DIR_IN_USE"
        assert "in use by another process" in exc.message
        assert f"(process {holder.proc.pid})" in exc.message  # who holds it
        assert exc.fields["pid"] == holder.proc.pid
        assert str(data_dir) in exc.message
        assert not any(raw in exc.message for raw in RAW_LOCK_TEXT), exc.message
        holder.send("release")
        assert holder.line() == "closed"
        assert holder.wait() == 0
    finally:
        holder.close()
    # Once the other process let go, the directory opens normally.
    Engine.open(data_dir).close()


def test_data_dir_in_use_when_a_child_opens_what_we_hold(data_dir):
    eng = Engine.open(data_dir)
    try:
        opener = Child(OPENER, str(data_dir))
        try:
            name, code, message = opener.line().split("|", 2)
        finally:
            opener.close()
        assert (name, code) == ("DataDirInUseError", "DATA_DIR_IN_USE")
        assert "in use by another process" in message
        assert f"(process {os.getpid()})" in message
        assert not any(raw in message for raw in RAW_LOCK_TEXT), message
        assert eng.execute("SELECT 1").scalar() == 1
    finally:
        eng.close()


def test_lock_is_released_when_the_holder_is_killed(data_dir):
    holder = Child(HOLDER, str(data_dir))
    try:
        assert holder.line() == "ready"
        assert holder.kill() == -signal.SIGKILL
    finally:
        holder.close()
    with Engine.open(data_dir) as eng:
        assert eng.execute("SELECT 1").scalar() == 1


def test_opening_twice_in_one_process_is_a_clear_error(data_dir):
    first = Engine.open(data_dir)
    try:
        with pytest.raises(DataDirInUseError) as info:
            Engine.open(data_dir)
        exc = info.value
        assert exc.code == "DATA_DIR_IN_USE"
        assert str(data_dir) in exc.message
        assert not any(raw in exc.message for raw in RAW_LOCK_TEXT), exc.message
        assert first.execute("SELECT 1").scalar() == 1  # the first engine is unharmed
    finally:
        first.close()
    Engine.open(data_dir).close()


@pytest.mark.parametrize(
    ("text", "in_use"),
    [
        ("IO error: While lock file: /d/hot/LOCK: Resource temporarily unavailable", True),
        (
            "Corruption: block checksum mismatch: stored = 1, computed = 2 in /d/hot/000009.sst",
            False,
        ),
        ("Corruption: While lock file: nonsense", False),
        (
            "IO error: No such file or directory: While opening a file for sequentially reading",
            False,
        ),
        ("Invalid argument: lock", False),
    ],
)
def test_an_open_failure_is_classified_by_its_rocksdb_status_code(text, in_use):
    from engine.storage.hot import _held_elsewhere

    assert _held_elsewhere(text) is in_use
