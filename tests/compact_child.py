"""Child process for ``test_compaction.py``: acknowledged writes, then death mid-compaction.

Usage: ``python compact_child.py DATA_DIR STEP KIND``

* ``STEP``: the compaction step at which the process SIGKILLs itself
  (``segments_written``, ``manifest_json_written``, ``hot_manifest_committed``).
* ``KIND``: ``SHARED`` or ``USER`` (users alice and bob).

Before compacting, each scope holds four segments with updated and deleted
cold rows (delete markers) and some hot rows over cold ones. Acknowledged
statements are printed as JSON lines, as ``crash_child.py`` does.
"""

from __future__ import annotations

import os
import signal
import sys

from crash_child import Writer, ack

from engine import Engine
from engine.jobs.compact import compact_table


def main(data_dir: str, step: str, kind: str) -> int:
    eng = Engine.open(data_dir, background_jobs=False)
    # Without a Delta log, so delete markers pile up for compaction to clear
    # (test_delta_crash.py crashes a Delta-publishing table).
    eng.execute(f"CREATE {kind} TABLE t (id BIGINT PRIMARY KEY, v INT) WITH (DELTA = false)")
    users = ["alice", "bob"] if kind == "USER" else ["root"]
    writers = [Writer(eng, u) for u in users]
    for start in range(0, 40, 10):
        for w in writers:
            w.insert(list(range(start, start + 10)))
        eng.flush("t")
        ack({"op": "flushed"})
    for w in writers:
        w.update_add([0, 11, 22, 33], 1000)
        w.delete([5, 15, 25, 35])
        w.insert([5], v=500)  # a deleted cold row written again
    eng.flush("t")
    ack({"op": "flushed"})
    for w in writers:  # hot versions over compacted-to-be cold rows
        w.update_add([1, 12], 7)
        w.delete([2])
    table = eng.catalog.get_table("default", "t")

    def crash(reached: str) -> None:
        if reached == step:
            ack({"op": "crash", "step": reached})
            os.kill(os.getpid(), signal.SIGKILL)

    compact_table(eng.db, table, crash=crash)
    ack({"op": "no_crash"})
    eng.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
