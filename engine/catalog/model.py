"""Catalog records: namespaces, tables and columns with stable column ids."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

import pyarrow as pa

from engine.errors import ColumnNotFoundError
from engine.types import arrow_type

TABLE_TYPES = ("USER", "SHARED", "STREAM")


@dataclass(frozen=True)
class Namespace:
    name: str
    created_at: int  # µs since epoch
    options: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Namespace:
        return cls(**d)


@dataclass(frozen=True)
class Default:
    """A column default: a stored literal or one of the engine's functions."""

    kind: str  # "literal" | "function"
    value: Any = None  # stored form for literals, function name for functions
    text: str = ""  # as written, for DESCRIBE


@dataclass(frozen=True)
class Column:
    id: int
    name: str
    type: str  # canonical type name, see engine.types
    nullable: bool = True
    primary_key: bool = False
    default: Default | None = None
    # What rows written before this column existed read for it (ADD COLUMN ... DEFAULT).
    fill: Any = None

    @property
    def arrow_type(self) -> pa.DataType:
        return arrow_type(self.type)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["default"] = asdict(self.default) if self.default else None
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Column:
        default = Default(**d["default"]) if d.get("default") else None
        return cls(**{**d, "default": default})


@dataclass(frozen=True)
class TableDef:
    table_id: int
    namespace: str
    name: str
    table_type: str
    columns: tuple[Column, ...]
    options: dict[str, Any]
    created_at: int
    updated_at: int
    schema_version: int = 1
    next_column_id: int = 1
    # Earlier schema versions: [{"version", "changed_at", "change", "columns": [...]}].
    history: tuple[dict[str, Any], ...] = ()
    change: str = "CREATE TABLE"  # what produced the current schema version

    @property
    def qualified_name(self) -> str:
        return f"{self.namespace}.{self.name}"

    @property
    def pk(self) -> Column | None:
        for c in self.columns:
            if c.primary_key:
                return c
        return None

    def find_column(self, name: str) -> Column | None:
        for c in self.columns:
            if c.name == name:
                return c
        return None

    def get_column(self, name: str) -> Column:
        col = self.find_column(name)
        if col is None:
            raise ColumnNotFoundError(
                f"Column '{name}' does not exist in table {self.qualified_name}",
                column_name=name,
            )
        return col

    def arrow_schema(self, *, hidden: bool = False) -> pa.Schema:
        fields = [pa.field(c.name, c.arrow_type, nullable=c.nullable) for c in self.columns]
        if hidden:
            fields += [pa.field("_seq", pa.int64(), False), pa.field("_deleted", pa.bool_(), False)]
        return pa.schema(fields)

    def evolve(self, **changes: Any) -> TableDef:
        return replace(self, **changes)

    def columns_at(self, version: int) -> tuple[Column, ...]:
        """The columns as they were in schema ``version`` (for reading old segments)."""
        if version >= self.schema_version:
            return self.columns
        for entry in self.history:
            if entry["version"] == version:
                return tuple(Column.from_dict(c) for c in entry["columns"])
        return self.columns

    def next_version(self, change: str, now: int, **changes: Any) -> TableDef:
        """This table after an ALTER: schema version bumped, old version kept in history."""
        snapshot = {
            "version": self.schema_version,
            "changed_at": self.updated_at,
            "change": self.change,
            "columns": [c.to_dict() for c in self.columns],
        }
        return replace(
            self,
            schema_version=self.schema_version + 1,
            updated_at=now,
            change=change,
            history=(*self.history, snapshot),
            **changes,
        )

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["columns"] = [c.to_dict() for c in self.columns]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TableDef:
        cols = tuple(Column.from_dict(c) for c in d["columns"])
        return cls(**{**d, "columns": cols, "history": tuple(d.get("history", ()))})
