"""CREATE UNIQUE INDEX: a UNIQUE constraint over one or more columns.

The engine has no secondary index structures (queries prune segments by
their statistics instead), so a unique index is what it promises to the
writer: the constraint. It is kept in the table's options as column ids
(``unique_sets``; a rename keeps it, a dropped column ends it) and enforced
on every write by ``engine/providers/unique.py``. Creating it checks the rows
already there, in every scope, and is refused if they repeat a value.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pyarrow as pa
from datafusion import SessionContext

from engine.errors import SchemaError, UniqueViolationError
from engine.exec.cast import plain_strings
from engine.providers.base import ScanOptions
from engine.providers.unique import constraint_name, duplicate_in
from engine.result import Result
from engine.security import require
from engine.sql import statements as st

if TYPE_CHECKING:
    from engine.core import Database


def create_unique_index(
    engine: Database, s: st.CreateUniqueIndex, params: dict[str, Any], user: str
) -> Result:
    require(engine.users.get(user).role, "dba", "CREATE UNIQUE INDEX")
    with engine.changing(engine.resolve(s.table)) as (table,):
        ids: list[int] = []
        for name in s.columns:
            column = table.get_column(name)
            if column.id in ids:
                raise SchemaError(f"Column '{name}' appears twice in the index")
            ids.append(column.id)
        sets = [list(x) for x in table.options.get("unique_sets", [])]
        singles = [[c.id] for c in table.columns if c.unique or c.primary_key]
        if sorted(ids) in [sorted(x) for x in sets + singles]:
            return Result(message=f"{s.name}: the constraint already exists", rows_affected=0)
        new = table.next_version(
            f"CREATE UNIQUE INDEX {s.name} ({', '.join(s.columns)})",
            engine.now_us(),
            options={**table.options, "unique_sets": [*sets, ids]},
        )
        prov = engine.provider(table)
        scopes = sorted(set(prov.partitions) | set(prov.cold.scopes()))
        for scope in scopes:
            data, _ = prov.merged(
                SessionContext(), scope, ScanOptions(now_ms=engine.clock_ms()), None
            )
            rows = data if isinstance(data, pa.Table) else plain_strings(data.to_arrow_table())
            found = duplicate_in(new, ids, rows)
            if found is not None:
                raise UniqueViolationError(
                    f"Cannot create unique index {s.name}: {constraint_name(new, ids)} already "
                    f"holds the value {found} twice",
                    column_name=constraint_name(new, ids),
                )
        txn = engine.begin()
        engine.catalog.put_table(txn, new, previous=table)
        txn.commit()
    return Result(
        message=f"Unique index {s.name} created on {table.qualified_name}", rows_affected=0
    )
