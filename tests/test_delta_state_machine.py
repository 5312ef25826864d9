"""Three-way differential test: the engine, a DuckDB model and ``deltalake``
reading the published Delta table. The steps of ``test_state_machine`` (DML,
FLUSH, reopen, every ALTER form) plus COMPACT; after every FLUSH each scope's
Delta table must hold exactly the model's rows under the current column names
(the engine-vs-DuckDB comparison after every step is inherited)."""

from __future__ import annotations

from pathlib import Path

import deltalake
from hypothesis import settings
from hypothesis.stateful import rule
from test_state_machine import SETTINGS, USERS, Differential


class DeltaDifferential(Differential):
    table_type = "USER"

    def scope_dir(self, user: str) -> Path:
        base = Path(self.dir) / "storage" / "default" / "t"
        return base / user if self.table_type == "USER" else base

    def check_delta(self) -> None:
        wanted = ["id", *self.cols]
        for user in USERS if self.table_type == "USER" else ("root",):
            theirs = sorted(
                self.duck.execute(
                    f"SELECT {', '.join(wanted)} FROM t WHERE scope = ?", [self.scope(user)]
                ).fetchall(),
                key=repr,
            )
            directory = self.scope_dir(user)
            if not (directory / "_delta_log").is_dir():
                assert theirs == [], (user, "rows but no Delta table", self.log[-12:])
                continue
            data = deltalake.DeltaTable(str(directory)).to_pyarrow_table()
            got = sorted((tuple(r[n] for n in wanted) for r in data.to_pylist()), key=repr)
            if data.column_names != wanted or got != theirs:
                raise AssertionError(
                    f"Delta table of {user} diverges after {self.log[-1]!r}\n"
                    f"  delta columns {data.column_names}, model columns {wanted}\n"
                    f"  only in delta: {[r for r in got if r not in theirs]}\n"
                    f"  only in model: {[r for r in theirs if r not in got]}\n"
                    "recent steps:\n  " + "\n  ".join(self.log[-12:])
                )

    @rule()
    def flush(self) -> None:
        super().flush()
        self.check_delta()

    @rule()
    def compact(self) -> None:
        self.log.append("COMPACT TABLE t + FLUSH TABLE t")
        self.eng.execute("COMPACT TABLE t WAIT")
        self.eng.flush("t")
        self.check_delta()


class SharedDeltaDifferential(DeltaDifferential):
    table_type = "SHARED"


# Small: every example writes Parquet and Delta commits (the two-way test runs more).
TestUserTableDeltaMatchesModel = DeltaDifferential.TestCase
TestUserTableDeltaMatchesModel.settings = settings(
    SETTINGS, max_examples=12, stateful_step_count=15
)
TestSharedTableDeltaMatchesModel = SharedDeltaDifferential.TestCase
TestSharedTableDeltaMatchesModel.settings = settings(
    SETTINGS, max_examples=8, stateful_step_count=15
)
