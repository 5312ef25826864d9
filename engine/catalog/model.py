"""Catalog records: namespaces, tables and columns with stable column ids.

``from_dict`` is strict (the records come from the hot store and from
``manifest.json``): a record of the wrong shape raises
``StorageCorruptionError`` naming ``source`` instead of a raw ``TypeError``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from decimal import Decimal, InvalidOperation
from functools import cached_property
from typing import Any

import orjson
import pyarrow as pa

from engine.errors import ColumnNotFoundError, StorageCorruptionError
from engine.storage.cold import RecordValidator
from engine.types import arrow_type, decimal_spec, is_type_name

TABLE_TYPES = ("USER", "SHARED", "STREAM")


@dataclass(frozen=True)
class Namespace:
    name: str
    created_at: int  # µs since epoch
    options: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Any, *, source: str = "a namespace record") -> Namespace:
        v = RecordValidator(source, kind="catalog record")
        v.keys(d, {"name", "created_at", "options"}, "namespace")
        if not isinstance(d["options"], dict):
            v.fail("namespace options is not an object")
        return cls(
            v.string(d["name"], "name"), v.integer(d["created_at"], "created_at"), d["options"]
        )


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
    # 1-based place in a composite primary key (``PRIMARY KEY (a, b)``); 0 for
    # a one-column key (records written before composite keys) or no key.
    key_position: int = 0
    unique: bool = False  # UNIQUE: no two live rows of a scope share a non-NULL value

    @property
    def arrow_type(self) -> pa.DataType:
        return arrow_type(self.type)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["default"] = asdict(self.default) if self.default else None
        if decimal_spec(self.type) is not None:  # JSON has no exact decimal: its text
            d["fill"] = _decimal_text(self.fill)
            if d["default"] is not None and d["default"]["kind"] == "literal":
                d["default"]["value"] = _decimal_text(d["default"]["value"])
        if not self.unique:
            del d["unique"]  # records of tables without UNIQUE stay as they were
        return d

    @classmethod
    def from_dict(cls, d: Any, *, source: str = "a column record") -> Column:
        v = RecordValidator(source, kind="catalog record")
        v.keys(d, _COLUMN_KEYS, "column", optional={"fill", "key_position", "unique"})
        default = None
        if d["default"] is not None:
            v.keys(d["default"], {"kind", "value", "text"}, "column default")
            if d["default"]["kind"] not in ("literal", "function"):
                v.fail(f"column default kind {d['default']['kind']!r}")
            default = Default(
                d["default"]["kind"], d["default"]["value"], v.string(d["default"]["text"], "text")
            )
        if not isinstance(d["type"], str) or not is_type_name(d["type"]):
            v.fail(f"column type {d['type']!r} is not a column type")
        fill = d.get("fill")
        if decimal_spec(d["type"]) is not None:
            fill = _decimal_value(fill, v)
            if default is not None and default.kind == "literal":
                default = Default("literal", _decimal_value(default.value, v), default.text)
        return cls(
            id=v.integer(d["id"], "column id", minimum=1),
            name=v.string(d["name"], "column name"),
            type=d["type"],
            nullable=v.boolean(d["nullable"], "nullable"),
            primary_key=v.boolean(d["primary_key"], "primary_key"),
            default=default,
            fill=fill,
            key_position=v.integer(d.get("key_position", 0), "key_position"),
            unique=v.boolean(d.get("unique", False), "unique"),
        )


def _decimal_text(value: Any) -> Any:
    return str(value) if isinstance(value, Decimal) else value


def _decimal_value(value: Any, v: RecordValidator) -> Decimal | None:
    if value is None:
        return None
    if not isinstance(value, str):
        v.fail(f"decimal value {value!r} is not text")
    try:
        return Decimal(value)
    except InvalidOperation:
        v.fail(f"decimal value {value!r} is not a number")


_COLUMN_KEYS = {"id", "name", "type", "nullable", "primary_key", "default"}
_HISTORY_KEYS = {"version", "changed_at", "change", "columns"}


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

    @cached_property  # on every row's write path; a TableDef never changes
    def key_columns(self) -> tuple[Column, ...]:
        """The primary-key columns in key order (empty: no key, a STREAM table)."""
        return tuple(
            sorted((c for c in self.columns if c.primary_key), key=lambda c: c.key_position)
        )

    @property
    def has_unique(self) -> bool:
        return any(c.unique for c in self.columns) or bool(self.options.get("unique_sets"))

    @property
    def pk(self) -> Column | None:
        """The key column of a one-column primary key; None when the key is
        composite or absent (use ``key_columns`` / ``key_of`` for both)."""
        found = self.key_columns
        return found[0] if len(found) == 1 else None

    def key_of(self, values: dict[int, Any]) -> Any:
        """A row's primary key as the engine keys it: the stored value for a
        one-column key, a tuple of stored values (in key order) for a composite one."""
        found = self.key_columns
        if len(found) == 1:
            return values.get(found[0].id)
        return tuple(values.get(c.id) for c in found)

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
    def from_dict(cls, d: Any, *, source: str = "a table record") -> TableDef:
        """Validate and build; any deviation raises ``StorageCorruptionError`` naming ``source``."""
        v = RecordValidator(source, kind="catalog record")
        v.keys(
            d,
            set(cls.__dataclass_fields__) - {"history", "change"},
            "table",
            optional={"history", "change"},
        )
        if d["table_type"] not in TABLE_TYPES:
            v.fail(f"table_type {d['table_type']!r}")
        if not isinstance(d["columns"], list) or not d["columns"]:
            v.fail("columns is not a non-empty list")
        if not isinstance(d["options"], dict):
            v.fail("options is not an object")
        history = d.get("history", [])
        if not isinstance(history, list):
            v.fail("history is not a list")
        for h in history:
            v.keys(h, _HISTORY_KEYS, "history entry")
            v.integer(h["version"], "history version", minimum=1)
            v.integer(h["changed_at"], "history changed_at")
            v.string(h["change"], "history change")
            if not isinstance(h["columns"], list):
                v.fail("history columns is not a list")
            for c in h["columns"]:
                Column.from_dict(c, source=source)
        table = cls(
            table_id=v.integer(d["table_id"], "table_id", minimum=1),
            namespace=v.string(d["namespace"], "namespace"),
            name=v.string(d["name"], "name"),
            table_type=d["table_type"],
            columns=tuple(Column.from_dict(c, source=source) for c in d["columns"]),
            options=d["options"],
            created_at=v.integer(d["created_at"], "created_at"),
            updated_at=v.integer(d["updated_at"], "updated_at"),
            schema_version=v.integer(d["schema_version"], "schema_version", minimum=1),
            next_column_id=v.integer(d["next_column_id"], "next_column_id", minimum=1),
            history=tuple(history),
            change=v.string(d.get("change", "CREATE TABLE"), "change"),
        )
        ids = [c.id for c in table.columns]
        if len(set(ids)) != len(ids) or max(ids) >= table.next_column_id:
            v.fail("column ids are duplicated or not below next_column_id")
        positions = sorted(c.key_position for c in table.columns if c.primary_key)
        if len(positions) > 1 and positions != list(range(1, len(positions) + 1)):
            v.fail("primary key columns have no consistent key positions")
        return table


def decode_record(raw: bytes, source: str) -> Any:
    """JSON of a stored catalog record; damage raises ``StorageCorruptionError`` naming it."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise StorageCorruptionError(
            f"Corrupt catalog record in {source}: not valid JSON ({exc})", file=source
        ) from None
