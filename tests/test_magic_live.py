"""``%%kalam SUBSCRIBE TO ...`` in a real IPython shell over a real engine.

A live view shows the subscription's rows in one output and keeps it up to
date from a background thread; ``--updates N`` / ``--for S`` wait and then
show the final rows once; ``%kalam --stop`` ends views. Displays are recorded
by a stand-in display publisher, so the tests see exactly which outputs were
created and which were updated in place.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from IPython.core.error import UsageError
from test_magic_support import cell, ip, line  # noqa: F401

from engine import Engine
from kalam_magic.live import MIN_RENDER_INTERVAL, LiveView

WAIT = 20.0


class Displays:
    """Records what IPython was asked to display: (display id, update?, text)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str | None, bool, str]] = []
        self.lock = threading.Lock()

    def publish(self, data: dict[str, Any], metadata: Any = None, *args: Any, **kw: Any) -> None:
        transient = kw.get("transient") or {}
        with self.lock:
            self.calls.append(
                (transient.get("display_id"), bool(kw.get("update")), data.get("text/plain", ""))
            )

    def clear_output(self, wait: bool = False) -> None:
        pass

    def created(self) -> list[str | None]:
        return [d for d, update, _ in self.calls if not update]

    def updates(self, display_id: str | None) -> int:
        return sum(1 for d, update, _ in self.calls if update and d == display_id)


@pytest.fixture
def shown(ip: Any, monkeypatch: pytest.MonkeyPatch) -> Displays:  # noqa: F811
    rec = Displays()
    monkeypatch.setattr(ip, "display_pub", rec)
    return rec


def engine_of(ip: Any) -> Engine:  # noqa: F811
    return ip.magics_manager.registry["KalamMagics"].engine()


def when_subscribed(eng: Engine, *statements: str) -> threading.Thread:
    """Run ``statements`` on a thread once a live query exists (so each is a change)."""

    def write() -> None:
        deadline = time.monotonic() + WAIT
        pause = threading.Event()
        while not eng.db.subscriptions.snapshot() and time.monotonic() < deadline:
            pause.wait(0.01)
        for sql in statements:
            eng.execute(sql)

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    return writer


@pytest.fixture
def items(ip: Any) -> Engine:  # noqa: F811
    cell(ip, "CREATE TABLE items (id INT PRIMARY KEY, qty INT); INSERT INTO items VALUES (1, 5)")
    return engine_of(ip)


def test_updates_n_waits_for_n_changes_then_shows_the_final_rows_once(
    ip: Any,  # noqa: F811
    items: Engine,
    shown: Displays,
) -> None:
    when_subscribed(
        items,
        "INSERT INTO items VALUES (3, 30)",
        "INSERT INTO items VALUES (2, 20)",
        "UPDATE items SET qty = 6 WHERE id = 1",
        "DELETE FROM items WHERE id = 3",
    )
    view = cell(ip, "SUBSCRIBE TO SELECT id, qty FROM items", "--updates 4")
    assert isinstance(view, LiveView) and not view.running
    assert view.table().to_pylist() == [{"id": 1, "qty": 6}, {"id": 2, "qty": 20}]
    assert view.changes_applied == 4
    (display_id,) = shown.created()  # one output, created once the result is final
    text = shown.calls[0][2]
    assert "4 changes" in text and "stopped" in text and "2 rows" in text
    assert items.db.subscriptions.snapshot() == []  # the subscription was closed


def test_for_seconds_follows_for_that_long_and_shows_the_rows(
    ip: Any,  # noqa: F811
    items: Engine,
    shown: Displays,
) -> None:
    view = cell(ip, "SUBSCRIBE TO SELECT qty FROM items WHERE qty > 1", "--for 0.3")
    assert not view.running and view.table().to_pylist() == [{"qty": 5}]
    assert len(shown.created()) == 1


def test_a_live_view_updates_its_one_output_while_the_shell_stays_free(
    ip: Any,  # noqa: F811
    items: Engine,
    shown: Displays,
) -> None:
    view = cell(ip, "SUBSCRIBE TO SELECT id, qty FROM items")
    assert view.running
    (display_id,) = shown.created()
    # The cell returned: the shell runs other cells while the view follows.
    line(ip, "INSERT INTO items VALUES (2, 7)")
    cell(ip, "UPDATE items SET qty = 8 WHERE id = 2")
    view.wait(updates=2, seconds=WAIT)
    assert view.table().to_pylist() == [{"id": 1, "qty": 5}, {"id": 2, "qty": 8}]
    line(ip, f"--stop {view.id}")
    assert not view.running and items.db.subscriptions.snapshot() == []
    assert display_id is not None and shown.created() == [display_id]
    assert shown.updates(display_id) >= 1
    assert "stopped" in shown.calls[-1][2]
    assert not [t for t in threading.enumerate() if t.name == f"kalam-view-{view.id}"]


def test_bursts_of_changes_are_coalesced_into_a_few_renders(
    ip: Any,  # noqa: F811
    items: Engine,
    shown: Displays,
) -> None:
    view = cell(ip, "SUBSCRIBE TO SELECT id FROM items")
    (display_id,) = shown.created()
    started = time.monotonic()
    for i in range(100, 160):
        items.execute("INSERT INTO items VALUES (?, 0)", [i])
    view.wait(updates=60, seconds=WAIT)
    elapsed = time.monotonic() - started
    view.stop()
    assert view.changes_applied == 60 and len(view.table()) == 61
    renders = shown.updates(display_id)
    assert renders <= elapsed / MIN_RENDER_INTERVAL + 3, (renders, elapsed)
    assert renders < 30


def test_kill_live_query_ends_the_view_with_the_reason(
    ip: Any,  # noqa: F811
    items: Engine,
    shown: Displays,
) -> None:
    view = cell(ip, "SUBSCRIBE TO SELECT id FROM items")
    line(ip, f"KILL LIVE QUERY '{view.id}'")
    view.wait(seconds=WAIT)
    assert not view.running
    assert "KILL LIVE QUERY" in view.status()
    (display_id,) = shown.created()
    assert "KILL LIVE QUERY" in shown.calls[-1][2]


def test_stop_without_an_id_ends_every_view_and_an_unknown_id_is_an_error(
    ip: Any,  # noqa: F811
    items: Engine,
    shown: Displays,
    capsys: pytest.CaptureFixture[str],
) -> None:
    first = cell(ip, "SUBSCRIBE TO SELECT id FROM items")
    second = cell(ip, "SUBSCRIBE TO SELECT qty FROM items")
    with pytest.raises(UsageError, match="no live view"):
        line(ip, "--stop live999-nothere")
    line(ip, "--stop")
    assert not first.running and not second.running
    out = capsys.readouterr().out
    assert first.id in out and second.id in out


@pytest.mark.parametrize(
    "options", ["--updates 0", "--updates x", "--for -1", "--for soon", "--updates"]
)
def test_bad_updates_and_for_values_are_usage_errors(ip: Any, options: str) -> None:  # noqa: F811
    with pytest.raises(UsageError):
        cell(ip, "SUBSCRIBE TO SELECT 1", options)


def test_rows_are_shown_sorted_with_nulls_last_whatever_the_arrival_order(
    ip: Any,  # noqa: F811
    items: Engine,
    shown: Displays,
) -> None:
    when_subscribed(
        items,
        "INSERT INTO items VALUES (9, NULL)",
        "INSERT INTO items VALUES (0, 1)",
        "INSERT INTO items VALUES (4, 1)",
    )
    view = cell(ip, "SUBSCRIBE TO SELECT qty, id FROM items", "--updates 3")
    assert view.table().to_pylist() == [
        {"qty": 1, "id": 0},
        {"qty": 1, "id": 4},
        {"qty": 5, "id": 1},
        {"qty": None, "id": 9},
    ]


def test_min_render_interval_is_a_few_per_second() -> None:
    assert 0.1 <= MIN_RENDER_INTERVAL <= 0.5
