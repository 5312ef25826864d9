"""No acknowledged write is ever lost (invariants 1, 3, 4 and the commit
discipline), checked three ways:

* twenty cycles of ``bench/torture.py``: a child process runs random DML,
  ALTER TABLE, FLUSH TABLE and RENAME TO with background flushes on, is
  SIGKILLed (at a random moment or at a flush step), and the reopened data
  directory must hold exactly the acknowledged writes;
* the harness's own checker, shown to report every kind of damage and to
  accept both outcomes of the one statement in flight (a checker that passes
  everything would make the torture run worthless);
* reproductions of the interleavings the torture run found: the flush's crash
  hook starts a statement on a second thread exactly between two flush steps
  and waits for it (an event with a timeout, never a sleep).

``make torture`` runs the long version (``TORTURE_ARGS="--cycles 300"``).
Set ``TORTURE_SEED`` to run the twenty cycles with another seed.
"""

from __future__ import annotations

import importlib.util
import os
import random
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import engine.jobs.flush as flush_module
from engine import Engine
from engine.jobs.flush import flush_table

ROOT = Path(__file__).resolve().parents[1]


def _load_bench(name: str) -> ModuleType:
    """``bench/<name>.py`` by path, so the harness next to this test runs even
    when PYTHONPATH puts another checkout's engine (and ``bench``) first."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, ROOT / "bench" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


tm = _load_bench("torture_model")
torture = _load_bench("torture")

SEED = int(os.environ.get("TORTURE_SEED", "20261130"))


# ---------------------------------------------------------------- the torture run


def test_twenty_sigkill_cycles_lose_duplicate_and_change_no_acknowledged_write(tmp_path):
    report = torture.run(20, SEED, tmp_path, max_statements=50, echo=False)
    assert not report.failures, report.summary()
    assert sum(c.acked_writes for c in report.cycles) > 100, report.summary()
    assert sum(c.checked for c in report.cycles) > 0
    ended = {c.ended_by for c in report.cycles}
    assert {"kill", "crash_hook"} <= ended, report.summary()


def test_the_crash_hook_kills_the_child_exactly_at_the_chosen_flush_step(tmp_path):
    report = torture.run(
        1, SEED, tmp_path, max_statements=12, echo=False, modes=("step:segment_written",)
    )
    (cycle,) = report.cycles
    assert cycle.ended_by == "crash_hook", report.summary()
    assert not report.failures, report.summary()
    assert "segment_written" in (tmp_path / "transcript.log").read_text()


# ---------------------------------------------------------------- the checker


def model_with_rows(seed: int = 7, statements: int = 150) -> tm.Model:
    """A model after random DML and DDL (no engine involved)."""
    model = tm.initial_model()
    gen = tm.Generator(random.Random(seed), model)
    for _ in range(statements):
        model.apply(gen.next().ops)
    return model


def actual_of(model: tm.Model) -> tm.Actual:
    """What a data directory holding exactly ``model`` reads back as."""
    out = tm.Actual(tables={})
    for t in model.tables.values():
        rows = {s: list(t.expected(s).values()) for s in t.read_scopes()}
        counts = {s: len(r) for s, r in rows.items()}
        out.tables[t.name] = tm.ActualTable(t.name, t.kind, t.schema(), rows, counts)
    return out


def some_row(model: tm.Model) -> tuple[tm.Table, str, int]:
    """A live row in a scope that also has deleted keys."""
    for t in model.tables.values():
        for scope in t.scopes():
            if t.rows.get(scope) and t.deleted.get(scope):
                return t, scope, min(t.rows[scope])
    raise AssertionError("the model has no rows")


def categories(problems: list[tm.Problem]) -> list[str]:
    return sorted(p.category for p in problems)


def test_checker_passes_a_data_directory_that_holds_exactly_the_model():
    model = model_with_rows()
    problems, checked = tm.compare(model, actual_of(model))
    assert problems == []
    live = sum(len(r) for t in model.tables.values() for r in t.rows.values())
    assert live > 10 and checked >= live


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        ("drop_row", ["lost"]),
        ("change_value", ["wrong_value"]),
        ("duplicate_row", ["count", "duplicated"]),
        ("bring_back_deleted", ["count", "resurrected"]),
        ("add_unknown_row", ["count", "unexpected"]),
        ("rename_column", ["schema"]),
        ("drop_table", None),
        ("extra_table", ["extra_table"]),
        ("stray_dir", ["stray_dir"]),
        ("point_lookup_misses", ["point_lookup"]),
    ],
)
def test_checker_reports_each_kind_of_damage(damage, expected):
    model = model_with_rows()
    actual = actual_of(model)
    t, scope, pk = some_row(model)
    got = actual.tables[t.name]
    rows = got.rows[scope]
    row = next(r for r in rows if r[tm.PK] == pk)
    if damage == "drop_row":
        rows.remove(row)
        got.counts[scope] -= 1
    elif damage == "change_value":
        row[t.cols[0].name] = "not what was written"
    elif damage == "duplicate_row":
        rows.append(dict(row))
    elif damage == "bring_back_deleted":
        gone = next(iter(sorted(t.deleted[scope])))
        rows.append({**row, tm.PK: gone})
    elif damage == "add_unknown_row":
        rows.append({**row, tm.PK: 10**9})
    elif damage == "rename_column":
        name, ctype = got.schema[1]
        got.schema[1] = (name + "_renamed", ctype)
    elif damage == "drop_table":
        del actual.tables[t.name]
    elif damage == "extra_table":
        actual.tables["zz"] = tm.ActualTable("zz", "SHARED", [], {}, {})
    elif damage == "stray_dir":
        actual.stray_dirs["old_name"] = "no table owns it"
    elif damage == "point_lookup_misses":
        got.points[(scope, pk)] = []
    problems, _ = tm.compare(model, actual)
    if damage == "drop_table":  # the table, and each of its rows as lost
        lost = sum(len(r) for r in t.rows.values())
        assert categories(problems) == ["lost"] * lost + ["missing_table"], problems
    else:
        assert categories(problems) == expected, problems


def test_checker_accepts_either_outcome_of_the_statement_in_flight_and_nothing_else():
    model = model_with_rows()
    t, scope, _ = some_row(model)
    gen = tm.Generator(random.Random(1), model)
    in_flight = gen._insert(t, scope)
    applied = model.copy()
    applied.apply(in_flight.ops)
    candidates = [model, applied]

    best, problems, _ = tm.judge(candidates, actual_of(model))
    assert (best, problems) == (0, [])
    best, problems, _ = tm.judge(candidates, actual_of(applied))
    assert (best, problems) == (1, [])

    half = actual_of(applied)  # the in-flight row, but with another value
    pk = in_flight.ops[0][3]
    for r in half.tables[t.name].rows[scope]:
        if r[tm.PK] == pk:
            r[t.cols[-1].name] = "torn"
    _, problems, _ = tm.judge(candidates, half)
    assert problems != []


def test_checker_reads_a_real_data_directory_and_sees_a_row_removed_behind_its_back(tmp_path):
    """The generator's statements all succeed against the engine, the read-back
    matches the model, and a row deleted outside the model is reported lost."""
    rng = random.Random(3)
    model = torture.setup(tmp_path, rng)
    gen = tm.Generator(rng, model)
    with Engine.open(tmp_path, background_jobs=False) as eng:
        for i in range(80):
            stmt = gen.next()
            eng.execute(stmt.sql, stmt.params or None, user=stmt.user)
            model.apply(stmt.ops)
            if i % 20 == 19:
                for t in model.tables.values():
                    eng.execute(f"FLUSH TABLE {t.qualified} WAIT")
    problems, _ = tm.compare(model, torture.read_actual(tmp_path, [model], rng))
    assert problems == []

    t, scope, pk = some_row(model)
    with Engine.open(tmp_path, background_jobs=False) as eng:
        eng.execute(f"DELETE FROM {t.qualified} WHERE id = ?", [pk], user=scope)
    problems, _ = tm.compare(model, torture.read_actual(tmp_path, [model], rng))
    assert categories(problems) == ["lost"]


# ---------------------------------------------------------------- reproductions


class Beside:
    """``sql`` run on a second thread while the flush thread waits for it (up to
    ``timeout`` s). An engine that serialises the statement behind the flush
    makes it wait: the flush then goes on and the statement runs after it, so
    a correct engine passes whatever the timing; only an engine that lets the
    statement in mid-flush shows the bug."""

    def __init__(self, eng: Engine, sql: str, timeout: float = 1.0) -> None:
        self.errors: list[BaseException] = []
        self.thread = threading.Thread(target=self._run, args=(eng, sql))
        self.thread.start()
        self.thread.join(timeout)

    def _run(self, eng: Engine, sql: str) -> None:
        try:
            eng.execute(sql)
        except BaseException as exc:  # noqa: BLE001 - reported by finish()
            self.errors.append(exc)

    def finish(self) -> None:
        self.thread.join(60)
        assert not self.thread.is_alive() and not self.errors, self.errors


def core(eng: Engine) -> Any:
    """What flush jobs receive: the engine's low-level state object if it has one."""
    return getattr(eng, "db", eng)


def run_at_step(eng: Engine, table: str, step: str, sql: str) -> None:
    """Flush ``table``; when it reaches ``step``, run ``sql`` beside it."""
    beside: list[Beside] = []

    def hook(reached: str) -> None:
        if reached == step and not beside:
            beside.append(Beside(eng, sql))

    flush_table(core(eng), eng.catalog.get_table("default", table), crash=hook)
    assert beside, f"the flush never reached {step}"
    beside[0].finish()


def seed_rows(eng: Engine) -> dict[int, Any]:
    eng.execute("CREATE TABLE t (id BIGINT PRIMARY KEY, v INT)")
    rows = {i: (i if i % 3 else None) for i in range(10)}
    eng.execute(
        "INSERT INTO t (id, v) VALUES " + ", ".join(["(?, ?)"] * len(rows)),
        [x for kv in rows.items() for x in kv],
    )
    return rows


def read(eng: Engine, table: str = "t") -> dict[int, Any]:
    return dict(eng.execute(f"SELECT id, v FROM {table}").rows())


@pytest.mark.parametrize("step", ["segment_written", "manifest_json_written"])
@pytest.mark.parametrize(
    ("new_type", "convert"), [("BIGINT", lambda v: v), ("TEXT", lambda v: str(v))]
)
def test_modify_column_while_a_flush_publishes_loses_no_row(
    tmp_path, step, new_type, convert: Callable[[Any], Any]
):
    # MODIFY rewrites the hot rows with their old _seq; the flush then leaves the
    # rewritten versions hot (they are not the objects it snapshotted), and the
    # next flush marks their own _seq superseded, so they vanish.
    with Engine.open(tmp_path, background_jobs=False) as eng:
        rows = seed_rows(eng)
        run_at_step(eng, "t", step, f"ALTER TABLE t MODIFY COLUMN v {new_type}")
        want = {k: (None if v is None else convert(v)) for k, v in rows.items()}
        assert read(eng) == want
        eng.flush("t")
        assert read(eng) == want
    with Engine.open(tmp_path, background_jobs=False) as eng:
        assert read(eng) == want


def test_rename_to_while_a_flush_writes_its_segment_keeps_the_table_readable(tmp_path, monkeypatch):
    # The flush resolved the scope directory before the rename moved it, so the
    # segment and manifest.json land in storage/default/t while the hot manifest
    # names the segment under t2: every read then fails with "segment missing".
    with Engine.open(tmp_path, background_jobs=False) as eng:
        rows = seed_rows(eng)
        original = flush_module.write_segment

        beside: list[Beside] = []

        def write_segment_after_rename(*args: Any, **kwargs: Any) -> Any:
            monkeypatch.setattr(flush_module, "write_segment", original)
            beside.append(Beside(eng, "ALTER TABLE t RENAME TO t2"))
            return original(*args, **kwargs)

        monkeypatch.setattr(flush_module, "write_segment", write_segment_after_rename)
        flush_table(core(eng), eng.catalog.get_table("default", "t"))
        beside[0].finish()
        assert read(eng, "t2") == rows
    with Engine.open(tmp_path, background_jobs=False) as eng:
        assert read(eng, "t2") == rows
    assert not (tmp_path / "storage" / "default" / "t").exists()


def test_rename_to_between_segment_and_manifest_leaves_nothing_under_the_old_name(tmp_path):
    # Here the segment moves with the directory, but manifest.json is written to
    # the old path: storage/default/t reappears, and t2's cold manifest copy
    # does not name the segment its hot copy names.
    with Engine.open(tmp_path, background_jobs=False) as eng:
        rows = seed_rows(eng)
        run_at_step(eng, "t", "segment_written", "ALTER TABLE t RENAME TO t2")
        assert read(eng, "t2") == rows
        named = [r["path"] for r in eng.execute("SHOW MANIFEST t2").to_pylist()]
    assert not (tmp_path / "storage" / "default" / "t").exists()
    cold = tmp_path / "storage" / "default" / "t2" / "manifest.json"
    assert cold.exists() and all(name in cold.read_text() for name in named)
