"""Views in the catalog: ``ViewDef`` records, persisted in the hot store
under ``Sview:<namespace>.<name>`` and read from it on demand (a view is
looked up once per table reference of a query: one point read, no mirror to
keep in step). Changes go through a ``Txn`` like every catalog change."""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from engine.catalog.model import decode_record
from engine.errors import StorageCorruptionError
from engine.storage.hot import HotStore
from engine.txn import Txn

VIEW_PREFIX = b"Sview:"


def view_key(namespace: str, name: str) -> bytes:
    return VIEW_PREFIX + f"{namespace}.{name}".encode()


@dataclass(frozen=True)
class ViewDef:
    """A view: its name, the query as written, and who made it when."""

    namespace: str
    name: str
    sql: str
    created_by: str
    created_at_us: int
    columns: tuple[str, ...] = ()  # names given at CREATE VIEW v (a, b)

    @property
    def qualified_name(self) -> str:
        return f"{self.namespace}.{self.name}"

    def to_dict(self) -> dict[str, object]:
        return {
            "namespace": self.namespace,
            "name": self.name,
            "sql": self.sql,
            "created_by": self.created_by,
            "created_at_us": self.created_at_us,
            "columns": list(self.columns),
        }

    @classmethod
    def from_dict(cls, d: object, *, source: str) -> ViewDef:
        try:
            assert isinstance(d, dict)
            return cls(
                str(d["namespace"]),
                str(d["name"]),
                str(d["sql"]),
                str(d["created_by"]),
                int(d["created_at_us"]),
                tuple(str(c) for c in d.get("columns") or ()),
            )
        except (AssertionError, KeyError, TypeError, ValueError):
            raise StorageCorruptionError(
                f"Corrupt catalog record in {source}: not a view definition", file=source
            ) from None


def find_view(store: HotStore, namespace: str, name: str) -> ViewDef | None:
    raw = store.get(view_key(namespace, name))
    if raw is None:
        return None
    source = f"the view record {namespace}.{name} in {store.path}"
    return ViewDef.from_dict(decode_record(raw, source), source=source)


def list_views(store: HotStore, namespace: str | None = None) -> list[ViewDef]:
    out = []
    for key, raw in store.scan(VIEW_PREFIX):
        source = (
            f"the view record {key[len(VIEW_PREFIX) :].decode(errors='replace')} in {store.path}"
        )
        view = ViewDef.from_dict(decode_record(raw, source), source=source)
        if namespace is None or view.namespace == namespace:
            out.append(view)
    return sorted(out, key=lambda v: (v.namespace, v.name))


def put_view(txn: Txn, view: ViewDef) -> None:
    txn.batch.put(view_key(view.namespace, view.name), orjson.dumps(view.to_dict()))


def delete_view(txn: Txn, view: ViewDef) -> None:
    txn.batch.delete(view_key(view.namespace, view.name))
