"""The database core: the state of one open data directory (``Database``)
and the one commit path every change to a table's state goes through.

Everything below the façade (SQL handlers, jobs, system tables) receives a
``Database``; nothing here imports ``engine.api`` or ``engine.sql``.
"""

from __future__ import annotations

from engine.core.database import DURABILITY, Database

__all__ = ["DURABILITY", "Database"]
