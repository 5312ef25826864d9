"""Daft on a local Ray cluster reads a published table: the scale-out path of
the "Outgrowing one machine" section, with Ray's workers in processes of
their own (one cluster for this module, its files under pytest's temp dir)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine import Engine

os.environ.setdefault("DO_NOT_TRACK", "1")  # Daft's telemetry would try the network
os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # no token file in the home directory
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
import daft  # noqa: E402
import ray  # noqa: E402


@pytest.fixture(scope="module")
def ray_runner(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        _temp_dir=str(tmp_path_factory.mktemp("ray")),
    )
    try:
        daft.set_runner_ray()
        yield
    finally:
        ray.shutdown()


def test_daft_on_ray_reads_exactly_the_live_rows_of_a_user_scope(
    ray_runner: None, tmp_path: Path
) -> None:
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
        frame = daft.read_deltalake(str(path)).select("id", "v", "note").to_pylist()
    got = sorted((r["id"], r["v"], r["note"]) for r in frame)
    assert len(want) == 90 and (10, -10, "alice 10") in want
    assert got == want
