"""Opening a data directory's hot store, and rebuilding it when it is lost.

``open_hot_store`` is the only way the engine opens ``<data_dir>/hot``. It
refuses, loudly and naming what is missing or damaged, to start from a hot
store that cannot be trusted:

* ``hot/`` missing or emptied while ``storage/`` holds manifests or segments
  (starting empty would silently hide every flushed row and the catalog);
* ``hot/`` without its ``CURRENT`` file but with other RocksDB files;
* anything ``HotStore`` finds damaged (block checksums, the MANIFEST, the
  write-ahead log, a missing log after an unclean shutdown).

With ``repair=True`` it recovers instead, and says what it did in a
``RecoveryReport``:

1. a damaged or missing write-ahead log: reopen keeping the log up to the
   damage (writes after it are lost), if the rest of the store reads cleanly;
2. otherwise (or when ``hot/`` is gone): move the damaged store aside as
   ``hot.damaged-<n>`` and rebuild the catalog, the manifests' hot copies and
   the ``_seq`` / table-id counters from the ``manifest.json`` files, each of
   which carries its table's definition. Rows that were never flushed, user
   roles and namespace options are lost; the report says so.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from engine.catalog.model import Namespace, TableDef
from engine.errors import KalamError, StorageCorruptionError
from engine.manifest import LOG_FILE, MANIFEST_FILE, Manifest, read_manifest_json
from engine.manifest import hot as hot_copy
from engine.names import check_name, check_user, safe_path
from engine.storage import keys
from engine.storage.cold import parse_segment_file_name
from engine.storage.hot import Batch, HotStore, wal_files

_ROCKSDB_FILES = ("MANIFEST-", "OPTIONS-")


@dataclass
class RecoveryReport:
    """What ``open_hot_store(..., repair=True)`` had to do (empty: nothing)."""

    actions: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.actions)

    def __str__(self) -> str:
        return "\n".join(self.actions) if self.actions else "Nothing to repair"


def open_hot_store(
    data_dir: Path, *, sync: bool, repair: bool = False
) -> tuple[HotStore, RecoveryReport]:
    """The data directory's hot store, checked (and with ``repair``, recovered)."""
    path = safe_path(data_dir, "hot")
    report = RecoveryReport()
    state = _hot_state(path)
    if state == "absent":
        cold = cold_files(data_dir)  # only here: a healthy open never walks storage/
        if not cold:
            return HotStore(path, sync=sync), report  # a new data directory
        if not repair:
            raise StorageCorruptionError(
                f"The hot store {path} is missing or empty, but {data_dir / 'storage'} holds "
                f"{len(cold)} flushed file(s) (e.g. {cold[0]}): the catalog and every row not "
                "yet flushed are gone. Restore hot/ from a backup, or open with repair=True "
                "(`kalam repair`) to rebuild the catalog from the manifest.json files",
                file=str(path),
            )
        store = HotStore(path, sync=sync)
        rebuild_catalog(store, data_dir, report)
        return store, report
    try:
        if state == "incomplete":
            raise StorageCorruptionError(
                f"The hot store {path} is damaged: {path / 'CURRENT'} is missing",
                file=str(path / "CURRENT"),
            )
        store = HotStore(path, sync=sync, create=False)
        if repair:
            _read_every_block(store)  # damage an open does not read is damage too
        return store, report
    except StorageCorruptionError as exc:
        if not repair:
            raise
        damage = exc
    if state == "present":
        salvaged = _open_salvaging_wal(path, sync)
        if salvaged is not None:
            report.actions.append(
                f"Opened {path} keeping its write-ahead log only up to the damage "
                f"({damage.message}); statements logged after it are lost"
            )
            return salvaged, report
    aside = _move_aside(path)
    report.actions.append(f"Moved the damaged hot store to {aside} ({damage.message})")
    store = HotStore(path, sync=sync)
    rebuild_catalog(store, data_dir, report)
    return store, report


def cold_files(data_dir: Path) -> list[Path]:
    """Every manifest file (checkpoint and log) and segment file under ``storage/``, sorted."""
    root = data_dir / "storage"
    if not root.is_dir():
        return []
    return sorted(
        p
        for p in root.rglob("*")
        if p.is_file()
        and (p.name in (MANIFEST_FILE, LOG_FILE) or parse_segment_file_name(p.name) is not None)
    )


def _hot_state(path: Path) -> str:
    """``present`` (has CURRENT), ``incomplete`` (RocksDB files but no CURRENT) or ``absent``."""
    if (path / "CURRENT").exists():
        return "present"
    if not path.is_dir():
        return "absent"
    for p in path.iterdir():
        if p.name.startswith(_ROCKSDB_FILES) or p.suffix == ".sst" or p.name in wal_files(path):
            return "incomplete"
    return "absent"


def _open_salvaging_wal(path: Path, sync: bool) -> HotStore | None:
    """The store opened with a lenient log replay, if everything else reads cleanly."""
    try:
        store = HotStore(path, sync=sync, create=False, salvage_wal=True)
    except KalamError:
        return None
    try:
        for _ in store.scan(b""):  # every block once: damage elsewhere is not salvageable here
            pass
    except StorageCorruptionError:
        store.close()
        return None
    return store


def _read_every_block(store: HotStore) -> None:
    """Read the whole store once; on damage, close it and raise the damage.
    An open reads only some blocks (where a flipped bit lands decides whether
    it notices), so a repair checks them all before trusting the store."""
    failed: StorageCorruptionError | None = None
    try:
        for _ in store.scan(b""):
            pass
    except StorageCorruptionError as exc:
        # Without its traceback, so the scan's iterator (which keeps the
        # database, and its lock, alive) is freed before the store closes.
        failed = exc.with_traceback(None)
        failed.__context__ = None  # the rocksdict error's traceback holds the scan too
    if failed is not None:
        store.close()
        raise failed


def _move_aside(path: Path) -> Path:
    n = 1
    while path.with_name(f"{path.name}.damaged-{n}").exists():
        n += 1
    aside = path.with_name(f"{path.name}.damaged-{n}")
    path.rename(aside)
    return aside


# --------------------------------------------------------------------------- rebuild


@dataclass
class _Found:
    """A table as the manifest.json files describe it."""

    table: TableDef
    source: Path
    manifests: dict[str, Manifest] = field(default_factory=dict)


def rebuild_catalog(store: HotStore, data_dir: Path, report: RecoveryReport) -> None:
    """Write the catalog, manifests' hot copies and counters from ``manifest.json`` files."""
    found: dict[int, _Found] = {}
    skipped: list[str] = []
    root = data_dir / "storage"
    for path in sorted(root.rglob(MANIFEST_FILE)) if root.is_dir() else []:
        problem = _adopt(path, root, found)
        if problem:
            skipped.append(f"{path} ({problem})")
    tables = _one_per_name(found, skipped)
    batch = Batch()
    now_us = time.time_ns() // 1000
    for ns in sorted({f.table.namespace for f in tables} | {"default"}):
        batch.put(keys.namespace_key(ns), orjson.dumps(Namespace(ns, now_us).to_dict()))
    high_seq = 0
    for f in tables:
        batch.put(keys.table_key(f.table.table_id), orjson.dumps(f.table.to_dict()))
        for scope, manifest in f.manifests.items():
            hot_copy.stage(batch, store, f.table.table_id, scope, manifest, None)
            high_seq = max(high_seq, manifest.flushed_seq)
    batch.put(keys.SEQ_KEY, keys.encode_int(high_seq))
    batch.put(keys.TABLE_ID_KEY, keys.encode_int(max(found, default=0) + 1))
    store.commit(batch, sync=True)
    names = ", ".join(f.table.qualified_name for f in tables) or "none"
    report.actions.append(
        f"Rebuilt the catalog from manifest.json files: {len(tables)} table(s) ({names}). "
        "Every change since each table's last flush is lost (new rows are missing, rows "
        "updated or deleted since then show their flushed version), and so are tables "
        "never flushed, user roles and namespace options"
    )
    if skipped:
        report.actions.append("Not rebuilt: " + "; ".join(skipped))


def _adopt(path: Path, root: Path, found: dict[int, _Found]) -> str | None:
    """Record one manifest.json in ``found``; returns why it was skipped, if it was."""
    parts = path.relative_to(root).parts[:-1]  # (ns, table) or (ns, table, user)
    try:
        ns, name = check_name(parts[0], "namespace"), check_name(parts[1], "table")
        scope = check_user(parts[2]) if len(parts) == 3 else ""
        if len(parts) not in (2, 3):
            return "not in a table or user directory"
        manifest = read_manifest_json(path)
    except (KalamError, IndexError) as exc:
        return str(exc)
    if manifest.table is None:
        return "it does not record its table definition (written before that was stored)"
    if (manifest.scope or "") != scope:
        return f"it is the manifest of scope {manifest.scope!r}, not of this directory"
    try:
        # The directory is the truth for the name: a RENAME TABLE moves it.
        table = TableDef.from_dict(
            {**manifest.table, "namespace": ns, "name": name}, source=str(path)
        )
    except KalamError as exc:
        return str(exc)
    if (table.table_type == "USER") != bool(scope):
        return f"a {table.table_type} table's manifest in the wrong directory"
    entry = found.get(table.table_id)
    if entry is None:
        found[table.table_id] = entry = _Found(table, path)
    elif (table.schema_version, table.updated_at) > (
        entry.table.schema_version,
        entry.table.updated_at,
    ):
        entry.table, entry.source = table, path  # the newest definition wins
    entry.manifests[scope] = manifest
    return None


def _one_per_name(found: dict[int, _Found], skipped: list[str]) -> list[_Found]:
    """One table per name: the newest table id wins; older ones are leftovers
    of a dropped table whose directory removal did not finish."""
    by_name: dict[tuple[str, str], _Found] = {}
    for tid in sorted(found):
        f = found[tid]
        key = (f.table.namespace, f.table.name)
        old = by_name.get(key)
        if old is not None:
            skipped.append(f"{old.source} (table id {old.table.table_id} was replaced by {tid})")
        by_name[key] = f
    return sorted(by_name.values(), key=lambda f: f.table.table_id)
