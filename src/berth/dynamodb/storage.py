"""Items in the store: reading one, and committing a change to one together with its index
entries and its stream record, in the caller's transaction.

Reads inside a write transaction take two forms. On SQLite they go through `Store.rows` (a
prepared statement on a reader connection): the writer holds the database's write lock, so no
one commits in between and the reader sees exactly what the transaction started from (each item
is read before this transaction touches it). On PostgreSQL they run on the transaction's own
connection with FOR UPDATE, so conditional writes of one item take turns; two transactions
inserting the same new item meet on the primary key, and the loser is retried (`retrying`).
"""
from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..state.store import Store
from . import attributes
from .attributes import Item
from .catalog import ItemKey, Table, index_entry
from .schema import dynamodb_index_entries, dynamodb_items, dynamodb_stream_records, \
    dynamodb_streams

log = logging.getLogger(__name__)

T = TypeVar("T")
_RETRIES = 20
_MAX_EXPIRY = 2 ** 62

_ITEM_KEY = (dynamodb_items.c.table_uid == sa.bindparam("b_uid"),
             dynamodb_items.c.hk == sa.bindparam("b_hk"),
             dynamodb_items.c.pk == sa.bindparam("b_pk"),
             dynamodb_items.c.sk == sa.bindparam("b_sk"))
_READ_ITEM = sa.select(dynamodb_items.c.item).where(*_ITEM_KEY)
_READ_ITEM_LOCKED = _READ_ITEM.with_for_update()
_INSERT_ITEM = dynamodb_items.insert()
_UPDATE_ITEM = dynamodb_items.update().where(*_ITEM_KEY)
_DELETE_ITEM = dynamodb_items.delete().where(*_ITEM_KEY)
_INSERT_ENTRY = dynamodb_index_entries.insert()
_DELETE_ENTRY = dynamodb_index_entries.delete().where(
    dynamodb_index_entries.c.table_uid == sa.bindparam("b_uid"),
    dynamodb_index_entries.c.index_no == sa.bindparam("b_index"),
    dynamodb_index_entries.c.hk == sa.bindparam("b_hk"),
    dynamodb_index_entries.c.ipk == sa.bindparam("b_ipk"),
    dynamodb_index_entries.c.isk == sa.bindparam("b_isk"),
    dynamodb_index_entries.c.pk == sa.bindparam("b_pk"),
    dynamodb_index_entries.c.sk == sa.bindparam("b_sk"))
_LAST_SEQ = sa.select(dynamodb_streams.c.last_seq).where(
    dynamodb_streams.c.id == sa.bindparam("b_id"))
_SET_SEQ = dynamodb_streams.update().where(dynamodb_streams.c.id == sa.bindparam("b_id"))
_NEXT_SEQ = (dynamodb_streams.update()
             .where(dynamodb_streams.c.id == sa.bindparam("b_id"))
             .values(last_seq=dynamodb_streams.c.last_seq + sa.bindparam("b_count"))
             .returning(dynamodb_streams.c.last_seq))
_INSERT_RECORD = dynamodb_stream_records.insert()

# As the Streams API spells it (Lambda's event spells the same members principalId/type).
SERVICE_IDENTITY = {"PrincipalId": "dynamodb.amazonaws.com", "Type": "Service"}


@dataclass
class Change:
    """One item's change in a write: `new` None deletes it."""

    table: Table
    key: ItemKey
    old: Item | None
    new: Item | None
    by_service: bool = False    # a TTL deletion (its stream record names DynamoDB)
    new_size: int | None = None     # the new item's size, when the caller knows it already


def key_params(table: Table, key: ItemKey) -> dict[str, Any]:
    return {"b_uid": table.uid, "b_hk": key.hk, "b_pk": key.pk, "b_sk": key.sk}


def read_raw(store: Store, table: Table, key: ItemKey) -> bytes | None:
    """The stored JSON of the item at `key` now (outside a transaction)."""
    found = store.rows(_READ_ITEM, key_params(table, key))
    return found[0][0] if found else None


def read_on(conn: Connection, table: Table, key: ItemKey) -> Item | None:
    """The item at `key` as the transaction on `conn` sees it."""
    row = conn.execute(_READ_ITEM, key_params(table, key)).first()
    return orjson.loads(row[0]) if row is not None else None


def read_for_write(store: Store, conn: Connection, table: Table, key: ItemKey) -> Item | None:
    """The item at `key` as the write transaction on `conn` starts from (see the module)."""
    if store.is_sqlite:
        found = store.rows(_READ_ITEM, key_params(table, key))
    else:
        found = conn.execute(_READ_ITEM_LOCKED, key_params(table, key)).all()
    return orjson.loads(found[0][0]) if found else None


def commit(store: Store, conn: Connection, changes: list[Change], region: str) -> None:
    """Write the changes, their index entries and their stream records in `conn`'s
    transaction. A change that leaves the item as it was writes nothing (DynamoDB Streams
    writes no record for it either)."""
    records: dict[int, list[dict[str, Any]]] = {}
    for change in changes:
        old, new, table = change.old, change.new, change.table
        if old is None and new is None:
            continue
        if old is not None and new is not None and attributes.equal({"M": old}, {"M": new}):
            continue
        _write_item(store, conn, change)
        if table.indexes:
            _write_entries(store, conn, change)
        if table.stream is not None:
            records.setdefault(table.stream.id, []).append(
                stream_record(change, region, table.stream.view_type))
    for stream_id, batch in records.items():
        _append_records(store, conn, stream_id, batch)


def _write_item(store: Store, conn: Connection, change: Change) -> None:
    params = key_params(change.table, change.key)
    if change.new is None:
        store.execute_many(conn, _DELETE_ITEM, [params])
        return
    body = orjson.dumps(change.new)
    size = change.new_size if change.new_size is not None else attributes.item_size(change.new)
    values = {"item": body, "size": size,
              "expires": expiry(change.table, change.new)}
    if change.old is None:
        store.execute_many(conn, _INSERT_ITEM, [{
            "table_uid": change.table.uid, "hk": change.key.hk, "pk": change.key.pk,
            "sk": change.key.sk, **values}])
    else:
        store.execute_many(conn, _UPDATE_ITEM, [{**params, **values}])


def expiry(table: Table, item: Item) -> int | None:
    """When TTL deletes the item: its TTL attribute, if that is a Number (epoch seconds)."""
    if table.ttl_attribute is None:
        return None
    value = item.get(table.ttl_attribute)
    if value is None or "N" not in value:
        return None
    try:
        seconds = int(Decimal(value["N"]))
    except (InvalidOperation, OverflowError):
        return None
    return max(-_MAX_EXPIRY, min(_MAX_EXPIRY, seconds))


def _write_entries(store: Store, conn: Connection, change: Change) -> None:
    table, key = change.table, change.key
    gone, added = [], []
    for index in table.indexes.values():
        before = index_entry(index, change.old) if change.old is not None else None
        after = index_entry(index, change.new) if change.new is not None else None
        if before == after:
            continue
        if before is not None:
            gone.append({"b_uid": table.uid, "b_index": index.number, "b_hk": before[0],
                         "b_ipk": before[1], "b_isk": before[2], "b_pk": key.pk,
                         "b_sk": key.sk})
        if after is not None:
            added.append({"table_uid": table.uid, "index_no": index.number, "hk": after[0],
                          "ipk": after[1], "isk": after[2], "pk": key.pk, "sk": key.sk,
                          "thk": key.hk})
    if gone:
        store.execute_many(conn, _DELETE_ENTRY, gone)
    if added:
        store.execute_many(conn, _INSERT_ENTRY, added)


def check_index_keys(table: Table, item: Item) -> None:
    """AWS's error if the item has a mistyped or empty value for an index key."""
    for index in table.indexes.values():
        index_entry(index, item)


# ------------------------------------------------------------------------------------------
# Stream records.


def stream_record(change: Change, region: str, view_type: str) -> dict[str, Any]:
    """The record DynamoDB Streams shows for a change (its SequenceNumber is added on read)."""
    old, new = change.old, change.new
    keys = change.key.attributes
    body: dict[str, Any] = {"ApproximateCreationDateTime": int(time.time()), "Keys": keys}
    size = attributes.item_size(keys)
    if new is not None and view_type in ("NEW_IMAGE", "NEW_AND_OLD_IMAGES"):
        body["NewImage"] = new
        size += attributes.item_size(new)
    if old is not None and view_type in ("OLD_IMAGE", "NEW_AND_OLD_IMAGES"):
        body["OldImage"] = old
        size += attributes.item_size(old)
    body["SizeBytes"] = size
    body["StreamViewType"] = view_type
    record: dict[str, Any] = {
        "eventID": f"{random.getrandbits(128):032x}",
        "eventName": "INSERT" if old is None else "REMOVE" if new is None else "MODIFY",
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": region,
        "dynamodb": body,
    }
    if change.by_service:
        record["userIdentity"] = SERVICE_IDENTITY
    return record


def _append_records(store: Store, conn: Connection, stream_id: int,
                    records: list[dict[str, Any]]) -> None:
    """Take the stream's next sequence numbers and write the records under them."""
    count = len(records)
    if store.is_sqlite:
        last = store.rows(_LAST_SEQ, {"b_id": stream_id})[0][0] + count
        store.execute_many(conn, _SET_SEQ, [{"b_id": stream_id, "last_seq": last}])
    else:
        last = conn.execute(_NEXT_SEQ, {"b_id": stream_id, "b_count": count}).scalar_one()
    now = time.time()
    store.execute_many(conn, _INSERT_RECORD, [
        {"stream_id": stream_id, "seq": last - count + 1 + i, "created": now,
         "record": orjson.dumps(record)} for i, record in enumerate(records)])


# ------------------------------------------------------------------------------------------
# Transactions.


def retrying(store: Store, work: Callable[[Connection], T]) -> T:
    """Run `work` in a write transaction; on PostgreSQL, run it again when it lost a race
    (two inserts of one new item, a deadlock between transactions over the same items)."""
    for attempt in range(_RETRIES):
        try:
            with store.write() as conn:
                return work(conn)
        except (sa.exc.IntegrityError, sa.exc.OperationalError) as exc:
            if store.is_sqlite or attempt == _RETRIES - 1:
                raise
            log.debug("write lost a race (%s); again", type(exc.orig).__name__)
            time.sleep(random.uniform(0, 0.002 * (attempt + 1)))
    raise AssertionError("unreachable")
