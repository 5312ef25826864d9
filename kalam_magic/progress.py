"""Progress of long statements.

``ProgressBar``: FLUSH of a large table and --persist of a large frame report
``(done, total)`` through a callback; the bar appears only once ``total``
reaches ``Kalam.progress_threshold`` rows, so small statements print nothing.
It is tqdm's plain-text bar on stderr: no widget library, the same in
JupyterLab and a terminal.

``QueryProgress``: a statement still running after ``Kalam.progress_after``
seconds gets one line in its output area, "running · 3.2 s · 1,204,000 rows
so far", updated in place (a display with an id) from a watcher thread that
reads the engine's list of running statements, and blanked when the
statement ends, so the result takes its place.
"""

from __future__ import annotations

import contextvars
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from tqdm.std import tqdm


class ProgressBar:
    """A ``(done, total)`` callback drawing a tqdm bar for large totals only."""

    def __init__(self, desc: str, *, threshold: int) -> None:
        self.desc = desc
        self.threshold = threshold
        self._bar: Any = None

    def __call__(self, done: int, total: int) -> None:
        if self._bar is None:
            if self.threshold <= 0 or total < self.threshold:
                return
            self._bar = tqdm(total=total, desc=self.desc, unit="row", file=sys.stderr)
        self._bar.update(max(0, done - self._bar.n))

    @property
    def shown(self) -> bool:
        return self._bar is not None

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


Publish = Callable[[dict[str, str], bool], None]


def _ipython_publisher() -> Publish:
    """Show/update one display (``update=True`` replaces it in place)."""
    from IPython.display import DisplayHandle

    handle = DisplayHandle()

    def publish(data: dict[str, str], update: bool) -> None:
        if update:
            handle.update(data, raw=True)
        else:
            handle.display(data, raw=True)

    return publish


def progress_text(elapsed_s: float, rows: int) -> str:
    return f"running · {elapsed_s:.1f} s · {rows:,} rows so far"


class QueryProgress:
    """Elapsed time and rows so far for a statement running longer than ``after`` seconds."""

    def __init__(
        self,
        rows_so_far: Callable[[], int],
        *,
        after: float = 1.0,
        every: float = 0.5,
        publish: Publish | None = None,
    ) -> None:
        self.rows_so_far = rows_so_far
        self.after = after
        self.every = every
        self._publish = publish
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.shown = False
        self.updates = 0

    def __enter__(self) -> QueryProgress:
        if self.after > 0:
            self._started = time.perf_counter()
            # The copied context carries the kernel's parent message, so the
            # display lands in this cell's output area.
            ctx = contextvars.copy_context()
            self._thread = threading.Thread(
                target=ctx.run, args=(self._watch,), name="kalam-progress", daemon=True
            )
            self._thread.start()
        return self

    def _watch(self) -> None:
        if self._stop.wait(self.after):
            return
        publish = self._publish or _ipython_publisher()
        while True:
            elapsed = time.perf_counter() - self._started
            text = progress_text(elapsed, self.rows_so_far())
            data = {
                "text/plain": text,
                "text/html": f'<div class="kalam-progress" style="opacity:0.7">{text}</div>',
            }
            publish(data, self.shown)
            self.shown = True
            self.updates += 1
            if self._stop.wait(self.every):
                break
        publish({"text/plain": "", "text/html": ""}, True)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
