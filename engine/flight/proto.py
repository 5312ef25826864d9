"""The Flight SQL protobuf messages this server speaks, on the wire.

Flight SQL puts a serialized ``google.protobuf.Any`` in a descriptor's
``cmd``, a ticket, an action body or a ``PutResult``'s metadata; the Any names
the message by type URL (``type.googleapis.com/arrow.flight.protocol.sql.X``)
and carries its bytes. We need a dozen small messages whose fields are only
strings, bytes, bools, integers and repeated strings/uint32, so this module
holds a tiny protobuf wire-format codec (varint and length-delimited fields,
unknown fields skipped) and declares each message as a frozen dataclass with
its field numbers, taken from the Flight SQL specification (FlightSql.proto).
No generated code and no protobuf runtime dependency.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

from engine.errors import KalamError

TYPE_URL_PREFIX = "type.googleapis.com/arrow.flight.protocol.sql."

# Wire types (protobuf encoding spec).
_VARINT, _I64, _LEN, _I32 = 0, 1, 2, 5


class ProtocolError(KalamError, ValueError):
    """A Flight SQL command this server cannot decode."""

    code = "FLIGHT_PROTOCOL_ERROR"


# --------------------------------------------------------------- primitives
def encode_varint(value: int) -> bytes:
    if value < 0:  # int64 negatives are sent as their 64-bit two's complement
        value += 1 << 64
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def decode_varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data):
            raise ProtocolError("Truncated protobuf varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise ProtocolError("Protobuf varint longer than 10 bytes")


def _tag(number: int, wire_type: int) -> bytes:
    return encode_varint(number << 3 | wire_type)


def _len_field(number: int, payload: bytes) -> bytes:
    return _tag(number, _LEN) + encode_varint(len(payload)) + payload


def iter_fields(data: bytes) -> Iterator[tuple[int, int, Any]]:
    """(field number, wire type, value) for each field; a value is an int for
    varint / fixed fields and ``bytes`` for length-delimited ones."""
    pos = 0
    while pos < len(data):
        key, pos = decode_varint(data, pos)
        number, wire_type = key >> 3, key & 7
        value: int | bytes
        if wire_type == _VARINT:
            value, pos = decode_varint(data, pos)
        elif wire_type == _LEN:
            size, pos = decode_varint(data, pos)
            if pos + size > len(data):
                raise ProtocolError("Truncated protobuf length-delimited field")
            value, pos = data[pos : pos + size], pos + size
        elif wire_type == _I64:
            value, pos = int.from_bytes(data[pos : pos + 8], "little"), pos + 8
        elif wire_type == _I32:
            value, pos = int.from_bytes(data[pos : pos + 4], "little"), pos + 4
        else:
            raise ProtocolError(f"Unsupported protobuf wire type {wire_type}")
        if pos > len(data):
            raise ProtocolError("Truncated protobuf field")
        yield number, wire_type, value


# ----------------------------------------------------------------- messages
# Field kinds: "string", "bytes", "bool", "int64", "uint32*" (repeated, packed
# or not), "string*" (repeated). A field whose dataclass default is None is
# proto3 ``optional``: absent stays None, present is sent even when empty.
_REGISTRY: dict[str, type[Message]] = {}


class Message:
    """Base of the declared messages: encoding, decoding and Any wrapping."""

    FIELDS: ClassVar[dict[str, tuple[int, str]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _REGISTRY[cls.__name__] = cls

    @classmethod
    def type_url(cls) -> str:
        return TYPE_URL_PREFIX + cls.__name__

    def encode(self) -> bytes:
        out = bytearray()
        for name, (number, kind) in self.FIELDS.items():
            value = getattr(self, name)
            if value is None:
                continue
            if kind == "string*":
                for item in value:
                    out += _len_field(number, item.encode())
            elif kind == "uint32*":
                if value:
                    out += _len_field(number, b"".join(encode_varint(v) for v in value))
            elif kind == "string":
                out += _len_field(number, value.encode())
            elif kind == "bytes":
                out += _len_field(number, bytes(value))
            elif kind in ("bool", "int64") and (value or _is_optional(type(self), name)):
                out += _tag(number, _VARINT) + encode_varint(int(value))
        return bytes(out)

    @classmethod
    def decode(cls, data: bytes) -> Any:
        by_number = {number: (name, kind) for name, (number, kind) in cls.FIELDS.items()}
        values: dict[str, Any] = {}
        for number, wire_type, raw in iter_fields(data):
            if number not in by_number:
                continue  # unknown fields are skipped, as protobuf requires
            name, kind = by_number[number]
            values[name] = _decoded(cls, name, kind, wire_type, raw, values.get(name))
        return cls(**values)

    def to_any(self) -> bytes:
        return encode_any(self.type_url(), self.encode())


def _is_optional(cls: type, name: str) -> bool:
    for f in dataclasses.fields(cls):
        if f.name == name:
            return f.default is None
    return False


def _decoded(cls: type, name: str, kind: str, wire_type: int, raw: Any, prev: Any) -> Any:
    def want(expected: int) -> None:
        if wire_type != expected:
            raise ProtocolError(f"{cls.__name__}.{name}: unexpected protobuf wire type")

    if kind == "string*":
        want(_LEN)
        return [*(prev or []), _text(raw, cls, name)]
    if kind == "uint32*":
        items = list(prev or [])
        if wire_type == _LEN:  # packed
            pos = 0
            while pos < len(raw):
                item, pos = decode_varint(raw, pos)
                items.append(item)
        else:
            want(_VARINT)
            items.append(raw)
        return items
    if kind == "string":
        want(_LEN)
        return _text(raw, cls, name)
    if kind == "bytes":
        want(_LEN)
        return bytes(raw)
    want(_VARINT)
    if kind == "bool":
        return bool(raw)
    return raw - (1 << 64) if raw >= 1 << 63 else raw  # int64


def _text(raw: bytes, cls: type, name: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ProtocolError(f"{cls.__name__}.{name} is not valid UTF-8") from None


def encode_any(type_url: str, value: bytes) -> bytes:
    return _len_field(1, type_url.encode()) + _len_field(2, value)


def decode_any(data: bytes) -> Message:
    """The Flight SQL message inside a serialized ``google.protobuf.Any``."""
    type_url, value = "", b""
    for number, wire_type, raw in iter_fields(data):
        if wire_type != _LEN:
            continue
        if number == 1:
            type_url = raw.decode("utf-8", errors="replace")
        elif number == 2:
            value = bytes(raw)
    if not type_url.startswith(TYPE_URL_PREFIX):
        raise ProtocolError(
            f"Not a Flight SQL command (type URL {type_url or 'missing'!r}); "
            "use a Flight SQL client such as the ADBC Flight SQL driver"
        )
    cls = _REGISTRY.get(type_url.removeprefix(TYPE_URL_PREFIX))
    if cls is None:
        raise ProtocolError(f"Flight SQL command {type_url.rsplit('.', 1)[-1]} is not supported")
    decoded: Message = cls.decode(value)
    return decoded


# Field numbers below are from FlightSql.proto (arrow.flight.protocol.sql).
@dataclass(frozen=True)
class CommandStatementQuery(Message):
    query: str = ""
    transaction_id: bytes | None = None
    FIELDS = {"query": (1, "string"), "transaction_id": (2, "bytes")}


@dataclass(frozen=True)
class CommandStatementUpdate(Message):
    query: str = ""
    transaction_id: bytes | None = None
    FIELDS = {"query": (1, "string"), "transaction_id": (2, "bytes")}


@dataclass(frozen=True)
class TicketStatementQuery(Message):
    statement_handle: bytes = b""
    FIELDS = {"statement_handle": (1, "bytes")}


@dataclass(frozen=True)
class CommandPreparedStatementQuery(Message):
    prepared_statement_handle: bytes = b""
    FIELDS = {"prepared_statement_handle": (1, "bytes")}


@dataclass(frozen=True)
class CommandPreparedStatementUpdate(Message):
    prepared_statement_handle: bytes = b""
    FIELDS = {"prepared_statement_handle": (1, "bytes")}


@dataclass(frozen=True)
class ActionCreatePreparedStatementRequest(Message):
    query: str = ""
    transaction_id: bytes | None = None
    FIELDS = {"query": (1, "string"), "transaction_id": (2, "bytes")}


@dataclass(frozen=True)
class ActionCreatePreparedStatementResult(Message):
    prepared_statement_handle: bytes = b""
    dataset_schema: bytes = b""
    parameter_schema: bytes = b""
    FIELDS = {
        "prepared_statement_handle": (1, "bytes"),
        "dataset_schema": (2, "bytes"),
        "parameter_schema": (3, "bytes"),
    }


@dataclass(frozen=True)
class ActionClosePreparedStatementRequest(Message):
    prepared_statement_handle: bytes = b""
    FIELDS = {"prepared_statement_handle": (1, "bytes")}


@dataclass(frozen=True)
class DoPutUpdateResult(Message):
    record_count: int = 0
    FIELDS = {"record_count": (1, "int64")}


@dataclass(frozen=True)
class DoPutPreparedStatementResult(Message):
    prepared_statement_handle: bytes | None = None
    FIELDS = {"prepared_statement_handle": (1, "bytes")}


@dataclass(frozen=True)
class CommandGetSqlInfo(Message):
    info: tuple[int, ...] | list[int] = ()
    FIELDS = {"info": (1, "uint32*")}


@dataclass(frozen=True)
class CommandGetCatalogs(Message):
    FIELDS = {}


@dataclass(frozen=True)
class CommandGetDbSchemas(Message):
    catalog: str | None = None
    db_schema_filter_pattern: str | None = None
    FIELDS = {"catalog": (1, "string"), "db_schema_filter_pattern": (2, "string")}


@dataclass(frozen=True)
class CommandGetTables(Message):
    catalog: str | None = None
    db_schema_filter_pattern: str | None = None
    table_name_filter_pattern: str | None = None
    table_types: tuple[str, ...] | list[str] = ()
    include_schema: bool = False
    FIELDS = {
        "catalog": (1, "string"),
        "db_schema_filter_pattern": (2, "string"),
        "table_name_filter_pattern": (3, "string"),
        "table_types": (4, "string*"),
        "include_schema": (5, "bool"),
    }


@dataclass(frozen=True)
class CommandGetTableTypes(Message):
    FIELDS = {}


@dataclass(frozen=True)
class CommandGetPrimaryKeys(Message):
    catalog: str | None = None
    db_schema: str | None = None
    table: str = ""
    FIELDS = {"catalog": (1, "string"), "db_schema": (2, "string"), "table": (3, "string")}
