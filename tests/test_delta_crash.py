"""A crash at any step of a flush or compaction of a Delta-publishing table:
after recovery (opening the data directory) the Delta log and the manifest
agree about which rows are live, and every Delta reader sees exactly them."""

from __future__ import annotations

import copy
from pathlib import Path

import deltalake
import pytest
from crash_runs import child_events, model_of

from engine import Engine

CHILD = Path(__file__).with_name("delta_child.py")
FLUSH_STEPS = [
    "segment_written",
    "manifest_json_written",
    "hot_manifest_committed",
    "delta_segments_written",
    "delta_manifest_json_written",
    "delta_hot_manifest_committed",
    "delta_committed",
]
COMPACT_STEPS = [
    "segments_written",
    "manifest_json_written",
    "hot_manifest_committed",
    "delta_committed",
]


def published_model(events: list[dict], step: str, op: str) -> dict[str, dict[int, int]]:
    """What the manifests hold after the crash: every write up to the last
    completed flush, plus the crashed flush's in the scopes whose hot manifest
    it committed. A flush writes its scopes in order (alice, then bob) and
    publishes their Delta logs after the last, so a crash at a flush step
    finds only the first scope flushed."""
    last_flush = max(i for i, e in enumerate(events) if e["op"] == "flushed")
    before, after = model_of(events[: last_flush + 1]), model_of(events)
    if op == "compact" or step.startswith("delta_"):
        return after
    done = FLUSH_STEPS.index(step) >= FLUSH_STEPS.index("hot_manifest_committed")
    first = min(after)
    return {u: after[u] if done and u == first else before[u] for u in after}


def delta_rows(directory: Path) -> list[tuple[int, int]]:
    data = deltalake.DeltaTable(str(directory)).to_pyarrow_table()
    assert data.column_names == ["id", "v"]
    return sorted(zip(data["id"].to_pylist(), data["v"].to_pylist(), strict=True))


def check_delta(eng: Engine, data_dir: Path, model: dict[str, dict[int, int]], kind: str) -> None:
    table_dir = data_dir / "storage/default/t"
    for user, rows in model.items():
        directory = table_dir / user if kind == "USER" else table_dir
        assert delta_rows(directory) == sorted(rows.items()), (user, "delta")
        [row] = eng.execute("SHOW DELTA t", user=user).table.to_pylist()
        assert row["in_sync"] and row["manifest_version"] == row["current_manifest_version"]
        log = deltalake.DeltaTable(str(directory))
        for uri in log.file_uris():  # every file the log names is still there
            assert Path(uri.removeprefix("file://")).is_file(), uri


@pytest.mark.parametrize("kind", ["SHARED", "USER"])
@pytest.mark.parametrize(
    ("op", "step"), [("flush", s) for s in FLUSH_STEPS] + [("compact", s) for s in COMPACT_STEPS]
)
def test_crash_at_each_step_leaves_delta_and_manifest_agreeing_after_recovery(
    tmp_path, op, step, kind
):
    data_dir = (tmp_path / "data").resolve()
    events = child_events(CHILD, data_dir, step, op, kind)
    model = model_of(events)
    cold = published_model(events, step, op)
    with Engine.open(data_dir, background_jobs=False) as eng:
        for user, rows in model.items():  # nothing lost, nothing duplicated
            assert eng.execute("SELECT id, v FROM t ORDER BY id", user=user).rows() == sorted(
                rows.items()
            )
        check_delta(eng, data_dir, cold, kind)  # recovery derived the missing commit
        eng.flush("t")
        check_delta(eng, data_dir, model, kind)
        for user in model:
            eng.execute("INSERT INTO t (id, v) VALUES (99, 99)", user=user)
            eng.execute("DELETE FROM t WHERE id = 0", user=user)
        eng.flush("t")
        after = copy.deepcopy(model)
        for rows in after.values():
            rows[99] = 99
            rows.pop(0, None)
        check_delta(eng, data_dir, after, kind)
    with Engine.open(data_dir, background_jobs=False) as eng:
        check_delta(eng, data_dir, after, kind)
