"""BatchGetItem and BatchWriteItem.

A BatchWriteItem runs in one transaction: every request is processed, so UnprocessedItems is
always empty. A BatchGetItem answers at most 16 MB; keys past that come back in
UnprocessedKeys, as DynamoDB's do.
"""
from __future__ import annotations

from typing import Any

import orjson

from ..api.app import RequestContext, quick_read, quick_write
from ..state.store import Store
from . import attributes, capacity, requests
from .catalog import Catalog, ItemKey, Table, item_key, request_key
from .errors import invalid
from .expressions import project
from .storage import Change, check_index_keys, commit, read_for_write, read_raw, retrying

MAX_GET = 100
MAX_WRITE = 25
MAX_RESPONSE = 16 * 1024 * 1024


class Batches:
    store: Store
    catalog: Catalog

    @quick_read
    def batch_get_item(self, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
        wanted = req["RequestItems"]
        if sum(len(spec["Keys"]) for spec in wanted.values()) > MAX_GET:
            raise invalid("Too many items requested for the BatchGetItem call")
        plans = []
        for name, spec in wanted.items():
            ph = requests.placeholders(spec)
            paths = requests.projection(spec, ph)
            ph.check_all_used()
            table = self.catalog.get(ctx.region, name)
            keys = [request_key(table, attributes.ingest_item(k)) for k in spec["Keys"]]
            if len({(k.pk, k.sk) for k in keys}) != len(keys):
                raise invalid("Provided list of item keys contains duplicates")
            plans.append((name, spec, table, keys, paths))
        responses: dict[str, list[Any]] = {}
        unprocessed: dict[str, Any] = {}
        units: dict[str, float] = {}
        size = 0
        for name, spec, table, keys, paths in plans:
            found = responses.setdefault(name, [])
            consistent = bool(spec.get("ConsistentRead"))
            for i, key in enumerate(keys):
                if size > MAX_RESPONSE:
                    rest = {**spec, "Keys": [k.attributes for k in keys[i:]]}
                    unprocessed[name] = rest
                    break
                raw = read_raw(self.store, table, key)
                units[table.name] = units.get(table.name, 0.0) + capacity.read_units(
                    len(raw) if raw else 0, consistent)
                if raw is None:
                    continue
                size += len(raw)
                found.append(orjson.Fragment(raw) if paths is None
                             else project(orjson.loads(raw), paths))
        return {"Responses": responses, "UnprocessedKeys": unprocessed,
                **capacity.report_many(req, units, write=False)}

    @quick_write
    def batch_write_item(self, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
        wanted = req["RequestItems"]
        if sum(len(writes) for writes in wanted.values()) > MAX_WRITE:
            raise invalid("Too many items requested for the BatchWriteItem call")
        planned: list[tuple[Table, ItemKey, attributes.Item | None]] = []
        for name, writes in wanted.items():
            table = self.catalog.get(ctx.region, name)
            seen: set[tuple[bytes, bytes]] = set()
            for write in writes:
                put, delete = write.get("PutRequest"), write.get("DeleteRequest")
                if (put is None) == (delete is None):
                    raise invalid("Supplied AttributeValue has more than one datatypes set, "
                                  "must contain exactly one of the supported datatypes"
                                  if put and delete else
                                  "1 validation error detected: Value null at "
                                  "'requestItems.1.member.putRequest' failed to satisfy "
                                  "constraint: Member must not be null")
                if put is not None:
                    item = attributes.ingest_item(put["Item"])
                    key = item_key(table, item)
                    check_index_keys(table, item)
                    requests.check_size(item)
                    planned.append((table, key, item))
                else:
                    key = request_key(table, attributes.ingest_item(delete["Key"]))
                    planned.append((table, key, None))
                if (key.pk, key.sk) in seen:
                    raise invalid("Provided list of item keys contains duplicates")
                seen.add((key.pk, key.sk))

        def work(conn: Any) -> list[Change]:
            changes = [Change(table, key, read_for_write(self.store, conn, table, key), new)
                       for table, key, new in planned]
            commit(self.store, conn, changes, ctx.region)
            return changes
        units: dict[str, float] = {}
        for change in retrying(self.store, work):
            units[change.table.name] = units.get(change.table.name, 0.0) + capacity.write_units(
                *(attributes.item_size(i) for i in (change.old, change.new) if i))
        return {"UnprocessedItems": {}, **capacity.report_many(req, units, write=True)}
