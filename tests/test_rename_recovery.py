"""ALTER TABLE ... RENAME TO survives a crash between its catalog commit and
the move of the table's storage directory: the move is finished on open."""

from __future__ import annotations

import orjson
import pytest

from engine import Engine
from engine.storage import keys


def test_rename_moves_storage_and_leaves_no_pending_note(tmp_path):
    with Engine.open(tmp_path, background_jobs=False) as eng:
        eng.execute("CREATE TABLE t (id INT PRIMARY KEY, v TEXT)")
        eng.execute("INSERT INTO t VALUES (1, 'a'), (2, 'b')")
        eng.flush("t")
        eng.execute("ALTER TABLE t RENAME TO t2")
        assert sorted(p.name for p in (tmp_path / "storage" / "default").iterdir()) == ["t2"]
        assert list(eng.store.scan(keys.MOVE_PREFIX)) == []
        assert eng.execute("SELECT * FROM t2 ORDER BY id").rows() == [(1, "a"), (2, "b")]


@pytest.mark.parametrize("prefix", [keys.MOVE_PREFIX, keys.RENAME_PREFIX], ids=["now", "legacy"])
def test_a_rename_interrupted_before_its_directory_moved_is_finished_on_open(tmp_path, prefix):
    with Engine.open(tmp_path, background_jobs=False) as eng:
        eng.execute("CREATE TABLE t (id INT PRIMARY KEY, v TEXT)")
        eng.execute("INSERT INTO t VALUES (1, 'a')")
        eng.flush("t")
        eng.execute("ALTER TABLE t RENAME TO t2")
        table_id = eng.catalog.get_table("default", "t2").table_id
        # Recreate the state a crash right after the catalog commit leaves behind:
        # the catalog says t2, the files are still under t, the move is noted.
        storage = tmp_path / "storage" / "default"
        (storage / "t2").rename(storage / "t")
        txn = eng.db.begin()
        note = {"from": ["storage", "default", "t"], "to": ["storage", "default", "t2"]}
        txn.batch.put(prefix + keys.encode_int(table_id), orjson.dumps(note))
        txn.commit()
    with Engine.open(tmp_path, background_jobs=False) as eng:
        assert sorted(p.name for p in storage.iterdir()) == ["t2"]
        assert list(eng.store.scan(prefix)) == []
        assert eng.execute("SELECT * FROM t2").rows() == [(1, "a")]
        result = eng.execute("SELECT * FROM t2 WHERE v = 'a'")
        assert result.stats["default.t2"]["segments_scanned"] == 1
