"""Object storage: FLUSH and scans of a table whose cold tier is in an S3
bucket (moto's S3 server on 127.0.0.1, a separate process) against the same
table on local disk, in one run (issue 12).

What the ratio shows is the cost of the object-store round trips (every
segment and manifest write is a multipart upload, every first read of a
segment a download into the local object cache) on a server with no network
latency; a real bucket adds its own latency on top. Warm queries read the
local copies.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pyarrow as pa

from bench.fixtures import open_engine, work_dir
from bench.harness import BenchConfig, BenchReport, Case, NotAvailable, Row, interleave, log

NAME = "s3"
DDL = "(id BIGINT PRIMARY KEY, grp INT, value DOUBLE)"
BUCKET = "kalam-bench"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def _moto(port: int) -> Iterator[str]:
    """moto's S3 server in its own process (so it does not share our GIL)."""
    try:
        import moto.server  # noqa: F401
    except ImportError as exc:
        raise NotAvailable("moto[server] is not installed (pip install 'moto[server]')") from exc
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("the moto S3 server did not start") from None
                time.sleep(0.05)  # readiness poll with a deadline
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@contextmanager
def _credentials() -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    os.environ["AWS_ACCESS_KEY_ID"] = "bench"
    os.environ["AWS_SECRET_ACCESS_KEY"] = "bench"
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _rows(start: int, stop: int) -> pa.Table:
    return pa.table(
        {
            "id": pa.array(range(start, stop), type=pa.int64()),
            "grp": pa.array([i % 100 for i in range(start, stop)], type=pa.int32()),
            "value": pa.array([i * 0.5 for i in range(start, stop)], type=pa.float64()),
        }
    )


def run(cfg: BenchConfig) -> list[BenchReport]:
    n = cfg.pick(10_000, 100_000, 1_000_000)
    flushes = cfg.pick(3, 8, 10)
    report = BenchReport(
        NAME,
        "Object storage: FLUSH and scans on the S3 test server vs local disk (issue 12)",
        scale=f"{flushes} flushes of {n:,} rows each into a local and a bucket table",
    )
    import pyarrow.fs as pafs

    with work_dir(cfg, NAME) as wd, _credentials(), _moto(_free_port()) as endpoint:
        pafs.S3FileSystem(
            endpoint_override=endpoint.split("://")[1], scheme="http", allow_bucket_creation=True
        ).create_dir(BUCKET)
        opened = [open_engine(wd / "engine", background_jobs=False)]
        try:
            _run(cfg, opened, report, endpoint, n, flushes, wd)
        finally:
            for engine in opened:
                engine.close()
    return [report]


def _run(
    cfg: BenchConfig,
    opened: list[Any],
    report: BenchReport,
    endpoint: str,
    n: int,
    flushes: int,
    wd: Any,
) -> None:
    engine = opened[0]
    engine.execute(f"CREATE STORAGE s3 TYPE s3 WITH (endpoint = '{endpoint}', bucket = '{BUCKET}')")
    engine.execute(f"CREATE TABLE loc {DDL} WITH (COMPACT_POLICY = 'none')")
    engine.execute(f"CREATE TABLE rem {DDL} WITH (COMPACT_POLICY = 'none', STORAGE_ID = 's3')")
    times: dict[str, list[float]] = {"flush local": [], "flush s3": []}
    log(f"{NAME}: {flushes} flushes of {n:,} rows into each table")
    for f in range(flushes):
        data = _rows(f * n, (f + 1) * n)
        # Alternate which table goes first so neither always meets a busier machine.
        order = [("loc", "flush local"), ("rem", "flush s3")]
        for table, case in order if f % 2 == 0 else order[::-1]:
            engine.insert_arrow(table, data)
            start = time.perf_counter()
            engine.flush(table)
            times[case].append(time.perf_counter() - start)
    report.rows.append(Row("flush s3", times["flush s3"], peers=("flush local",)))
    report.rows.append(Row("flush local", times["flush local"]))
    report.rows.append(
        Row("flush throughput s3", [n / t for t in times["flush s3"]], unit="rate", note="rows/s")
    )
    report.rows.append(
        Row(
            "flush throughput local",
            [n / t for t in times["flush local"]],
            unit="rate",
            note="rows/s",
        )
    )

    scan = "SELECT grp, count(*) AS n, sum(value) AS s FROM {} GROUP BY grp ORDER BY grp"
    point = "SELECT value FROM {} WHERE id = ?"
    if engine.execute(scan.format("loc")).rows() != engine.execute(scan.format("rem")).rows():
        report.notes.append("CHECK FAILED: the bucket table differs from the local one")

    # First query after a restart with an empty object cache: the bucket
    # table's segments are downloaded and checksummed (invariant 5), the local
    # ones read from disk and checksummed.
    first: dict[str, list[float]] = {"first scan s3": [], "first scan local": []}
    for _ in range(cfg.pick(1, 3)):
        cache = engine.db.object_cache.root
        engine.close()
        shutil.rmtree(cache, ignore_errors=True)
        engine = open_engine(wd / "engine", background_jobs=False)
        opened.append(engine)
        for table, case in (("rem", "first scan s3"), ("loc", "first scan local")):
            start = time.perf_counter()
            engine.execute(scan.format(table))
            first[case].append(time.perf_counter() - start)
    report.rows.append(Row("first scan s3", first["first scan s3"], peers=("first scan local",)))
    report.rows.append(Row("first scan local", first["first scan local"]))

    probe = [n * flushes // 2]
    cases = [
        Case("scan s3", lambda: engine.execute(scan.format("rem"))),
        Case("scan local", lambda: engine.execute(scan.format("loc"))),
        Case("point s3", lambda: engine.execute(point.format("rem"), probe)),
        Case("point local", lambda: engine.execute(point.format("loc"), probe)),
    ]
    samples = interleave(cases, rounds=cfg.pick(2, cfg.rounds), per_round=cfg.pick(3, 10))
    for kind in ("scan", "point"):
        report.rows.append(Row(f"{kind} s3", samples[f"{kind} s3"], peers=(f"{kind} local",)))
        report.rows.append(Row(f"{kind} local", samples[f"{kind} local"]))
