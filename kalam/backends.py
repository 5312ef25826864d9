"""Where a ``kalam`` connection sends its statements.

A backend runs one statement and returns an ``Outcome`` (the result's schema
and its record batches, read lazily where the transport streams, plus the
row count), and lists namespaces and tables for the catalog calls. The
connection and cursor (``kalam.dbapi``) are written once on top of this:

- ``EmbeddedBackend``: an ``Engine`` in this process (a data directory);
- ``FlightBackend``: a Kalam Flight SQL server (``grpc://host:port``),
  spoken with ``pyarrow.flight`` and the project's own Flight SQL messages;
- ``HttpBackend`` (``kalam.http``): a Kalam HTTP server.
"""

from __future__ import annotations

import json
import re
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.flight as flight

from engine.errors import KalamError
from engine.flight import metadata, proto
from engine.flight.middleware import NAMESPACE_HEADER
from kalam import errors


@dataclass
class Outcome:
    """One statement's result: ``schema`` is None for a statement without a
    result set; ``rowcount`` is the rows returned or affected (-1 unknown)."""

    schema: pa.Schema | None
    batches: Iterator[pa.RecordBatch] = field(default_factory=lambda: iter(()))
    rowcount: int = -1
    message: str = ""


@dataclass(frozen=True)
class TableInfo:
    namespace: str
    name: str
    table_type: str
    schema: pa.Schema


class Backend(ABC):
    """A place statements run. Subclasses own their transport."""

    catalog_name = metadata.CATALOG

    @abstractmethod
    def execute(self, sql: str, params: Sequence[Any] | Mapping[str, Any] | None) -> Outcome: ...

    @abstractmethod
    def namespaces(self) -> list[str]: ...

    @abstractmethod
    def tables(self) -> list[TableInfo]: ...

    @property
    @abstractmethod
    def current_namespace(self) -> str: ...

    @abstractmethod
    def close(self) -> None: ...

    def server_version(self) -> str:
        from engine.version import __version__

        return __version__


class EmbeddedBackend(Backend):
    """An ``Engine`` in this process; owns it (closes it) only if it opened it."""

    def __init__(self, engine: Any, *, user: str | None, owned: bool) -> None:
        self.engine = engine
        self._owned = owned
        self._con = engine.connect(user=user)

    def __repr__(self) -> str:
        return f"<EmbeddedBackend {self.engine!r} user={self._con.user!r}>"

    def execute(self, sql: str, params: Any) -> Outcome:
        try:
            result = self._con.execute(sql, params if params else None)
        except KalamError as exc:
            raise errors.from_kalam(exc) from None
        if not result.is_query:
            return Outcome(None, rowcount=_affected(result.rows_affected), message=result.message)
        table = result.table
        return Outcome(table.schema, iter(table.to_batches()), table.num_rows, result.message)

    def namespaces(self) -> list[str]:
        return sorted(self.engine.catalog.namespaces)

    def tables(self) -> list[TableInfo]:
        return [
            TableInfo(t.namespace, t.name, "TABLE", metadata.table_schema(t))
            for t in self.engine.catalog.tables()
        ]

    @property
    def current_namespace(self) -> str:
        return str(self._con.namespace)

    def close(self) -> None:
        if self._owned:
            self.engine.close()


def _affected(count: int | None) -> int:
    return -1 if count is None else count


_CODE_PREFIX = re.compile(r"^([A-Z][A-Z0-9_]+): (.*)$", re.DOTALL)


def flight_to_error(exc: flight.FlightError | pa.ArrowException) -> errors.Error:
    """A Flight error from a Kalam server as our error (code, message, position)."""
    info = getattr(exc, "extra_info", None)
    if info:
        try:
            d = json.loads(info)
            return errors.make(d["code"], d["message"], line=d.get("line"), column=d.get("column"))
        except (ValueError, KeyError, TypeError):
            pass
    text = str(exc).split(". Detail:", 1)[0]
    m = _CODE_PREFIX.match(text)
    if m:
        return errors.make(m.group(1), m.group(2))
    if isinstance(exc, flight.FlightUnauthenticatedError):
        return errors.make("AUTHENTICATION_FAILED", text)
    if isinstance(exc, flight.FlightUnavailableError):
        return errors.make("CONNECTION_FAILED", f"Cannot reach the Kalam Flight SQL server: {text}")
    return errors.make("KALAM_ERROR", text)


class FlightBackend(Backend):
    """A Kalam Flight SQL server, spoken to with ``pyarrow.flight``."""

    def __init__(
        self,
        url: str,
        *,
        user: str | None,
        password: str | None,
        token: str | None = None,
        timeout: float | None = None,
        namespace: str | None = None,
    ) -> None:
        self.url = url
        self.user = user
        self._client = flight.FlightClient(url)
        self._timeout = timeout
        self._namespace = namespace or "default"
        try:
            if token is not None:
                header = (b"authorization", f"Bearer {token}".encode())
            elif user is not None:
                header = self._client.authenticate_basic_token(
                    user, password or "", flight.FlightCallOptions(timeout=timeout)
                )
            else:
                raise errors.make(
                    "AUTHENTICATION_FAILED",
                    "A Flight SQL connection needs user= and password= (or token=)",
                )
        except (flight.FlightError, pa.ArrowException) as exc:
            self._client.close()
            raise flight_to_error(exc) from None
        headers = [header]
        if namespace is not None:
            # Every statement of this connection resolves unqualified names there.
            headers.append((NAMESPACE_HEADER.encode(), namespace.encode()))
        self._options = flight.FlightCallOptions(headers=headers, timeout=timeout)

    def __repr__(self) -> str:
        return f"<FlightBackend {self.url} user={self.user!r}>"

    # Every call goes through here so a Flight error becomes our error.
    def _call(self, fn: Any, *args: Any) -> Any:
        try:
            return fn(*args, self._options)
        except (flight.FlightError, pa.ArrowException) as exc:
            raise flight_to_error(exc) from None

    def _action(self, name: str, message: proto.Message) -> list[bytes]:
        results = self._call(self._client.do_action, flight.Action(name, message.to_any()))
        try:
            return [r.body.to_pybytes() for r in results]
        except (flight.FlightError, pa.ArrowException) as exc:
            raise flight_to_error(exc) from None

    def _info(self, command: proto.Message) -> flight.FlightInfo:
        descriptor = flight.FlightDescriptor.for_command(command.to_any())
        return self._call(self._client.get_flight_info, descriptor)

    def _stream(self, info: flight.FlightInfo) -> Iterator[pa.RecordBatch]:
        for endpoint in info.endpoints:
            reader = self._call(self._client.do_get, endpoint.ticket)
            while True:
                try:
                    chunk = reader.read_chunk()
                except StopIteration:
                    break
                except (flight.FlightError, pa.ArrowException) as exc:
                    raise flight_to_error(exc) from None
                if chunk.data is not None:
                    yield chunk.data

    def _fetch(self, command: proto.Message) -> pa.Table:
        info = self._info(command)
        return pa.Table.from_batches(list(self._stream(info)), schema=info.schema)

    def execute(self, sql: str, params: Any) -> Outcome:
        if not params:
            info = self._info(proto.CommandStatementQuery(sql))
        else:
            info = self._execute_prepared(sql, params)
        if len(info.schema) == 0:
            for _ in self._stream(info):  # releases the (empty) result on the server
                pass
            return Outcome(None, rowcount=info.total_records)
        return Outcome(info.schema, self._stream(info), info.total_records)

    def _execute_prepared(self, sql: str, params: Any) -> flight.FlightInfo:
        created = self._action(
            "CreatePreparedStatement", proto.ActionCreatePreparedStatementRequest(sql)
        )
        result = proto.decode_any(created[0])
        assert isinstance(result, proto.ActionCreatePreparedStatementResult)
        handle = result.prepared_statement_handle
        try:
            batch = _params_batch(params)
            descriptor = flight.FlightDescriptor.for_command(
                proto.CommandPreparedStatementQuery(handle).to_any()
            )
            writer, reader = self._call(self._client.do_put, descriptor, batch.schema)
            try:
                writer.write_batch(batch)
                writer.done_writing()
                reader.read()
                writer.close()
            except (flight.FlightError, pa.ArrowException) as exc:
                raise flight_to_error(exc) from None
            return self._info(proto.CommandPreparedStatementQuery(handle))
        finally:
            self._action(
                "ClosePreparedStatement", proto.ActionClosePreparedStatementRequest(handle)
            )

    def namespaces(self) -> list[str]:
        table = self._fetch(proto.CommandGetDbSchemas())
        return [str(n) for n in table.column("db_schema_name").to_pylist()]

    def tables(self) -> list[TableInfo]:
        table = self._fetch(proto.CommandGetTables(include_schema=True))
        out = []
        for row in table.to_pylist():
            schema = pa.ipc.read_schema(pa.py_buffer(row["table_schema"]))
            out.append(
                TableInfo(row["db_schema_name"], row["table_name"], row["table_type"], schema)
            )
        return out

    @property
    def current_namespace(self) -> str:
        return self._namespace

    def server_version(self) -> str:
        table = self._fetch(proto.CommandGetSqlInfo([1]))
        return str(table.column("value")[0].as_py()) if table.num_rows else ""

    def close(self) -> None:
        self._client.close()


def _params_batch(params: Sequence[Any] | Mapping[str, Any]) -> pa.RecordBatch:
    """One row of parameters: columns named after ``:name`` placeholders,
    or ``1``..``n`` in order for positional ones."""
    if isinstance(params, Mapping):
        items = list(params.items())
    else:
        items = [(str(i + 1), v) for i, v in enumerate(params)]
    arrays = []
    for name, value in items:
        try:
            arrays.append(pa.array([value]))
        except (pa.ArrowException, TypeError, ValueError, OverflowError) as exc:
            raise errors.make(
                "PARAMETER_ERROR", f"Cannot send parameter {name} = {value!r}: {exc}"
            ) from None
    return pa.RecordBatch.from_arrays(arrays, names=[str(n) for n, _ in items])
