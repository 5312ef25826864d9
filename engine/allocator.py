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

mimalloc reads its options from the environment once, when the extension
loads, so this must run before the first ``import datafusion`` in the
process; ``engine/__init__.py`` imports it first. A value the user already
set (``MIMALLOC_PURGE_DELAY=...``) is kept.
"""

from __future__ import annotations

import os

PURGE_DELAY_MS = 1000

os.environ.setdefault("MIMALLOC_PURGE_DELAY", str(PURGE_DELAY_MS))
