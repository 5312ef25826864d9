"""Name rules: the allowlist for namespaces, tables, columns and users, and
the check that keeps every filesystem path under the data directory."""

from __future__ import annotations

import re
from pathlib import Path

from engine.errors import InvalidNameError

MAX_NAME_LENGTH = 63
_NAME = re.compile(r"[a-z][a-z0-9_]*\Z")
# User ids may also carry '-' and '.' (e-mail-ish handles); still no path tricks.
_USER = re.compile(r"[a-z][a-z0-9_]*\Z")

RESERVED_NAMESPACES = frozenset(
    {"system", "information_schema", "kalam", "pg_catalog", "datafusion", "public"}
)
SYSTEM_COLUMNS = ("_seq", "_deleted")
RESERVED_COLUMNS = frozenset({*SYSTEM_COLUMNS, "_user", "_user_id", "_ts", "_row_id"})


def check_name(name: str, kind: str) -> str:
    """Return ``name`` if it is a valid identifier for ``kind``, else raise."""
    if not isinstance(name, str) or not name:
        raise InvalidNameError(f"Invalid {kind} name: empty")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidNameError(
            f"Invalid {kind} name '{name[:20]}...': longer than {MAX_NAME_LENGTH} characters"
        )
    if not _NAME.match(name):
        raise InvalidNameError(
            f"Invalid {kind} name {name!r}: use lower-case letters, digits and '_', "
            "starting with a letter"
        )
    return name


def check_user(user: str) -> str:
    if not isinstance(user, str) or not user or len(user) > MAX_NAME_LENGTH:
        raise InvalidNameError(f"Invalid user name {user!r}")
    if not _USER.match(user):
        raise InvalidNameError(
            f"Invalid user name {user!r}: use lower-case letters, digits and '_', "
            "starting with a letter"
        )
    return user


def check_namespace(name: str, *, creating: bool = False) -> str:
    check_name(name, "namespace")
    if creating and name in RESERVED_NAMESPACES:
        raise InvalidNameError(f"Namespace name '{name}' is reserved")
    return name


def check_column(name: str) -> str:
    if isinstance(name, str) and (name in RESERVED_COLUMNS or name.startswith("_")):
        raise InvalidNameError(f"Column name '{name}' is reserved for system columns")
    return check_name(name, "column")


def safe_path(root: Path, *parts: str) -> Path:
    """Join ``parts`` under ``root`` and refuse anything that escapes it."""
    base = root.resolve()
    path = base.joinpath(*parts).resolve()
    if path != base and base not in path.parents:
        raise InvalidNameError(f"Path {'/'.join(parts)!r} escapes the data directory")
    return path
