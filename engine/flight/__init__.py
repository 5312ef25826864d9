"""Arrow Flight SQL for Kalam: ``serve_flight(engine, host, port, authenticate=...)``."""

from __future__ import annotations

from engine.flight.server import FlightSqlServer, serve_flight

__all__ = ["FlightSqlServer", "serve_flight"]
