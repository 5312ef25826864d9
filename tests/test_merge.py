from __future__ import annotations

pytest_plugins = ["conftest_cold"]


def test_x(cold, kind):
    cold.create(kind)
    assert cold.count() == 0
