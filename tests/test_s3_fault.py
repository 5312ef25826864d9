"""A bucket that fails requests in the middle of a FLUSH.

The S3 server (moto, on 127.0.0.1) sits behind ``FaultProxy``, which answers
HTTP 500 with an S3 error body to the requests a rule picks: real failing
responses, retried by the AWS SDK as it would retry a real outage. For each
step of a flush's object writes (starting the segment upload, its part, its
completion, the ``manifest.json`` PUT) the flush must fail with an
``ObjectStorageError`` naming the object, lose nothing (every row still reads,
from the hot store), and succeed when retried after the fault clears; the
state then survives a restart.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from s3_server import FaultProxy, make_bucket, moto_server, object_keys

from engine.errors import ObjectStorageError


@pytest.fixture(scope="module")
def upstream() -> Iterator[str]:
    with moto_server() as endpoint:
        yield endpoint


@pytest.fixture(scope="module")
def proxy(upstream: str) -> Iterator[FaultProxy]:
    with FaultProxy(upstream) as p:
        yield p


@pytest.fixture
def bucket(upstream: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "kalam-test-key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "kalam-test-secret")
    name = f"fault-{uuid.uuid4().hex[:12]}"
    make_bucket(upstream, name)
    return name


def _writes(needle: str, query: str | None = None) -> Callable[[str, str], bool]:
    """Fail PUT/POST requests whose path holds ``needle`` (and ``query``)."""

    def rule(method: str, path: str) -> bool:
        return (
            method in ("PUT", "POST")
            and needle in path
            and (query is None or query in path.partition("?")[2])
        )

    return rule


STEPS = {
    # pyarrow uploads a segment as a multipart upload: start, part, complete.
    "segment upload start": (_writes("batch-", "uploads"), "batch-2.parquet"),
    "segment part": (_writes("batch-", "partNumber"), "batch-2.parquet"),
    "segment completion": (_writes("batch-", "uploadId"), "batch-2.parquet"),
    "manifest write": (_writes("manifest.json"), "manifest.json"),
}


@pytest.mark.parametrize("step", list(STEPS))
def test_a_fault_mid_flush_fails_clearly_loses_nothing_and_a_retry_succeeds(
    engines: Any, proxy: FaultProxy, upstream: str, bucket: str, step: str
) -> None:
    rule, object_name = STEPS[step]
    eng = engines.open(background_jobs=False)
    eng.execute(
        f"CREATE STORAGE s3 TYPE s3 WITH (endpoint = '{proxy.endpoint}', bucket = '{bucket}')"
    )
    eng.execute(
        "CREATE TABLE t (id BIGINT PRIMARY KEY, v INT) WITH (DELTA = false, STORAGE_ID = 's3')"
    )
    eng.execute("INSERT INTO t VALUES " + ", ".join(f"({i}, {i})" for i in range(20)))
    eng.execute("FLUSH TABLE t WAIT")  # batch-1: cold rows the next flush supersedes
    eng.execute("UPDATE t SET v = v + 100 WHERE id < 5")
    eng.execute("DELETE FROM t WHERE id >= 15")
    eng.execute("INSERT INTO t VALUES " + ", ".join(f"({i}, {i})" for i in range(20, 30)))
    expected = [(i, i + 100 if i < 5 else i) for i in [*range(15), *range(20, 30)]]

    def rows() -> list[tuple[Any, ...]]:
        return eng.execute("SELECT id, v FROM t ORDER BY id").rows()

    assert rows() == expected
    manifest_before = eng.db.provider(eng.db.catalog.get_table("default", "t")).cold.hot_manifest(
        ""
    )
    proxy.fail(rule)
    try:
        with pytest.raises(ObjectStorageError) as info:
            eng.execute("FLUSH TABLE t WAIT")
        assert proxy.failed, "the fault never fired"
    finally:
        proxy.fail(None)
    # The error names the object whose request failed.
    assert f"s3://{bucket}/default/t/{object_name}" in str(info.value)
    assert info.value.code == "OBJECT_STORAGE_ERROR"
    # Nothing lost, nothing published: every row reads back, the new ones from hot.
    assert rows() == expected
    stats = eng.execute("SELECT count(*) FROM t").stats["default.t"]
    assert stats["segments_total"] == 1 and stats["hot_rows"] == 15  # 5 updates + 10 new
    assert (
        eng.db.provider(eng.db.catalog.get_table("default", "t")).cold.hot_manifest("")
        == manifest_before
    )
    failed = eng.execute("SELECT status FROM system.jobs WHERE job_type = 'flush'").rows()
    assert ("failed",) in failed
    # The fault cleared: the same FLUSH succeeds and publishes everything.
    eng.execute("FLUSH TABLE t WAIT")
    assert rows() == expected
    stats = eng.execute("SELECT count(*) FROM t").stats["default.t"]
    assert stats["hot_rows"] == 0 and stats["segments_total"] == 2
    assert [k.rsplit("/", 1)[1] for k in object_keys(upstream, f"{bucket}/default/t")] == [
        "batch-1.parquet",
        "batch-2.parquet",
        "manifest.json",
    ]
    eng = engines.reopen(eng, background_jobs=False)
    assert rows() == expected


class Killed(BaseException):
    """Stands in for SIGKILL at a flush step: nothing after the step runs."""


CRASH_STEPS = (
    "segment_written",
    "manifest_json_written",
    "hot_manifest_committed",
    "hot_rows_partly_removed",
)


@pytest.mark.parametrize("first_flush", [True, False], ids=["first flush", "later flush"])
@pytest.mark.parametrize("step", CRASH_STEPS)
def test_a_crash_at_any_flush_step_on_a_bucket_loses_and_duplicates_nothing(
    engines: Any,
    proxy: FaultProxy,
    upstream: str,
    bucket: str,
    step: str,
    first_flush: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from engine.jobs import flush as flush_job

    eng = engines.open(background_jobs=False)
    eng.execute(
        f"CREATE STORAGE s3 TYPE s3 WITH (endpoint = '{proxy.endpoint}', bucket = '{bucket}')"
    )
    eng.execute(
        "CREATE TABLE t (id BIGINT PRIMARY KEY, v INT) WITH (DELTA = false, STORAGE_ID = 's3')"
    )
    model = {i: i for i in range(40)}
    eng.execute("INSERT INTO t VALUES " + ", ".join(f"({i}, {v})" for i, v in model.items()))
    if not first_flush:
        eng.execute("FLUSH TABLE t WAIT")
        eng.execute("UPDATE t SET v = v + 1000 WHERE id < 10")
        eng.execute("DELETE FROM t WHERE id >= 35")
        eng.execute("INSERT INTO t VALUES (100, 100), (101, 101)")
        model = {i: (v + 1000 if i < 10 else v) for i, v in model.items() if i < 35}
        model.update({100: 100, 101: 101})
    # Several removal chunks, so "hot_rows_partly_removed" happens between two.
    monkeypatch.setattr(flush_job, "DELETE_CHUNK", 7)

    def hook(at: str) -> None:
        if at == step:
            raise Killed(at)

    table = eng.db.catalog.get_table("default", "t")
    with pytest.raises(Killed):
        flush_job.flush_table(eng.db, table, crash=hook)
    eng = engines.reopen(eng, background_jobs=False)
    want = sorted(model.items())
    assert eng.execute("SELECT id, v FROM t ORDER BY id").rows() == want
    assert eng.execute("SELECT id FROM t GROUP BY id HAVING count(*) > 1").rows() == []
    for probe in (0, 9, 20, 36, 100):
        got = eng.execute("SELECT id, v FROM t WHERE id = ?", [probe]).rows()
        assert got == ([(probe, model[probe])] if probe in model else [])
    # The next flush publishes what is left and sweeps the crash's orphans.
    eng.execute("INSERT INTO t VALUES (200, 200)")
    eng.execute("FLUSH TABLE t WAIT")
    model[200] = 200
    assert eng.execute("SELECT id, v FROM t ORDER BY id").rows() == sorted(model.items())
    named = {r["path"] for r in eng.execute("SHOW MANIFEST t").to_pylist()}
    stored = {
        k.rsplit("/", 1)[1]
        for k in object_keys(upstream, f"{bucket}/default/t")
        if k.endswith(".parquet")
    }
    assert stored == named


@pytest.mark.parametrize("step", ["segment part", "manifest write"])
def test_a_fault_mid_compaction_changes_nothing_and_a_retry_compacts(
    engines: Any, proxy: FaultProxy, upstream: str, bucket: str, step: str
) -> None:
    rule, _ = STEPS[step]
    eng = engines.open(background_jobs=False)
    eng.execute(
        f"CREATE STORAGE s3 TYPE s3 WITH (endpoint = '{proxy.endpoint}', bucket = '{bucket}')"
    )
    eng.execute(
        "CREATE TABLE t (id BIGINT PRIMARY KEY, v INT) "
        "WITH (DELTA = false, STORAGE_ID = 's3', COMPACT_POLICY = 'none')"
    )
    for lo in (0, 10, 20):
        eng.execute("INSERT INTO t VALUES " + ", ".join(f"({i}, {i})" for i in range(lo, lo + 10)))
        eng.execute("FLUSH TABLE t WAIT")
    eng.execute("DELETE FROM t WHERE id % 3 = 0")
    eng.execute("FLUSH TABLE t WAIT")
    want = [(i, i) for i in range(30) if i % 3]
    proxy.fail(rule)
    try:
        with pytest.raises(ObjectStorageError):
            eng.execute("COMPACT TABLE t WAIT")
        assert proxy.failed
    finally:
        proxy.fail(None)
    assert eng.execute("SELECT id, v FROM t ORDER BY id").rows() == want
    assert eng.execute("SELECT count(*) FROM t").stats["default.t"]["segments_total"] == 3
    assert "3 segment(s) into 1" in eng.execute("COMPACT TABLE t WAIT").message
    assert eng.execute("SELECT id, v FROM t ORDER BY id").rows() == want
    eng = engines.reopen(eng, background_jobs=False)
    assert eng.execute("SELECT id, v FROM t ORDER BY id").rows() == want
    parquet = [k for k in object_keys(upstream, f"{bucket}/default/t") if k.endswith(".parquet")]
    assert len(parquet) == 1
