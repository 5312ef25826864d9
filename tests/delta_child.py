"""Child process for ``test_delta_crash.py``: acknowledged writes, then death
at one step of a flush or compaction of a Delta-publishing table.

Usage: ``python delta_child.py DATA_DIR STEP OP KIND``

* ``STEP``: where the process SIGKILLs itself (a flush, compaction or Delta
  publishing step name, see ``engine.jobs.flush`` / ``engine.delta.publish``).
* ``OP``: ``flush`` (the flush that updates and deletes cold rows, so its
  Delta publish rewrites a segment) or ``compact``.
* ``KIND``: ``SHARED`` or ``USER`` (users alice and bob).

Acknowledged statements are printed as JSON lines (``crash_child.ack``);
``{"op": "flushed"}`` marks a flush that completed.
"""

from __future__ import annotations

import os
import signal
import sys

from crash_child import Writer, ack

from engine import Engine
from engine.jobs.compact import compact_table
from engine.jobs.flush import flush_table


def main(data_dir: str, step: str, op: str, kind: str) -> int:
    eng = Engine.open(data_dir, background_jobs=False)
    eng.execute(f"CREATE {kind} TABLE t (id BIGINT PRIMARY KEY, v INT)")
    users = ["alice", "bob"] if kind == "USER" else ["root"]
    writers = [Writer(eng, u) for u in users]
    for start in range(0, 30, 10):
        for w in writers:
            w.insert(list(range(start, start + 10)))
        eng.flush("t")
        ack({"op": "flushed"})
    for w in writers:  # dead versions in two of the three segments
        w.update_add([0, 11], 1000)
        w.delete([5, 15])
        w.insert([5, 40], v=500)
    table = eng.catalog.get_table("default", "t")

    def crash(reached: str) -> None:
        if reached == step:
            ack({"op": "crash", "step": reached})
            os.kill(os.getpid(), signal.SIGKILL)

    if op == "flush":
        flush_table(eng.db, table, crash=crash)
    else:
        eng.flush("t")
        ack({"op": "flushed"})
        compact_table(eng.db, table, crash=crash)
    ack({"op": "no_crash"})
    eng.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
