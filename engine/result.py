"""``Result``: what every statement returns.

A query result holds one Arrow table; a status result (DDL, DML) holds a
message and ``rows_affected``. Conversions never re-run anything.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

_EMPTY = pa.table({})


@dataclass
class Result:
    """The outcome of one statement."""

    table: pa.Table = field(default_factory=lambda: _EMPTY)
    message: str = ""
    rows_affected: int | None = None
    elapsed_ms: float = 0.0
    is_query: bool = False
    statement: str = ""
    # Per-table scan figures, e.g. {"default.t": {"hot_rows": 3, ...}}.
    stats: dict[str, dict[str, int]] = field(default_factory=dict)
    job_id: str | None = None
    # SUBSCRIBE: the live query (``engine.live.Subscription``) whose initial rows
    # are ``table``; the caller owns it and must close it.
    subscription: Any = None

    @property
    def columns(self) -> list[str]:
        return list(self.table.column_names)

    def __len__(self) -> int:
        return int(self.table.num_rows)

    def to_arrow(self) -> pa.Table:
        return self.table

    def to_pandas(self) -> Any:
        """A DataFrame; repeated column names (``SELECT a, a``) get pandas'
        own de-duplicated labels (``a``, ``a.1``, ...), as ``read_csv`` does."""
        names = list(self.table.column_names)
        if len(set(names)) == len(names):
            return self.table.to_pandas()
        frame = self.table.rename_columns([f"__c{i}" for i in range(len(names))]).to_pandas()
        frame.columns = _dedupe(names)
        return frame

    def to_polars(self) -> Any:
        """A polars DataFrame; polars refuses repeated names, so they get the
        same de-duplicated labels as ``to_pandas``."""
        import polars as pl

        names = list(self.table.column_names)
        table = self.table
        if len(set(names)) != len(names):
            table = table.rename_columns(_dedupe(names))
        return pl.from_arrow(table)

    def to_pylist(self) -> list[dict[str, Any]]:
        return self.table.to_pylist()

    def rows(self) -> list[tuple[Any, ...]]:
        """Rows as tuples, in result order."""
        cols = [c.to_pylist() for c in self.table.columns]
        return list(zip(*cols, strict=True)) if cols else []

    def scalar(self) -> Any:
        """The single value of a one-row, one-column result."""
        if self.table.num_rows != 1 or self.table.num_columns != 1:
            raise ValueError(
                f"scalar() needs a 1x1 result, got {self.table.num_rows}x{self.table.num_columns}"
            )
        return self.table.column(0)[0].as_py()

    def __repr__(self) -> str:
        if self.is_query:
            return (
                f"<Result {len(self)} row(s) x {self.table.num_columns} column(s), "
                f"{self.elapsed_ms:.2f} ms>"
            )
        return f"<Result {self.message!r}, {self.elapsed_ms:.2f} ms>"


def _dedupe(names: list[str]) -> list[str]:
    """pandas' labels for repeated names: the second ``a`` is ``a.1``, and so on."""
    seen: dict[str, int] = {}
    taken = set(names)
    out = []
    for name in names:
        if name not in seen:
            seen[name] = 0
            out.append(name)
            continue
        n = seen[name]
        while True:
            n += 1
            label = f"{name}.{n}"
            if label not in taken:
                break
        seen[name] = n
        taken.add(label)
        out.append(label)
    return out
