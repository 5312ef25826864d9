"""Progress bars for long statements (FLUSH of a large table, --persist of a large frame).

The engine reports ``(done, total)`` through a callback; the bar appears only
once ``total`` reaches ``Kalam.progress_threshold`` rows, so small statements
print nothing. The bar is tqdm's plain-text one on stderr: it needs no widget
library and shows the same in JupyterLab and a terminal.
"""

from __future__ import annotations

import sys
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
