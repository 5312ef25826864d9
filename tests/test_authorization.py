"""Every write path asks the same authorisation question."""

from __future__ import annotations

import pyarrow as pa
import pytest

from engine import Engine
from engine.errors import PermissionDeniedError


@pytest.fixture
def eng(tmp_path):
    with Engine.open(tmp_path, background_jobs=False) as e:
        e.execute("CREATE TABLE pub (id BIGINT PRIMARY KEY, v TEXT)")
        e.execute("INSERT INTO pub VALUES (1, 'root')")
        e.execute("CREATE USER alice ROLE user")
        e.execute("CREATE USER svc ROLE service")
        yield e


def test_insert_arrow_into_a_shared_table_needs_the_service_role(eng):
    rows = pa.table({"id": [2], "v": ["alice"]})
    with pytest.raises(PermissionDeniedError, match="SHARED table default.pub"):
        eng.insert_arrow("pub", rows, user="alice")
    with pytest.raises(PermissionDeniedError):
        eng.execute("INSERT INTO pub VALUES (2, 'alice')", user="alice")
    assert eng.execute("SELECT id, v FROM pub ORDER BY id").rows() == [(1, "root")]
    eng.insert_arrow("pub", rows, user="svc")
    assert eng.execute("SELECT id, v FROM pub ORDER BY id").rows() == [(1, "root"), (2, "alice")]
