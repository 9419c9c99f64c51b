"""What item operations need to know of a table (`Table`), read from its row and kept per row
version, and how an item's keys are found and checked against it.

Item operations look a table up with one prepared read of (uid, version) and reuse the parsed
definition while the version stands; any change of the table (UpdateTable, TTL, a stream
switched on or off) moves the version.
"""
from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import sqlalchemy as sa

from ..state.store import Store
from . import errors, keycodec
from .attributes import AttributeValue, Item, kind_of
from .schema import dynamodb_streams, dynamodb_tables

_NAME = re.compile(r"[a-zA-Z0-9_.-]+")
_ARN = re.compile(r"arn:aws[a-z-]*:dynamodb:([a-z0-9-]+):(\d{12}):table/(.+)")
MAX_HASH_KEY = 2048
MAX_RANGE_KEY = 1024
_KEPT = 4096

_BRIEF = sa.select(dynamodb_tables.c.uid, dynamodb_tables.c.version).where(
    dynamodb_tables.c.region == sa.bindparam("region"),
    dynamodb_tables.c.name == sa.bindparam("name"))
_FULL = (sa.select(dynamodb_tables, dynamodb_streams.c.view_type, dynamodb_streams.c.arn)
         .select_from(dynamodb_tables.outerjoin(
             dynamodb_streams, dynamodb_streams.c.id == dynamodb_tables.c.stream_id))
         .where(dynamodb_tables.c.uid == sa.bindparam("uid")))


@dataclass(frozen=True)
class KeySchema:
    hash_name: str
    hash_type: str
    range_name: str | None = None
    range_type: str | None = None

    @property
    def names(self) -> tuple[str, ...]:
        return (self.hash_name,) if self.range_name is None else (
            self.hash_name, self.range_name)

    @classmethod
    def of(cls, elements: list[dict[str, str]], types: dict[str, str]) -> "KeySchema":
        hash_name = next(e["AttributeName"] for e in elements if e["KeyType"] == "HASH")
        range_name = next((e["AttributeName"] for e in elements if e["KeyType"] == "RANGE"),
                          None)
        return cls(hash_name, types[hash_name], range_name,
                   types[range_name] if range_name else None)


@dataclass(frozen=True)
class Index:
    name: str
    number: int                 # `index_no` of its entry rows
    is_global: bool
    key: KeySchema
    projection: str             # ALL, KEYS_ONLY, INCLUDE
    non_key: tuple[str, ...]    # INCLUDE's NonKeyAttributes

    def projected(self, item: Item, table_key: KeySchema) -> Item:
        """The item as this index holds it."""
        if self.projection == "ALL":
            return item
        keep = set(table_key.names) | set(self.key.names) | set(self.non_key)
        return {k: v for k, v in item.items() if k in keep}


@dataclass(frozen=True)
class Stream:
    id: int
    arn: str
    view_type: str


@dataclass(frozen=True)
class Table:
    uid: int
    version: int
    region: str
    name: str
    created: float
    spec: dict[str, Any]
    key: KeySchema
    attribute_types: dict[str, str]
    indexes: dict[str, Index]
    stream: Stream | None       # the enabled stream
    ttl_attribute: str | None
    tags: dict[str, str]

    @property
    def key_names(self) -> tuple[str, ...]:
        return self.key.names


@dataclass(frozen=True)
class ItemKey:
    """Where an item lives: its partition hash and sortable key bytes, and its key
    attributes in wire form."""

    hk: int
    pk: bytes
    sk: bytes
    attributes: Item


class Catalog:
    """Tables by name, parsed once per row version."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._tables: dict[tuple[int, int], Table] = {}
        self._lock = threading.Lock()

    def find(self, region: str, name: str) -> Table | None:
        """The table a request names (by name or ARN), or None."""
        found = self.store.rows(_BRIEF, {"region": region, "name": table_name(name, region)})
        if not found:
            return None
        uid, version = found[0]
        table = self._tables.get((uid, version))
        if table is None:
            table = self._load(uid)
        return table

    def get(self, region: str, name: str) -> Table:
        """The table an item operation names; ResourceNotFoundException if none."""
        table = self.find(region, name)
        if table is None:
            raise errors.resource_not_found()
        return table

    def by_uid(self, uid: int) -> Table | None:
        """The table with this uid as it is now (None once deleted)."""
        return self._load(uid)

    def _load(self, uid: int) -> Table | None:
        with self.store.read() as conn:
            row = conn.execute(_FULL, {"uid": uid}).mappings().first()
        if row is None:
            return None
        table = table_of(row)
        with self._lock:
            if len(self._tables) >= _KEPT:
                self._tables.clear()
            self._tables[(table.uid, table.version)] = table
        return table


def row_to_change(conn: Any, region: str, name: str) -> Any:
    """The row of a table a write transaction is about to change (by name, or by ARN);
    ResourceNotFoundException, as table operations word it, if there is none."""
    name = table_name(name, region)
    row = conn.execute(sa.select(dynamodb_tables).where(
        dynamodb_tables.c.region == region, dynamodb_tables.c.name == name)).mappings().first()
    if row is None:
        raise errors.table_not_found(name)
    return row


def table_of(row: Any) -> Table:
    spec = row["spec"]
    types = {d["AttributeName"]: d["AttributeType"] for d in spec["AttributeDefinitions"]}
    key = KeySchema.of(spec["KeySchema"], types)
    indexes = {}
    for kind in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
        for index in spec.get(kind, ()):
            projection = index["Projection"]
            indexes[index["IndexName"]] = Index(
                index["IndexName"], index["IndexNo"], kind.startswith("Global"),
                KeySchema.of(index["KeySchema"], types), projection.get("ProjectionType", "ALL"),
                tuple(projection.get("NonKeyAttributes", ())))
    stream = None
    if row["stream_id"] is not None:
        stream = Stream(row["stream_id"], row["arn"], row["view_type"])
    return Table(row["uid"], row["version"], row["region"], row["name"], row["created"], spec,
                 key, types, indexes, stream, row["ttl_attribute"], row["tags"])


@lru_cache(maxsize=4096)
def table_name(given: str, region: str | None = None) -> str:
    """The table a request's TableName names: a name, or the table's ARN (which DynamoDB
    accepts wherever it takes a name); AWS's validation error for anything else."""
    found = _ARN.fullmatch(given)
    if found is not None:
        if region is not None and found.group(1) != region:
            raise errors.invalid(f"Invalid TableArn: Table ARN region {found.group(1)} does "
                                 f"not match the request region {region}")
        given = found.group(3)
    problems = []
    if len(given) < 3:
        problems.append(f"Value '{given}' at 'tableName' failed to satisfy constraint: Member "
                        "must have length greater than or equal to 3")
    if len(given) > 255:
        problems.append(f"Value '{given}' at 'tableName' failed to satisfy constraint: Member "
                        "must have length less than or equal to 255")
    if not _NAME.fullmatch(given):
        problems.append(f"Value '{given}' at 'tableName' failed to satisfy constraint: Member "
                        "must satisfy regular expression pattern: [a-zA-Z0-9_.-]+")
    if problems:
        n = len(problems)
        raise errors.invalid(f"{n} validation error{'s' if n > 1 else ''} detected: "
                             + "; ".join(problems))
    return given


# ------------------------------------------------------------------------------------------
# Keys of items.


def item_key(table: Table, item: Item) -> ItemKey:
    """The key of an item being written (PutItem and the like); AWS's errors for a missing,
    mistyped, empty or oversized key attribute."""
    key = table.key
    pk = _key_bytes(item, key.hash_name, key.hash_type)
    if len(pk) > MAX_HASH_KEY:
        raise errors.invalid("One or more parameter values were invalid: Size of hashkey has "
                             f"exceeded the maximum size limit of{MAX_HASH_KEY} bytes")
    sk = b""
    attrs = {key.hash_name: item[key.hash_name]}
    if key.range_name is not None:
        assert key.range_type is not None
        sk = _key_bytes(item, key.range_name, key.range_type)
        if len(sk) > MAX_RANGE_KEY:
            raise errors.invalid("One or more parameter values were invalid: Aggregated size "
                                 "of all range keys has exceeded the size limit of "
                                 f"{MAX_RANGE_KEY} bytes")
        attrs[key.range_name] = item[key.range_name]
    return ItemKey(keycodec.partition_hash(pk), pk, sk, attrs)


def request_key(table: Table, key: Item) -> ItemKey:
    """The key a request names (GetItem, DeleteItem, UpdateItem, ...): exactly the table's
    key attributes, of their types."""
    names = table.key.names
    if len(key) != len(names) or any(n not in key for n in names):
        raise errors.key_mismatch()
    for name in names:
        if kind_of(key[name]) != table.attribute_types[name]:
            raise errors.key_mismatch()
    return item_key(table, key)


def _key_bytes(item: Item, name: str, kind: str) -> bytes:
    value = item.get(name)
    if value is None:
        raise errors.invalid(f"One or more parameter values were invalid: Missing the key "
                             f"{name} in the item")
    found = kind_of(value)
    if found != kind:
        raise errors.invalid(f"One or more parameter values were invalid: Type mismatch for "
                             f"key {name} expected: {kind} actual: {found}")
    raw = value[kind]
    if raw == "":
        word = "string" if kind == "S" else "binary"
        raise errors.invalid("One or more parameter values are not valid. The AttributeValue "
                             f"for a key attribute cannot contain an empty {word} value. "
                             f"Key: {name}")
    return keycodec.encode(kind, raw)


def key_attributes(item: Item, table: Table) -> Item:
    return {name: item[name] for name in table.key.names}


def index_entry(index: Index, item: Item) -> tuple[int, bytes, bytes] | None:
    """(hash, partition key, sort key) of the item in an index; None when the item lacks an
    index key attribute (indexes are sparse). Raises AWS's error for a mistyped or empty
    index key value."""
    parts = []
    for name, kind in ((index.key.hash_name, index.key.hash_type),
                       (index.key.range_name, index.key.range_type)):
        if name is None:
            parts.append(b"")
            continue
        value = item.get(name)
        if value is None:
            return None
        parts.append(index_value(index, name, kind, value))
    return keycodec.partition_hash(parts[0]), parts[0], parts[1]


def index_value(index: Index, name: str, kind: str | None, value: AttributeValue) -> bytes:
    found = kind_of(value)
    if found != kind:
        raise errors.invalid("One or more parameter values were invalid: Type mismatch for "
                             f"Index Key {name} Expected: {kind} Actual: {found} IndexName: "
                             f"{index.name}")
    raw = value[found]
    if raw == "":
        word = "string" if found == "S" else "binary"
        raise errors.invalid("One or more parameter values are not valid. A value specified "
                             "for a secondary index key is not supported. The AttributeValue "
                             f"for a key attribute cannot contain an empty {word} value. "
                             f"IndexName: {index.name}, IndexKey: {name}")
    return keycodec.encode(found, raw)
