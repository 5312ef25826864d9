"""Where cold-tier files live: local disk or an S3-compatible bucket.

This module owns every byte the cold tier moves (segments, ``manifest.json``,
checksums, listings, deletes). A cold location is either a ``pathlib.Path``
(local disk, the default) or an ``ObjectPath`` (a key in a bucket reached
through ``pyarrow.fs.S3FileSystem``). ``ObjectPath`` offers the small part of
``Path`` the cold tier uses (``/``, ``name``, ``exists``, ``iterdir``,
``stat``, ``unlink``, ``read_bytes`` ...), so code above works on either; the
calls that open files go through the functions here (``publish_bytes``,
``open_input``, ``parquet_file``, ``read_parquet``, ``read_parquet_metadata``,
``filesystem_of``).

Publishing (invariant 4)
    Local: temp file, fsync, ``os.replace``, fsync the directory. S3: a PUT is
    atomic (the object appears whole or not at all), so the final key is
    written directly; the manifest names it only after the PUT succeeded.

Failures
    Any failed request to the object store raises ``ObjectStorageError``
    naming the object (``s3://bucket/key``); a missing object is
    ``FileNotFoundError``, as for a local file.

Credentials never pass through here from the catalog: ``S3FileSystem`` takes
them from the environment (``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` /
``AWS_SESSION_TOKEN``, or the AWS default chain), or from a named profile in
``~/.aws/credentials`` read when the filesystem is made.
"""

from __future__ import annotations

import configparser
import hashlib
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from engine.errors import InvalidOptionError, ObjectStorageError

TEMP_SUFFIX = ".tmp"
_CHUNK = 1 << 20


# --------------------------------------------------------------------------- local disk


def temp_path_for(path: Path) -> Path:
    """A fresh temp name next to ``path``; ``find_orphans`` recognises it."""
    return path.with_name(f".{path.name}.{secrets.token_hex(6)}{TEMP_SUFFIX}")


def fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path, data: bytes | memoryview) -> None:
    """Write ``data`` to ``path`` so a crash leaves the old file or the new one.

    temp file in the same directory, fsync, ``os.replace``, fsync the directory."""
    tmp = temp_path_for(path)
    try:
        with open(tmp, "xb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_directory(path.parent)


# --------------------------------------------------------------------------- objects


@dataclass(frozen=True)
class ObjectStat:
    """What ``ObjectPath.stat()`` knows (the fields the cold tier reads)."""

    st_size: int
    st_mtime_ns: int
    st_ino: int = 0  # objects have no inode; the verifier keys on size and checksum

    @property
    def st_mtime(self) -> float:
        return self.st_mtime_ns / 1e9


class ObjectPath:
    """A key (``bucket/prefix/...``) in an object store, path-like.

    Equal and hashed by store identity and key, so sets of retired files and
    "is this still the same directory" checks work as with ``Path``."""

    __slots__ = ("_listed", "fs", "key", "options", "store")

    def __init__(
        self,
        fs: pafs.FileSystem,
        key: str,
        *,
        store: str,
        listed: Any = None,
        options: dict[str, str] | None = None,
    ) -> None:
        self.fs = fs
        self.key = key.strip("/")
        self.store = store  # the storage's name: two storages never compare equal
        # How other readers reach the bucket (deltalake / object_store
        # ``storage_options``: endpoint, region; never credentials).
        self.options = options or {}
        # The type a listing reported (``iterdir``): spares a HEAD per entry
        # when a sweep asks ``is_file()`` of each. Not part of the identity.
        self._listed = listed

    def __repr__(self) -> str:
        return f"ObjectPath({str(self)!r}, storage={self.store!r})"

    def __str__(self) -> str:
        return f"s3://{self.key}"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ObjectPath) and (self.store, self.key) == (other.store, other.key)

    def __hash__(self) -> int:
        return hash((self.store, self.key))

    def __lt__(self, other: ObjectPath) -> bool:  # sorted(orphans)
        return self.key < other.key

    def __truediv__(self, name: str) -> ObjectPath:
        if not name or "/" in name or name in (".", ".."):
            raise ValueError(f"not one path component: {name!r}")
        return ObjectPath(self.fs, f"{self.key}/{name}", store=self.store, options=self.options)

    @property
    def name(self) -> str:
        return self.key.rsplit("/", 1)[-1]

    @property
    def parent(self) -> ObjectPath:
        return ObjectPath(
            self.fs, self.key.rsplit("/", 1)[0], store=self.store, options=self.options
        )

    def with_name(self, name: str) -> ObjectPath:
        return self.parent / name

    # ---- requests
    def _info(self) -> pafs.FileInfo:
        with _request(self):
            return self.fs.get_file_info(self.key)

    def exists(self) -> bool:
        return bool(self._info().type != pafs.FileType.NotFound)

    def is_file(self) -> bool:
        kind = self._listed if self._listed is not None else self._info().type
        return bool(kind == pafs.FileType.File)

    def is_dir(self) -> bool:
        kind = self._listed if self._listed is not None else self._info().type
        return bool(kind == pafs.FileType.Directory)

    def stat(self) -> ObjectStat:
        info = self._info()
        if info.type != pafs.FileType.File:
            raise FileNotFoundError(f"{self} does not exist")
        return ObjectStat(int(info.size or 0), int(info.mtime_ns or 0))

    def iterdir(self) -> Iterator[ObjectPath]:
        selector = pafs.FileSelector(self.key, allow_not_found=True, recursive=False)
        with _request(self):
            infos = self.fs.get_file_info(selector)
        for info in infos:
            yield ObjectPath(
                self.fs, info.path, store=self.store, listed=info.type, options=self.options
            )

    def mkdir(self, *, parents: bool = False, exist_ok: bool = False) -> None:
        """Nothing to do: a bucket has no directories, keys imply them."""

    def read_bytes(self) -> bytes:
        with open_input(self) as f:
            return bytes(f.read())

    def unlink(self, *, missing_ok: bool = False) -> None:
        try:
            with _request(self):
                self.fs.delete_file(self.key)
        except FileNotFoundError:
            if not missing_ok:
                raise

    def replace(self, target: ObjectPath) -> ObjectPath:
        """Copy then delete (a bucket has no rename); only REPAIR moves objects."""
        with _request(self):
            self.fs.copy_file(self.key, target.key)
            self.fs.delete_file(self.key)
        return target

    def remove_tree(self) -> None:
        """Delete every object under this prefix (DROP TABLE, DROP USER)."""
        with _request(self):
            info = self.fs.get_file_info(self.key)
            if info.type == pafs.FileType.Directory:
                self.fs.delete_dir(self.key)
            elif info.type == pafs.FileType.File:
                self.fs.delete_file(self.key)


ColdPath = Path | ObjectPath  # a cold location: local disk or a bucket


class _request:
    """Turn a failed object-store request into ``ObjectStorageError`` naming
    the object; a missing object stays ``FileNotFoundError``."""

    def __init__(self, where: ObjectPath) -> None:
        self.where = where

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, exc: BaseException | None, tb: Any) -> None:
        if exc is None or isinstance(exc, FileNotFoundError | ObjectStorageError):
            return
        if isinstance(exc, OSError | pa.ArrowException):
            raise ObjectStorageError(
                f"Object storage request for {self.where} failed: {exc}",
                object=str(self.where),
            ) from exc


def is_remote(path: ColdPath) -> bool:
    return isinstance(path, ObjectPath)


def table_uri(path: ColdPath) -> tuple[str, dict[str, str]]:
    """(URI, storage options) under which other engines (deltalake, polars,
    DataFusion's object store) open ``path``: a local path and ``{}``, or
    ``s3://bucket/key`` with the endpoint and region (credentials still come
    from the environment)."""
    if isinstance(path, ObjectPath):
        return str(path), dict(path.options)
    return str(path), {}


def filesystem_of(path: ColdPath) -> tuple[pafs.FileSystem, str]:
    """(filesystem, path in it) for pyarrow's dataset and Parquet readers."""
    if isinstance(path, ObjectPath):
        return path.fs, path.key
    return _LOCAL, str(path)


_LOCAL = pafs.LocalFileSystem()


def publish_bytes(path: ColdPath, data: bytes | memoryview) -> None:
    """Make ``data`` the whole content of ``path`` in one visible step."""
    if isinstance(path, ObjectPath):
        with _request(path), path.fs.open_output_stream(path.key) as out:
            out.write(data)
        return
    atomic_write_bytes(path, data)


def open_input(path: ColdPath) -> IO[bytes] | Any:
    """A readable binary file (a context manager)."""
    if isinstance(path, Path):
        return open(path, "rb")
    with _request(path):
        return path.fs.open_input_file(path.key)


def file_digest(path: ColdPath, algo: str) -> str:
    """The hex digest of a file's content, read in 1 MiB chunks."""
    if isinstance(path, Path):
        with open(path, "rb") as local:
            return hashlib.file_digest(local, algo).hexdigest()
    h = hashlib.new(algo)
    with open_input(path) as f, _request(path):
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def set_aside(path: ColdPath, new_name: str) -> None:
    """Rename a file within its directory (REPAIR keeps damaged files as
    ``<name>.damaged``); in a bucket a copy and a delete."""
    if isinstance(path, Path):
        path.replace(path.with_name(new_name))
    else:
        path.replace(path.with_name(new_name))


def parquet_file(path: ColdPath, **kwargs: Any) -> pq.ParquetFile:
    if isinstance(path, ObjectPath):
        with _request(path):
            return pq.ParquetFile(path.fs.open_input_file(path.key), **kwargs)
    return pq.ParquetFile(path, **kwargs)


def read_parquet(path: ColdPath, **kwargs: Any) -> pa.Table:
    if isinstance(path, ObjectPath):
        with _request(path):
            return pq.read_table(path.key, filesystem=path.fs, **kwargs)
    return pq.read_table(path, **kwargs)


def read_parquet_metadata(path: ColdPath) -> pq.FileMetaData:
    if isinstance(path, ObjectPath):
        with _request(path), path.fs.open_input_file(path.key) as f:
            return pq.read_metadata(f)
    return pq.read_metadata(path)


# --------------------------------------------------------------------------- S3 stores


def reader_options(*, endpoint: str | None, region: str | None) -> dict[str, str]:
    """``storage_options`` for deltalake / object_store readers of a bucket."""
    out = {"AWS_REGION": region or "us-east-1"}
    if endpoint:
        out["AWS_ENDPOINT_URL"] = endpoint
        if endpoint.startswith("http://"):
            out["AWS_ALLOW_HTTP"] = "true"
    return out


def s3_filesystem(
    *, endpoint: str | None, region: str | None, profile: str | None = None
) -> pafs.S3FileSystem:
    """An ``S3FileSystem`` for a storage definition. ``endpoint`` is a URL
    (``http://127.0.0.1:9000``) for S3-compatible servers; ``None`` is AWS.
    Credentials: ``profile``'s from ``~/.aws/credentials`` (or
    ``AWS_SHARED_CREDENTIALS_FILE``) when named, else the environment."""
    kwargs: dict[str, Any] = {"region": region or "us-east-1"}
    if endpoint:
        parts = urlsplit(endpoint if "://" in endpoint else f"https://{endpoint}")
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise InvalidOptionError(
                f"endpoint must be an http(s) URL such as 'http://127.0.0.1:9000', not {endpoint!r}"
            )
        kwargs["endpoint_override"] = parts.netloc
        kwargs["scheme"] = parts.scheme
    if profile:
        kwargs.update(_profile_credentials(profile))
    return pafs.S3FileSystem(**kwargs)


def _profile_credentials(profile: str) -> dict[str, str]:
    path = Path(os.environ.get("AWS_SHARED_CREDENTIALS_FILE", "~/.aws/credentials")).expanduser()
    parser = configparser.ConfigParser()
    parser.read(path)
    if not parser.has_section(profile):
        raise InvalidOptionError(f"AWS profile {profile!r} is not in {path}")
    section = parser[profile]
    try:
        out = {
            "access_key": section["aws_access_key_id"],
            "secret_key": section["aws_secret_access_key"],
        }
    except KeyError:
        raise InvalidOptionError(
            f"AWS profile {profile!r} in {path} lacks aws_access_key_id / aws_secret_access_key"
        ) from None
    if "aws_session_token" in section:
        out["session_token"] = section["aws_session_token"]
    return out


# --------------------------------------------------------------------------- Delta log files


class ObjectLogFiles:
    """The file operations a Delta log needs (``engine.delta.log.LogFiles``:
    ``list_names`` / ``read`` / ``put_if_absent`` / ``remove_temps``) for a
    table directory in a bucket.

    ``put_if_absent`` checks, then PUTs: S3 has no rename and pyarrow no
    conditional PUT, and this is safe because one process owns a data
    directory (its RocksDB lock) and commits a table's log under that table's
    commit lock, so no second writer can race for a version."""

    def __repr__(self) -> str:
        return "ObjectLogFiles()"

    def list_names(self, directory: ObjectPath) -> list[str]:
        return [p.name for p in directory.iterdir() if p.is_file()]

    def read(self, path: ObjectPath) -> bytes:
        return path.read_bytes()

    def put_if_absent(self, path: ObjectPath, data: bytes) -> bool:
        if path.exists():
            return False
        publish_bytes(path, data)  # one PUT: the version appears whole or not at all
        return True

    def remove_temps(self, directory: ObjectPath) -> None:
        """Nothing to do: a PUT leaves no temp object behind."""
