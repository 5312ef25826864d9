"""Acceptance sweep: damage to any file of a data directory is loud, never a
silent wrong answer (invariant 5).

One small data directory (a SHARED and a USER table, two flushes, an UPDATE
and a DELETE after the flush, rows still hot in two SST files, the
write-ahead log still holding the last statements as after a crash) is copied once per case; each
case damages one file (bit flips at seeded positions, truncation, deletion)
or the whole ``hot/`` directory, reopens and runs a fixed set of queries.
Every case must give exactly the answers of the undamaged copy, or raise a
``KalamError`` whose message names the damaged file (for RocksDB's files:
the ``hot/`` directory). Nothing else: no raw exception, no wrong rows.

``KALAM_DAMAGE_SWEEP=full`` flips more bits per file.
"""

from __future__ import annotations

import os
import random
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from engine import Engine, KalamError

QUERIES: tuple[tuple[str, str], ...] = (
    ("SELECT id, v, note FROM s ORDER BY id", "root"),
    ("SELECT COUNT(*), SUM(v) FROM s", "root"),
    ("SELECT id, v FROM s WHERE id = 5", "root"),
    ("SELECT id, v FROM u ORDER BY id", "alice"),
    ("SELECT id, v FROM u ORDER BY id", "bob"),
)
FLIPS = 40 if os.environ.get("KALAM_DAMAGE_SWEEP") == "full" else 6
SEED = 20260101


def _build(data_dir: Path, image: Path) -> None:
    """The directory under test; ``image`` is copied while the engine is open,
    so its write-ahead log still holds the last statements (as after a crash)."""
    eng = Engine.open(data_dir, background_jobs=False)
    eng.execute("CREATE SHARED TABLE s (id BIGINT PRIMARY KEY, v INT, note TEXT)")
    eng.execute("CREATE USER TABLE u (id BIGINT PRIMARY KEY, v INT)")
    eng.execute("INSERT INTO s VALUES " + ", ".join(f"({i}, {i}, 'n{i}')" for i in range(20)))
    for user in ("alice", "bob"):
        eng.execute(
            "INSERT INTO u VALUES " + ", ".join(f"({i}, {i})" for i in range(10)), user=user
        )
    eng.flush("s")
    eng.flush("u")
    eng.execute("INSERT INTO s VALUES " + ", ".join(f"({i}, {i}, 'n{i}')" for i in range(20, 40)))
    eng.execute("INSERT INTO u VALUES (100, 100)", user="alice")
    eng.flush("s")
    eng.flush("u")
    eng.close()  # the rows so far end up in an SST file
    eng = Engine.open(data_dir, background_jobs=False)
    eng.execute("UPDATE s SET v = -1 WHERE id = 5")
    eng.close()  # a second, small SST file
    eng = Engine.open(data_dir, background_jobs=False)
    eng.execute("DELETE FROM s WHERE id = 25")
    eng.execute("DELETE FROM u WHERE id = 3", user="alice")
    eng.execute("INSERT INTO s VALUES (1000, 7, 'hot')")
    eng.execute("INSERT INTO u VALUES (200, 2)", user="bob")
    shutil.copytree(data_dir, image)
    eng.close()


def _answers(data_dir: Path) -> list[list[tuple[Any, ...]]]:
    with Engine.open(data_dir, background_jobs=False) as eng:
        return [eng.execute(sql, user=user).rows() for sql, user in QUERIES]


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[list[tuple[Any, ...]]]]:
    root = tmp_path_factory.mktemp("sweep")
    _build(root / "live", root / "image")
    reference = root / "reference"
    shutil.copytree(root / "image", reference)
    return root / "image", _answers(reference)


def _targets(image: Path) -> list[str]:
    """Every file kind under test, relative to the data directory."""
    hot = image / "hot"
    kinds = ("*.sst", "MANIFEST-*", "CURRENT", "OPTIONS-*", "*.log")
    out = [str(p.relative_to(image)) for k in kinds for p in sorted(hot.glob(k))]
    out += [
        str(p.relative_to(image)) for p in sorted((image / "storage").rglob("*")) if p.is_file()
    ]
    return out


def _flip(seed: int) -> Callable[[Path], None]:
    def flip(path: Path) -> None:
        data = bytearray(path.read_bytes())
        rng = random.Random(seed)
        pos = rng.randrange(len(data))
        data[pos] ^= 1 << rng.randrange(8)
        path.write_bytes(bytes(data))

    return flip


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _delete(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink()


def _run_case(
    image: Path, expected: list[Any], tmp: Path, target: str, how: Callable[[Path], None]
) -> str:
    case = tmp / "case"
    if case.exists():
        shutil.rmtree(case)
    shutil.copytree(image, case)
    damaged = case / target
    how(damaged)
    try:
        got = _answers(case)
    except KalamError as exc:
        named = str(damaged) if not target.startswith("hot") else str(case / "hot")
        assert named in str(exc), f"{target}: error does not name {named}: {exc}"
        return "loud"
    assert got == expected, f"{target}: silent wrong answer"
    return "correct"


def test_the_sweep_covers_every_file_kind(image):
    path, _ = image
    names = _targets(path)
    kinds = (".sst", "MANIFEST-", "CURRENT", "OPTIONS-", ".log", ".parquet")
    for kind in kinds:
        assert any(kind in n for n in names), (kind, names)
    for manifest_file in ("manifest.json", "manifest.jsonl"):  # checkpoint and change log
        assert any(n.endswith("/" + manifest_file) for n in names), (manifest_file, names)
    logs = [path / n for n in names if n.endswith("/manifest.jsonl")]
    assert any(len(p.read_bytes().splitlines()) > 1 for p in logs)  # with committed changes
    assert (path / "hot" / "CURRENT").exists()
    assert len(list((path / "hot").glob("*.sst"))) >= 2
    log = next(p for p in (path / "hot").glob("*.log"))
    assert log.stat().st_size > 0  # the log holds statements, as after a crash


@pytest.mark.parametrize("damage", ["flip", "truncate", "delete"])
def test_damaged_file_gives_the_right_answer_or_a_loud_error_naming_it(image, tmp_path, damage):
    path, expected = image
    outcomes: dict[str, list[str]] = {}
    for n, target in enumerate(_targets(path)):
        if damage == "flip":
            hows = [_flip(SEED + 100 * n + k) for k in range(FLIPS)]
        else:
            hows = [_truncate if damage == "truncate" else _delete]
        for how in hows:
            outcomes.setdefault(target, []).append(_run_case(path, expected, tmp_path, target, how))
    # Damage to data that answers the queries must be noticed.
    for target, results in outcomes.items():
        if target.endswith(".parquet") or target.endswith(".sst"):
            assert "correct" not in results or damage == "flip", (target, results)


def test_deleted_hot_directory_is_an_error_naming_it(image, tmp_path):
    path, expected = image
    assert _run_case(path, expected, tmp_path, "hot", _delete) == "loud"


def test_emptied_hot_directory_is_an_error_naming_it(image, tmp_path):
    path, expected = image

    def empty(hot: Path) -> None:
        for p in hot.iterdir():
            p.unlink()

    assert _run_case(path, expected, tmp_path, "hot", empty) == "loud"


def _lost(message: str) -> int:
    return sum(
        int(part.split()[0]) for part in message.split("; ") if "could not be recovered" in part
    )


@pytest.mark.parametrize("damage", ["flip", "truncate", "delete"])
def test_repair_after_cold_damage_never_shows_a_wrong_row(image, tmp_path, damage):
    """After REPAIR TABLE every row shown is a correct one (no deleted or stale
    version comes back), and no more rows are missing than it reported lost."""
    path, expected = image
    for n, target in enumerate(t for t in _targets(path) if t.startswith("storage")):
        how = {"flip": _flip(SEED + n), "truncate": _truncate, "delete": _delete}[damage]
        if _run_case(path, expected, tmp_path, target, how) == "correct":
            continue
        case = tmp_path / "case"
        table = target.split("/")[2]
        with Engine.open(case, background_jobs=False) as eng:
            message = eng.execute(f"REPAIR TABLE {table}").message
            for (sql, user), want in zip(QUERIES, expected, strict=True):
                if f"FROM {table} ORDER BY" not in sql:
                    continue
                got = eng.execute(sql, user=user).rows()
                assert set(got) <= set(want), (target, message, set(got) - set(want))
                assert len(want) - len(got) <= _lost(message), (target, message)
