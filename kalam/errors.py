"""The PEP 249 exception hierarchy, mapped from ``KalamError`` codes.

Every error a ``kalam`` connection raises is both a PEP 249 class
(``ProgrammingError``, ``IntegrityError``, ...) and the engine's own class for
its code (``TableNotFoundError``, ...), so ``except kalam.ProgrammingError``
and ``except kalam.TableNotFoundError`` both catch a missing table, and
``.code`` / ``.message`` / ``.line`` / ``.column`` are always there. Errors
from a server arrive as a code and a message and are rebuilt the same way.
"""

from __future__ import annotations

import functools
from typing import Any

import engine.errors as engine_errors
from engine.errors import KalamError


class Warning(Exception):  # noqa: A001 - the name PEP 249 prescribes
    """Important warnings (PEP 249)."""


class Error(Exception):
    """Base of every PEP 249 error."""


class InterfaceError(Error):
    """Misuse of the connection interface itself (closed cursor, bad target)."""


class DatabaseError(Error):
    pass


class DataError(DatabaseError):
    pass


class OperationalError(DatabaseError):
    pass


class IntegrityError(DatabaseError):
    pass


class InternalError(DatabaseError):
    pass


class ProgrammingError(DatabaseError):
    pass


class NotSupportedError(DatabaseError):
    pass


# KalamError code -> PEP 249 class; codes not named here are DatabaseError.
PEP249_BY_CODE: dict[str, type[Error]] = {
    "SQL_PARSE_ERROR": ProgrammingError,
    "MULTIPLE_STATEMENTS": ProgrammingError,
    "PARAMETER_ERROR": ProgrammingError,
    "INVALID_NAME": ProgrammingError,
    "NAMESPACE_NOT_FOUND": ProgrammingError,
    "NAMESPACE_EXISTS": ProgrammingError,
    "NAMESPACE_NOT_EMPTY": ProgrammingError,
    "TABLE_NOT_FOUND": ProgrammingError,
    "TABLE_EXISTS": ProgrammingError,
    "COLUMN_NOT_FOUND": ProgrammingError,
    "SCHEMA_ERROR": ProgrammingError,
    "INVALID_OPTION": ProgrammingError,
    "QUERY_ERROR": ProgrammingError,
    "PERMISSION_DENIED": ProgrammingError,
    "READ_ONLY": ProgrammingError,
    "STATEMENT_TOO_COMPLEX": ProgrammingError,
    "USER_EXISTS": ProgrammingError,
    "USER_NOT_FOUND": ProgrammingError,
    "PREPARED_STATEMENT_NOT_FOUND": ProgrammingError,
    "INVALID_SQL": ProgrammingError,
    "EMPTY_SQL": ProgrammingError,
    "INVALID_PARAMETER": ProgrammingError,
    "PARAMS_WITH_BATCH": ProgrammingError,
    "UNSUPPORTED_STATEMENT": NotSupportedError,
    "PRIMARY_KEY_VIOLATION": IntegrityError,
    "NOT_NULL_VIOLATION": IntegrityError,
    "TYPE_MISMATCH": DataError,
    "NUMERIC_OVERFLOW": DataError,
    "DATA_DIR_IN_USE": OperationalError,
    "ENGINE_CLOSED": OperationalError,
    "QUERY_CANCELLED": OperationalError,
    "QUERY_NOT_FOUND": OperationalError,
    "FLUSH_ABANDONED": OperationalError,
    "AUTHENTICATION_FAILED": OperationalError,
    "CONNECTION_FAILED": OperationalError,
    "FLIGHT_PROTOCOL_ERROR": InterfaceError,
    "INTERNAL": InternalError,
    "STORAGE_CORRUPTION": InternalError,
}


def _all_kalam_classes() -> dict[str, type[KalamError]]:
    """Every ``KalamError`` subclass the engine defines, by code."""
    found: dict[str, type[KalamError]] = {}
    pending: list[type[KalamError]] = [KalamError]
    while pending:
        cls = pending.pop()
        found.setdefault(cls.code, cls)
        pending.extend(cls.__subclasses__())
    return found


@functools.cache
def _combined(kalam_cls: type[KalamError], pep_cls: type[Error]) -> type[Error]:
    """The class raised for ``kalam_cls``: a PEP 249 class and ``kalam_cls`` at once."""
    return type(kalam_cls.__name__, (pep_cls, kalam_cls), {"__module__": "kalam.errors"})


def _class_for(code: str) -> type[KalamError]:
    cls = _all_kalam_classes().get(code)
    if cls is None:
        # A code this client does not know (a newer server): keep it anyway.
        cls = type("RemoteError", (KalamError,), {"code": code, "__module__": "kalam.errors"})
    return cls


def from_kalam(exc: KalamError) -> Error:
    """``exc`` re-raised as its PEP 249 + Kalam class, with the same fields."""
    if isinstance(exc, Error):
        return exc
    return make(
        exc.code, exc.message, line=exc.line, column=exc.column, kalam_cls=type(exc), **exc.fields
    )


def make(
    code: str,
    message: str,
    *,
    line: int | None = None,
    column: int | None = None,
    kalam_cls: type[KalamError] | None = None,
    **fields: Any,
) -> Error:
    """An error built from a code and a message (e.g. sent by a server)."""
    kalam_cls = kalam_cls or _class_for(code)
    pep_cls = PEP249_BY_CODE.get(code, DatabaseError)
    combined: Any = _combined(kalam_cls, pep_cls)  # type: ignore[arg-type]
    err = combined(message, line=line, column=column, **fields)
    if err.code != code:  # an unknown code on a known base class
        err.code = code
    return err  # type: ignore[no-any-return]


class ConnectionMisuseError(KalamError, RuntimeError):
    """A closed connection or cursor used, or an unusable connect target."""

    code = "INTERFACE_ERROR"


class NoResultSetError(KalamError, RuntimeError):
    """A fetch after a statement that returned no rows."""

    code = "NO_RESULT_SET"


class ConnectionFailedError(KalamError, ConnectionError):
    code = "CONNECTION_FAILED"


PEP249_BY_CODE["INTERFACE_ERROR"] = InterfaceError
PEP249_BY_CODE["NO_RESULT_SET"] = ProgrammingError


def interface_error(message: str) -> Error:
    return make("INTERFACE_ERROR", message, kalam_cls=ConnectionMisuseError)


# The engine's own classes, re-exported so ``kalam.TableNotFoundError`` works.
ENGINE_ERRORS = {
    name: value
    for name, value in vars(engine_errors).items()
    if isinstance(value, type) and issubclass(value, KalamError)
}
