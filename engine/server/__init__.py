"""The Kalam server: KalamDB's HTTP API (and live queries over WebSocket) on
one open ``Engine`` that owns the data directory (``kalam serve``).

``app`` holds the routes, ``sqlapi`` the request/response documents,
``runner`` the socket, ``server.json`` and shutdown."""
