"""The writing process of the SIGKILL test (``test_dml_durability``).

``python dml_child.py DATA_DIR TABLE_TYPE DURABILITY`` runs ``plan(TABLE_TYPE)``
step by step and prints ``ack <step> <rows affected>`` after each step the
engine acknowledged, then blocks on stdin until it is killed. The parent
imports ``plan`` and ``replay`` from here, so both sides agree on the steps
and on the state after each of them.
"""

from __future__ import annotations

import random
import sys
from dataclasses import dataclass
from typing import Any

USERS = ("root", "bob")
KEYS = range(30)


@dataclass(frozen=True)
class Step:
    sql: str | None  # None: flush the table
    user: str = "root"
    params: tuple[Any, ...] | None = None


State = dict[str, dict[int, tuple[int, str]]]  # scope -> id -> (v, s)


def plan(table_type: str, steps: int = 150, seed: int = 7) -> list[Step]:
    """CREATE, seed rows, then a deterministic mix of multi-row UPDATEs,
    DELETEs, re-INSERTs and (unless STREAM) flushes."""
    rng = random.Random(seed)
    users = USERS if table_type == "USER" else ("root",)
    ttl = " WITH (TTL_SECONDS = 86400)" if table_type == "STREAM" else ""
    out = [Step(f"CREATE {table_type} TABLE t (id INT PRIMARY KEY, v INT, s TEXT){ttl}")]
    for user in users:
        values = ", ".join(f"({i}, {i}, 'seed')" for i in KEYS)
        out.append(Step(f"INSERT INTO t VALUES {values}", user))
    state = replay(table_type, out)
    for i in range(steps):
        user = users[i % len(users)]
        scope = user if table_type == "USER" else ""
        kind = rng.choice(("update", "update", "delete", "insert"))
        if table_type != "STREAM" and i % 12 == 5:
            step = Step(None)
        elif kind == "update":
            step = Step(
                f"UPDATE t SET v = v + {rng.randint(1, 9)}, s = 'u{i}' "
                f"WHERE id % 4 = {rng.randint(0, 3)}",
                user,
            )
        elif kind == "delete":
            lo = rng.choice(KEYS)
            step = Step(f"DELETE FROM t WHERE id BETWEEN {lo} AND {lo + 2}", user)
        else:
            missing = sorted(set(KEYS) - set(state[scope]))[:3]
            if not missing:
                step = Step("UPDATE t SET s = 'full' WHERE id IN (0, 1)", user)
            else:
                values = ", ".join(f"({k}, {-k}, 'i{i}')" for k in missing)
                step = Step(f"INSERT INTO t VALUES {values}", user)
        out.append(step)
        state = replay(table_type, [step], state)
    return out


def replay(table_type: str, steps: list[Step], state: State | None = None) -> State:
    """The model: apply ``steps`` (as ``plan`` writes them) to ``state``."""
    state = {s: dict(rows) for s, rows in (state or {}).items()}
    for step in steps:
        apply(table_type, step, state)
    return state


def apply(table_type: str, step: Step, state: State) -> int | None:
    """Apply one step to ``state``; returns the rows it affects (None: no count)."""
    if step.sql is None or step.sql.startswith("CREATE"):
        return None
    rows = state.setdefault(step.user if table_type == "USER" else "", {})
    words = step.sql.replace(",", " ").replace("(", " ").replace(")", " ").split()
    if words[0] == "INSERT":
        body = step.sql.split("VALUES", 1)[1]
        for tup in body.split("),"):
            k, v, s = (x.strip(" ()'") for x in tup.split(","))
            rows[int(k)] = (int(v), s)
        return body.count("(")
    if words[0] == "DELETE":
        lo, hi = int(words[words.index("BETWEEN") + 1]), int(words[words.index("AND") + 1])
        gone = [k for k in rows if lo <= k <= hi]
        for k in gone:
            del rows[k]
        return len(gone)
    if "IN" in words:  # UPDATE t SET s = 'full' WHERE id IN (0, 1)
        # Counts the rows it matches, also those already 'full' (not rewritten).
        hit = [k for k in (0, 1) if k in rows]
        for k in hit:
            rows[k] = (rows[k][0], "full")
        return len(hit)
    delta = int(words[words.index("+") + 1])
    s = words[words.index("s") + 2].strip("'")
    mod = int(words[-1])
    hit = [k for k in rows if k % 4 == mod]
    for k in hit:
        rows[k] = (rows[k][0] + delta, s)
    return len(hit)


def main() -> None:
    from engine import Engine

    data_dir, table_type, durability = sys.argv[1:4]
    eng = Engine.open(data_dir, durability=durability, background_jobs=False)
    for i, step in enumerate(plan(table_type)):
        if step.sql is None:
            eng.flush("t")
            affected = "-"
        else:
            result = eng.execute(step.sql, step.params, user=step.user)
            affected = "-" if result.rows_affected is None else str(result.rows_affected)
        print(f"ack {i} {affected}", flush=True)
    print("done", flush=True)
    sys.stdin.read()  # wait to be killed; never close the engine cleanly


if __name__ == "__main__":
    main()
