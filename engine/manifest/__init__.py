"""Manifests: which segments hold a scope's cold rows, with their statistics.

``model`` holds the immutable ``Manifest`` record and its strict JSON codec
(``encode`` / ``decode`` for the hot copy); ``files`` holds ``manifest.json``
and orphan handling. ``SegmentEntry`` is defined next to the segment format in
``engine.storage.cold`` and re-exported here.
"""

from __future__ import annotations

from engine.manifest.files import (
    MANIFEST_FILE,
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
    "MANIFEST_FILE",
    "Manifest",
    "SegmentEntry",
    "decode",
    "encode",
    "find_manifest_json",
    "find_orphans",
    "manifest_path",
    "read_manifest_json",
    "remove_orphans",
    "write_manifest_json",
]
