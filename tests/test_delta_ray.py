"""Daft on a local Ray cluster reads a published table: the scale-out path of
the "Outgrowing one machine" section. Ray runs in a child process of its own
(Daft picks its runner once per process, and other tests here use the native
one), with its files in a temp dir of its own."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from engine import Engine

READER = """
import json, os, sys
import daft, ray
ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, _temp_dir=sys.argv[2])
try:
    daft.set_runner_ray()
    rows = daft.read_deltalake(sys.argv[1]).select("id", "v", "note").to_pylist()
    print(json.dumps(rows))
finally:
    ray.shutdown()
"""


def test_daft_on_ray_reads_exactly_the_live_rows_of_a_user_scope(tmp_path: Path) -> None:
    with Engine.open(tmp_path / "data", background_jobs=False) as eng:
        eng.execute("CREATE USER TABLE t (id BIGINT PRIMARY KEY, v INT, note TEXT)")
        for user in ("alice", "bob"):
            values = ", ".join(f"({i}, {i}, '{user} {i}')" for i in range(100))
            eng.execute(f"INSERT INTO t VALUES {values}", user=user)
        eng.execute("FLUSH TABLE t WAIT")
        eng.execute("UPDATE t SET v = -v WHERE id % 10 = 0", user="alice")
        eng.execute("DELETE FROM t WHERE id >= 90", user="alice")
        eng.execute("FLUSH TABLE t WAIT")
        want = sorted(eng.execute("SELECT id, v, note FROM t", user="alice").rows())
    path = tmp_path / "data" / "storage" / "default" / "t" / "alice"
    # Ray's unix sockets live under its temp dir: a path of 107 bytes at most.
    ray_dir = tempfile.mkdtemp(prefix="kalam-ray-")
    env = {
        **os.environ,
        "DO_NOT_TRACK": "1",  # Daft's telemetry would try the network
        "RAY_AUTH_MODE": "disabled",  # no token file in the home directory
        "RAY_USAGE_STATS_ENABLED": "0",
    }
    try:
        proc = subprocess.run(
            [sys.executable, "-c", READER, str(path), ray_dir],
            capture_output=True,
            text=True,
            env=env,
            timeout=240,
            check=False,
        )
    finally:
        shutil.rmtree(ray_dir, ignore_errors=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = json.loads(proc.stdout.strip().splitlines()[-1])
    got = sorted((r["id"], r["v"], r["note"]) for r in rows)
    assert len(want) == 90 and (10, -10, "alice 10") in want
    assert got == want
