"""Time to live: DescribeTimeToLive, UpdateTimeToLive, and deleting expired items.

An item's expiry (its TTL attribute, a Number of epoch seconds) is kept in an indexed column,
set whenever the item is written and recomputed for every item when TTL is switched on. The
sweep deletes due items the way DeleteItem would, with a REMOVE stream record whose
userIdentity names the DynamoDB service, as AWS's TTL deletions do. Like AWS, it leaves alone
items whose expiry is more than five years in the past.
"""
from __future__ import annotations

import logging
import time
from typing import Any

import orjson
import sqlalchemy as sa

from ..api.app import RequestContext, quick_read
from ..state.store import Store
from .catalog import Catalog, ItemKey, key_attributes, row_to_change, table_name, table_of
from .errors import invalid, table_not_found
from .schema import dynamodb_items, dynamodb_tables
from .storage import Change, commit, expiry, read_for_write, retrying

log = logging.getLogger(__name__)

FIVE_YEARS = 5 * 365 * 24 * 3600
SWEEP_BATCH = 100


class TimeToLive:
    store: Store
    catalog: Catalog

    @quick_read
    def describe_time_to_live(self, ctx: RequestContext, req: dict[str, Any]
                              ) -> dict[str, Any]:
        table = self.catalog.find(ctx.region, req["TableName"])
        if table is None:
            raise table_not_found(table_name(req["TableName"]))
        if table.ttl_attribute is None:
            return {"TimeToLiveDescription": {"TimeToLiveStatus": "DISABLED"}}
        return {"TimeToLiveDescription": {"TimeToLiveStatus": "ENABLED",
                                          "AttributeName": table.ttl_attribute}}

    def update_time_to_live(self, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
        spec = req["TimeToLiveSpecification"]
        with self.store.write() as conn:
            row = row_to_change(conn, ctx.region, req["TableName"])
            current = row["ttl_attribute"]
            if spec["Enabled"]:
                if current is not None:
                    raise invalid("TimeToLive is already enabled")
                attribute = spec["AttributeName"]
            else:
                if current is None:
                    raise invalid("TimeToLive is already disabled")
                if current != spec["AttributeName"]:
                    raise invalid("TimeToLive is active on a different AttributeName: current "
                                  f"AttributeName is {current}")
                attribute = None
            conn.execute(dynamodb_tables.update().where(dynamodb_tables.c.uid == row["uid"])
                         .values(ttl_attribute=attribute, version=dynamodb_tables.c.version + 1))
            _recompute_expiry(conn, row, attribute)
        return {"TimeToLiveSpecification": spec}


def _recompute_expiry(conn: Any, row: Any, attribute: str | None) -> None:
    uid = row["uid"]
    if attribute is None:
        conn.execute(dynamodb_items.update().where(dynamodb_items.c.table_uid == uid)
                     .values(expires=None))
        return
    table = table_of({**row, "ttl_attribute": attribute, "view_type": None, "arn": None,
                      "stream_id": None})
    found = conn.execute(sa.select(dynamodb_items.c.hk, dynamodb_items.c.pk,
                                   dynamodb_items.c.sk, dynamodb_items.c.item)
                         .where(dynamodb_items.c.table_uid == uid)).all()
    updates = []
    for hk, pk, sk, body in found:
        due = expiry(table, orjson.loads(body))
        if due is not None:
            updates.append({"b_uid": uid, "b_hk": hk, "b_pk": pk, "b_sk": sk, "expires": due})
    if updates:
        conn.execute(dynamodb_items.update().where(
            dynamodb_items.c.table_uid == sa.bindparam("b_uid"),
            dynamodb_items.c.hk == sa.bindparam("b_hk"),
            dynamodb_items.c.pk == sa.bindparam("b_pk"),
            dynamodb_items.c.sk == sa.bindparam("b_sk")), updates)


def expire_due(store: Store, catalog: Catalog, now: float | None = None) -> int:
    """Delete the items whose TTL has passed (a batch per table); how many went."""
    now = time.time() if now is None else now
    with store.read() as conn:
        tables = conn.execute(sa.select(dynamodb_tables.c.uid).where(
            dynamodb_tables.c.ttl_attribute.is_not(None))).scalars().all()
    deleted = 0
    for uid in tables:
        with store.read() as conn:
            due = conn.execute(
                sa.select(dynamodb_items.c.hk, dynamodb_items.c.pk, dynamodb_items.c.sk)
                .where(dynamodb_items.c.table_uid == uid,
                       dynamodb_items.c.expires <= int(now),
                       dynamodb_items.c.expires >= int(now) - FIVE_YEARS)
                .limit(SWEEP_BATCH)).all()
        for hk, pk, sk in due:
            deleted += _expire(store, catalog, uid, ItemKey(hk, pk, sk, {}), now)
    return deleted


def _expire(store: Store, catalog: Catalog, uid: int, key: ItemKey, now: float) -> int:
    def work(conn: Any) -> int:
        table = catalog.by_uid(uid)
        if table is None or table.ttl_attribute is None:
            return 0
        old = read_for_write(store, conn, table, key)
        if old is None:
            return 0
        due = expiry(table, old)
        if due is None or not now - FIVE_YEARS <= due <= now:
            return 0    # written again since the sweep found it
        full = ItemKey(key.hk, key.pk, key.sk, key_attributes(old, table))
        commit(store, conn, [Change(table, full, old, None, by_service=True)], table.region)
        return 1
    return retrying(store, work)


