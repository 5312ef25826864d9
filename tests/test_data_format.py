"""The data-directory format version (``engine.storage.format``).

- A new directory records ``FORMAT_VERSION`` in ``kalam-format.json`` and in
  the hot store; ``system.stats`` shows it.
- A directory in a newer format is refused with ``DataFormatTooNewError``
  (embedded open, ``repair=True``, ``kalam sql`` and ``kalam serve``), and the
  refusal changes no file (a hash of the whole tree before and after).
- An unversioned directory (format 1) is upgraded in place: same rows, the
  version recorded, the upgrade shown; a second open has nothing to do; a
  SIGKILL at any step of the upgrade leaves a directory the next open
  settles the same way.
- A repair never lowers the version.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import orjson
import pytest
from crash_runs import REPO, child_events, model_of
from s3_server import FaultProxy, make_bucket, moto_server
from server_fixtures import serve_command, start_server

from engine import Engine
from engine.cli import main as kalam
from engine.errors import DataFormatTooNewError, StorageCorruptionError
from engine.storage import format as data_format
from engine.storage import keys
from engine.storage.hot import Batch, HotStore

CHILD = Path(__file__).with_name("format_child.py")
NEWER = data_format.FORMAT_VERSION + 1


def tree_hash(root: Path) -> str:
    """A digest of every path under ``root`` and every file's bytes."""
    digest = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        digest.update(str(p.relative_to(root)).encode() + b"\0")
        if p.is_file():
            digest.update(p.read_bytes())
    return digest.hexdigest()


def key_version(data_dir: Path) -> int:
    store = HotStore(data_dir / "hot", create=False)
    try:
        return keys.decode_int(store.get(keys.FORMAT_KEY))
    finally:
        store.close()


def set_key_version(data_dir: Path, version: int | None) -> None:
    store = HotStore(data_dir / "hot", create=False)
    batch = Batch()
    if version is None:
        batch.delete(keys.FORMAT_KEY)
    else:
        batch.put(keys.FORMAT_KEY, keys.encode_int(version))
    store.commit(batch, sync=True)
    store.close()


def set_file_version(data_dir: Path, version: int | None) -> None:
    path = data_dir / data_format.FORMAT_FILE
    if version is None:
        path.unlink()
    else:
        path.write_bytes(orjson.dumps({"format_version": version}))


def stats(eng: Engine) -> dict[str, str]:
    return dict(eng.execute("SELECT metric, value FROM system.stats").rows())


@pytest.fixture
def written(tmp_path: Path) -> Path:
    """A closed directory with flushed rows, hot rows and deletes of both."""
    data_dir = tmp_path / "data"
    with Engine.open(data_dir, background_jobs=False, embedded=True) as eng:
        eng.execute("CREATE TABLE t (id BIGINT PRIMARY KEY, v TEXT)")
        eng.execute("INSERT INTO t VALUES (1, 'a'), (2, 'b'), (3, 'c'), (4, 'd')")
        eng.flush("t")
        eng.execute("DELETE FROM t WHERE id = 2")
        eng.execute("INSERT INTO t VALUES (5, 'e')")
    return data_dir


EXPECTED = [(1, "a"), (3, "c"), (4, "d"), (5, "e")]


def rows(eng: Engine) -> list[tuple[object, ...]]:
    return eng.execute("SELECT id, v FROM t ORDER BY id").rows()


# ---------------------------------------------------------------- recorded


def test_a_new_directory_records_the_version_in_the_file_and_the_hot_store(tmp_path: Path):
    data_dir = tmp_path / "data"
    with Engine.open(data_dir, embedded=True) as eng:
        assert eng.db.format == data_format.DataFormat(data_format.FORMAT_VERSION, None)
        assert stats(eng)["data_format_version"] == str(data_format.FORMAT_VERSION)
        assert "data_format_upgrade" not in stats(eng)
    assert data_format.read_format_file(data_dir) == data_format.FORMAT_VERSION
    assert key_version(data_dir) == data_format.FORMAT_VERSION


def test_the_format_file_is_plain_json_a_tool_can_read(written: Path):
    doc = orjson.loads((written / data_format.FORMAT_FILE).read_bytes())
    assert doc["format_version"] == data_format.FORMAT_VERSION
    assert doc["written_by"].startswith("kalam ")


def test_a_current_directory_opens_without_writing_its_version_again(written: Path):
    before = (written / data_format.FORMAT_FILE).stat().st_mtime_ns
    with Engine.open(written, embedded=True) as eng:
        assert eng.db.format.actions == ()
        assert eng.db.format.found == data_format.FORMAT_VERSION
    assert (written / data_format.FORMAT_FILE).stat().st_mtime_ns == before


# ---------------------------------------------------------------- too new


@pytest.mark.parametrize("repair", [False, True])
def test_a_newer_format_file_is_refused_and_nothing_changes(written: Path, repair: bool):
    set_file_version(written, NEWER)
    before = tree_hash(written)
    with pytest.raises(DataFormatTooNewError) as info:
        Engine.open(written, embedded=True, repair=repair)
    err = info.value
    assert err.code == "DATA_FORMAT_TOO_NEW"
    assert err.fields == {
        "data_dir": str(written),
        "found": NEWER,
        "supported": data_format.FORMAT_VERSION,
    }
    assert str(written) in err.message and f"version {NEWER}" in err.message
    assert f"up to {data_format.FORMAT_VERSION}" in err.message
    assert tree_hash(written) == before


@pytest.mark.parametrize("file_version", [None, data_format.FORMAT_VERSION])
def test_a_newer_version_in_the_hot_store_alone_is_refused_and_not_lowered(
    written: Path, file_version: int | None
):
    set_key_version(written, NEWER)
    set_file_version(written, file_version)
    with pytest.raises(DataFormatTooNewError, match=f"version {NEWER}"):
        Engine.open(written, embedded=True)
    assert key_version(written) == NEWER
    assert data_format.read_format_file(written) == file_version


def test_the_cli_refuses_a_newer_directory_in_one_line(written: Path, capsys):
    set_file_version(written, NEWER)
    before = tree_hash(written)
    assert kalam(["sql", "SELECT 1", "--data-dir", str(written)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: Data directory") and f"version {NEWER}" in err
    assert tree_hash(written) == before


def test_kalam_serve_refuses_a_newer_directory_and_changes_nothing(written: Path):
    set_file_version(written, NEWER)
    before = tree_hash(written)
    done = subprocess.run(
        serve_command(written, "--port", "0"),
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    assert f"data format version {NEWER}" in done.stderr
    assert tree_hash(written) == before


def test_a_served_directory_shows_its_version_to_clients(written: Path):
    srv = start_server(written)
    try:
        with Engine.open(written) as client:  # the server owns it: a RemoteEngine
            assert type(client).__name__ == "RemoteEngine"
            assert stats(client)["data_format_version"] == str(data_format.FORMAT_VERSION)
    finally:
        assert srv.stop() == 0


def test_a_directory_whose_cold_tier_is_a_bucket_is_refused_before_any_request(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "kalam-test-key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "kalam-test-secret")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    data_dir = tmp_path / "data"
    with moto_server() as upstream, FaultProxy(upstream) as proxy:
        make_bucket(upstream, "kalam-format")
        with Engine.open(data_dir, background_jobs=False, embedded=True) as eng:
            eng.execute(
                f"CREATE STORAGE s3 TYPE s3 WITH (endpoint = '{proxy.endpoint}', "
                "bucket = 'kalam-format', region = 'us-east-1')"
            )
            eng.execute("CREATE TABLE t (id BIGINT PRIMARY KEY) WITH (STORAGE_ID = 's3')")
            eng.execute("INSERT INTO t VALUES (1), (2)")
            eng.flush("t")
        set_file_version(data_dir, NEWER)
        before, requests = tree_hash(data_dir), len(proxy.seen)
        with pytest.raises(DataFormatTooNewError):
            Engine.open(data_dir, background_jobs=False, embedded=True)
        assert (tree_hash(data_dir), len(proxy.seen)) == (before, requests)
        set_file_version(data_dir, data_format.FORMAT_VERSION)
        with Engine.open(data_dir, background_jobs=False, embedded=True) as eng:
            assert eng.execute("SELECT id FROM t ORDER BY id").rows() == [(1,), (2,)]


# ---------------------------------------------------------------- damaged


def test_a_damaged_format_file_is_named_and_nothing_changes(written: Path):
    (written / data_format.FORMAT_FILE).write_bytes(b'{"format_version": "two"')
    before = tree_hash(written)
    with pytest.raises(StorageCorruptionError, match=data_format.FORMAT_FILE) as info:
        Engine.open(written, embedded=True)
    assert info.value.fields["file"] == str(written / data_format.FORMAT_FILE)
    assert tree_hash(written) == before


def test_a_repair_rewrites_a_damaged_format_file_from_the_hot_store(written: Path):
    (written / data_format.FORMAT_FILE).write_bytes(b"garbage")
    with Engine.open(written, embedded=True, repair=True, background_jobs=False) as eng:
        assert rows(eng) == EXPECTED
    assert data_format.read_format_file(written) == data_format.FORMAT_VERSION


# ---------------------------------------------------------------- upgrade


def make_unversioned(data_dir: Path) -> None:
    set_file_version(data_dir, None)
    set_key_version(data_dir, None)


def test_an_unversioned_directory_is_upgraded_in_place_once(written: Path):
    make_unversioned(written)
    with Engine.open(written, embedded=True) as eng:
        assert rows(eng) == EXPECTED
        assert eng.db.format.found == data_format.UNVERSIONED and eng.db.format.upgraded
        shown = stats(eng)
        assert shown["data_format_version"] == str(data_format.FORMAT_VERSION)
        assert "from data format 1 (no version recorded) to 2" in shown["data_format_upgrade"]
    assert data_format.read_format_file(written) == data_format.FORMAT_VERSION
    assert key_version(written) == data_format.FORMAT_VERSION
    with Engine.open(written, embedded=True) as eng:
        assert eng.db.format.actions == () and not eng.db.format.upgraded
        assert rows(eng) == EXPECTED


@pytest.mark.parametrize(
    ("step", "found", "upgraded"),
    [
        ("file_temp_written", data_format.UNVERSIONED, True),  # neither record made
        ("file_written", data_format.FORMAT_VERSION, False),  # the file, not the key
        ("key_committed", data_format.FORMAT_VERSION, False),  # both
    ],
)
def test_a_sigkill_during_the_upgrade_leaves_a_directory_that_reopens_upgraded(
    tmp_path: Path, step: str, found: int, upgraded: bool
):
    data_dir = tmp_path / "data"
    model = model_of(child_events(CHILD, data_dir, step))
    expected = sorted(model.get("root", {}).items())
    assert len(expected) == 2000 - 667 + 1  # the child's rows and deletes
    for attempt in range(2):
        with Engine.open(data_dir, background_jobs=False, embedded=True) as eng:
            assert eng.execute("SELECT id, v FROM t ORDER BY id").rows() == expected
            if attempt == 0:
                assert eng.db.format.found == found
                assert eng.db.format.upgraded == upgraded
                assert bool(eng.db.format.actions) == (step != "key_committed")
            else:
                assert eng.db.format.actions == ()
        assert data_format.read_format_file(data_dir) == data_format.FORMAT_VERSION
        assert key_version(data_dir) == data_format.FORMAT_VERSION
        assert not list(data_dir.glob(f".{data_format.FORMAT_FILE}*"))  # no temp left


# ---------------------------------------------------------------- repair


def test_rebuilding_a_lost_hot_store_keeps_the_recorded_version(written: Path):
    with Engine.open(written, embedded=True) as eng:
        eng.flush("t")
    shutil.rmtree(written / "hot")
    with Engine.open(written, embedded=True, repair=True, background_jobs=False) as eng:
        assert "Rebuilt the catalog" in str(eng.recovery)
        assert eng.db.format.found == data_format.FORMAT_VERSION and not eng.db.format.upgraded
        assert rows(eng) == EXPECTED
    assert key_version(written) == data_format.FORMAT_VERSION
    assert data_format.read_format_file(written) == data_format.FORMAT_VERSION


def test_repair_table_leaves_the_version_as_it_is(written: Path):
    with Engine.open(written, embedded=True) as eng:
        eng.execute("REPAIR TABLE t")
        assert rows(eng) == EXPECTED
    assert key_version(written) == data_format.FORMAT_VERSION
    assert data_format.read_format_file(written) == data_format.FORMAT_VERSION
