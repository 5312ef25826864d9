"""Sessions: per-caller state, never on the engine.

A ``Session`` holds what one caller changes for itself (the current
namespace set by ``USE``) and who it is. The façade creates one per
connection (``Engine.connect``) and one per user for plain
``Engine.execute(..., user=...)`` calls; the magic gets its own through its
engine. While a statement runs, its session is the *current* one (a context
variable, so each thread and each statement sees only its own); code below
the façade reads ``Database.namespace`` and gets the current session's.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

from engine.catalog.catalog import DEFAULT_NAMESPACE

_ids = itertools.count(1)


@dataclass
class Session:
    """One caller's state: who it is and its current namespace."""

    user: str
    namespace: str = DEFAULT_NAMESPACE
    session_id: int = field(default_factory=lambda: next(_ids))

    def __repr__(self) -> str:
        return f"<Session {self.session_id} user={self.user!r} namespace={self.namespace!r}>"


_current: ContextVar[Session | None] = ContextVar("kalam_session", default=None)


def current_session() -> Session | None:
    return _current.get()


@contextmanager
def using(session: Session) -> Iterator[Session]:
    """Make ``session`` the current one for the statements run inside."""
    token = _current.set(session)
    try:
        yield session
    finally:
        _current.reset(token)
