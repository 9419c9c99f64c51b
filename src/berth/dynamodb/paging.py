"""What Query and Scan share: Select and projections, the read loop with DynamoDB's limits
(Limit counts items read before the filter; a page stops at 1 MB), and the keys that mark
where a page stopped (LastEvaluatedKey) or a request starts (ExclusiveStartKey).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from . import attributes, capacity, keycodec
from .catalog import Index, Table
from .errors import invalid
from .expressions import Path, evaluate, project
from .expressions.syntax import Condition

PAGE_BYTES = 1024 * 1024
CHUNK = 256

# A row read for a page: item JSON, its size, the item's key bytes, and its index key bytes
# (None, None when reading the table itself).
Row = tuple[bytes, int, bytes, bytes, bytes | None, bytes | None]
# Fetch up to n rows after a row (None: from the start), in the page's order.
Fetch = Callable[[Row | None, int], list[Row]]


@dataclass(frozen=True)
class Shaping:
    """How rows become a page's items: the index's projection, the filter, Select and the
    projection expression."""

    table: Table
    index: Index | None
    select: str
    paths: tuple[Path, ...] | None
    filter: Condition | None

    @property
    def untouched(self) -> bool:
        """Whether stored items go out as they are (no parsing needed)."""
        return (self.filter is None and self.paths is None and self.select != "COUNT"
                and not self.index_projected)

    @property
    def index_projected(self) -> bool:
        """Whether items are cut to the index's projection: always for a global index, which
        holds nothing else; for a local one only when Select asks for what it projects
        (DynamoDB fetches anything else from the table)."""
        index = self.index
        if index is None or index.projection == "ALL":
            return False
        return index.is_global or self.select == "ALL_PROJECTED_ATTRIBUTES"


def shaping(req: dict[str, Any], table: Table, index: Index | None,
            paths: tuple[Path, ...] | None, filter_: Condition | None) -> Shaping:
    select = req.get("Select")
    if select is None:
        select = ("SPECIFIC_ATTRIBUTES" if paths is not None else
                  "ALL_PROJECTED_ATTRIBUTES" if index is not None else "ALL_ATTRIBUTES")
    if paths is not None and select != "SPECIFIC_ATTRIBUTES":
        raise invalid("Cannot specify the AttributesToGet when choosing to get "
                      f"{select}" if "AttributesToGet" in req else
                      f"One or more parameter values were invalid: Select type {select} is not "
                      "compatible with ProjectionExpression")
    if select == "SPECIFIC_ATTRIBUTES" and paths is None:
        raise invalid("One or more parameter values were invalid: Select type "
                      "SPECIFIC_ATTRIBUTES requires ProjectionExpression or AttributesToGet")
    if select == "ALL_PROJECTED_ATTRIBUTES" and index is None:
        raise invalid("ALL_PROJECTED_ATTRIBUTES can be used only when Querying using an "
                      "IndexName")
    if (select == "ALL_ATTRIBUTES" and index is not None and index.is_global
            and index.projection != "ALL"):
        raise invalid("One or more parameter values were invalid: Select type ALL_ATTRIBUTES "
                      f"is not supported for global secondary index {index.name} because its "
                      "projection type is not ALL")
    return Shaping(table, index, select, paths, filter_)


@dataclass
class Page:
    items: list[Any]
    scanned: int
    last: Row | None      # where the page stopped early, if it did
    size: int = 0         # bytes of the items read (filtered out or not)

    def answer(self, shape: Shaping, req: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {"Count": len(self.items), "ScannedCount": self.scanned}
        out.update(capacity.report(req, shape.table.name, capacity.read_units(
            self.size, bool(req.get("ConsistentRead"))), write=False))
        if shape.select != "COUNT":
            out["Items"] = self.items
        if self.last is not None:
            out["LastEvaluatedKey"] = row_key(self.last, shape.table, shape.index)
        return out


def read_page(fetch: Fetch, shape: Shaping, limit: int | None, start: Row | None) -> Page:
    """Read from after `start` (ExclusiveStartKey) until the page is full or rows run out."""
    items: list[Any] = []
    scanned, size = 0, 0
    after = start
    untouched = shape.untouched
    while True:
        want = CHUNK if limit is None else min(CHUNK, limit - scanned)
        rows = fetch(after, want)
        for row in rows:
            scanned += 1
            size += row[1]
            after = row
            if untouched:
                items.append(orjson.Fragment(row[0]))
            else:
                item = _shaped(orjson.loads(row[0]), shape)
                if item is not None:
                    items.append(item)
            if (limit is not None and scanned >= limit) or size >= PAGE_BYTES:
                return Page(items, scanned, row, size)
        if len(rows) < want:
            return Page(items, scanned, None, size)


def _shaped(item: attributes.Item, shape: Shaping) -> attributes.Item | None:
    if shape.index_projected:
        assert shape.index is not None
        item = shape.index.projected(item, shape.table.key)
    if shape.filter is not None and not evaluate(shape.filter, item):
        return None
    if shape.paths is not None:
        return project(item, shape.paths)
    return item


def row_key(row: Row, table: Table, index: Index | None) -> attributes.Item:
    """LastEvaluatedKey: the table's key of the row's item, and the index's key with it."""
    key = table.key
    out = {key.hash_name: {key.hash_type: keycodec.decode(key.hash_type, row[2])}}
    if key.range_name is not None:
        assert key.range_type is not None
        out[key.range_name] = {key.range_type: keycodec.decode(key.range_type, row[3])}
    if index is not None:
        assert row[4] is not None and row[5] is not None
        ikey = index.key
        out[ikey.hash_name] = {ikey.hash_type: keycodec.decode(ikey.hash_type, row[4])}
        if ikey.range_name is not None:
            assert ikey.range_type is not None
            out[ikey.range_name] = {ikey.range_type: keycodec.decode(ikey.range_type, row[5])}
    return out


def start_key(req: dict[str, Any], table: Table, index: Index | None) -> Row | None:
    """ExclusiveStartKey as a row position (its item fields empty); AWS's error when it does
    not have exactly the table's (and index's) key attributes."""
    given = req.get("ExclusiveStartKey")
    if given is None:
        return None
    esk = attributes.ingest_item(given)
    names = set(table.key.names) | (set(index.key.names) if index is not None else set())
    if set(esk) != names:
        raise invalid("The provided starting key is invalid: The provided key element does not "
                      "match the schema")
    try:
        parts = [_key_part(esk, table.key.hash_name, table.key.hash_type),
                 _key_part(esk, table.key.range_name, table.key.range_type)]
        if index is not None:
            parts += [_key_part(esk, index.key.hash_name, index.key.hash_type),
                      _key_part(esk, index.key.range_name, index.key.range_type)]
        else:
            parts += [None, None]
    except KeyError:
        raise invalid("The provided starting key is invalid: The provided key element does not "
                      "match the schema") from None
    return (b"", 0, parts[0] or b"", parts[1] or b"", parts[2], parts[3])


def _key_part(item: attributes.Item, name: str | None, kind: str | None) -> bytes:
    if name is None:
        return b""
    value = item[name]
    if attributes.kind_of(value) != kind:
        raise KeyError(name)
    assert kind is not None
    return keycodec.encode(kind, value[kind])
