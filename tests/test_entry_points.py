"""Every public entry point of the engine asks the same authorisation
question: entry point x role x table type -> allowed or refused. A new public
method of ``Engine`` or ``Connection`` without a row here fails the test."""

from __future__ import annotations

import inspect
import itertools
from collections.abc import Callable
from typing import Any

import pyarrow as pa
import pytest

from engine import Connection, Engine
from engine.errors import InvalidOptionError, PermissionDeniedError
from engine.security import ROLES

TABLE_TYPES = ("USER", "SHARED", "STREAM")
_RANK = {r: i for i, r in enumerate(ROLES)}


def _row(n: int) -> str:
    return f"({n}, 'v{n}')"


# entry point -> (call(engine, user, table) , least role per table type or None = any)
Call = Callable[[Engine, str, str], Any]
WRITE = {"USER": "user", "STREAM": "user", "SHARED": "service"}
READ = {"USER": "user", "STREAM": "user", "SHARED": "user"}
FLUSH = {"USER": "service", "STREAM": "service", "SHARED": "service"}

ENTRY_POINTS: dict[str, tuple[Call, dict[str, str]]] = {
    "Engine.execute": (
        lambda e, u, t: e.execute(f"INSERT INTO {t} VALUES {_row(7)}", user=u),
        WRITE,
    ),
    "Engine.execute_script": (
        lambda e, u, t: e.execute_script(f"UPDATE {t} SET v = 'x'; DELETE FROM {t}", user=u),
        WRITE,
    ),
    "Engine.explain": (lambda e, u, t: e.explain(f"SELECT * FROM {t}", user=u), READ),
    "Engine.insert_arrow": (
        lambda e, u, t: e.insert_arrow(t, pa.table({"id": [8], "v": ["a"]}), user=u),
        WRITE,
    ),
    "Engine.flush": (lambda e, u, t: e.flush(t, user=u), FLUSH),
    "Connection.execute": (
        lambda e, u, t: e.connect(user=u).execute(f"INSERT INTO {t} VALUES {_row(9)}"),
        WRITE,
    ),
    "Connection.execute_script": (
        lambda e, u, t: e.connect(user=u).execute_script(f"SELECT * FROM {t}; DELETE FROM {t}"),
        WRITE,
    ),
    "Engine.subscribe": (
        lambda e, u, t: e.subscribe(f"SELECT * FROM {t}", user=u).close(),
        READ,
    ),
    "Connection.subscribe": (
        lambda e, u, t: e.connect(user=u).subscribe(f"SELECT * FROM {t}").close(),
        READ,
    ),
}

# Public methods that run no statement and touch no table data (namespace_of
# and running report session state and running statements for the magic's
# completion and progress line).
NOT_ENTRY_POINTS = {
    "Engine.open",
    "Engine.close",
    "Engine.connect",
    "Engine.namespace_of",
    "Engine.running",
}


def _public_methods(cls: type) -> set[str]:
    return {
        f"{cls.__name__}.{name}"
        for name, member in vars(cls).items()
        if not name.startswith("_")
        and (inspect.isfunction(member) or isinstance(member, classmethod))
    }


def test_every_public_entry_point_has_an_authorisation_rule():
    public = _public_methods(Engine) | _public_methods(Connection)
    assert public - NOT_ENTRY_POINTS == set(ENTRY_POINTS)


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    with Engine.open(tmp_path_factory.mktemp("authz"), background_jobs=False) as eng:
        for role in ROLES:
            if role != "system":
                eng.execute(f"CREATE USER {role}_u ROLE {role}")
        yield eng


@pytest.mark.parametrize(
    ("entry", "role", "table_type"),
    list(itertools.product(ENTRY_POINTS, ROLES, TABLE_TYPES)),
)
def test_entry_point_by_role_by_table_type(tables, entry, role, table_type):
    eng: Engine = tables
    name = f"t_{entry.replace('.', '_').lower()}_{role}_{table_type.lower()}"
    ttl = " WITH (TTL_SECONDS = 3600)" if table_type == "STREAM" else ""
    eng.execute(f"CREATE {table_type} TABLE {name} (id BIGINT PRIMARY KEY, v TEXT){ttl}")
    who = "root" if role == "system" else f"{role}_u"
    eng.execute(
        f"INSERT INTO {name} VALUES (1, 'root row')", user=who if table_type != "SHARED" else "root"
    )
    before = eng.execute(f"SELECT count(*) FROM {name}", user=who).scalar()
    call, least = ENTRY_POINTS[entry]
    allowed = _RANK[role] >= _RANK[least[table_type]]
    if not allowed:
        with pytest.raises(PermissionDeniedError):
            call(eng, who, name)
        assert eng.execute(f"SELECT count(*) FROM {name}", user=who).scalar() == before
    elif entry == "Engine.flush" and table_type == "STREAM":
        with pytest.raises(InvalidOptionError, match="never flushed"):
            call(eng, who, name)
    else:
        call(eng, who, name)
