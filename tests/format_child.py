"""Child process for ``test_data_format.py``: upgrade an unversioned (format 1)
data directory and die at one step of the upgrade.

Usage: ``python format_child.py DATA_DIR STEP``

It writes hot and flushed rows (a bulk DELETE among them), each acknowledged
as one JSON line (see ``crash_runs``), closes the engine, removes the
version records (what a directory from before versioning looks like), then
runs the open-time upgrade on the hot store and SIGKILLs itself at ``STEP``
(``file_temp_written``, ``file_written``, ``key_committed``).
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa

from engine import Engine
from engine.storage import format as data_format
from engine.storage.hot import HotStore


def ack(event: dict[str, Any]) -> None:
    print(json.dumps(event), flush=True)


def strip_version(data_dir: Path) -> None:
    """Remove both version records: the directory now looks unversioned."""
    from engine.storage import keys
    from engine.storage.hot import Batch

    (data_dir / data_format.FORMAT_FILE).unlink()
    store = HotStore(data_dir / "hot")
    batch = Batch()
    batch.delete(keys.FORMAT_KEY)
    store.commit(batch, sync=True)
    store.close()


def write_rows(data_dir: Path) -> None:
    eng = Engine.open(data_dir, background_jobs=False, embedded=True)
    eng.execute("CREATE SHARED TABLE t (id BIGINT PRIMARY KEY, v BIGINT)")
    ids = pa.array(range(2000), pa.int64())
    eng.insert_arrow("t", pa.table({"id": ids, "v": ids}))
    ack({"user": "root", "op": "upsert", "rows": [[i, i] for i in range(2000)]})
    eng.flush("t")
    eng.execute("DELETE FROM t WHERE id % 3 = 0")  # one bulk tombstone chunk
    ack({"user": "root", "op": "delete", "ids": [i for i in range(2000) if i % 3 == 0]})
    eng.execute("INSERT INTO t VALUES (5000, 7)")
    ack({"user": "root", "op": "upsert", "rows": [[5000, 7]]})
    eng.close()


def main(data_dir: str, step: str) -> int:
    path = Path(data_dir)
    write_rows(path)
    strip_version(path)

    def crash(reached: str) -> None:
        if reached == step:
            ack({"op": "crash", "step": reached})
            os.kill(os.getpid(), signal.SIGKILL)

    store = HotStore(path / "hot")
    data_format.settle(store, path, data_format.check_before_open(path), crash=crash)
    ack({"op": "no_crash"})
    store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
