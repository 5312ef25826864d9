"""Views and DROP NAMESPACE: a namespace's views go with it (CASCADE), never
linger to reappear in a namespace created later under the same name, and a
view elsewhere that read them fails with the clear error of a view whose
table is gone."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from engine import Engine
from engine.errors import NamespaceNotEmptyError, NamespaceNotFoundError, TableNotFoundError


@pytest.fixture
def app(engine: Engine) -> Engine:
    engine.execute("CREATE NAMESPACE app")
    engine.execute("CREATE SHARED TABLE app.t (id INT PRIMARY KEY, v INT)")
    engine.execute("INSERT INTO app.t VALUES (1, 10), (2, 20)")
    engine.execute("CREATE VIEW app.tv AS SELECT id, v FROM t WHERE v > 5")
    engine.execute("CREATE VIEW app.tv2 AS SELECT id FROM tv")
    engine.execute("CREATE TABLE keep (id INT PRIMARY KEY)")
    engine.execute("CREATE VIEW outside AS SELECT id FROM app.t")  # default namespace
    engine.execute("CREATE VIEW outside_view AS SELECT id FROM app.tv")
    engine.execute("CREATE VIEW unrelated AS SELECT id FROM keep")
    return engine


def _views(engine: Engine) -> set[str]:
    return {f"{ns}.{name}" for ns, name, _ in engine.execute("SHOW VIEWS").rows()}


def _listed_in_system_tables(engine: Engine, namespace: str) -> list[str]:
    return [
        r[0]
        for r in engine.execute(
            "SELECT table_name FROM system.tables WHERE namespace = :ns ORDER BY 1",
            {"ns": namespace},
        ).rows()
    ]


def test_drop_namespace_cascade_drops_its_views(app: Engine, reopen: Callable[..., Engine]) -> None:
    app.execute("DROP NAMESPACE app CASCADE")
    assert _views(app) == {"default.outside", "default.outside_view", "default.unrelated"}
    assert _listed_in_system_tables(app, "app") == []
    engine = reopen(app)
    assert _views(engine) == {"default.outside", "default.outside_view", "default.unrelated"}


def test_a_namespace_created_again_does_not_inherit_the_dropped_views(app: Engine) -> None:
    app.execute("DROP NAMESPACE app CASCADE")
    app.execute("CREATE NAMESPACE app")
    app.execute("CREATE SHARED TABLE app.t (id INT PRIMARY KEY, v INT)")
    assert _views(app) == {"default.outside", "default.outside_view", "default.unrelated"}
    with pytest.raises(TableNotFoundError):
        app.execute("SELECT * FROM app.tv")
    app.execute("CREATE VIEW app.tv AS SELECT id FROM t")  # the name is free again
    assert app.execute("SELECT * FROM app.tv").rows() == []


def test_a_view_elsewhere_over_a_dropped_namespace_fails_clearly(app: Engine) -> None:
    app.execute("DROP NAMESPACE app CASCADE")
    for view in ("outside", "outside_view"):
        # The namespace is gone, so that is what the error names.
        with pytest.raises(NamespaceNotFoundError) as info:
            app.execute(f"SELECT * FROM {view}")
        assert f"View 'default.{view}' cannot be read" in str(info.value)
        assert "Namespace 'app' does not exist" in str(info.value)
    assert app.execute("SELECT count(*) FROM unrelated").rows() == [(0,)]


def test_drop_namespace_without_cascade_refuses_while_views_remain(
    app: Engine, snapshot: Callable[..., object]
) -> None:
    app.execute("DROP TABLE app.t")
    before = snapshot(app)
    with pytest.raises(NamespaceNotEmptyError) as info:
        app.execute("DROP NAMESPACE app")
    assert "0 table(s) and 2 view(s)" in str(info.value)
    assert "CASCADE" in str(info.value)
    assert snapshot(app) == before
    assert {"app.tv", "app.tv2"} <= _views(app)
    app.execute("DROP VIEW app.tv2")
    app.execute("DROP VIEW app.tv")
    app.execute("DROP NAMESPACE app")
    assert "app" not in {r[0] for r in app.execute("SHOW NAMESPACES").rows()}
