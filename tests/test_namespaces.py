"""Namespaces: CREATE / DROP [CASCADE] / SHOW / USE, the default namespace and
reserved names."""

from __future__ import annotations

import pytest

from engine import KalamError
from engine.errors import (
    InvalidNameError,
    NamespaceExistsError,
    NamespaceNotEmptyError,
    NamespaceNotFoundError,
    TableNotFoundError,
)


def namespaces(engine) -> list[str]:
    return [row[0] for row in engine.execute("SHOW NAMESPACES").rows()]


def test_default_namespace_exists_in_a_fresh_data_dir(engine):
    assert namespaces(engine) == ["default"]


def test_default_namespace_still_exists_after_reopen(engine, reopen):
    engine = reopen(engine)
    assert namespaces(engine) == ["default"]


def test_default_namespace_cannot_be_dropped(engine, snapshot):
    engine.execute("CREATE TABLE t (id INT PRIMARY KEY)")
    before = snapshot(engine)
    for sql in ("DROP NAMESPACE default", "DROP NAMESPACE default CASCADE"):
        with pytest.raises(KalamError) as info:
            engine.execute(sql)
        assert "default" in info.value.message
        assert "cannot be dropped" in info.value.message
    assert snapshot(engine) == before


def test_create_namespace_reports_and_lists_it(engine):
    result = engine.execute("CREATE NAMESPACE app")
    assert result.message == "Namespace app created"
    assert not result.is_query
    assert namespaces(engine) == ["app", "default"]


def test_show_namespaces_counts_tables(engine):
    engine.execute("CREATE NAMESPACE app")
    engine.execute("CREATE TABLE app.a (id INT PRIMARY KEY)")
    engine.execute("CREATE TABLE app.b (id INT PRIMARY KEY)")
    result = engine.execute("SHOW NAMESPACES")
    assert result.columns[0] == "namespace"
    counts = dict(result.rows())
    assert counts == {"app": 2, "default": 0}


def test_namespaces_survive_reopen(engine, reopen):
    engine.execute("CREATE NAMESPACE app")
    engine = reopen(engine)
    assert namespaces(engine) == ["app", "default"]


def test_create_existing_namespace_is_an_error_that_changes_nothing(engine, expect_error):
    engine.execute("CREATE NAMESPACE app")
    expect_error(
        engine, "CREATE NAMESPACE app", NamespaceExistsError, "NAMESPACE_EXISTS", "app", "exists"
    )


def test_create_namespace_if_not_exists_is_a_no_op_when_it_exists(engine, snapshot):
    engine.execute("CREATE NAMESPACE app")
    engine.execute("CREATE TABLE app.t (id INT PRIMARY KEY)")
    engine.execute("INSERT INTO app.t VALUES (1)")
    before = snapshot(engine)
    result = engine.execute("CREATE NAMESPACE IF NOT EXISTS app")
    assert "already exists" in result.message
    assert snapshot(engine) == before


def test_create_namespace_if_not_exists_creates_a_missing_one(engine):
    engine.execute("CREATE NAMESPACE IF NOT EXISTS app")
    assert "app" in namespaces(engine)


@pytest.mark.parametrize("name", ["system", "information_schema", "kalam"])
def test_reserved_namespace_names_are_rejected(engine, expect_error, name):
    expect_error(
        engine, f"CREATE NAMESPACE {name}", InvalidNameError, "INVALID_NAME", name, "reserved"
    )
    assert name not in namespaces(engine)


@pytest.mark.parametrize("name", ['"../x"', '"a/b"', '"App"', "_x", '"x y"'])
def test_namespace_names_outside_the_allowlist_are_rejected(engine, expect_error, name):
    expect_error(engine, f"CREATE NAMESPACE {name}", InvalidNameError, "INVALID_NAME", "namespace")


def test_drop_empty_namespace(engine):
    engine.execute("CREATE NAMESPACE app")
    result = engine.execute("DROP NAMESPACE app")
    assert result.message == "Namespace app dropped"
    assert namespaces(engine) == ["default"]


def test_drop_missing_namespace_says_how_to_create_it(engine, expect_error):
    expect_error(
        engine,
        "DROP NAMESPACE nope",
        NamespaceNotFoundError,
        "NAMESPACE_NOT_FOUND",
        "nope",
        "CREATE NAMESPACE",
    )


def test_drop_namespace_if_exists_on_a_missing_one_is_a_no_op(engine, snapshot):
    before = snapshot(engine)
    result = engine.execute("DROP NAMESPACE IF EXISTS nope")
    assert "does not exist" in result.message
    assert snapshot(engine) == before


def test_drop_non_empty_namespace_without_cascade_is_an_error(engine, expect_error):
    engine.execute("CREATE NAMESPACE app")
    engine.execute("CREATE TABLE app.t (id INT PRIMARY KEY)")
    engine.execute("INSERT INTO app.t VALUES (1), (2)")
    exc = expect_error(
        engine, "DROP NAMESPACE app", NamespaceNotEmptyError, "NAMESPACE_NOT_EMPTY", "app"
    )
    assert "CASCADE" in exc.message
    assert engine.execute("SELECT count(*) FROM app.t").scalar() == 2


def test_drop_namespace_cascade_drops_its_tables_and_rows(engine, create_table, table_type):
    engine.execute("CREATE NAMESPACE app")
    create_table(engine, table_type, "app.t", "id INT PRIMARY KEY, v TEXT")
    engine.execute("CREATE TABLE app.other (id INT PRIMARY KEY)")
    engine.execute("INSERT INTO app.t VALUES (1, 'a'), (2, 'b')")
    engine.execute("CREATE TABLE default.keep (id INT PRIMARY KEY)")
    engine.execute("INSERT INTO default.keep VALUES (7)")

    engine.execute("DROP NAMESPACE app CASCADE")

    assert namespaces(engine) == ["default"]
    assert engine.execute("SHOW TABLES").rows() == [("default", "keep", "SHARED")]
    with pytest.raises(NamespaceNotFoundError):
        engine.execute("SELECT * FROM app.t")
    # Re-creating the same names starts empty: the rows went with the tables.
    engine.execute("CREATE NAMESPACE app")
    create_table(engine, table_type, "app.t", "id INT PRIMARY KEY, v TEXT")
    assert len(engine.execute("SELECT * FROM app.t")) == 0
    assert engine.execute("SELECT id FROM default.keep").rows() == [(7,)]


def test_drop_namespace_cascade_rows_stay_gone_after_reopen(engine, reopen):
    engine.execute("CREATE NAMESPACE app")
    engine.execute("CREATE USER TABLE app.t (id INT PRIMARY KEY)")
    engine.execute("INSERT INTO app.t VALUES (1)", user="alice")
    engine.execute("DROP NAMESPACE app CASCADE")
    engine = reopen(engine)
    assert namespaces(engine) == ["default"]
    engine.execute("CREATE NAMESPACE app")
    engine.execute("CREATE USER TABLE app.t (id INT PRIMARY KEY)")
    assert len(engine.execute("SELECT * FROM app.t", user="alice")) == 0


def test_use_makes_unqualified_names_resolve_in_that_namespace(engine):
    engine.execute("CREATE NAMESPACE app")
    engine.execute("CREATE TABLE default.t (id INT PRIMARY KEY, v TEXT)")
    engine.execute("INSERT INTO default.t VALUES (1, 'in default')")

    assert engine.execute("USE app").message
    engine.execute("CREATE TABLE t (id INT PRIMARY KEY, v TEXT)")
    engine.execute("INSERT INTO t VALUES (1, 'in app')")

    assert engine.execute("SELECT v FROM t").rows() == [("in app",)]
    assert engine.execute("SELECT v FROM app.t").rows() == [("in app",)]
    assert engine.execute("SELECT v FROM default.t").rows() == [("in default",)]
    assert [r[0] for r in engine.execute("DESCRIBE t").rows()] == ["id", "v"]
    tables = engine.execute("SHOW TABLES").rows()
    assert ("app", "t", "SHARED") in tables and ("default", "t", "SHARED") in tables

    engine.execute("USE default")
    assert engine.execute("SELECT v FROM t").rows() == [("in default",)]


def test_use_missing_namespace_is_an_error_and_keeps_the_current_one(engine, expect_error):
    engine.execute("CREATE TABLE t (id INT PRIMARY KEY)")
    expect_error(engine, "USE nope", NamespaceNotFoundError, "NAMESPACE_NOT_FOUND", "nope")
    assert len(engine.execute("SELECT * FROM t")) == 0  # still resolves in default


def test_unqualified_name_missing_in_the_used_namespace_is_not_found(engine):
    engine.execute("CREATE NAMESPACE app")
    engine.execute("CREATE TABLE default.only_here (id INT PRIMARY KEY)")
    engine.execute("USE app")
    with pytest.raises(TableNotFoundError) as info:
        engine.execute("SELECT * FROM only_here")
    assert info.value.code == "TABLE_NOT_FOUND"
    assert "app.only_here" in info.value.message


def test_same_table_name_in_two_namespaces_holds_separate_rows(engine):
    engine.execute("CREATE NAMESPACE a")
    engine.execute("CREATE NAMESPACE b")
    engine.execute("CREATE TABLE a.t (id INT PRIMARY KEY)")
    engine.execute("CREATE TABLE b.t (id INT PRIMARY KEY)")
    engine.execute("INSERT INTO a.t VALUES (1)")
    engine.execute("INSERT INTO b.t VALUES (1), (2)")
    assert engine.execute("SELECT count(*) FROM a.t").scalar() == 1
    assert engine.execute("SELECT count(*) FROM b.t").scalar() == 2
