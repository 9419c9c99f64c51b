"""PutItem, GetItem, UpdateItem, DeleteItem."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from ..api.app import RequestContext, quick_read, quick_write
from ..state.store import Store
from . import attributes, capacity, requests
from .catalog import Catalog, ItemKey, Table, item_key, request_key
from .errors import condition_failed
from .expressions import apply, evaluate, parse_update, project
from .expressions.syntax import Condition, Update
from .storage import Change, check_index_keys, commit, read_for_write, read_raw, retrying

_UPDATE_RETURNS = ("NONE", "ALL_OLD", "UPDATED_OLD", "ALL_NEW", "UPDATED_NEW")


class Items:
    store: Store
    catalog: Catalog

    @quick_write
    def put_item(self, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
        returns = requests.return_values(req, ("ALL_OLD", "NONE"))
        ph = requests.placeholders(req)
        condition = requests.condition(req, ph)
        ph.check_all_used()
        table = self.catalog.get(ctx.region, req["TableName"])
        item = attributes.ingest_item(req["Item"])
        key = item_key(table, item)
        check_index_keys(table, item)
        size = requests.check_size(item)
        old, _ = self._write_one(ctx, req, table, key, condition, lambda old: (item, size))
        out = {"Attributes": old} if returns == "ALL_OLD" and old else {}
        return {**out, **capacity.report(req, table.name, capacity.write_units(
            size, attributes.item_size(old) if old else 0), write=True)}

    @quick_read
    def get_item(self, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
        ph = requests.placeholders(req)
        paths = requests.projection(req, ph)
        ph.check_all_used()
        table = self.catalog.get(ctx.region, req["TableName"])
        key = request_key(table, attributes.ingest_item(req["Key"]))
        raw = read_raw(self.store, table, key)
        used = capacity.report(req, table.name, capacity.read_units(
            len(raw) if raw else 0, bool(req.get("ConsistentRead"))), write=False)
        if raw is None:
            return used
        if paths is None:   # the stored JSON is already the answer's
            return {"Item": orjson.Fragment(raw), **used}
        return {"Item": project(orjson.loads(raw), paths), **used}

    @quick_write
    def delete_item(self, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
        returns = requests.return_values(req, ("ALL_OLD", "NONE"))
        ph = requests.placeholders(req)
        condition = requests.condition(req, ph)
        ph.check_all_used()
        table = self.catalog.get(ctx.region, req["TableName"])
        key = request_key(table, attributes.ingest_item(req["Key"]))
        old, _ = self._write_one(ctx, req, table, key, condition, lambda old: (None, None))
        out = {"Attributes": old} if returns == "ALL_OLD" and old else {}
        return {**out, **capacity.report(req, table.name, capacity.write_units(
            attributes.item_size(old) if old else 0), write=True)}

    @quick_write
    def update_item(self, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
        returns = requests.return_values(req, _UPDATE_RETURNS)
        ph = requests.placeholders(req)
        update = (parse_update(req["UpdateExpression"], ph)
                  if req.get("UpdateExpression") is not None else None)
        condition = requests.condition(req, ph)
        ph.check_all_used()
        table = self.catalog.get(ctx.region, req["TableName"])
        key = request_key(table, attributes.ingest_item(req["Key"]))
        requests.check_keys_untouched(update, table)

        def updated(old: attributes.Item | None) -> tuple[attributes.Item, int]:
            base = old if old is not None else dict(key.attributes)
            new = apply(update, base) if update is not None else dict(base)
            size = requests.check_size(new, updating=True)
            check_index_keys(table, new)
            return new, size
        old, new = self._write_one(ctx, req, table, key, condition, updated)
        assert new is not None
        return {**_returned(returns, old, new, update), **capacity.report(
            req, table.name, capacity.write_units(attributes.item_size(old) if old else 0,
                                                  attributes.item_size(new)), write=True)}


    def _write_one(self, ctx: RequestContext, req: dict[str, Any], table: Table, key: ItemKey,
                   condition: Condition | None,
                   outcome: Callable[[attributes.Item | None], tuple[Any, int | None]]
                   ) -> tuple[attributes.Item | None, attributes.Item | None]:
        """Write one item, if the condition holds of it as it is: `outcome` gives the item
        after the write (None: deleted) and its size; (item before, item after)."""
        on_failure = requests.return_on_failure(req)

        def work(conn: Any) -> tuple[attributes.Item | None, attributes.Item | None]:
            old = read_for_write(self.store, conn, table, key)
            if condition is not None and not evaluate(condition, old or {}):
                raise condition_failed(old if on_failure else None)
            new, size = outcome(old)
            commit(self.store, conn, [Change(table, key, old, new, new_size=size)], ctx.region)
            return old, new
        return retrying(self.store, work)


def _returned(returns: str, old: attributes.Item | None, new: attributes.Item,
              update: Update | None) -> dict[str, Any]:
    """ReturnValues: UPDATED_OLD shows what the actions named as it was, UPDATED_NEW as it
    is now (what REMOVE took away is not there to show)."""
    actions = update.actions if update is not None else ()
    if returns == "ALL_NEW":
        shown: attributes.Item | None = new
    elif returns == "ALL_OLD":
        shown = old
    elif returns == "UPDATED_NEW":
        paths = [a.path for a in actions if a.kind != "REMOVE"]
        shown = project(new, paths) if paths else None
    elif returns == "UPDATED_OLD":
        paths = [a.path for a in actions]
        shown = project(old, paths) if old and paths else None
    else:
        shown = None
    return {"Attributes": shown} if shown else {}
