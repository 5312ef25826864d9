"""The engine's one error tree.

Every error a user can cause is a ``KalamError`` subclass with a stable
``code``. Subclasses also inherit the matching builtin so callers can catch
``LookupError`` / ``ValueError`` where that reads better. Anything that is not
a ``KalamError`` is a bug and keeps its traceback in the user-facing layers.
"""

from __future__ import annotations

from typing import Any


class KalamError(Exception):
    """Root of all user-facing engine errors."""

    code = "KALAM_ERROR"
    # The underlying engine's own wording (DataFusion's), when the error is a
    # translation of one; never shown, only matched by code that routes around it.
    engine_text: str = ""

    def __init__(
        self,
        message: str,
        *,
        line: int | None = None,
        column: int | None = None,
        **fields: Any,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column
        self.fields = fields

    def __str__(self) -> str:
        if self.line is not None and self.column is not None:
            return f"{self.message} (line {self.line}, column {self.column})"
        return self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r})"


class SqlParseError(KalamError, ValueError):
    code = "SQL_PARSE_ERROR"


class UnsupportedStatementError(KalamError, ValueError):
    code = "UNSUPPORTED_STATEMENT"


class MultipleStatementsError(KalamError, ValueError):
    code = "MULTIPLE_STATEMENTS"


class ParameterError(KalamError, ValueError):
    code = "PARAMETER_ERROR"


class InvalidNameError(KalamError, ValueError):
    code = "INVALID_NAME"


class NamespaceNotFoundError(KalamError, LookupError):
    code = "NAMESPACE_NOT_FOUND"


class NamespaceExistsError(KalamError, ValueError):
    code = "NAMESPACE_EXISTS"


class NamespaceNotEmptyError(KalamError, ValueError):
    code = "NAMESPACE_NOT_EMPTY"


class TableNotFoundError(KalamError, LookupError):
    code = "TABLE_NOT_FOUND"


class TableExistsError(KalamError, ValueError):
    code = "TABLE_EXISTS"


class ColumnNotFoundError(KalamError, LookupError):
    code = "COLUMN_NOT_FOUND"


class SchemaError(KalamError, ValueError):
    """A table definition that cannot be created as written."""

    code = "SCHEMA_ERROR"


class InvalidOptionError(KalamError, ValueError):
    code = "INVALID_OPTION"


class PrimaryKeyViolationError(KalamError, ValueError):
    code = "PRIMARY_KEY_VIOLATION"


class NotNullViolationError(KalamError, ValueError):
    code = "NOT_NULL_VIOLATION"


class TypeMismatchError(KalamError, TypeError):
    code = "TYPE_MISMATCH"


class QueryError(KalamError, ValueError):
    """DataFusion rejected or failed a query (planning or execution)."""

    code = "QUERY_ERROR"


class FunctionNotFoundError(QueryError, LookupError):
    """A query calls a function DataFusion does not know."""

    code = "FUNCTION_NOT_FOUND"


class PermissionDeniedError(KalamError, PermissionError):
    code = "PERMISSION_DENIED"


class DataDirInUseError(KalamError, RuntimeError):
    code = "DATA_DIR_IN_USE"


class EngineClosedError(KalamError, RuntimeError):
    code = "ENGINE_CLOSED"


class NumericOverflowError(KalamError, ArithmeticError):
    code = "NUMERIC_OVERFLOW"


class StatementTooComplexError(KalamError, ValueError):
    code = "STATEMENT_TOO_COMPLEX"


class InternalError(KalamError, RuntimeError):
    """A bug in the engine, not in the caller's input: ``original`` is the
    exception that escaped (also chained as ``__cause__``)."""

    code = "INTERNAL"

    @property
    def original(self) -> BaseException | None:
        return self.__cause__


class FlushAbandonedError(KalamError, RuntimeError):
    code = "FLUSH_ABANDONED"


class StorageCorruptionError(KalamError, RuntimeError):
    code = "STORAGE_CORRUPTION"


class DataFormatTooNewError(KalamError, RuntimeError):
    """The data directory was written in a format newer than this engine reads
    (fields: ``data_dir``, ``found``, ``supported``)."""

    code = "DATA_FORMAT_TOO_NEW"


class QueryCancelledError(KalamError, RuntimeError):
    code = "QUERY_CANCELLED"


class QueryNotFoundError(KalamError, LookupError):
    code = "QUERY_NOT_FOUND"


class ReadOnlyError(KalamError, PermissionError):
    code = "READ_ONLY"


class ServerUnavailableError(KalamError, ConnectionError):
    """The Kalam server that owns a data directory cannot be reached."""

    code = "SERVER_UNAVAILABLE"


class AuthenticationError(KalamError, PermissionError):
    """A login, token or local secret that does not prove who the caller is
    (wrong password, locked account, expired or forged token, dropped user)."""

    code = "AUTHENTICATION_FAILED"


class LiveQueryClosedError(KalamError, RuntimeError):
    """A subscription ended: killed, its table dropped or altered, its
    subscriber fell behind, or the engine closed. ``reason`` says which."""

    code = "LIVE_QUERY_CLOSED"


class UniqueViolationError(KalamError, ValueError):
    """A write would give two live rows of one scope the same value in a UNIQUE column."""

    code = "UNIQUE_VIOLATION"


class ObjectStorageError(KalamError, OSError):
    """A request to an object store (S3-compatible bucket) failed; ``object``
    names the key. Nothing was published: a FLUSH that hits it keeps its rows
    hot and can simply be retried."""

    code = "OBJECT_STORAGE_ERROR"


class StorageNotFoundError(KalamError, LookupError):
    code = "STORAGE_NOT_FOUND"


class StorageExistsError(KalamError, ValueError):
    code = "STORAGE_EXISTS"


class StorageInUseError(KalamError, ValueError):
    code = "STORAGE_IN_USE"
