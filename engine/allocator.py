"""Settings for DataFusion's memory allocator, applied before it loads.

DataFusion's Python extension allocates through mimalloc, which gives pages
freed by a query back to the operating system 10 ms later (its
``purge_delay``). A join or aggregate over millions of rows frees and
reallocates its hash tables and batches many times, so with that delay the
pages are handed back and faulted in (and zeroed) again within one query and
between repeated ones: TPC-H SF1 Q18 spent 0.2-1.8 s of system time per run
next to 0.75 s of user time, and its wall time varied 3x run to run.
Keeping freed pages one second measured Q18 at 0.39-0.48 s (from 0.48-1.44 s)
and Q7 at 0.18 s (from 0.19-0.31 s), with near-zero system time; the peak
memory of a query is unchanged (freed pages are reused, not added to).

One second covers a query re-run at once, not a cell re-run after others:
in ``bench/tpch.py``'s warm run each query comes back every ~30 s, and warm
Q18 (whose in-memory tables carry no min/max, so it hashes the 6M-row side)
took 0.87 s with a one-second delay against 0.42 s with a minute (the warm
geometric mean against DuckDB's own tables 2.06x against 1.90x, same
machine, back to back). So freed pages are kept a minute: a notebook that
re-runs a cell within it reuses them, and a process that goes on working
gives them back a minute after its last use. (mimalloc purges when it next
allocates or frees, so an idle process keeps them until its next query.)
Faulting fresh pages costs ~0.4 s per GB of system time on these VMs.

mimalloc reads its options from the environment once, when the extension
loads, so this must run before the first ``import datafusion`` in the
process; ``engine/__init__.py`` imports it first. A value the user already
set (``MIMALLOC_PURGE_DELAY=...``) is kept.
"""

from __future__ import annotations

import os

PURGE_DELAY_MS = 60_000

os.environ.setdefault("MIMALLOC_PURGE_DELAY", str(PURGE_DELAY_MS))
