"""Tab completion in %%kalam cells through IPython's completer, as the terminal
uses it (issue 7). The kernel's complete_request, what JupyterLab sends, is
tested in test_magic_kernel.py."""

from __future__ import annotations

import pytest
from IPython.core.completer import provisionalcompleter
from IPython.terminal.ptutils import IPythonPTCompleter
from prompt_toolkit.document import Document
from test_magic_support import cell, ip  # noqa: F401

from kalam_magic.completion import kalam_text_before_cursor

SCHEMA = (
    "CREATE NAMESPACE app;"
    "CREATE TABLE app.orders (id INT PRIMARY KEY, amount DOUBLE, customer TEXT);"
    "CREATE TABLE users (id INT PRIMARY KEY, name TEXT, nickname TEXT)"
)


def complete(ip, text: str) -> list[tuple[str, str]]:  # noqa: F811
    """(text, type) of every completion at the end of ``text``."""
    with provisionalcompleter():
        found = ip.Completer.completions(text, len(text))
        return [(c.text, c.type) for c in found]


@pytest.fixture
def schema(ip):  # noqa: F811
    cell(ip, SCHEMA)
    return ip


def test_namespaces_and_tables_after_from(schema):
    assert complete(schema, "%%kalam\nSELECT * FROM ") == [
        ("app", "namespace"),
        ("default", "namespace"),
        ("system", "namespace"),
        ("users", "table"),
    ]


@pytest.mark.parametrize("keyword", ["FROM", "JOIN", "INTO", "UPDATE", "TABLE", "from"])
def test_tables_after_each_table_keyword(schema, keyword):
    assert complete(schema, f"%%kalam\nSELECT 1;\n{keyword} us") == [("users", "table")]


def test_tables_of_a_namespace_after_the_dot(schema):
    assert complete(schema, "%%kalam\nSELECT * FROM app.") == [("app.orders", "table")]


def test_columns_after_table_dot(schema):
    assert complete(schema, "%%kalam\nSELECT users.n") == [
        ("users.name", "column"),
        ("users.nickname", "column"),
    ]
    assert complete(schema, "%%kalam\nSELECT app.orders.am") == [("app.orders.amount", "column")]


def test_line_magic_and_assignment_forms(schema):
    assert complete(schema, "%kalam SELECT * FROM us") == [("users", "table")]
    assert complete(schema, "res = %kalam SELECT * FROM us") == [("users", "table")]


def test_plain_python_is_left_to_ipython(schema):
    schema.user_ns["users_list"] = []
    texts = [t for t, _ in complete(schema, "users_l")]
    assert "users_list" in texts
    assert kalam_text_before_cursor("x = 1\nFROM u", 1, 6) is None


def test_the_magic_line_itself_is_not_sql():
    assert kalam_text_before_cursor("%%kalam --user bob FROM", 0, 23) is None


def test_terminal_prompt_toolkit_completer(schema):
    text = "%%kalam\nSELECT * FROM app.ord"
    completer = IPythonPTCompleter(shell=schema)
    found = [c.text for c in completer.get_completions(Document(text, len(text)), None)]
    assert found == ["app.orders"]


# ---------------------------------------------------------------- issue 13


def test_completion_follows_use(schema):
    cell(schema, "USE app")
    assert complete(schema, "%%kalam\nSELECT * FROM ") == [
        ("app", "namespace"),
        ("default", "namespace"),
        ("system", "namespace"),
        ("orders", "table"),
    ]
    assert complete(schema, "%%kalam\nSELECT orders.cu") == [("orders.customer", "column")]


def test_namespaces_after_use(schema):
    assert complete(schema, "%kalam USE a") == [("app", "namespace")]


def test_columns_after_an_alias_dot(schema):
    code = "%%kalam\nSELECT o.am FROM app.orders AS o JOIN users u ON u.id = o.id"
    cursor = code.index("o.am") + len("o.am")
    with provisionalcompleter():
        found = [(c.text, c.type) for c in schema.Completer.completions(code, cursor)]
    assert found == [("o.amount", "column")]
    assert complete(schema, "%%kalam\nSELECT * FROM users u WHERE u.ni") == [
        ("u.nickname", "column")
    ]


def test_columns_of_the_statements_tables_then_functions_and_keywords(schema):
    found = complete(schema, "%%kalam\nSELECT * FROM users WHERE n")
    assert found[:2] == [("name", "column"), ("nickname", "column")]
    assert ("now", "function") in found and ("nullif", "function") in found
    assert ("not", "keyword") in found and ("null", "keyword") in found
    assert ("SUM", "keyword") not in found
    upper = complete(schema, "%%kalam\nSELECT * FROM users WH")
    assert upper == [("WHEN", "keyword"), ("WHERE", "keyword")]


def test_functions_complete_anywhere_in_a_query(schema):
    assert ("date_trunc", "function") in complete(schema, "%kalam SELECT date_t")
