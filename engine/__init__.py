"""Kalam engine: an embedded hot/cold analytical database.

Public surface: ``Engine``, ``Result``, the ``KalamError`` tree and the
statement-splitting helpers the notebook layer uses.
"""

from __future__ import annotations

import engine.allocator  # noqa: F401  (before anything loads DataFusion)
from engine.api import DURABILITY, Change, Connection, Engine, Subscription
from engine.errors import KalamError
from engine.result import Result
from engine.sql.parser import StatementText, is_query, parameter_names, split_statements
from engine.version import __version__

__all__ = [
    "DURABILITY",
    "Change",
    "Connection",
    "Engine",
    "KalamError",
    "Result",
    "StatementText",
    "Subscription",
    "is_query",
    "parameter_names",
    "__version__",
    "split_statements",
]
