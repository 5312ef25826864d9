"""Child process for ``test_crash.py``: write acknowledged rows, then die mid-flush.

Usage: ``python crash_child.py DATA_DIR STEP SCENARIO KIND``

* ``STEP``: the flush step at which the process SIGKILLs itself
  (``segment_written``, ``manifest_json_written``, ``hot_manifest_committed``,
  ``hot_rows_partly_removed``).
* ``SCENARIO``: ``first`` (the crashing flush is the table's first) or
  ``second`` (an earlier flush succeeded; older rows were then updated and
  deleted before the crashing flush; its manifest commit appends a line to
  ``manifest.jsonl``) or ``second_fold`` (the same, with the manifest log
  folded into a new checkpoint on every commit).
  Manifest-commit steps: ``manifest_log_half_written``,
  ``manifest_log_appended`` (an append), ``manifest_checkpoint_written`` (a
  fold, before its new log).
* ``KIND``: ``SHARED`` or ``USER`` (USER: users alice and bob; the crash hits
  alice's scope, which flushes first).

Every statement that returned is printed as one JSON line *after* it returned,
so the parent knows exactly which writes were acknowledged:
``{"user": u, "op": "upsert", "rows": [[id, v], ...]}`` or
``{"user": u, "op": "delete", "ids": [...]}``; then ``{"op": "crash", "step": s}``
just before the kill, or ``{"op": "no_crash"}`` if the step was never reached.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from typing import Any

import engine.jobs.flush as flush_module
import engine.manifest.files as manifest_files
from engine import Engine
from engine.jobs.flush import flush_table


def ack(event: dict[str, Any]) -> None:
    print(json.dumps(event), flush=True)


class Writer:
    def __init__(self, eng: Engine, user: str) -> None:
        self.eng = eng
        self.user = user

    def insert(self, ids: list[int], v: int = 0) -> None:
        rows = [[i, i + v] for i in ids]
        values = ", ".join(f"({i}, {x})" for i, x in rows)
        self.eng.execute(f"INSERT INTO t (id, v) VALUES {values}", user=self.user)
        ack({"user": self.user, "op": "upsert", "rows": rows})

    def update_add(self, ids: list[int], add: int) -> None:
        before = dict(
            self.eng.execute(
                f"SELECT id, v FROM t WHERE id IN ({', '.join(map(str, ids))})", user=self.user
            ).rows()
        )
        self.eng.execute(
            f"UPDATE t SET v = v + {add} WHERE id IN ({', '.join(map(str, ids))})",
            user=self.user,
        )
        ack({"user": self.user, "op": "upsert", "rows": [[i, before[i] + add] for i in ids]})

    def delete(self, ids: list[int]) -> None:
        self.eng.execute(f"DELETE FROM t WHERE id IN ({', '.join(map(str, ids))})", user=self.user)
        ack({"user": self.user, "op": "delete", "ids": ids})


def main(data_dir: str, step: str, scenario: str, kind: str) -> int:
    eng = Engine.open(data_dir, background_jobs=False)
    # Small removal chunks so the hot rows go in several batches.
    flush_module.DELETE_CHUNK = 7
    if scenario.endswith("_fold"):  # every manifest commit folds the log
        manifest_files.FOLD_BYTES = 0
        manifest_files.FOLD_FACTOR = 0.0
    # No Delta log: a Delta-publishing flush also rewrites the segment holding
    # the superseded rows (test_delta_crash.py crashes that path).
    eng.execute(f"CREATE {kind} TABLE t (id BIGINT PRIMARY KEY, v INT) WITH (DELTA = false)")
    users = ["alice", "bob"] if kind == "USER" else ["root"]
    writers = [Writer(eng, u) for u in users]
    table = eng.catalog.get_table("default", "t")

    if scenario.startswith("second"):
        for w in writers:
            w.insert(list(range(0, 30)))
        eng.flush("t")
        ack({"op": "flushed"})
        for w in writers:
            w.update_add([0, 1, 2, 3, 4], 1000)
            w.delete([5, 6, 7, 8, 9])
            w.insert([5], v=500)  # a deleted cold row written again
    for w in writers:
        for i in range(30, 60, 6):
            w.insert(list(range(i, i + 6)))
        w.update_add([31, 32], 7)
        w.delete([33])
        w.insert([61])

    def crash(reached: str) -> None:
        if reached == step:
            ack({"op": "crash", "step": reached})
            os.kill(os.getpid(), signal.SIGKILL)

    flush_table(eng.db, table, crash=crash)
    ack({"op": "no_crash"})
    eng.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
