"""PutItem, GetItem, UpdateItem, DeleteItem."""
from __future__ import annotations

from typing import Any

import orjson

from ..api.app import RequestContext, quick_read, quick_write
from ..state.store import Store
from . import attributes, requests
from .catalog import Catalog, item_key, request_key
from .errors import condition_failed, invalid
from .expressions import apply, evaluate, parse_update, project
from .expressions.syntax import Update
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
        on_failure = requests.return_on_failure(req)

        def work(conn: Any) -> attributes.Item | None:
            old = read_for_write(self.store, conn, table, key)
            if condition is not None and not evaluate(condition, old or {}):
                raise condition_failed(old if on_failure else None)
            commit(self.store, conn, [Change(table, key, old, item, new_size=size)],
                   ctx.region)
            return old
        old = retrying(self.store, work)
        return {"Attributes": old} if returns == "ALL_OLD" and old else {}

    @quick_read
    def get_item(self, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
        ph = requests.placeholders(req)
        paths = requests.projection(req, ph)
        ph.check_all_used()
        table = self.catalog.get(ctx.region, req["TableName"])
        key = request_key(table, attributes.ingest_item(req["Key"]))
        raw = read_raw(self.store, table, key)
        if raw is None:
            return {}
        if paths is None:   # the stored JSON is already the answer's
            return {"Item": orjson.Fragment(raw)}
        return {"Item": project(orjson.loads(raw), paths)}

    @quick_write
    def delete_item(self, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
        returns = requests.return_values(req, ("ALL_OLD", "NONE"))
        ph = requests.placeholders(req)
        condition = requests.condition(req, ph)
        ph.check_all_used()
        table = self.catalog.get(ctx.region, req["TableName"])
        key = request_key(table, attributes.ingest_item(req["Key"]))
        on_failure = requests.return_on_failure(req)

        def work(conn: Any) -> attributes.Item | None:
            old = read_for_write(self.store, conn, table, key)
            if condition is not None and not evaluate(condition, old or {}):
                raise condition_failed(old if on_failure else None)
            commit(self.store, conn, [Change(table, key, old, None)], ctx.region)
            return old
        old = retrying(self.store, work)
        return {"Attributes": old} if returns == "ALL_OLD" and old else {}

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
        for action in update.actions if update else ():
            if action.path.steps[0] in table.key_names:
                raise invalid("One or more parameter values were invalid: Cannot update "
                              f"attribute {action.path.steps[0]}. This attribute is part of "
                              "the key")
        on_failure = requests.return_on_failure(req)

        def work(conn: Any) -> tuple[attributes.Item | None, attributes.Item]:
            old = read_for_write(self.store, conn, table, key)
            if condition is not None and not evaluate(condition, old or {}):
                raise condition_failed(old if on_failure else None)
            base = old if old is not None else dict(key.attributes)
            new = apply(update, base) if update is not None else dict(base)
            size = requests.check_size(new, updating=True)
            check_index_keys(table, new)
            commit(self.store, conn, [Change(table, key, old, new, new_size=size)], ctx.region)
            return old, new
        old, new = retrying(self.store, work)
        return _returned(returns, old, new, update)


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
