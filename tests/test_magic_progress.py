"""A statement running longer than ``Kalam.progress_after`` seconds shows its
elapsed time and rows so far in its output area, updated in place, and the
line is blanked when it ends so the result takes its place (issue 13)."""

from __future__ import annotations

import threading

import pytest
from test_magic_support import ip, line  # noqa: F401

from kalam_magic import progress


class Recorder:
    def __init__(self, wake_after: int = 2) -> None:
        self.calls: list[tuple[str, bool]] = []
        self.enough = threading.Event()
        self.wake_after = wake_after

    def __call__(self, data: dict[str, str], update: bool) -> None:
        self.calls.append((data["text/plain"], update))
        if len(self.calls) >= self.wake_after:
            self.enough.set()


def test_a_long_statement_shows_progress_in_place_then_blanks_it():
    rec = Recorder(wake_after=3)
    rows = iter(range(0, 10_000, 1000))
    with progress.QueryProgress(lambda: next(rows), after=0.01, every=0.01, publish=rec):
        assert rec.enough.wait(10), "no progress was shown"
    texts = [t for t, _ in rec.calls]
    assert texts[0].startswith("running · ") and texts[0].endswith(" 0 rows so far")
    assert texts[1].endswith("1,000 rows so far")
    # The first call creates the display; every later one updates it in place.
    assert [u for _, u in rec.calls] == [False] + [True] * (len(rec.calls) - 1)
    assert rec.calls[-1] == ("", True)


def test_a_quick_statement_shows_nothing():
    rec = Recorder()
    with progress.QueryProgress(lambda: 0, after=5, publish=rec) as watch:
        pass
    assert rec.calls == [] and not watch.shown


def test_progress_text_reads_like_a_sentence():
    assert progress.progress_text(3.21, 1204000) == "running · 3.2 s · 1,204,000 rows so far"


def test_the_magic_reports_rows_collected_by_a_running_query(ip, monkeypatch):  # noqa: F811
    rec = Recorder(wake_after=1)
    monkeypatch.setattr(progress, "_ipython_publisher", lambda: rec)
    ip.run_line_magic("config", "Kalam.progress_after = 0.05")
    # Several hundred million rows take well over a second on any machine here.
    res = line(ip, "SELECT value FROM range(0, 400000000) WHERE value % 1000 = 0")
    assert len(res) == 400_000
    assert rec.calls and rec.calls[0][0].startswith("running · ")
    assert rec.calls[-1] == ("", True)


def test_progress_after_zero_turns_it_off(ip, monkeypatch):  # noqa: F811
    rec = Recorder()
    monkeypatch.setattr(progress, "_ipython_publisher", lambda: rec)
    ip.run_line_magic("config", "Kalam.progress_after = 0")
    line(ip, "SELECT value FROM range(0, 100000000) WHERE value % 1000 = 0")
    assert rec.calls == []


def test_a_negative_delay_is_refused():
    from kalam_magic.config import Kalam

    settings = Kalam()
    with pytest.raises(ValueError, match="progress_after"):
        settings.progress_after = -1
    assert settings.progress_after == 1.0
