"""Load test of the Kalam server: N concurrent HTTP clients (Arrow responses)
against the same workload run embedded in one process, checked against a
model of the expected final state; then single-client point-query latency,
server vs embedded.

Usage (from the repository root)::

    .venv/bin/python bench/bench_server.py                 # 16 clients x 60 s
    .venv/bin/python bench/bench_server.py --seconds 20
    .venv/bin/python bench/bench_server.py --smoke         # a few seconds, for CI

Each client owns its keys (``owner`` = client number), so a model per client
knows the exact expected rows: point SELECTs and the per-owner aggregate are
checked on every call (a mismatch is an error), and after the run the server
is stopped with SIGTERM and the data directory reopened embedded: every
acknowledged INSERT / UPDATE must be there with its last value (lost writes).
Not a timed test: the figures mean something next to each other.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pyarrow as pa

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from engine import Engine  # noqa: E402

ARROW = "application/vnd.apache.arrow.stream"
SCHEMA = (
    "CREATE NAMESPACE IF NOT EXISTS bench; "
    "CREATE TABLE bench.kv (id BIGINT PRIMARY KEY, owner INT, val BIGINT, n INT) "
    "WITH (TYPE = 'SHARED')"
)
# The mix: (operation, weight).
MIX = (("insert", 35), ("update", 25), ("point", 30), ("aggregate", 10))


# ------------------------------------------------------------------ workload
@dataclass
class Model:
    """What one client expects its rows to be: id -> (val, n)."""

    owner: int
    rows: dict[int, tuple[int, int]] = field(default_factory=dict)
    next_id: int = 0

    def new_id(self) -> int:
        self.next_id += 1
        return self.owner * 10_000_000 + self.next_id


@dataclass
class Stats:
    latencies: dict[str, list[float]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def add(self, op: str, seconds: float) -> None:
        self.latencies.setdefault(op, []).append(seconds)


Runner = Callable[[str, list[Any]], pa.Table]


def client_loop(run: Runner, model: Model, stats: Stats, stop: threading.Event) -> None:
    """Random operations until ``stop``; every answer is checked against ``model``."""
    rng = random.Random(model.owner)
    ops = [op for op, w in MIX for _ in range(w)]
    while not stop.is_set():
        op = rng.choice(ops)
        if op in ("update", "point") and not model.rows:
            op = "insert"
        started = time.perf_counter()
        try:
            if op == "insert":
                key, val = model.new_id(), rng.randrange(1 << 40)
                run("INSERT INTO bench.kv VALUES ($1, $2, $3, 0)", [key, model.owner, val])
                model.rows[key] = (val, 0)
            elif op == "update":
                key = rng.choice(list(model.rows))
                val = rng.randrange(1 << 40)
                run("UPDATE bench.kv SET val = $1, n = n + 1 WHERE id = $2", [val, key])
                model.rows[key] = (val, model.rows[key][1] + 1)
            elif op == "point":
                key = rng.choice(list(model.rows))
                got = run("SELECT val, n FROM bench.kv WHERE id = $1", [key]).to_pylist()
                if got != [{"val": model.rows[key][0], "n": model.rows[key][1]}]:
                    stats.errors.append(f"point {key}: {got} != {model.rows[key]}")
            else:
                got = run(
                    "SELECT count(*) AS c, sum(val) AS s FROM bench.kv WHERE owner = $1",
                    [model.owner],
                ).to_pylist()[0]
                want = (len(model.rows), sum(v for v, _ in model.rows.values()) or None)
                if (got["c"], got["s"]) != want:
                    stats.errors.append(f"aggregate {model.owner}: {got} != {want}")
        except Exception as exc:  # noqa: BLE001 - every failure is counted, the run goes on
            stats.errors.append(f"{op}: {exc}")
            continue
        stats.add(op, time.perf_counter() - started)


# ------------------------------------------------------------------ server side
class Server:
    """A ``kalam serve --port 0`` subprocess on ``data_dir``."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        log = open(data_dir.parent / "server.log", "ab")  # noqa: SIM115 - lives as long as the process
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "engine.cli",
                "serve",
                "--data-dir",
                str(data_dir),
                "--port",
                "0",
            ],
            stdout=log,
            stderr=log,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            cwd=ROOT,
        )
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("kalam serve did not start; see server.log")
            try:
                info = json.loads((data_dir / "server.json").read_text())
                if info["pid"] == self.proc.pid:
                    self.url, secret = info["url"], info["secret"]
                    if self._health():
                        break
            except (OSError, ValueError):
                pass
            time.sleep(0.05)
        status, body, _ = self.request(
            "/v1/api/auth/local", {"secret": secret, "user": "root"}, accept="application/json"
        )
        self.token = json.loads(body)["access_token"]

    def _health(self) -> bool:
        try:
            c = self.connection()
            c.request("GET", "/health")
            return c.getresponse().status == 200
        except OSError:
            return False

    def connection(self) -> http.client.HTTPConnection:
        u = urlparse(self.url)
        return http.client.HTTPConnection(u.hostname, u.port, timeout=60)

    def request(
        self,
        path: str,
        body: dict[str, Any],
        *,
        accept: str = ARROW,
        conn: http.client.HTTPConnection | None = None,
    ) -> tuple[int, bytes, dict[str, str]]:
        c = conn or self.connection()
        headers = {"Content-Type": "application/json", "Accept": accept}
        if getattr(self, "token", None):
            headers["Authorization"] = f"Bearer {self.token}"
        c.request("POST", path, json.dumps(body), headers)
        r = c.getresponse()
        return r.status, r.read(), dict(r.getheaders())

    def runner(self) -> Runner:
        """A keep-alive connection of its own, returning each result as Arrow."""
        conn = self.connection()

        def run(sql: str, params: list[Any]) -> pa.Table:
            status, body, _ = self.request("/v1/api/sql", {"sql": sql, "params": params}, conn=conn)
            if status != 200:
                raise RuntimeError(f"HTTP {status}: {body[:200]!r}")
            return pa.ipc.open_stream(body).read_all()

        return run

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=120)


def embedded_runner(engine: Engine) -> Runner:
    conn = engine.connect()

    def run(sql: str, params: list[Any]) -> pa.Table:
        return conn.execute(sql, params).to_arrow()

    return run


# ------------------------------------------------------------------ measuring
def run_load(make_runner: Callable[[], Runner], clients: int, seconds: float) -> dict[str, Any]:
    models = [Model(owner=i + 1) for i in range(clients)]
    stats = [Stats() for _ in range(clients)]
    stop = threading.Event()
    runners = [make_runner() for _ in range(clients)]
    threads = [
        threading.Thread(target=client_loop, args=(runners[i], models[i], stats[i], stop))
        for i in range(clients)
    ]
    started = time.perf_counter()
    for t in threads:
        t.start()
    time.sleep(seconds)  # the load runs for a fixed wall time
    stop.set()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    all_lat = [x for s in stats for xs in s.latencies.values() for x in xs]
    by_op = {op: [x for s in stats for x in s.latencies.get(op, [])] for op, _ in MIX}
    return {
        "models": models,
        "ops": len(all_lat),
        "throughput": len(all_lat) / elapsed,
        "p50_ms": _pct(all_lat, 50),
        "p99_ms": _pct(all_lat, 99),
        "by_op": {op: (len(xs), _pct(xs, 50), _pct(xs, 99)) for op, xs in by_op.items()},
        "errors": [e for s in stats for e in s.errors],
    }


def _pct(xs: list[float], q: int) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * q / 100))] * 1000


def lost_writes(data_dir: Path, models: list[Model]) -> tuple[int, int]:
    """(acknowledged rows missing or with another value, rows nobody wrote)."""
    with Engine.open(data_dir, background_jobs=False) as eng:
        stored = {
            r["id"]: (r["val"], r["n"])
            for r in eng.execute("SELECT id, val, n FROM bench.kv").to_pylist()
        }
    expected = {k: v for m in models for k, v in m.rows.items()}
    lost = sum(1 for k, v in expected.items() if stored.get(k) != v)
    return lost, len(set(stored) - set(expected))


POINT_SQL = "SELECT val, n FROM bench.kv WHERE id = $1"


def point_overhead(work: Path, rows: int, n: int) -> tuple[float, float]:
    """p50 (ms) of single-client point SELECTs by primary key over HTTP and
    embedded, on the same ``rows`` rows, sampled alternately so machine noise
    hits both alike."""
    values = ", ".join(f"({i}, {i % 16}, {i}, 0)" for i in range(rows))
    server_dir = work / "point-server" / "data"
    server_dir.mkdir(parents=True)
    srv = Server(server_dir)
    try:
        status, body, _ = srv.request("/v1/api/sql", {"sql": SCHEMA}, accept="application/json")
        assert status == 200, body
        srv.runner()(f"INSERT INTO bench.kv VALUES {values}", [])
        with Engine.open(work / "point-embedded") as eng:
            eng.execute_script(SCHEMA)
            eng.execute(f"INSERT INTO bench.kv VALUES {values}")
            local, remote = embedded_runner(eng), srv.runner()
            rng = random.Random(7)
            samples: dict[str, list[float]] = {"server": [], "embedded": []}
            for i in range(n + 100):  # the first 100 rounds warm both up
                key = rng.randrange(rows)
                for name, run in (("server", remote), ("embedded", local)):
                    started = time.perf_counter()
                    got = run(POINT_SQL, [key]).to_pylist()
                    if i >= 100:
                        samples[name].append(time.perf_counter() - started)
                    assert got == [{"val": key, "n": 0}], got
    finally:
        srv.stop()
    return (
        statistics.median(samples["server"]) * 1000,
        statistics.median(samples["embedded"]) * 1000,
    )


def print_load(name: str, r: dict[str, Any]) -> None:
    print(
        f"{name:9s} ops={r['ops']:7d}  throughput={r['throughput']:8.1f} ops/s  "
        f"p50={r['p50_ms']:7.3f} ms  p99={r['p99_ms']:8.3f} ms  errors={len(r['errors'])}"
    )
    for op, (count, p50, p99) in r["by_op"].items():
        print(f"    {op:9s} n={count:6d}  p50={p50:7.3f} ms  p99={p99:8.3f} ms")
    for e in r["errors"][:5]:
        print(f"    error: {e}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="load duration per side")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--points", type=int, default=2000, help="single-client point queries")
    parser.add_argument("--smoke", action="store_true", help="3 s, 4 clients, 200 points")
    parser.add_argument(
        "--points-only", action="store_true", help="only the single-client point-query comparison"
    )
    args = parser.parse_args(argv)
    if args.smoke:
        args.seconds, args.clients, args.points = 3.0, 4, 200
    with tempfile.TemporaryDirectory(prefix="kalam-bench-server-") as tmp:
        work = Path(tmp)
        if args.points_only:
            server_p50, embedded_p50 = point_overhead(work, 10_000, args.points)
            print(
                f"single-client point query p50: server {server_p50:.3f} ms, embedded "
                f"{embedded_p50:.3f} ms, overhead {server_p50 - embedded_p50:.3f} ms"
            )
            return 0
        # ---- over HTTP
        server_dir = work / "server" / "data"
        server_dir.mkdir(parents=True)
        srv = Server(server_dir)
        status, body, _ = srv.request("/v1/api/sql", {"sql": SCHEMA}, accept="application/json")
        assert status == 200, body
        print(f"{args.clients} clients x {args.seconds:g} s, mix {dict(MIX)}")
        remote = run_load(srv.runner, args.clients, args.seconds)
        print_load("server", remote)
        assert srv.stop() == 0, "kalam serve did not exit cleanly"
        lost, extra = lost_writes(server_dir, remote["models"])
        print(f"    after SIGTERM and reopen: lost writes={lost}, unexpected rows={extra}")
        # ---- embedded, one process
        with Engine.open(work / "embedded") as eng:
            eng.execute_script(SCHEMA)
            local = run_load(lambda: embedded_runner(eng), args.clients, args.seconds)
            print_load("embedded", local)
        lost_e, extra_e = lost_writes(work / "embedded", local["models"])
        server_p50, embedded_p50 = point_overhead(
            work, 10_000 if not args.smoke else 1000, args.points
        )
        overhead = server_p50 - embedded_p50
        print(
            f"single-client point query p50: server {server_p50:.3f} ms, embedded "
            f"{embedded_p50:.3f} ms, overhead {overhead:.3f} ms (target <= 1 ms)"
        )
        print(f"throughput ratio server/embedded: {remote['throughput'] / local['throughput']:.2f}")
        ok = not remote["errors"] and not lost and not extra and not local["errors"]
        ok = ok and not lost_e and not extra_e
        print("PASS" if ok and overhead <= 1.0 else "CHECK")
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
