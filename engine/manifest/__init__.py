"""Manifests: which segments hold a scope's cold rows, with their statistics.

``model`` holds the immutable ``Manifest`` record and its strict JSON codec
(``encode`` / ``decode``) and ``Change`` (one version's difference, the unit
of the append-only copies); ``hot`` holds the hot copy (a header key plus one
RocksDB key per segment); ``files`` holds the cold copy (``manifest.json``
checkpoint plus the ``manifest.jsonl`` change log) and orphan handling. ``SegmentEntry`` is defined next to the segment format in
``engine.storage.cold`` and re-exported here.
"""

from __future__ import annotations

from engine.manifest.files import (
    LOG_FILE,
    MANIFEST_FILE,
    commit_manifest_json,
    find_manifest_json,
    find_orphans,
    manifest_path,
    read_manifest_json,
    remove_orphans,
    write_manifest_json,
)
from engine.manifest.model import FORMAT_VERSION, Manifest, decode, encode
from engine.storage.cold import SegmentEntry

__all__ = [
    "FORMAT_VERSION",
    "LOG_FILE",
    "MANIFEST_FILE",
    "Manifest",
    "SegmentEntry",
    "commit_manifest_json",
    "decode",
    "encode",
    "find_manifest_json",
    "find_orphans",
    "manifest_path",
    "read_manifest_json",
    "remove_orphans",
    "write_manifest_json",
]
