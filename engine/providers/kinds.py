"""The three table types as small overrides of ``TableProvider``."""

from __future__ import annotations

from engine.providers.base import ScanOptions, TableProvider
from engine.seq import seq_time_ms

SHARED_SCOPE = ""


class UserTableProvider(TableProvider):
    """Rows belong to the user who wrote them; a user reads only its own scope."""

    table_type = "USER"

    def write_scope(self, user: str) -> str:
        return user

    def read_scopes(self, user: str) -> list[str]:
        return [user]


class SharedTableProvider(TableProvider):
    """One global partition."""

    table_type = "SHARED"

    def write_scope(self, user: str) -> str:
        return SHARED_SCOPE

    def read_scopes(self, user: str) -> list[str]:
        return [SHARED_SCOPE]


class StreamTableProvider(SharedTableProvider):
    """Hot-only rows that vanish from reads once older than TTL_SECONDS."""

    table_type = "STREAM"

    def row_visible(self, seq: int, options: ScanOptions) -> bool:
        ttl_ms = int(self.table.options["ttl_seconds"]) * 1000
        return seq_time_ms(seq) > options.now_ms - ttl_ms


PROVIDERS: dict[str, type[TableProvider]] = {
    cls.table_type: cls for cls in (UserTableProvider, SharedTableProvider, StreamTableProvider)
}
