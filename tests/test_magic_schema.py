"""Schema at a glance (issue 13): ``%kalam tables [ns]`` and ``%kalam describe t``
render result tables built from the system tables."""

from __future__ import annotations

import pytest
from IPython.core.error import UsageError
from test_magic_support import cell, ip, line  # noqa: F401

SHOP = (
    "CREATE NAMESPACE shop;"
    "CREATE TABLE shop.orders (id BIGINT PRIMARY KEY, customer TEXT NOT NULL, total DOUBLE "
    "DEFAULT 0.5);"
    "CREATE USER TABLE shop.notes (id INT PRIMARY KEY, body TEXT);"
    "INSERT INTO shop.orders (id, customer) VALUES (1, 'ana'), (2, 'ben');"
    "FLUSH TABLE shop.orders WAIT;"
    "INSERT INTO shop.orders (id, customer) VALUES (3, 'cy');"
    "CREATE TABLE other (k TEXT PRIMARY KEY)"
)


@pytest.fixture
def shop(ip):  # noqa: F811
    cell(ip, SHOP)
    return ip


def test_tables_lists_every_table_with_its_figures(shop):
    res = line(shop, "tables")
    rows = res.table.to_pylist()
    assert [(r["namespace"], r["table"]) for r in rows] == [
        ("default", "other"),
        ("shop", "notes"),
        ("shop", "orders"),
    ]
    orders = rows[2]
    assert (orders["type"], orders["columns"], orders["primary key"]) == ("SHARED", 3, "id")
    assert (orders["hot rows"], orders["segments"]) == (1, 1)
    assert orders["size"].endswith("KB") and orders["last flush"] is not None
    assert rows[1]["type"] == "USER" and rows[1]["segments"] == 0
    assert rows[1]["last flush"] is None
    assert "<table" in res._repr_html_() and "hot rows" in str(res)


def test_tables_of_one_namespace(shop):
    rows = line(shop, "tables shop").table.to_pylist()
    assert [r["table"] for r in rows] == ["notes", "orders"]


def test_describe_shows_columns_types_and_a_summary(shop):
    res = line(shop, "describe shop.orders")
    assert res.table.to_pylist() == [
        {"column": "id", "type": "BIGINT", "primary key": True, "nullable": False, "default": None},
        {
            "column": "customer",
            "type": "TEXT",
            "primary key": False,
            "nullable": False,
            "default": None,
        },
        {
            "column": "total",
            "type": "DOUBLE",
            "primary key": False,
            "nullable": True,
            "default": "0.5",
        },
    ]
    summary = res.results[0].message
    assert summary.startswith("shop.orders · SHARED · schema version 1 · 1 hot row(s)")
    assert "1 segment(s)" in summary and "last flush 2" in summary


def test_describe_follows_use(shop):
    line(shop, "USE shop")
    assert line(shop, "describe notes").results[0].message.startswith("shop.notes · USER")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("tables nope", "no namespace 'nope'"),
        ("describe nope", "no table default.nope"),
        ("describe a.b.c", "a table name"),
        ("describe", "usage"),
        ("tables a b", "usage"),
    ],
)
def test_schema_command_mistakes_are_usage_errors(shop, text, message):
    with pytest.raises(UsageError, match=message):
        line(shop, text)
