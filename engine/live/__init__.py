"""Live queries: ``SUBSCRIBE TO SELECT ... FROM ns.t [WHERE ...]``.

``hub`` (the registry and the delivery thread, fed by the commit path),
``subscription`` (what a subscriber reads), ``evaluate`` (the WHERE and
projection over changed rows), ``shape`` (which queries may be live) and
``subscribe`` (the statement handlers)."""

from __future__ import annotations

from engine.live.hub import LiveHub
from engine.live.subscription import Change, Subscription

__all__ = ["Change", "LiveHub", "Subscription"]
