"""Damaged cold files are loud (invariant 5): a broken manifest.json, a flipped
byte, a missing or truncated segment each raise ``StorageCorruptionError``
naming the file on first use of the table — never an empty table or wrong
numbers. Other tables keep working; ``REPAIR TABLE`` says what it kept and
dropped and leaves the table usable."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

pytest.register_assert_rewrite("conftest_cold")

from conftest_cold import Cold  # noqa: E402

from engine.errors import StorageCorruptionError  # noqa: E402

pytest_plugins = ["conftest_cold"]

QUERIES = (
    "SELECT * FROM t",
    "SELECT COUNT(*) FROM t",
    "SELECT SUM(v) FROM t",
    "SELECT id, v FROM t WHERE id = 15",
    "SELECT id FROM t WHERE id BETWEEN 12 AND 18",
)


def bad_json(path: Path) -> None:
    path.write_bytes(b'{"table_id": 1, "segments": [')


def flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def remove(path: Path) -> None:
    path.unlink()


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def changed_count_in_log(path: Path) -> None:
    """A digit of a statistic in a committed log line: still valid JSON."""
    data = path.read_bytes()
    assert data.count(b'"row_count":10,') >= 2
    path.write_bytes(data.replace(b'"row_count":10,', b'"row_count":11,', 1))


def garbage_log_line(path: Path) -> None:
    """The first change line (a whole, committed line) replaced by garbage."""
    lines = path.read_bytes().split(b"\n")
    lines[1] = b"{not json"
    path.write_bytes(b"\n".join(lines))


# (damage, target: "manifest", "log" (manifest.jsonl, the manifest's change
#  log) or a segment id, phrase the message must contain, rows left after REPAIR)
DAMAGE: dict[str, tuple[Callable[[Path], None], str, str, list[int]]] = {
    "bad_json_manifest": (bad_json, "manifest", "not valid JSON", list(range(30))),
    "changed_log_line": (changed_count_in_log, "log", "line 2: checksum mismatch", list(range(30))),
    "garbage_log_line": (garbage_log_line, "log", "line 2: not valid JSON", list(range(30))),
    "flipped_byte": (flip_byte, "batch-2.parquet", "checksum", [*range(10), *range(20, 30)]),
    "missing_segment": (remove, "batch-2.parquet", "missing", [*range(10), *range(20, 30)]),
    "truncated_segment": (truncate, "batch-2.parquet", "bytes", [*range(10), *range(20, 30)]),
}


def three_segments(cold: Cold, kind: str = "SHARED") -> None:
    cold.create(kind)
    for k in range(3):
        cold.insert(range(10 * k, 10 * k + 10))
        cold.flush()
    cold.engine.execute("CREATE SHARED TABLE good (id BIGINT PRIMARY KEY, v INT)")
    cold.engine.execute("INSERT INTO good VALUES (1, 10), (2, 20)")
    cold.engine.flush("good")
    cold.engine.execute("INSERT INTO good VALUES (3, 30)")


def damage(cold: Cold, name: str) -> Path:
    how, target, _, _ = DAMAGE[name]
    cold.engine.close()
    path = {
        "manifest": cold.manifest_path,
        "log": cold.manifest_path.with_name("manifest.jsonl"),
    }.get(target, cold.scope_dir / target)
    how(path)
    cold.engine = cold.open()
    return path


def assert_loud(cold: Cold, path: Path, phrase: str, sql: str, **kw) -> None:
    with pytest.raises(StorageCorruptionError) as info:
        cold.sql(sql, **kw)
    err = info.value
    assert err.code == "STORAGE_CORRUPTION"
    assert str(path) in err.message, err.message
    assert phrase in err.message, err.message
    assert err.fields.get("file") == str(path)


def assert_other_table_works(cold: Cold) -> None:
    eng = cold.engine
    assert eng.execute("SELECT id, v FROM good ORDER BY id").rows() == [(1, 10), (2, 20), (3, 30)]
    eng.execute("INSERT INTO good VALUES (4, 40)")
    eng.flush("good")
    assert eng.execute("SELECT COUNT(*) FROM good").scalar() == 4
    eng.execute("DELETE FROM good WHERE id = 4")


@pytest.mark.parametrize("name", DAMAGE)
def test_damage_is_reported_naming_the_file_on_every_use(cold, name):
    three_segments(cold)
    path = damage(cold, name)
    _, _, phrase, _ = DAMAGE[name]
    for sql in QUERIES:
        assert_loud(cold, path, phrase, sql)
    assert_loud(cold, path, phrase, "SELECT * FROM t")  # still loud the second time
    assert_other_table_works(cold)


@pytest.mark.parametrize("name", DAMAGE)
def test_writes_that_need_the_damaged_data_fail_loudly(cold, name):
    three_segments(cold)
    path = damage(cold, name)
    _, _, phrase, _ = DAMAGE[name]
    # The primary-key check must read segment 2 (or the manifest) for id 15.
    with pytest.raises(StorageCorruptionError) as info:
        cold.sql("INSERT INTO t (id, v) VALUES (15, 0)")
    assert str(path) in info.value.message
    with pytest.raises(StorageCorruptionError):
        cold.sql("UPDATE t SET v = 0 WHERE id > 0")
    with pytest.raises(StorageCorruptionError):
        cold.sql("DELETE FROM t WHERE v >= 0")
    assert_loud(cold, path, phrase, "SELECT COUNT(*) FROM t")


@pytest.mark.parametrize("name", DAMAGE)
def test_repair_reports_what_it_kept_and_dropped_and_the_table_works_again(cold, name):
    three_segments(cold)
    damage(cold, name)
    _, target, _, survivors = DAMAGE[name]
    result = cold.sql("REPAIR TABLE t")
    if target in ("manifest", "log"):
        assert "kept 3 segment(s)" in result.message, result.message
        assert "dropped" not in result.message
    else:
        assert "kept 2 segment(s)" in result.message, result.message
        assert "dropped 1" in result.message
        assert target in result.message
    expected = [(i, i) for i in survivors]
    assert cold.rows() == expected
    assert cold.count() == len(survivors)
    assert_other_table_works(cold)
    # Usable: writes, flushes and restarts work; nothing resurfaces.
    cold.insert([100])
    cold.flush()
    cold.restart()
    assert cold.rows() == [*expected, (100, 100)]
    manifest = cold.manifest()
    assert all((cold.scope_dir / s["path"]).exists() for s in manifest["segments"])


def test_repair_of_a_healthy_table_keeps_everything(cold):
    three_segments(cold)
    before = cold.manifest()
    result = cold.sql("REPAIR TABLE t")
    assert "kept 3 segment(s)" in result.message
    assert "dropped" not in result.message
    assert cold.rows() == [(i, i) for i in range(30)]
    assert [s["path"] for s in cold.manifest()["segments"]] == [
        s["path"] for s in before["segments"]
    ]


def test_damage_in_one_users_scope_leaves_other_users_working(cold):
    cold.create("USER")
    for user in ("alice", "bob"):
        for k in range(3):
            cold.insert(range(10 * k, 10 * k + 10), user=user)
            cold.flush()
    cold.engine.close()
    path = cold.table_dir / "alice" / "batch-2.parquet"
    flip_byte(path)
    cold.engine = cold.open()
    assert cold.rows(user="bob") == [(i, i) for i in range(30)]
    assert_loud(cold, path, "checksum", "SELECT COUNT(*) FROM t", user="alice")
    cold.sql("INSERT INTO t (id, v) VALUES (15, 0)", user="carol")
    assert cold.rows(user="carol") == [(15, 0)]
