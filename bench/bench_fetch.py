"""Fetching a large result: embedded, Flight SQL (ADBC), HTTP Arrow IPC and HTTP JSON.

One SHARED table of 1M rows x 6 columns (BIGINT, BIGINT, DOUBLE, TEXT,
TIMESTAMP, BOOLEAN), flushed to Parquet, is read whole (``SELECT *``) by:

- the embedded engine in this process (``Engine.execute(...).to_arrow()``);
- the ADBC Flight SQL driver against ``kalam serve --flight-port``
  (``cursor.fetch_arrow_table()``);
- ``kalam.connect("http://...")`` asking for an Arrow IPC stream;
- a plain HTTP client asking for KalamDB's JSON document and parsing it;
- DuckDB's own Arrow fetch of the same rows from its in-memory table, the peer;
- the floor under Flight SQL: the same ADBC fetch from a server (``--floor``)
  that answers every query with the result computed once beforehand, in
  messages of 64k rows, so only the transfer and the client remain.

The server runs in its own process on a copy of the same data directory, so
the client side of every remote case is timed as a user would see it
(execute + transfer + decode). Every path runs the same query on the same
rows; the bench first checks that they return the same table. Medians in one
run: the Arrow paths in interleaved rounds (at least 7 at full size, the
first case rotating), then HTTP JSON on its own (see ``run``).
Targets: Flight SQL ≤ 1.5× embedded and ≤ 0.2× HTTP JSON.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pyarrow as pa

from bench.fixtures import duckdb_connect, open_engine, work_dir
from bench.harness import BenchConfig, BenchReport, Case, Target, interleave, rows_from_samples

NAME = "fetch"
ROOT = Path(__file__).resolve().parent.parent
QUERY = "SELECT * FROM bench.wide"
USER, PASSWORD = "fetcher", "fetcher-pw"
START_DEADLINE = 120.0
FLOOR = "Flight SQL floor (ADBC, result prebuilt)"


def make_rows(n: int) -> pa.Table:
    import pyarrow.compute as pc

    ids = pa.array(range(n), type=pa.int64())
    return pa.table(
        {
            "id": ids,
            "qty": pc.multiply(ids, 7),
            "price": pc.divide(pc.cast(ids, pa.float64()), 3.0),
            "label": pa.array([f"item-{i % 1000:04d}" for i in range(n)]),
            "at": pa.array(
                [1_700_000_000_000_000 + i * 1_000_000 for i in range(n)], type=pa.timestamp("us")
            ),
            "flag": pc.equal(pc.bit_wise_and(ids, 1), 0),
        }
    )


def build(data_dir: Path, rows: pa.Table) -> None:
    eng = open_engine(data_dir, background_jobs=False)
    try:
        eng.execute(f"CREATE USER {USER} WITH PASSWORD '{PASSWORD}' ROLE dba")
        eng.execute("CREATE NAMESPACE bench")
        eng.execute(
            "CREATE TABLE bench.wide (id BIGINT PRIMARY KEY, qty BIGINT, price DOUBLE, "
            "label TEXT, at TIMESTAMP, flag BOOLEAN) WITH (TYPE = 'SHARED')"
        )
        step = 250_000
        for start in range(0, rows.num_rows, step):
            eng.insert_arrow("bench.wide", rows.slice(start, step))
        eng.flush("bench.wide")
    finally:
        eng.close()


@contextmanager
def served(data_dir: Path) -> Iterator[dict[str, Any]]:
    """``kalam serve`` with HTTP and Flight SQL on free ports; its server.json."""
    log = open(data_dir.with_name("serve.log"), "wb")  # noqa: SIM115 - closed below
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "engine.cli", "serve", "--data-dir", str(data_dir)]
    proc = subprocess.Popen(
        [*cmd, "--port", "0", "--flight-port", "0"], stdout=log, stderr=log, env=env, cwd=ROOT
    )
    try:
        info_path = data_dir / "server.json"
        deadline = time.monotonic() + START_DEADLINE
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"kalam serve exited: {data_dir.with_name('serve.log')}")
            if time.monotonic() > deadline:
                raise RuntimeError("kalam serve did not start in time")
            try:
                info = json.loads(info_path.read_text())
                if info.get("pid") == proc.pid and info.get("flight_url"):
                    break
            except (FileNotFoundError, ValueError):
                pass
            time.sleep(0.05)  # polling interval, bounded by the deadline
        yield info
    finally:
        _stop(proc)
        log.close()


def _stop(proc: subprocess.Popen[Any]) -> None:
    """SIGTERM (the server finishes what it is sending), SIGKILL after a minute."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextmanager
def floor_served(data_dir: Path) -> Iterator[str]:
    """The floor server (``serve_floor``) in its own process; its Flight URL."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "bench.bench_fetch", "--floor", str(data_dir)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, env=env, cwd=ROOT)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # the port, once it serves
        if not line.strip():
            raise RuntimeError("the floor server did not start")
        yield f"grpc://127.0.0.1:{int(line)}"
    finally:
        _stop(proc)


def serve_floor(data_dir: Path) -> None:
    """A Flight SQL server whose every plain query is answered with QUERY's
    result, computed once at start and cut into messages of ``BATCH_ROWS``
    rows: what the transfer and the ADBC client cost with no query to run."""
    from engine import auth
    from engine.flight import serve_flight
    from engine.flight.server import BATCH_ROWS

    eng = open_engine(data_dir, background_jobs=False)
    table = eng.execute(QUERY).to_arrow().combine_chunks()
    table = pa.Table.from_batches(table.to_batches(max_chunksize=BATCH_ROWS))
    server = serve_flight(
        eng,
        "127.0.0.1",
        0,
        authenticate=lambda user, password: auth.verify_password(eng.db, user, password),
    )

    def prebuilt(descriptor: Any, user: str, *_: Any) -> Any:
        return server._info(descriptor, user, table, table.num_rows)

    server._streamed_info = prebuilt  # type: ignore[method-assign,assignment]
    print(server.port, flush=True)
    signal.sigwait([signal.SIGTERM])
    server.shutdown()
    eng.close()


class JsonClient:
    """KalamDB's JSON API as a plain client uses it (a connection per request:
    the server drops idle kept-alive connections after a few seconds)."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname, parts.port
        body = json.dumps({"user": USER, "password": PASSWORD})
        self.token = self._post("/v1/api/auth/login", body, {})["access_token"]

    def _post(self, path: str, body: str, headers: dict[str, str]) -> Any:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=600)
        try:
            conn.request("POST", path, body, {"Content-Type": "application/json", **headers})
            return json.loads(conn.getresponse().read())
        finally:
            conn.close()

    def fetch(self, sql: str) -> list[list[Any]]:
        doc = self._post(
            "/v1/api/sql", json.dumps({"sql": sql}), {"Authorization": f"Bearer {self.token}"}
        )
        rows: list[list[Any]] = doc["results"][0]["rows"]
        return rows

    def close(self) -> None:
        return None


def run(cfg: BenchConfig) -> list[BenchReport]:
    import adbc_driver_flightsql.dbapi as flightsql

    import kalam

    n = cfg.pick(10_000, 1_000_000, 1_000_000)
    rows = make_rows(n)
    with work_dir(cfg, "fetch") as root:
        local_dir, served_dir = root / "local", root / "served"
        build(local_dir, rows)
        shutil.copytree(local_dir, served_dir)
        shutil.copytree(local_dir, root / "floor")
        eng = open_engine(local_dir, background_jobs=False)
        duck = duckdb_connect()
        duck.register("src", rows)
        duck.execute("CREATE TABLE wide AS SELECT * FROM src")
        duck.unregister("src")
        # DuckDB's relation API fetches Arrow without the extra copy its DB-API cursor makes.
        duck_fetch = (
            "to_arrow_table" if hasattr(duck.sql("SELECT 1"), "to_arrow_table") else "arrow"
        )
        with served(served_dir) as info, floor_served(root / "floor") as floor_url:
            adbc = flightsql.connect(
                info["flight_url"],
                db_kwargs={"username": USER, "password": PASSWORD},
                autocommit=True,
            )
            adbc_floor = flightsql.connect(
                floor_url, db_kwargs={"username": USER, "password": PASSWORD}, autocommit=True
            )
            http_arrow = kalam.connect(info["url"], user=USER, password=PASSWORD)
            http_json = JsonClient(info["url"])
            try:
                checks = _check_same_rows(n, eng, adbc, http_arrow, http_json, duck, duck_fetch)

                def flight_fetch(conn: Any = adbc) -> Any:
                    with conn.cursor() as cur:
                        cur.execute(QUERY)
                        return cur.fetch_arrow_table()

                floor_rows = flight_fetch(adbc_floor).num_rows
                if floor_rows != n:
                    raise AssertionError(f"the floor server returned {floor_rows} rows")

                arrow_cases = [
                    Case("embedded", lambda: eng.execute(QUERY).to_arrow()),
                    Case("Flight SQL (ADBC)", flight_fetch),
                    Case("HTTP Arrow IPC", lambda: http_arrow.execute(QUERY).fetch_arrow_table()),
                    Case(
                        "DuckDB fetch (peer)",
                        lambda: getattr(duck.sql("SELECT * FROM wide"), duck_fetch)(),
                    ),
                    Case(FLOOR, lambda: flight_fetch(adbc_floor)),
                ]
                # At least 7 interleaved rounds at full size: one slow-mode
                # burst on this shared VM must not move a median.
                rounds = cfg.pick(cfg.rounds, max(cfg.rounds, 7), max(cfg.rounds, 7))
                samples = interleave(arrow_cases, rounds=rounds, per_round=1, warmup=1, block=1)
                # JSON (seconds, and a million Python rows built and freed in
                # this process per fetch) is timed after the Arrow paths: its
                # garbage would otherwise land on whichever case follows it.
                json_case = Case("HTTP JSON", lambda: http_json.fetch(QUERY))
                samples |= interleave([json_case], rounds=rounds, per_round=1, warmup=1)
            finally:
                adbc.close()
                adbc_floor.close()
                http_arrow.close()
                http_json.close()
        eng.close()
        duck.close()
    report = BenchReport(
        NAME,
        "Fetching a large result: embedded, Flight SQL, HTTP Arrow, HTTP JSON",
        scale=f"{n:,} rows x 6 columns, SELECT * from Parquet; server in its own process",
        rows=rows_from_samples(
            samples,
            peers={
                "Flight SQL (ADBC)": ("embedded", "HTTP JSON"),
                "HTTP Arrow IPC": ("embedded", "HTTP JSON"),
                "embedded": ("DuckDB fetch (peer)",),
                FLOOR: ("embedded", "Flight SQL (ADBC)"),
            },
            targets={
                "Flight SQL (ADBC)": Target(max_ratio=(("embedded", 1.5), ("HTTP JSON", 0.2))),
            },
        ),
        notes=checks,
    )
    return [report]


def _check_same_rows(
    n: int, eng: Any, adbc: Any, http_arrow: Any, http_json: JsonClient, duck: Any, duck_fetch: str
) -> list[str]:
    """Every path returns the same n rows with the same Arrow types (a fast
    fetch of the wrong data proves nothing). ``SELECT *`` has no ORDER BY, so
    rows are compared in key order."""
    with adbc.cursor() as cur:
        cur.execute(QUERY)
        via_flight = cur.fetch_arrow_table()
    embedded = eng.execute(QUERY).to_arrow()
    if embedded.num_rows != n or embedded.num_columns != 6:
        raise AssertionError(f"embedded returned {embedded.num_rows} x {embedded.num_columns}")
    expected = embedded.sort_by("id")
    remote = {
        "Flight SQL": via_flight,
        "HTTP Arrow": http_arrow.execute(QUERY).fetch_arrow_table(),
    }
    for name, table in remote.items():
        if not table.schema.equals(embedded.schema):
            raise AssertionError(f"{name} schema {table.schema} != embedded {embedded.schema}")
        if not table.sort_by("id").equals(expected):
            raise AssertionError(f"{name} returned other rows than the embedded engine")
    duck_table = getattr(duck.sql("SELECT * FROM wide"), duck_fetch)().sort_by("id")
    for column in embedded.column_names:
        want = expected.column(column)
        if not duck_table.column(column).cast(want.type).equals(want):
            raise AssertionError(f"DuckDB's {column} differs from the embedded engine's")
    json_rows = http_json.fetch(QUERY)
    if len(json_rows) != n:
        raise AssertionError(f"HTTP JSON returned {len(json_rows)} rows")
    return [
        f"embedded, Flight SQL and HTTP Arrow returned the same {n:,} rows and Arrow schema "
        "(compared in key order); DuckDB the same values; HTTP JSON the same row count",
        f"Flight SQL sent {via_flight.column(0).num_chunks} record batches",
    ]


if __name__ == "__main__":
    if sys.argv[1:2] == ["--floor"]:
        serve_floor(Path(sys.argv[2]))
        sys.exit(0)
    from bench.harness import format_report

    for rep in run(BenchConfig(rounds=int(os.environ.get("BENCH_ROUNDS", "5")))):
        print(format_report(rep))
