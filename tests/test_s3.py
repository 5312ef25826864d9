"""Object storage: a table's cold tier in an S3-compatible bucket.

Every test runs against moto's S3 server, started by this module on
127.0.0.1 (``tests/s3_server.py``), through a pass-through proxy that records
each request (so "fewer files read" is checked on the wire). Credentials are
set in the environment only; each test gets its own bucket and data dir.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from s3_server import FaultProxy, make_bucket, moto_server, object_keys

from engine import Engine, KalamError
from engine.errors import (
    InvalidOptionError,
    ObjectStorageError,
    StorageCorruptionError,
    StorageInUseError,
    StorageNotFoundError,
)


@pytest.fixture(scope="module")
def s3_upstream() -> Iterator[str]:
    with moto_server() as endpoint:
        yield endpoint


@pytest.fixture(scope="module")
def proxy(s3_upstream: str) -> Iterator[FaultProxy]:
    with FaultProxy(s3_upstream) as p:
        yield p


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "kalam-test-key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "kalam-test-secret")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


class S3:
    """One bucket, an engine whose storage ``s3`` points at it (via the proxy)."""

    def __init__(self, engines: Any, proxy: FaultProxy, upstream: str) -> None:
        self.engines = engines
        self.proxy = proxy
        self.upstream = upstream
        self.bucket = f"kalam-{uuid.uuid4().hex[:12]}"
        make_bucket(upstream, self.bucket)
        self.engine: Engine = engines.open(background_jobs=False)
        self.engine.execute(
            f"CREATE STORAGE s3 TYPE s3 WITH (endpoint = '{proxy.endpoint}', "
            f"bucket = '{self.bucket}', prefix = 'lake/v1', region = 'us-east-1')"
        )
        proxy.fail(None)

    def sql(self, sql: str, params: Any = None, *, user: str = "root") -> Any:
        return self.engine.execute(sql, params, user=user)

    def rows(self, sql: str, *, user: str = "root") -> list[tuple[Any, ...]]:
        return self.sql(sql, user=user).rows()

    def objects(self, under: str = "") -> list[str]:
        base = f"{self.bucket}/lake/v1" + (f"/{under}" if under else "")
        return [k[len(self.bucket) + 1 :] for k in object_keys(self.upstream, base)]

    def restart(self) -> Engine:
        self.engine.close()
        self.engine = self.engines.open(background_jobs=False)
        return self.engine

    def seen(self, needle: str, method: str = "GET") -> list[str]:
        return [r for r in self.proxy.seen if r.startswith(method + " ") and needle in r]


@pytest.fixture
def s3(engines: Any, proxy: FaultProxy, s3_upstream: str, aws_env: None) -> S3:
    return S3(engines, proxy, s3_upstream)


# ------------------------------------------------------------------ the registry


def test_show_storages_lists_local_and_the_bucket_without_any_secret(s3: S3) -> None:
    rows = s3.sql("SHOW STORAGES").table.to_pylist()
    assert [r["storage_id"] for r in rows] == ["local", "s3"]
    mine = rows[1]
    assert mine["base_directory"] == f"s3://{s3.bucket}/lake/v1"
    assert mine["endpoint"] == s3.proxy.endpoint
    assert mine["credentials"] == "environment"
    assert s3.rows("SELECT storage_id FROM system.storages ORDER BY storage_id") == [
        ("local",),
        ("s3",),
    ]
    # The secret is in the environment, never in what the engine stores or shows.
    raw = b"".join(v for _, v in s3.engine.db.store.scan(b"Sstorage:"))
    assert b"kalam-test-secret" not in raw and b"kalam-test-key" not in raw
    assert "kalam-test-secret" not in str(rows)


@pytest.mark.parametrize(
    "options, message",
    [
        ("bucket = 'bucket-one', secret_access_key = 'x'", "credentials come from the environment"),
        ("bucket = 'bucket-one', access_key_id = 'x'", "credentials come from the environment"),
        ("prefix = 'p'", r"needs WITH \(bucket"),
        ("bucket = 'bucket-one', colour = 'red'", "Unknown storage option 'colour'"),
        ("bucket = 'bucket-one', endpoint = 'ftp://x'", r"endpoint must be an http\(s\) URL"),
    ],
)
def test_create_storage_refuses_bad_options_and_changes_nothing(
    s3: S3, options: str, message: str
) -> None:
    with pytest.raises(InvalidOptionError, match=message):
        s3.sql(f"CREATE STORAGE other TYPE s3 WITH ({options})")
    assert s3.rows("SELECT storage_id FROM system.storages ORDER BY 1") == [("local",), ("s3",)]


def test_create_storage_checks_that_the_bucket_exists(s3: S3) -> None:
    with pytest.raises(InvalidOptionError, match="Bucket 'no-such-bucket' .* does not exist"):
        s3.sql(
            f"CREATE STORAGE other TYPE s3 WITH (endpoint = '{s3.proxy.endpoint}', "
            "bucket = 'no-such-bucket')"
        )
    assert s3.engine.db.storages.find("other") is None


def test_a_table_naming_an_unknown_storage_is_refused(s3: S3) -> None:
    with pytest.raises(StorageNotFoundError, match="Storage 'nope' does not exist"):
        s3.sql("CREATE TABLE t (id INT PRIMARY KEY) WITH (STORAGE_ID = 'nope')")
    assert s3.rows("SHOW TABLES") == []


def test_drop_storage_is_refused_while_a_table_uses_it(s3: S3) -> None:
    s3.sql("CREATE TABLE t (id INT PRIMARY KEY) WITH (STORAGE_ID = 's3')")
    with pytest.raises(StorageInUseError, match="default.t"):
        s3.sql("DROP STORAGE s3")
    s3.sql("DROP TABLE t")
    s3.sql("DROP STORAGE s3")
    assert s3.rows("SELECT storage_id FROM system.storages") == [("local",)]


def test_storages_survive_a_restart(s3: S3) -> None:
    s3.restart()
    assert s3.rows("SELECT storage_id, base_directory FROM system.storages ORDER BY 1") == [
        ("local", str(s3.engine.db.data_dir / "storage")),
        ("s3", f"s3://{s3.bucket}/lake/v1"),
    ]


# ------------------------------------------------------------------ the cold tier in a bucket


def _table(s3: S3, kind: str = "SHARED", *, delta: bool = False) -> None:
    # Most tests here pin the segment, marker and object layout of the bucket:
    # they opt out of the Delta log (covered by its own tests at the end).
    s3.sql(
        f"CREATE {kind} TABLE t (id BIGINT PRIMARY KEY, v INT, note TEXT) "
        f"WITH (STORAGE_ID = 's3', DELTA = {str(delta).lower()})"
    )


def _insert(s3: S3, ids: range, *, user: str = "root", v: int = 0) -> None:
    values = ", ".join(f"({i}, {i + v}, 'n{i}')" for i in ids)
    s3.sql(f"INSERT INTO t (id, v, note) VALUES {values}", user=user)


def test_flush_puts_segments_and_manifest_in_the_bucket_and_nothing_on_local_disk(s3: S3) -> None:
    _table(s3)
    _insert(s3, range(100))
    s3.sql("FLUSH TABLE t WAIT")
    assert s3.objects() == [
        "lake/v1/default/t/batch-1.parquet",
        "lake/v1/default/t/manifest.json",
    ]
    assert not (s3.engine.db.data_dir / "storage" / "default" / "t").exists()
    stats = s3.sql("SELECT count(*) FROM t").stats["default.t"]
    assert stats["hot_rows"] == 0 and stats["segments_total"] == 1
    assert s3.sql("SELECT count(*), sum(v) FROM t").rows() == [(100, sum(range(100)))]
    assert s3.rows("SELECT in_sync FROM system.manifests WHERE table_name = 't'") == [(True,)]


def test_pruning_reads_only_the_surviving_segment_objects(s3: S3) -> None:
    _table(s3)
    for lo in (0, 1000, 2000):
        _insert(s3, range(lo, lo + 100))
        s3.sql("FLUSH TABLE t WAIT")
    s3.restart()  # nothing cached: every object read is on the wire
    s3.proxy.seen.clear()
    r = s3.sql("SELECT v FROM t WHERE id = 1050")
    assert r.rows() == [(1050,)]
    assert r.stats["default.t"]["segments_pruned"] == 2
    assert r.stats["default.t"]["segments_scanned"] == 1
    assert s3.seen("batch-2.parquet")  # the one segment that can hold id 1050
    assert not s3.seen("batch-1.parquet") and not s3.seen("batch-3.parquet")


def test_segments_are_downloaded_once_then_read_from_the_local_copy(s3: S3) -> None:
    _table(s3)
    _insert(s3, range(1000))
    s3.sql("FLUSH TABLE t WAIT")
    s3.proxy.seen.clear()
    assert s3.sql("SELECT sum(v) FROM t").scalar() == sum(range(1000))
    assert len(s3.seen("batch-1.parquet")) >= 1 and s3.engine.db.object_cache.downloads == 1
    s3.restart()  # the copy on local disk outlives the process
    s3.proxy.seen.clear()
    assert s3.sql("SELECT sum(v) FROM t WHERE id < 10").scalar() == sum(range(10))
    assert s3.seen("batch-1.parquet") == [] and s3.engine.db.object_cache.downloads == 0
    # Deleting the cache is safe: the next read fetches (and checks) the object again.
    import shutil

    shutil.rmtree(s3.engine.db.object_cache.root)
    s3.restart()
    assert s3.sql("SELECT count(*) FROM t").scalar() == 1000
    assert s3.engine.db.object_cache.downloads == 1


def test_a_damaged_local_copy_is_fetched_again(s3: S3) -> None:
    _table(s3)
    _insert(s3, range(100))
    s3.sql("FLUSH TABLE t WAIT")
    assert s3.sql("SELECT count(*) FROM t").scalar() == 100
    (copy,) = s3.engine.db.object_cache.root.glob("*.parquet")
    s3.engine.close()
    data = bytearray(copy.read_bytes())
    data[len(data) // 2] ^= 0xFF
    copy.write_bytes(bytes(data))
    s3.engine = s3.engines.open(background_jobs=False)
    assert s3.sql("SELECT count(*), sum(v) FROM t").rows() == [(100, sum(range(100)))]
    assert s3.engine.db.object_cache.downloads == 1


@pytest.mark.parametrize("kind", ["SHARED", "USER"])
def test_update_and_delete_of_cold_rows_stay_applied_across_flush_compaction_and_restart(
    s3: S3, kind: str
) -> None:
    who = "alice" if kind == "USER" else "root"
    _table(s3, kind)
    _insert(s3, range(10), user=who)
    s3.sql("FLUSH TABLE t WAIT")
    s3.sql("UPDATE t SET v = v + 100 WHERE id < 3", user=who)
    s3.sql("DELETE FROM t WHERE id >= 8", user=who)
    expected = [(i, i + 100 if i < 3 else i) for i in range(8)]
    assert s3.rows("SELECT id, v FROM t ORDER BY id", user=who) == expected
    s3.sql("FLUSH TABLE t WAIT")
    assert s3.rows("SELECT id, v FROM t ORDER BY id", user=who) == expected
    s3.restart()
    assert s3.rows("SELECT id, v FROM t ORDER BY id", user=who) == expected
    msg = s3.sql("COMPACT TABLE t WAIT").message
    assert "2 segment(s) into 1" in msg and "5 dead version(s) dropped" in msg
    assert s3.rows("SELECT id, v FROM t ORDER BY id", user=who) == expected
    scope = "default/t/alice" if kind == "USER" else "default/t"
    # The retired segments were deleted from the bucket once nothing read them.
    assert s3.objects(scope) == [
        f"lake/v1/{scope}/batch-3.parquet",
        f"lake/v1/{scope}/manifest.json",
    ]
    s3.restart()
    assert s3.rows("SELECT id, v FROM t ORDER BY id", user=who) == expected


def test_user_tables_keep_each_users_segments_under_their_own_prefix(s3: S3) -> None:
    _table(s3, "USER")
    _insert(s3, range(5), user="alice")
    _insert(s3, range(3), user="bob", v=50)
    s3.sql("FLUSH TABLE t WAIT")
    assert s3.objects("default/t") == [
        "lake/v1/default/t/alice/batch-1.parquet",
        "lake/v1/default/t/alice/manifest.json",
        "lake/v1/default/t/bob/batch-1.parquet",
        "lake/v1/default/t/bob/manifest.json",
    ]
    s3.restart()
    assert s3.rows("SELECT id, v FROM t ORDER BY id", user="alice") == [(i, i) for i in range(5)]
    assert s3.rows("SELECT id, v FROM t ORDER BY id", user="bob") == [(i, i + 50) for i in range(3)]
    s3.sql("DROP USER bob")
    assert s3.objects("default/t/bob") == []
    assert len(s3.objects("default/t/alice")) == 2


def test_a_bucket_table_and_a_local_table_join_in_one_query(s3: S3) -> None:
    _table(s3)
    s3.sql("CREATE TABLE names (id BIGINT PRIMARY KEY, name TEXT)")
    _insert(s3, range(4))
    s3.sql("INSERT INTO names VALUES (1, 'one'), (3, 'three')")
    s3.sql("FLUSH TABLE t WAIT")
    s3.sql("FLUSH TABLE names WAIT")
    assert (s3.engine.db.data_dir / "storage" / "default" / "names" / "manifest.json").exists()
    assert s3.rows("SELECT t.id, t.v, n.name FROM t JOIN names n ON t.id = n.id ORDER BY 1") == [
        (1, 1, "one"),
        (3, 3, "three"),
    ]


def test_a_damaged_segment_object_is_loud_and_repair_salvages_it(s3: S3) -> None:
    _table(s3)
    _insert(s3, range(100))
    s3.sql("FLUSH TABLE t WAIT")
    s3.restart()
    fs = s3.engine.db.storages.filesystem("s3")
    key = f"{s3.bucket}/lake/v1/default/t/batch-1.parquet"
    with fs.open_input_file(key) as f:
        data = bytearray(f.read())
    data[len(data) // 3] ^= 0xFF
    with fs.open_output_stream(key) as out:
        out.write(bytes(data))
    with pytest.raises(StorageCorruptionError, match=f"s3://{key} is damaged"):
        s3.sql("SELECT count(*) FROM t")
    msg = s3.sql("REPAIR TABLE t").message
    assert "dropped 1 damaged or missing: batch-1.parquet" in msg
    assert "lake/v1/default/t/batch-1.parquet.damaged" in s3.objects()
    # Whatever was salvaged reads back; the count matches what REPAIR reported lost.
    lost = int(msg.split("; ")[1].split(" flushed")[0])
    assert s3.sql("SELECT count(*) FROM t").scalar() == 100 - lost


def test_drop_table_deletes_its_objects_and_a_new_table_of_that_name_starts_empty(s3: S3) -> None:
    _table(s3)
    _insert(s3, range(10))
    s3.sql("FLUSH TABLE t WAIT")
    s3.sql("DROP TABLE t")
    assert s3.objects() == []
    _table(s3)
    assert s3.sql("SELECT count(*) FROM t").scalar() == 0


def test_rename_of_a_bucket_table_is_refused_and_changes_nothing(s3: S3) -> None:
    _table(s3)
    _insert(s3, range(3))
    s3.sql("FLUSH TABLE t WAIT")
    with pytest.raises(KalamError, match="a bucket has no rename"):
        s3.sql("ALTER TABLE t RENAME TO u")
    assert s3.sql("SELECT count(*) FROM t").scalar() == 3


def test_an_unreachable_store_is_an_object_storage_error_not_corruption(s3: S3) -> None:
    _table(s3)
    _insert(s3, range(3))
    s3.sql("FLUSH TABLE t WAIT")
    s3.restart()
    s3.proxy.fail(lambda method, path: True)
    try:
        with pytest.raises(ObjectStorageError, match=r"s3://.*default/t"):
            s3.sql("SELECT count(*) FROM t")
    finally:
        s3.proxy.fail(None)
    assert s3.sql("SELECT count(*) FROM t").scalar() == 3


def test_the_readme_object_storage_session_runs_as_written(
    s3_upstream: str,
    aws_env: None,
    tmp_path: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Object storage", 1)[1].split("\n## ", 1)[0]
    session = re.search(r"```bash\n(.*?)```", section, re.DOTALL).group(1)  # type: ignore[union-attr]
    snippet = session.split("<<'PY'\n", 1)[1].split("\nPY\n", 1)[0]
    printed = [line[2:] for line in session.split("\nPY\n", 1)[1].splitlines()]
    # The README's server listens on 127.0.0.1:5000; this test's on a free port.
    snippet = snippet.replace("127.0.0.1:5000", s3_upstream.split("://", 1)[1])
    monkeypatch.chdir(tmp_path)
    exec(compile(snippet, "README.md", "exec"), {})  # noqa: S102 - the README's own code
    assert capsys.readouterr().out.splitlines() == printed


@pytest.mark.parametrize("fmt", ["parquet", "delta"])
def test_export_to_a_storage_bucket_writes_the_snapshot_there(s3: S3, fmt: str) -> None:
    import pyarrow.parquet as pq

    _table(s3)
    _insert(s3, range(6))
    s3.sql("FLUSH TABLE t WAIT")
    s3.sql("UPDATE t SET v = 100 WHERE id = 1")  # hot and cold rows in one snapshot
    dest = f"s3://{s3.bucket}/exports/t.{fmt}"
    msg = s3.sql(f"EXPORT TABLE t TO '{dest}' FORMAT {fmt}").message
    assert msg == f"Exported 6 row(s) of default.t to {dest} ({fmt})"
    want = s3.sql("SELECT * FROM t ORDER BY id").table
    fs = s3.engine.db.storages.filesystem("s3")
    if fmt == "parquet":
        got = pq.read_table(dest[len("s3://") :], filesystem=fs)
    else:
        from deltalake import DeltaTable

        options = {
            "AWS_ENDPOINT_URL": s3.proxy.endpoint,
            "AWS_ALLOW_HTTP": "true",
            "AWS_REGION": "us-east-1",
        }
        got = DeltaTable(dest, storage_options=options).to_pyarrow_table()
    assert got.sort_by("id").to_pylist() == want.to_pylist()
    with pytest.raises(InvalidOptionError, match="already exists"):
        s3.sql(f"EXPORT TABLE t TO '{dest}' FORMAT {fmt}")
    with pytest.raises(InvalidOptionError, match="no storage uses bucket 'elsewhere'"):
        s3.sql("EXPORT TABLE t TO 's3://elsewhere/t.parquet'")


def test_a_named_profile_supplies_credentials_and_only_its_name_is_stored(
    s3: S3, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from engine.storage.fs import _profile_credentials

    creds = tmp_path / "credentials"
    creds.write_text(
        "[lake]\naws_access_key_id = profile-key\naws_secret_access_key = profile-secret\n"
    )
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(creds))
    assert _profile_credentials("lake") == {
        "access_key": "profile-key",
        "secret_key": "profile-secret",
    }
    s3.sql(
        f"CREATE STORAGE viaprofile TYPE s3 WITH (endpoint = '{s3.proxy.endpoint}', "
        f"bucket = '{s3.bucket}', profile = 'lake')"
    )
    row = s3.sql("SELECT credentials FROM system.storages WHERE storage_id = 'viaprofile'")
    assert row.rows() == [("profile lake",)]
    raw = b"".join(v for _, v in s3.engine.db.store.scan(b"Sstorage:"))
    assert b"profile-secret" not in raw and b"profile-key" not in raw
    with pytest.raises(InvalidOptionError, match="AWS profile 'nope' is not in"):
        s3.sql(f"CREATE STORAGE other TYPE s3 WITH (bucket = '{s3.bucket}', profile = 'nope')")


def test_a_bucket_scope_names_its_uri_and_reader_options_for_other_engines(s3: S3) -> None:
    from engine.storage.fs import table_uri

    _table(s3, "USER")
    t = s3.engine.db.catalog.get_table("default", "t")
    uri, options = table_uri(s3.engine.db.scope_dir(t.table_id, "alice"))
    assert uri == f"s3://{s3.bucket}/lake/v1/default/t/alice"
    assert options == {
        "AWS_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": s3.proxy.endpoint,
        "AWS_ALLOW_HTTP": "true",
    }
    local_uri, local_options = table_uri(s3.engine.db.data_dir / "storage")
    assert local_options == {} and local_uri.endswith("storage")


def test_delta_log_files_in_a_bucket_are_put_once_and_listed(s3: S3) -> None:
    from engine.storage.fs import ObjectLogFiles

    _table(s3)
    t = s3.engine.db.catalog.get_table("default", "t")
    log_dir = s3.engine.db.scope_dir(t.table_id, "") / "_delta_log"
    files = ObjectLogFiles()
    assert files.list_names(log_dir) == []
    first = log_dir / "00000000000000000000.json"
    assert files.put_if_absent(first, b'{"commitInfo":{}}\n') is True
    assert files.put_if_absent(first, b"something else") is False  # never overwritten
    assert files.read(first) == b'{"commitInfo":{}}\n'
    assert files.list_names(log_dir) == ["00000000000000000000.json"]
    files.remove_temps(log_dir)
    assert s3.objects() == ["lake/v1/default/t/_delta_log/00000000000000000000.json"]


def test_only_a_dba_manages_or_lists_storages(s3: S3) -> None:
    from engine.errors import PermissionDeniedError

    for sql in (
        "CREATE STORAGE other TYPE s3 WITH (bucket = 'bucket-one')",
        "DROP STORAGE s3",
        "SHOW STORAGES",
        "SELECT * FROM system.storages",
    ):
        with pytest.raises(PermissionDeniedError):
            s3.sql(sql, user="alice")
    assert s3.rows("SELECT storage_id FROM system.storages ORDER BY 1") == [("local",), ("s3",)]


@pytest.mark.parametrize("kind", ["SHARED", "USER"])
def test_a_bucket_table_is_a_delta_table_other_engines_read_with_its_live_rows(
    s3: S3, kind: str
) -> None:
    import os

    os.environ.setdefault("DO_NOT_TRACK", "1")  # Daft's telemetry would try the network
    import daft
    import deltalake
    import polars as pl
    from datafusion import SessionContext

    from engine.storage.fs import table_uri

    user = "alice" if kind == "USER" else "root"
    _table(s3, kind, delta=True)
    _insert(s3, range(50), user=user)
    s3.sql("FLUSH TABLE t WAIT")
    s3.sql("UPDATE t SET v = -1 WHERE id < 5", user=user)
    s3.sql("DELETE FROM t WHERE id >= 45", user=user)
    s3.sql("FLUSH TABLE t WAIT")
    t = s3.engine.db.catalog.get_table("default", "t")
    uri, options = table_uri(s3.engine.db.scope_dir(t.table_id, user if kind == "USER" else ""))
    options = {
        **options,
        "AWS_ACCESS_KEY_ID": "kalam-test-key",
        "AWS_SECRET_ACCESS_KEY": "kalam-test-secret",
    }
    want = sorted(s3.rows("SELECT id, v, note FROM t", user=user))
    assert len(want) == 45 and (0, -1, "n0") in want
    delta = deltalake.DeltaTable(uri, storage_options=options).to_pyarrow_table()
    got = sorted(zip(*(delta.column(c).to_pylist() for c in ("id", "v", "note")), strict=True))
    assert got == want
    frame = pl.scan_delta(uri, storage_options=options).select("id", "v", "note").collect()
    assert sorted(frame.rows()) == want
    # DataFusion over the Delta table's file set (deltalake's table provider
    # does not see an object store registered on the context: see README).
    ctx = SessionContext()
    ctx.register_dataset(
        "d", deltalake.DeltaTable(uri, storage_options=options).to_pyarrow_dataset()
    )
    fused = ctx.sql("SELECT id, v, note FROM d").to_arrow_table().to_pylist()
    assert sorted((r["id"], r["v"], r["note"]) for r in fused) == want
    s3_config = daft.io.S3Config(
        endpoint_url=options["AWS_ENDPOINT_URL"],
        region_name=options["AWS_REGION"],
        key_id=options["AWS_ACCESS_KEY_ID"],
        access_key=options["AWS_SECRET_ACCESS_KEY"],
        use_ssl=False,
        force_virtual_addressing=False,
    )
    io_config = daft.io.IOConfig(s3=s3_config)
    got = daft.read_deltalake(uri, io_config=io_config).select("id", "v", "note").to_pylist()
    assert sorted((r["id"], r["v"], r["note"]) for r in got) == want
    assert any(k.endswith("_delta_log/00000000000000000000.json") for k in s3.objects())
