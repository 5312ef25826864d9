"""``CellResult``: what a ``%%kalam`` cell returns and displays.

It holds the engine ``Result`` of every statement the cell ran, decides which
of them are shown (status lines for non-queries, the last query or every query
with ``--all``), and hands conversions to the engine result of the last query,
so that what is shown and what is captured come from one execution.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from engine import Result
from kalam_magic import render


class CellResult:
    """The results of one cell, with rich display and conversions of its main result."""

    def __init__(
        self,
        results: Sequence[Result],
        *,
        displaylimit: int = 20,
        max_rows: int = render.DISPLAY_MAX_ROWS,
        show_all: bool = False,
        explain: bool = False,
        data_dir: str | None = None,
    ) -> None:
        if not results:
            raise ValueError("a CellResult needs at least one statement result")
        self.results: list[Result] = list(results)
        self.displaylimit = displaylimit
        #: Cap on ``displaylimit = 0`` (every row); 0 once the user confirmed (--rows all).
        self.max_rows = max_rows
        self.show_all = show_all
        self.explain = explain
        #: Hidden from query plans, which name segment files by absolute path.
        self.data_dir = data_dir

    # ------------------------------------------------------------ the main result

    @property
    def result(self) -> Result:
        """The last query's result; the last statement's when the cell ran no query."""
        for r in reversed(self.results):
            if r.is_query:
                return r
        return self.results[-1]

    @property
    def table(self) -> pa.Table:
        return self.result.table

    @property
    def columns(self) -> list[str]:
        return self.result.columns

    @property
    def message(self) -> str:
        return self.result.message

    @property
    def rows_affected(self) -> int | None:
        return self.result.rows_affected

    @property
    def elapsed_ms(self) -> float:
        return self.result.elapsed_ms

    @property
    def stats(self) -> dict[str, dict[str, int]]:
        return self.result.stats

    def __len__(self) -> int:
        return len(self.result)

    def to_arrow(self) -> pa.Table:
        return self.result.to_arrow()

    def to_pandas(self) -> Any:
        return self.result.to_pandas()

    def to_polars(self) -> Any:
        return self.result.to_polars()

    def rows(self) -> list[tuple[Any, ...]]:
        return self.result.rows()

    def scalar(self) -> Any:
        return self.result.scalar()

    def chart(self, kind: str, x: str, y: str | None = None, color: str | None = None) -> Any:
        """A chart of the main result (see ``%kalam --chart``); hist and box
        aggregate the rows already here, so nothing runs again."""
        from kalam_magic import charts

        spec = charts.ChartSpec(kind, x, y, color)
        data = charts.aggregate_table(spec, self.table) if spec.aggregated else self.table
        return charts.build(spec, data)

    # ------------------------------------------------------------ display

    def parts(self) -> list[tuple[str, Result]]:
        """What the cell shows, in statement order: (kind, result) pairs."""
        last_query = self.result if self.result.is_query else None
        shown: list[tuple[str, Result]] = []
        for r in self.results:
            if not r.is_query:
                shown.append(("status", r))
            elif self.show_all or r is last_query:
                shown.append(("plan" if self.explain else "table", r))
        return shown

    def _repr_html_(self) -> str:
        return render.render_html(
            self.parts(), self.displaylimit, hide_dir=self.data_dir, max_rows=self.max_rows
        )

    def _repr_mimebundle_(
        self, include: Any = None, exclude: Any = None, **kwargs: Any
    ) -> dict[str, str]:
        return {"text/plain": str(self), "text/html": self._repr_html_()}

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(str(self))

    def __str__(self) -> str:
        return render.render_text(
            self.parts(), self.displaylimit, hide_dir=self.data_dir, max_rows=self.max_rows
        )

    def __repr__(self) -> str:
        r = self.result
        what = f"{len(r)} row(s)" if r.is_query else repr(r.message)
        return f"<CellResult {len(self.results)} statement(s), last: {what}>"
