"""Profile one query over a table of N segments (see bench/README.md).

``python -m cProfile -s cumulative -m bench.profile_query --segments 200 --rows 1000 "SQL"``
"""

from __future__ import annotations

import argparse
import tempfile

import pyarrow as pa
import pyarrow.compute as pc

from engine import Engine


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("sql")
    ap.add_argument("--segments", type=int, default=200)
    ap.add_argument("--rows", type=int, default=1000, help="rows per segment")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d, Engine.open(d) as engine:
        engine.execute(
            "CREATE TABLE t (id BIGINT PRIMARY KEY, name TEXT, value DOUBLE) "
            "WITH (COMPACT_POLICY = 'none')"  # keep the N segments being profiled
        )
        for s in range(args.segments):
            ids = pa.array(range(s * args.rows, (s + 1) * args.rows), pa.int64())
            engine.insert_arrow(
                "t",
                pa.table(
                    {
                        "id": ids,
                        "name": pc.cast(ids, pa.string()),
                        "value": pc.cast(ids, pa.float64()),
                    }
                ),
            )
            engine.flush("t")
        for _ in range(3):  # warm: footers read, checksums verified
            engine.execute(args.sql)
        for _ in range(args.repeat):
            engine.execute(args.sql)


if __name__ == "__main__":
    main()
