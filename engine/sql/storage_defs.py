"""CREATE STORAGE, DROP STORAGE and SHOW STORAGES (the registry itself is
``engine.catalog.storages``; ``system.storages`` shows the same rows).

A storage is checked when it is created: the bucket must be reachable with
the credentials of the environment (one listing request), so a typo in an
endpoint or bucket fails here, not at the first FLUSH. Options that look like
credentials are refused: the catalog never holds a secret.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.fs as pafs

from engine.catalog.storages import (
    LOCAL,
    STORAGE_OPTIONS,
    STORAGE_TYPES,
    StorageDef,
)
from engine.errors import (
    InvalidOptionError,
    ObjectStorageError,
    StorageExistsError,
    StorageInUseError,
)
from engine.names import check_name
from engine.result import Result
from engine.sql import statements as st
from engine.storage.fs import s3_filesystem

if TYPE_CHECKING:
    from engine.core import Database

_SECRET_WORDS = ("key", "secret", "token", "password", "credential")


def _options(s: st.CreateStorage) -> dict[str, str]:
    given: dict[str, str] = {}
    for key, value in s.options:
        if any(w in key for w in _SECRET_WORDS):
            raise InvalidOptionError(
                f"CREATE STORAGE does not take '{key}': credentials come from the environment "
                "(AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN) or a named "
                "profile (profile = '...'), never from the catalog"
            )
        if key not in STORAGE_OPTIONS:
            known = ", ".join(sorted(STORAGE_OPTIONS))
            raise InvalidOptionError(f"Unknown storage option '{key}'. Known options: {known}")
        if key in given:
            raise InvalidOptionError(f"Storage option '{key}' is given twice")
        given[key] = value
    if not given.get("bucket", "").strip():
        raise InvalidOptionError("CREATE STORAGE ... TYPE s3 needs WITH (bucket = '<name>')")
    bucket = given["bucket"].strip()
    if "/" in bucket or bucket != bucket.lower() or not 3 <= len(bucket) <= 63:
        raise InvalidOptionError(f"'{bucket}' is not an S3 bucket name")
    prefix = given.get("prefix", "").strip("/")
    if any(part in ("", ".", "..") for part in prefix.split("/")) and prefix:
        raise InvalidOptionError(f"Storage prefix '{given['prefix']}' has an empty or dot part")
    return {**given, "bucket": bucket, "prefix": prefix}


def create_storage(db: Database, s: st.CreateStorage, params: dict[str, Any], user: str) -> Result:
    name = check_name(s.name, "storage")
    if s.storage_type not in STORAGE_TYPES:
        raise InvalidOptionError(
            f"Storage TYPE must be one of {', '.join(STORAGE_TYPES)}, not '{s.storage_type}' "
            f"(local disk is the built-in storage '{LOCAL}')"
        )
    if name == LOCAL or db.storages.find(name) is not None:
        if s.if_not_exists:
            return Result(message=f"Storage {name} already exists", rows_affected=0)
        raise StorageExistsError(f"Storage '{name}' already exists", storage=name)
    opts = _options(s)
    d = StorageDef(
        name=name,
        storage_type=s.storage_type,
        bucket=opts["bucket"],
        prefix=opts["prefix"],
        endpoint=opts.get("endpoint"),
        region=opts.get("region"),
        profile=opts.get("profile"),
        created_at=db.now_us(),
    )
    _check_reachable(d)
    with db.lock:
        if db.storages.find(name) is not None:
            raise StorageExistsError(f"Storage '{name}' already exists", storage=name)
        txn = db.begin()
        db.storages.put(txn, d)
        txn.commit()
    return Result(message=f"Storage {name} created ({d.base_uri})", rows_affected=0)


def _check_reachable(d: StorageDef) -> None:
    fs = s3_filesystem(endpoint=d.endpoint, region=d.region, profile=d.profile)
    try:
        info = fs.get_file_info(d.bucket)
    except (OSError, pa.ArrowException) as exc:
        raise ObjectStorageError(
            f"Cannot reach bucket '{d.bucket}' of storage '{d.name}': {exc}", object=d.base_uri
        ) from exc
    if info.type == pafs.FileType.NotFound:
        raise InvalidOptionError(f"Bucket '{d.bucket}' of storage '{d.name}' does not exist")


def drop_storage(db: Database, s: st.DropStorage, params: dict[str, Any], user: str) -> Result:
    name = check_name(s.name, "storage")
    if name == LOCAL:
        raise InvalidOptionError("The built-in storage 'local' cannot be dropped")
    with db.lock:
        if db.storages.find(name) is None:
            if s.if_exists:
                return Result(message=f"Storage {name} does not exist", rows_affected=0)
            db.storages.get(name)  # raises the not-found error
        users = [t.qualified_name for t in db.catalog.tables() if storage_of(t.options) == name]
        if users:
            raise StorageInUseError(
                f"Storage '{name}' is used by {len(users)} table(s): {', '.join(users)}; "
                "drop them first",
                storage=name,
            )
        txn = db.begin()
        db.storages.delete(txn, name)
        txn.commit()
    return Result(message=f"Storage {name} dropped (its objects were left in place)")


def storage_of(options: dict[str, Any]) -> str:
    return str(options.get("storage_id") or LOCAL)


STORAGES_SCHEMA = pa.schema(
    [
        ("storage_id", pa.string()),
        ("storage_type", pa.string()),
        ("base_directory", pa.string()),
        ("endpoint", pa.string()),
        ("region", pa.string()),
        ("credentials", pa.string()),
        ("shared_tables_template", pa.string()),
        ("user_tables_template", pa.string()),
        ("table_count", pa.int64()),
        ("created_at", pa.timestamp("us", tz="UTC")),
    ]
)


def storages_table(db: Database) -> pa.Table:
    """One row per storage, ``local`` first (SHOW STORAGES, system.storages)."""
    counts: dict[str, int] = {}
    for t in db.catalog.tables():
        counts[storage_of(t.options)] = counts.get(storage_of(t.options), 0) + 1
    rows = [
        {
            "storage_id": LOCAL,
            "storage_type": "filesystem",
            "base_directory": str(db.data_dir / "storage"),
            "endpoint": None,
            "region": None,
            "credentials": None,
            "shared_tables_template": "{namespace}/{tableName}",
            "user_tables_template": "{namespace}/{tableName}/{userId}",
            "table_count": counts.get(LOCAL, 0),
            "created_at": None,
        }
    ]
    for d in db.storages.all():
        rows.append(
            {
                "storage_id": d.name,
                "storage_type": d.storage_type,
                "base_directory": d.base_uri,
                "endpoint": d.endpoint,
                "region": d.region or "us-east-1",
                # Never a secret: only where credentials are looked up.
                "credentials": f"profile {d.profile}" if d.profile else "environment",
                "shared_tables_template": "{namespace}/{tableName}",
                "user_tables_template": "{namespace}/{tableName}/{userId}",
                "table_count": counts.get(d.name, 0),
                "created_at": d.created_at,
            }
        )
    return pa.Table.from_pylist(rows, schema=STORAGES_SCHEMA)


def show_storages(db: Database, s: st.ShowStorages, params: dict[str, Any], user: str) -> Result:
    return Result(table=storages_table(db), is_query=True)
