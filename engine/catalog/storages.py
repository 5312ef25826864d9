"""The storage registry: named places a table's cold tier can live (KalamDB's
``CREATE STORAGE``). ``local`` (``<data_dir>/storage``) always exists and is
not stored; every other storage is an S3-compatible bucket, persisted in the
hot store as ``Sstorage:<name>`` (JSON) and mirrored in memory.

A record holds where the bucket is (endpoint, bucket, prefix, region) and at
most the *name* of an AWS profile: never a key or secret. Credentials come
from the environment when the storage's filesystem is first used
(``engine.storage.fs.s3_filesystem``).

Layout in a bucket: ``<bucket>/<prefix>/<namespace>/<table>/[<user_id>/]``,
the same shape as ``<data_dir>/storage/<namespace>/<table>/[<user_id>/]``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import orjson
import pyarrow.fs as pafs

from engine.errors import StorageNotFoundError
from engine.names import check_name
from engine.storage.cold import RecordValidator
from engine.storage.fs import ObjectPath, reader_options, s3_filesystem
from engine.storage.hot import HotStore
from engine.txn import Txn

LOCAL = "local"
STORAGE_PREFIX = b"Sstorage:"
STORAGE_TYPES = ("s3",)
# WITH (...) keys of CREATE STORAGE: name -> help. Anything that looks like a
# credential is refused by name (see ``engine.sql.storage_defs``).
STORAGE_OPTIONS: dict[str, str] = {
    "bucket": "bucket name (required)",
    "prefix": "key prefix inside the bucket under which tables live (default: none)",
    "endpoint": "http(s) URL of an S3-compatible server (default: AWS)",
    "region": "bucket region (default: us-east-1)",
    "profile": "name of an AWS profile in ~/.aws/credentials (default: the environment)",
}


def storage_key(name: str) -> bytes:
    return STORAGE_PREFIX + name.encode()


@dataclass(frozen=True)
class StorageDef:
    """One registered storage (an S3-compatible bucket)."""

    name: str
    storage_type: str
    bucket: str
    prefix: str = ""
    endpoint: str | None = None
    region: str | None = None
    profile: str | None = None
    created_at: int = 0  # microseconds since the epoch

    def __repr__(self) -> str:
        return f"StorageDef({self.name!r}, {self.base_uri!r})"

    @property
    def base_uri(self) -> str:
        return "s3://" + "/".join(p for p in (self.bucket, self.prefix) if p)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "storage_type": self.storage_type,
            "bucket": self.bucket,
            "prefix": self.prefix,
            "endpoint": self.endpoint,
            "region": self.region,
            "profile": self.profile,
            "created_at": self.created_at,
        }

    @classmethod
    def from_dict(cls, d: Any, *, source: str) -> StorageDef:
        v = RecordValidator(source, kind="storage record")
        v.keys(d, set(cls.__dataclass_fields__), "storage")
        optional = {}
        for key in ("endpoint", "region", "profile"):
            optional[key] = None if d[key] is None else v.string(d[key], key)
        return cls(
            name=v.string(d["name"], "name"),
            storage_type=v.string(d["storage_type"], "storage_type"),
            bucket=v.string(d["bucket"], "bucket"),
            prefix=v.string(d["prefix"], "prefix"),
            created_at=v.integer(d["created_at"], "created_at"),
            **optional,
        )


class Storages:
    """Registered storages and one filesystem per storage (made on first use)."""

    def __init__(self, store: HotStore) -> None:
        self._store = store
        self._defs: dict[str, StorageDef] = {}
        self._filesystems: dict[str, pafs.FileSystem] = {}
        self._lock = threading.Lock()
        for key, raw in store.scan(STORAGE_PREFIX):
            name = key[len(STORAGE_PREFIX) :].decode(errors="replace")
            source = f"the storage record {name} in {store.path}"
            try:
                data = orjson.loads(raw)
            except orjson.JSONDecodeError:
                RecordValidator(source, kind="storage record").fail("not JSON")
            d = StorageDef.from_dict(data, source=source)
            self._defs[d.name] = d

    def __repr__(self) -> str:
        return f"<Storages local + {sorted(self._defs)}>"

    def all(self) -> list[StorageDef]:
        return [self._defs[n] for n in sorted(self._defs)]

    def find(self, name: str) -> StorageDef | None:
        return self._defs.get(name)

    def get(self, name: str) -> StorageDef:
        found = self._defs.get(name)
        if found is None:
            known = ", ".join([LOCAL, *sorted(self._defs)])
            raise StorageNotFoundError(
                f"Storage '{name}' does not exist (known: {known}). "
                f"Create it with: CREATE STORAGE {name} TYPE s3 WITH (bucket = '...')",
                storage=name,
            )
        return found

    def put(self, txn: Txn, d: StorageDef) -> None:
        txn.batch.put(storage_key(d.name), orjson.dumps(d.to_dict()))
        txn.after_commit(lambda: self._defs.__setitem__(d.name, d))

    def delete(self, txn: Txn, name: str) -> None:
        txn.batch.delete(storage_key(name))

        def apply() -> None:
            self._defs.pop(name, None)
            with self._lock:
                self._filesystems.pop(name, None)

        txn.after_commit(apply)

    def filesystem(self, name: str) -> pafs.FileSystem:
        d = self.get(name)
        with self._lock:
            found = self._filesystems.get(name)
            if found is None:
                found = self._filesystems[name] = s3_filesystem(
                    endpoint=d.endpoint, region=d.region, profile=d.profile
                )
            return found

    def table_root(self, name: str, namespace: str, table: str) -> ObjectPath:
        """``<bucket>/<prefix>/<namespace>/<table>`` of a table in storage ``name``."""
        d = self.get(name)
        key = "/".join(p for p in (d.bucket, d.prefix, check_name(namespace, "namespace")) if p)
        options = reader_options(endpoint=d.endpoint, region=d.region)
        root = ObjectPath(self.filesystem(name), key, store=name, options=options)
        return root / check_name(table, "table")
