"""``UPDATE t SET ... FROM u [, v | JOIN ...] [WHERE <predicate>]``.

The target SELECT joins ``t`` with the FROM tables as written (``SELECT
t.<columns>, t._seq, (<SET values>) FROM t, <from> WHERE <predicate>``), so
the SET values see the matching row of the FROM tables. PostgreSQL updates
a row once even when several FROM rows match it, with the values of "one of
them, not readily predictable"; here several matches are allowed only when
they give the row the same new values, and are refused otherwise rather
than picking one.

Integer overflow is checked for the SET parts over ``t``'s own columns;
arithmetic over the FROM tables' columns is left to DataFusion.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc
from sqlglot import exp

from engine.catalog.model import TableDef
from engine.errors import UnsupportedStatementError
from engine.sql import statements as st
from engine.sql.mapping import table_ref

if TYPE_CHECKING:
    from engine.core import Database


def qualifier(s: st.Update) -> str:
    return s.table.alias or s.table.name


def check(engine: Database, s: st.Update) -> None:
    """Refuse a FROM table that takes the target's own name."""
    own = qualifier(s).lower()
    for item in s.tree.args["from_"].find_all(exp.Table):
        ref = table_ref(item)
        if (ref.alias or ref.name).lower() == own:
            raise UnsupportedStatementError(
                f"UPDATE ... FROM: '{own}' names both the target and a FROM table; "
                "give one of them an alias"
            )
        engine.resolve(ref)  # a missing table fails here, by its name


def foreign_columns(s: st.Update, node: exp.Expression) -> bool:
    """Whether ``node`` names a column qualified by a FROM table."""
    own = qualifier(s).lower()
    return any(c.table and c.table.lower() != own for c in node.find_all(exp.Column))


def one_row_per_key(data: pa.Table, table: TableDef, new_names: list[str]) -> pa.Table:
    """``data`` with one row per primary key: a row several FROM rows matched
    is kept once when they all give it the same new values, else refused."""
    keys = [c.name for c in table.key_columns] or ["_seq"]
    counts = data.group_by(keys).aggregate([([], "count_all")])
    if data.num_rows == counts.num_rows:
        return data
    seen: dict[tuple, tuple] = {}
    keep: list[int] = []
    key_rows = zip(*(data.column(k).to_pylist() for k in keys), strict=True)
    new_rows = zip(*(data.column(n).to_pylist() for n in new_names), strict=True)
    for i, (key, new) in enumerate(zip(key_rows, new_rows, strict=True)):
        if key in seen:
            if seen[key] != new:
                shown = ", ".join(f"{k} = {v!r}" for k, v in zip(keys, key, strict=True))
                raise UnsupportedStatementError(
                    f"UPDATE ... FROM: the row with {shown} matches several FROM rows that "
                    "set it to different values; narrow the WHERE so one row matches"
                )
            continue
        seen[key] = new
        keep.append(i)
    return data.take(pc.cast(pa.array(keep), pa.int64()))
