"""A read that overlaps a flush sees every row exactly once: the hot rows and
the manifest are snapshotted together, and a flush publishes its segment and
forgets the flushed hot rows in one step under the same lock."""

from __future__ import annotations

import threading

from engine import Engine
from engine.jobs.flush import flush_table
from engine.providers.base import TableProvider


def test_a_flush_publishing_mid_read_neither_doubles_nor_drops_rows(tmp_path, monkeypatch):
    with Engine.open(tmp_path, background_jobs=False, durability="async") as eng:
        eng.execute("CREATE TABLE t (id BIGINT PRIMARY KEY, v BIGINT)")
        eng.execute("INSERT INTO t SELECT value, value FROM range(0, 3000)")
        table = eng.catalog.get_table("default", "t")
        reader_scanned = threading.Event()
        flush_committed = threading.Event()
        original_scan = TableProvider.scan

        def scan_then_let_the_flush_run(self, user, options):
            hot = original_scan(self, user, options)
            if threading.current_thread().name == "reader":
                reader_scanned.set()
                # Give the flush every chance to publish between this scan and the
                # manifest read; with a consistent snapshot it cannot, and this times out.
                flush_committed.wait(timeout=1.0)
            return hot

        monkeypatch.setattr(TableProvider, "scan", scan_then_let_the_flush_run)
        counts: list[int] = []
        reader = threading.Thread(
            # a filter keeps the count on the scan path (a bare count(*) is answered
            # from the manifest and hot tier without calling scan)
            target=lambda: counts.append(
                eng.execute("SELECT count(*) FROM t WHERE v >= 0").scalar()
            ),
            name="reader",
        )
        reader.start()
        assert reader_scanned.wait(timeout=10)

        def on_step(step: str) -> None:
            if step == "hot_manifest_committed":
                flush_committed.set()

        flusher = threading.Thread(target=lambda: flush_table(eng.db, table, crash=on_step))
        flusher.start()
        reader.join(timeout=30)
        flusher.join(timeout=30)
        assert counts == [3000]
        assert eng.execute("SELECT count(*) FROM t").scalar() == 3000
        assert eng.execute("SELECT count(*) FROM t").stats["default.t"]["segments_total"] == 1
