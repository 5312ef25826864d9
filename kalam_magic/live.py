"""Live views: ``%%kalam SUBSCRIBE TO ...`` in a notebook.

A ``LiveView`` owns one engine subscription and one IPython display handle.
A daemon thread reads the subscription's changes, applies them to the rows
it shows and re-renders the same output in place, at most a few times per
second however fast changes arrive, so the kernel stays free for other
cells. ``stop()`` (or ``%kalam --stop [id]``, or ``KILL LIVE QUERY``) ends it
with a last render saying so.

``--updates N`` / ``--for SECONDS`` make the cell wait until N changes have
been applied or the time is up, then stop and show the final rows once:
that output does not depend on timing, so a notebook run under nbval shows
the same final state every time.

The rows shown are kept without a key: an update replaces a row equal to its
``old_values``, a delete removes one equal to its ``rows``. They are shown
sorted by their values (a live query has no ORDER BY), so the output does
not depend on the order changes arrived in.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pyarrow as pa

from engine import Change, Result, Subscription
from engine.errors import LiveQueryClosedError
from kalam_magic import render

#: Re-render at most this often while changes stream in (seconds).
MIN_RENDER_INTERVAL = 0.25


class LiveView:
    """The notebook side of one live query: its rows, its output, its thread."""

    def __init__(
        self, sub: Subscription, *, displaylimit: int = 20, max_rows: int = render.DISPLAY_MAX_ROWS
    ) -> None:
        self.subscription = sub
        self.id = sub.id
        self.displaylimit = displaylimit
        self.max_rows = max_rows
        self.schema: pa.Schema = sub.schema
        self.changes_applied = 0
        self._rows: list[tuple[Any, ...]] = _tuples(sub.initial)
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._handle: Any = None
        self._thread: threading.Thread | None = None
        self._ended: str | None = None
        # Set once the final state has been rendered: ``wait`` returns only
        # then, so whoever waited sees the output that says why it ended.
        self._final_shown = False

    def __repr__(self) -> str:
        state = f"stopped ({self._ended})" if self._ended else "running"
        return f"<LiveView {self.id}: {len(self._rows)} row(s), {self.changes_applied} change(s), {state}>"

    # ------------------------------------------------------------ lifecycle
    @property
    def running(self) -> bool:
        return self._ended is None

    def start(self) -> LiveView:
        """Follow the subscription on a daemon thread (the kernel stays free)."""
        self._thread = threading.Thread(
            target=self._follow, name=f"kalam-view-{self.id}", daemon=True
        )
        self._thread.start()
        return self

    def wait(self, *, updates: int | None = None, seconds: float | None = None) -> None:
        """Block until ``updates`` changes were applied, ``seconds`` passed or
        the live query ended, whichever comes first."""
        deadline = None if seconds is None else time.monotonic() + seconds
        with self._changed:
            while not self._final_shown and (updates is None or self.changes_applied < updates):
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    break
                self._changed.wait(left if left is not None else 0.5)

    def stop(self) -> LiveView:
        """End the live query and show the final rows (idempotent)."""
        self.subscription.close()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=10)
        self._finish(self.subscription.close_reason or "stopped")
        return self

    # ------------------------------------------------------------ display
    def show(self) -> None:
        """Create the output (once); later calls refresh that same output."""
        from IPython.display import display

        if self._handle is None:
            self._handle = display(self._bundle(), raw=True, display_id=True)
        else:
            self._handle.update(self._bundle(), raw=True)

    def _ipython_display_(self) -> None:
        # Showing the view again refreshes its one output instead of adding another.
        self.show()

    def _refresh(self) -> None:
        if self._handle is not None:
            self._handle.update(self._bundle(), raw=True)

    def table(self) -> pa.Table:
        """The rows shown now, sorted by their values."""
        with self._lock:
            rows = sorted(self._rows, key=_sort_key)
        arrays = [pa.array([r[i] for r in rows], type=f.type) for i, f in enumerate(self.schema)]
        return pa.Table.from_arrays(arrays, schema=self.schema)

    def status(self) -> str:
        if self._ended is None:
            state = "live"
        elif self._ended == "closed by the subscriber":
            state = "stopped"
        else:
            state = f"stopped: {self._ended}"
        n = self.changes_applied
        return (
            f"live query {self.id}{render.SEP}{n} change{'' if n == 1 else 's'}{render.SEP}{state}"
        )

    def _bundle(self) -> dict[str, str]:
        result = Result(table=self.table(), is_query=True)
        note = f'<div class="kalam-live" style="opacity:0.7;font-size:0.9em">{render._h(self.status())}</div>'
        return {
            "text/plain": render.table_text(result, self.displaylimit, self.max_rows)
            + "\n"
            + self.status(),
            "text/html": '<div class="kalam-output">'
            + render.table_html(result, self.displaylimit, self.max_rows)
            + note
            + "</div>",
        }

    # ------------------------------------------------------------ the thread
    def _follow(self) -> None:
        last_render = 0.0
        dirty = False
        while True:
            wait = None
            if dirty:
                wait = max(last_render + MIN_RENDER_INTERVAL - time.monotonic(), 0.0)
            try:
                change = self.subscription.get(timeout=wait)
            except LiveQueryClosedError:
                break
            if change is not None:
                try:
                    self._apply(change)
                except ValueError:  # a row the view never showed: stop rather than drift
                    self.subscription.close()
                    self._finish("a change did not match the rows shown; run the cell again")
                    break
                dirty = True
            if dirty and time.monotonic() - last_render >= MIN_RENDER_INTERVAL:
                self._refresh()
                last_render = time.monotonic()
                dirty = False
        self._finish(self.subscription.close_reason or "ended")

    def _apply(self, change: Change) -> None:
        new = _tuples(change.rows)
        with self._changed:
            if change.change_type == "insert":
                self._rows.extend(new)
            elif change.change_type == "update" and change.old_values is not None:
                for old, row in zip(_tuples(change.old_values), new, strict=True):
                    self._rows[_find(self._rows, old)] = row
            elif change.change_type == "delete":
                for old in new:
                    del self._rows[_find(self._rows, old)]
            self.changes_applied += 1
            self._changed.notify_all()

    def _finish(self, reason: str) -> None:
        with self._changed:
            first = self._ended is None
            if first:
                self._ended = reason
        if first:
            try:
                self._refresh()
            finally:
                with self._changed:
                    self._final_shown = True
                    self._changed.notify_all()


def _tuples(table: pa.Table) -> list[tuple[Any, ...]]:
    columns = [c.to_pylist() for c in table.columns]
    return list(zip(*columns, strict=True))


def _find(rows: list[tuple[Any, ...]], row: tuple[Any, ...]) -> int:
    try:
        return rows.index(row)
    except ValueError:  # NaN never equals itself: compare the text instead
        text = repr(row)
        for i, r in enumerate(rows):
            if repr(r) == text:
                return i
        raise


def _sort_key(row: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple((v is None, v if v is not None else 0) for v in row)


def start_view(
    result: Result,
    *,
    displaylimit: int,
    max_rows: int = render.DISPLAY_MAX_ROWS,
    updates: int | None = None,
    seconds: float | None = None,
) -> LiveView:
    """The live view of a SUBSCRIBE result: shown now and followed in the
    background, or (with ``updates`` / ``seconds``) followed until done,
    stopped, and then shown once."""
    view = LiveView(result.subscription, displaylimit=displaylimit, max_rows=max_rows)
    blocking = updates is not None or seconds is not None
    if not blocking:
        view.show()
    view.start()
    if blocking:
        try:
            view.wait(updates=updates, seconds=seconds)
        finally:
            view.stop()
            view.show()
    return view


def stop_views(views: dict[str, LiveView], view_id: str | None) -> list[LiveView]:
    """``%kalam --stop [id]``: stop one view, or every running one."""
    if view_id is not None:
        view = views.get(view_id)
        if view is None:
            known = ", ".join(sorted(views)) or "none"
            raise KeyError(f"no live view {view_id!r} in this notebook (running: {known})")
        chosen = [view]
    else:
        chosen = [v for v in views.values() if v.running]
    for view in chosen:
        view.stop()
        views.pop(view.id, None)
    return chosen
