"""The PEP 249 ``Connection`` and ``Cursor``, written once over a backend.

Results stay Arrow until asked for rows: ``fetch_arrow_table()`` /
``fetch_df()`` hand over the record batches as they are, ``fetchone`` /
``fetchmany`` / ``fetchall`` turn one batch at a time into tuples. A
connection also carries the ADBC DB-API extension methods tools look for
(``adbc_get_objects``, ``adbc_get_table_schema``, ``adbc_get_info``,
``adbc_current_catalog`` / ``adbc_current_db_schema``), so notebooks such as
marimo list Kalam's namespaces, tables and columns in their data-source panels.

Every statement commits on its own (Kalam has no multi-statement
transactions): ``commit()`` does nothing and ``rollback()`` raises
``NotSupportedError``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pyarrow as pa

from kalam import errors
from kalam.backends import Backend, Outcome, TableInfo

Description = tuple[str, pa.DataType, None, None, int | None, int | None, bool]


class Cursor:
    """A PEP 249 cursor. ``arraysize`` is the default ``fetchmany`` size."""

    arraysize = 1

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self._outcome: Outcome | None = None
        self._rows: list[tuple[Any, ...]] = []  # the current batch, as tuples
        self._row_pos = 0
        self._batch: pa.RecordBatch | None = None  # the current batch, not yet turned into rows
        self._closed = False
        self.rowcount = -1
        self.description: list[Description] | None = None
        self.lastrowid = None
        self.message = ""

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"rowcount={self.rowcount}"
        return f"<kalam.Cursor {state}>"

    def __enter__(self) -> Cursor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        while (row := self.fetchone()) is not None:
            yield row

    def _check(self) -> None:
        if self._closed:
            raise errors.interface_error("The cursor is closed")
        self.connection._check()

    # ----------------------------------------------------------- execute
    def execute(
        self, operation: str, parameters: Sequence[Any] | Mapping[str, Any] | None = None
    ) -> Cursor:
        """Run one statement. ``parameters`` bind ``?`` / ``$1`` (a sequence)
        or ``:name`` (a mapping) placeholders; values are never spliced in."""
        self._check()
        self._reset()
        outcome = self.connection._backend.execute(operation, parameters)
        self._outcome = outcome
        self.rowcount = outcome.rowcount
        self.message = outcome.message
        if outcome.schema is not None:
            self.description = [_describe(f) for f in outcome.schema]
        return self

    def executemany(
        self, operation: str, seq_of_parameters: Sequence[Sequence[Any] | Mapping[str, Any]]
    ) -> Cursor:
        """Run ``operation`` once per parameter set; ``rowcount`` is the total
        (each execution commits on its own, as every Kalam statement does)."""
        total = 0
        for params in seq_of_parameters:
            self.execute(operation, params)
            total = -1 if total < 0 or self.rowcount < 0 else total + self.rowcount
        self.rowcount = total
        return self

    def _reset(self) -> None:
        self._outcome = None
        self._rows, self._row_pos, self._batch = [], 0, None
        self.description = None
        self.rowcount = -1

    def _need_result(self) -> Outcome:
        self._check()
        if self._outcome is None or self._outcome.schema is None:
            raise errors.make("NO_RESULT_SET", "The last statement returned no rows to fetch")
        return self._outcome

    # ------------------------------------------------------------- fetch
    def _next_batch(self) -> bool:
        outcome = self._need_result()
        for batch in outcome.batches:
            if batch.num_rows:
                self._batch = batch
                self._rows, self._row_pos = [], 0
                return True
        return False

    def _fill_rows(self) -> bool:
        """Make sure unread rows are in ``_rows``; False when exhausted."""
        while self._row_pos >= len(self._rows):
            if self._batch is None and not self._next_batch():
                return False
            assert self._batch is not None
            cols = [c.to_pylist() for c in self._batch.columns]
            self._rows, self._row_pos, self._batch = list(zip(*cols, strict=True)), 0, None
        return True

    def fetchone(self) -> tuple[Any, ...] | None:
        self._need_result()
        if not self._fill_rows():
            return None
        row = self._rows[self._row_pos]
        self._row_pos += 1
        return row

    def fetchmany(self, size: int | None = None) -> list[tuple[Any, ...]]:
        size = self.arraysize if size is None else size
        out: list[tuple[Any, ...]] = []
        while len(out) < size and self._fill_rows():
            take = self._rows[self._row_pos : self._row_pos + size - len(out)]
            self._row_pos += len(take)
            out.extend(take)
        return out

    def fetchall(self) -> list[tuple[Any, ...]]:
        out: list[tuple[Any, ...]] = []
        while self._fill_rows():
            out.extend(self._rows[self._row_pos :])
            self._row_pos = len(self._rows)
        return out

    def fetch_record_batches(self) -> Iterator[pa.RecordBatch]:
        """The unread rows as Arrow record batches, as they arrive."""
        outcome = self._need_result()
        if self._row_pos < len(self._rows):
            rest = self._rows[self._row_pos :]
            self._row_pos = len(self._rows)
            yield pa.RecordBatch.from_pylist(
                [dict(zip(outcome.schema.names, r, strict=True)) for r in rest],  # type: ignore[union-attr]
                schema=outcome.schema,
            )
        if self._batch is not None:
            batch, self._batch = self._batch, None
            yield batch
        yield from outcome.batches

    def fetch_record_batch(self) -> pa.RecordBatchReader:
        """The unread rows as a ``RecordBatchReader`` (streams, ADBC's name)."""
        outcome = self._need_result()
        assert outcome.schema is not None
        return pa.RecordBatchReader.from_batches(outcome.schema, self.fetch_record_batches())

    def fetch_arrow_table(self) -> pa.Table:
        """The unread rows as one Arrow table (no per-row conversion)."""
        outcome = self._need_result()
        return pa.Table.from_batches(list(self.fetch_record_batches()), schema=outcome.schema)

    def fetch_df(self) -> Any:
        """The unread rows as a pandas DataFrame."""
        return self.fetch_arrow_table().to_pandas()

    def fetch_polars(self) -> Any:
        import polars as pl

        return pl.from_arrow(self.fetch_arrow_table())

    # ------------------------------------------------------------ misc
    def setinputsizes(self, sizes: Any) -> None:
        return None

    def setoutputsize(self, size: Any, column: Any = None) -> None:
        return None

    def close(self) -> None:
        self._closed = True
        self._outcome = None
        self._rows = []


def _describe(f: pa.Field) -> Description:
    precision = scale = None
    if pa.types.is_decimal(f.type):
        precision, scale = f.type.precision, f.type.scale
    return (f.name, f.type, None, None, precision, scale, f.nullable)


# ADBC's GetObjects result schema (the parts Kalam fills).
_COLUMN = pa.struct(
    [
        pa.field("column_name", pa.utf8(), nullable=False),
        pa.field("ordinal_position", pa.int32()),
        pa.field("remarks", pa.utf8()),
        pa.field("xdbc_type_name", pa.utf8()),
        pa.field("xdbc_nullable", pa.int16()),
        pa.field("xdbc_is_nullable", pa.utf8()),
    ]
)
_CONSTRAINT = pa.struct(
    [
        pa.field("constraint_name", pa.utf8()),
        pa.field("constraint_type", pa.utf8(), nullable=False),
        pa.field("constraint_column_names", pa.list_(pa.utf8()), nullable=False),
    ]
)
_TABLE = pa.struct(
    [
        pa.field("table_name", pa.utf8(), nullable=False),
        pa.field("table_type", pa.utf8(), nullable=False),
        pa.field("table_columns", pa.list_(_COLUMN)),
        pa.field("table_constraints", pa.list_(_CONSTRAINT)),
    ]
)
_DB_SCHEMA = pa.struct(
    [pa.field("db_schema_name", pa.utf8()), pa.field("db_schema_tables", pa.list_(_TABLE))]
)
GET_OBJECTS_SCHEMA = pa.schema(
    [pa.field("catalog_name", pa.utf8()), pa.field("catalog_db_schemas", pa.list_(_DB_SCHEMA))]
)
_DEPTHS = ("catalogs", "db_schemas", "tables", "columns", "all")


def _like(pattern: str | None, name: str) -> bool:
    from engine.flight.metadata import like

    rx = like(pattern)
    return rx is None or rx.fullmatch(name) is not None


class Connection:
    """A PEP 249 connection to Kalam (embedded or remote; see ``kalam.connect``)."""

    def __init__(self, backend: Backend) -> None:
        self._backend = backend
        self._closed = False

    def __repr__(self) -> str:
        return f"<kalam.Connection {self._backend!r}{' closed' if self._closed else ''}>"

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # PEP 249 optional extension: the exception classes on the connection.
    Warning = errors.Warning
    Error = errors.Error
    InterfaceError = errors.InterfaceError
    DatabaseError = errors.DatabaseError
    DataError = errors.DataError
    OperationalError = errors.OperationalError
    IntegrityError = errors.IntegrityError
    InternalError = errors.InternalError
    ProgrammingError = errors.ProgrammingError
    NotSupportedError = errors.NotSupportedError

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def backend(self) -> Backend:
        return self._backend

    def _check(self) -> None:
        if self._closed:
            raise errors.interface_error("The connection is closed")

    def cursor(self) -> Cursor:
        self._check()
        return Cursor(self)

    def execute(
        self, operation: str, parameters: Sequence[Any] | Mapping[str, Any] | None = None
    ) -> Cursor:
        """A new cursor that has run ``operation`` (the sqlite3 / DuckDB shortcut)."""
        return self.cursor().execute(operation, parameters)

    def commit(self) -> None:
        """Nothing to do: every statement is committed when it returns."""
        self._check()

    def rollback(self) -> None:
        self._check()
        raise errors.make(
            "UNSUPPORTED_STATEMENT",
            "Kalam commits every statement on its own; there is no transaction to roll back",
        )

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._backend.close()

    # ------------------------------------------- ADBC DB-API extensions
    @property
    def adbc_current_catalog(self) -> str:
        return self._backend.catalog_name

    @property
    def adbc_current_db_schema(self) -> str:
        return self._backend.current_namespace

    def adbc_get_info(self) -> dict[str, Any]:
        self._check()
        return {
            "vendor_name": "Kalam",
            "vendor_version": self._backend.server_version(),
            "vendor_arrow_version": pa.__version__,
            "driver_name": "kalam (PEP 249)",
            "driver_version": self._backend.server_version(),
        }

    def adbc_get_table_types(self) -> list[str]:
        return ["TABLE"]

    def adbc_get_table_schema(
        self,
        table_name: str,
        *,
        catalog_filter: str | None = None,
        db_schema_filter: str | None = None,
    ) -> pa.Schema:
        """The columns of ``table_name`` (in ``db_schema_filter``, else the
        current namespace)."""
        self._check()
        namespace = db_schema_filter or self._backend.current_namespace
        for t in self._backend.tables():
            if t.name == table_name and t.namespace == namespace:
                return t.schema
        raise errors.make("TABLE_NOT_FOUND", f"Table '{namespace}.{table_name}' does not exist")

    def adbc_get_objects(
        self,
        *,
        depth: str = "all",
        catalog_filter: str | None = None,
        db_schema_filter: str | None = None,
        table_name_filter: str | None = None,
        table_types_filter: list[str] | None = None,
        column_name_filter: str | None = None,
    ) -> pa.RecordBatchReader:
        """Catalog -> namespaces -> tables -> columns, in ADBC's GetObjects shape."""
        self._check()
        if depth not in _DEPTHS:
            raise errors.make("INVALID_OPTION", f"depth must be one of {', '.join(_DEPTHS)}")
        level = _DEPTHS.index(depth)
        catalog = self._backend.catalog_name
        schemas: list[dict[str, Any]] | None = None
        if level >= 1 and _like(catalog_filter, catalog):
            by_ns: dict[str, list[TableInfo]] = {
                n: [] for n in self._backend.namespaces() if _like(db_schema_filter, n)
            }
            if level >= 2:
                for t in self._backend.tables():
                    if (
                        t.namespace in by_ns
                        and _like(table_name_filter, t.name)
                        and (table_types_filter is None or t.table_type in table_types_filter)
                    ):
                        by_ns[t.namespace].append(t)
            schemas = [
                {
                    "db_schema_name": ns,
                    "db_schema_tables": (
                        [_table_row(t, level >= 3, column_name_filter) for t in tables]
                        if level >= 2
                        else None
                    ),
                }
                for ns, tables in sorted(by_ns.items())
            ]
        rows = (
            [{"catalog_name": catalog, "catalog_db_schemas": schemas}]
            if _like(catalog_filter, catalog)
            else []
        )
        table = pa.Table.from_pylist(rows, schema=GET_OBJECTS_SCHEMA)
        return table.to_reader()


def _table_row(t: TableInfo, columns: bool, column_filter: str | None) -> dict[str, Any]:
    cols = None
    if columns:
        cols = [
            {
                "column_name": f.name,
                "ordinal_position": i + 1,
                "remarks": None,
                "xdbc_type_name": (f.metadata or {})
                .get(b"ARROW:FLIGHT:SQL:TYPE_NAME", b"")
                .decode()
                or str(f.type),
                "xdbc_nullable": 1 if f.nullable else 0,
                "xdbc_is_nullable": "YES" if f.nullable else "NO",
            }
            for i, f in enumerate(t.schema)
            if _like(column_filter, f.name)
        ]
    return {
        "table_name": t.name,
        "table_type": t.table_type,
        "table_columns": cols,
        "table_constraints": [],
    }
