"""The catalog: namespaces and table definitions, persisted in the hot store
and mirrored in memory. Changes go through a ``Txn`` and reach the mirror only
after the batch commits."""

from __future__ import annotations

import orjson

from engine.catalog.model import Namespace, TableDef, decode_record
from engine.errors import NamespaceNotFoundError, StorageCorruptionError, TableNotFoundError
from engine.storage import keys
from engine.storage.hot import HotStore
from engine.txn import Txn

DEFAULT_NAMESPACE = "default"


def _source(store: HotStore, kind: str, name: object) -> str:
    shown = name.decode(errors="replace") if isinstance(name, bytes) else name
    return f"the {kind} record {shown!s} in {store.path}"


class Catalog:
    def __init__(self, store: HotStore) -> None:
        self._store = store
        self.namespaces: dict[str, Namespace] = {}
        self._tables: dict[tuple[str, str], TableDef] = {}
        self._by_id: dict[int, TableDef] = {}
        for key, raw in store.scan(b"N"):
            source = _source(store, "namespace", key[1:])
            ns = Namespace.from_dict(decode_record(raw, source), source=source)
            self.namespaces[ns.name] = ns
        for key, raw in store.scan(b"T"):
            source = _source(store, "table", key[1:].hex())
            d = decode_record(raw, source)
            if isinstance(d, dict) and "namespace" in d and "name" in d:  # name it in errors
                source = _source(store, "table", f"{d['namespace']}.{d['name']}")
            t = TableDef.from_dict(d, source=source)
            if key != keys.table_key(t.table_id):
                raise StorageCorruptionError(
                    f"Corrupt catalog record in {source}: stored under another table id",
                    file=source,
                )
            self._tables[(t.namespace, t.name)] = t
            self._by_id[t.table_id] = t
        counter = keys.decode_int(store.get(keys.TABLE_ID_KEY), what="table id counter")
        # Never hand out an id that a table (or its leftover files) still carries.
        self._next_table_id = max(counter, max(self._by_id, default=0) + 1)

    def __repr__(self) -> str:
        return f"<Catalog {len(self.namespaces)} namespace(s), {len(self._tables)} table(s)>"

    # namespaces
    def find_namespace(self, name: str) -> Namespace | None:
        return self.namespaces.get(name)

    def get_namespace(self, name: str) -> Namespace:
        ns = self.namespaces.get(name)
        if ns is None:
            raise NamespaceNotFoundError(
                f"Namespace '{name}' does not exist. Create it with: CREATE NAMESPACE {name}",
                namespace=name,
            )
        return ns

    def put_namespace(self, txn: Txn, ns: Namespace) -> None:
        txn.batch.put(keys.namespace_key(ns.name), orjson.dumps(ns.to_dict()))
        txn.after_commit(lambda: self.namespaces.__setitem__(ns.name, ns))

    def delete_namespace(self, txn: Txn, name: str) -> None:
        txn.batch.delete(keys.namespace_key(name))
        txn.after_commit(lambda: self.namespaces.pop(name, None))

    # tables
    def tables(self, namespace: str | None = None) -> list[TableDef]:
        out = [t for t in self._tables.values() if namespace is None or t.namespace == namespace]
        return sorted(out, key=lambda t: (t.namespace, t.name))

    def find_table(self, namespace: str, name: str) -> TableDef | None:
        return self._tables.get((namespace, name))

    def get_table(self, namespace: str, name: str) -> TableDef:
        t = self._tables.get((namespace, name))
        if t is None:
            if namespace not in self.namespaces:
                self.get_namespace(namespace)
            raise TableNotFoundError(
                f"Table '{namespace}.{name}' does not exist", namespace=namespace, table=name
            )
        return t

    def table_by_id(self, table_id: int) -> TableDef | None:
        return self._by_id.get(table_id)

    def allocate_table_id(self, txn: Txn) -> int:
        tid = self._next_table_id
        self._next_table_id += 1  # ids are never reused, even if the statement fails
        txn.batch.put(keys.TABLE_ID_KEY, keys.encode_int(self._next_table_id))
        return tid

    def put_table(self, txn: Txn, table: TableDef, *, previous: TableDef | None = None) -> None:
        txn.batch.put(keys.table_key(table.table_id), orjson.dumps(table.to_dict()))

        def apply() -> None:
            if previous is not None:
                self._tables.pop((previous.namespace, previous.name), None)
            self._tables[(table.namespace, table.name)] = table
            self._by_id[table.table_id] = table

        txn.after_commit(apply)

    def delete_table(self, txn: Txn, table: TableDef) -> None:
        txn.batch.delete(keys.table_key(table.table_id))

        def apply() -> None:
            self._tables.pop((table.namespace, table.name), None)
            self._by_id.pop(table.table_id, None)

        txn.after_commit(apply)
