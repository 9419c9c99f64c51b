"""Query and Scan.

A Query is one range read of the primary key (or of an index's entries joined to their items),
ordered by the database on the sort key's sortable bytes; a Scan walks the partition-hash ring
(a segment of a parallel scan is one slice of it). Pages follow `paging`'s rules.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import sqlalchemy as sa

from ..api.app import RequestContext, quick_read
from ..state.store import Store
from . import keycodec, requests
from .attributes import kind_of
from .catalog import Catalog, Index, KeySchema, Table
from .errors import invalid
from .expressions.syntax import (And, Between, Compare, Condition, Function, In, Not, Or, Path,
                                 Size, Value)
from .paging import Row, Shaping, read_page, shaping, start_key
from .schema import dynamodb_index_entries as entries
from .schema import dynamodb_items as items

_FLIP = {"=": "=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}
_JOIN = entries.join(items, sa.and_(items.c.table_uid == entries.c.table_uid,
                                    items.c.hk == entries.c.thk, items.c.pk == entries.c.pk,
                                    items.c.sk == entries.c.sk))


@dataclass(frozen=True)
class KeyRange:
    """A Query's key condition: the partition key, and bounds on the sort key (bytes,
    inclusive?)."""

    pk: bytes
    lower: tuple[bytes, bool] | None = None
    upper: tuple[bytes, bool] | None = None


class Reads:
    store: Store
    catalog: Catalog

    @quick_read
    def query(self, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
        ph = requests.placeholders(req)
        if req.get("KeyConditionExpression") is None:
            raise invalid("Either the KeyConditions or KeyConditionExpression parameter must "
                          "be specified in the request.")
        key_condition = requests.condition(req, ph, "KeyConditionExpression")
        assert key_condition is not None
        filter_ = requests.condition(req, ph, "FilterExpression")
        paths = requests.projection(req, ph)
        ph.check_all_used()
        table = self.catalog.get(ctx.region, req["TableName"])
        index = _index(table, req)
        schema = index.key if index is not None else table.key
        bounds = key_range(key_condition, schema)
        if filter_ is not None:
            for path in _paths(filter_):
                if path.steps[0] in schema.names:
                    raise invalid("Filter Expression can only contain non-primary key "
                                  f"attributes: Primary key attribute: {path.steps[0]}")
        shape = shaping(req, table, index, paths, filter_)
        forward = req.get("ScanIndexForward", True)
        after = start_key(req, table, index)
        store = self.store

        def fetch(position: Row | None, n: int) -> list[Row]:
            stmt = _query_statement(index is not None, bounds.lower is not None and
                                    bounds.lower[1], bounds.lower is not None,
                                    bounds.upper is not None and bounds.upper[1],
                                    bounds.upper is not None, forward, position is not None)
            params: dict[str, Any] = {"uid": table.uid, "pk": bounds.pk,
                                      "hk": keycodec.partition_hash(bounds.pk), "n": n,
                                      "lo": bounds.lower[0] if bounds.lower else b"",
                                      "hi": bounds.upper[0] if bounds.upper else b""}
            if index is not None:
                params["ix"] = index.number
            if position is not None:
                params.update(a_pk=position[2], a_sk=position[3], a_isk=position[5] or b"")
            return store.rows(stmt, params)
        return read_page(fetch, shape, req.get("Limit"), after).answer(shape, req)

    @quick_read
    def scan(self, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
        ph = requests.placeholders(req)
        filter_ = requests.condition(req, ph, "FilterExpression")
        paths = requests.projection(req, ph)
        ph.check_all_used()
        segment, total = _segment(req)
        table = self.catalog.get(ctx.region, req["TableName"])
        index = _index(table, req)
        shape: Shaping = shaping(req, table, index, paths, filter_)
        low = segment * keycodec.RING // total
        high = (segment + 1) * keycodec.RING // total
        after = start_key(req, table, index)
        if after is not None:
            ring = keycodec.partition_hash(after[4] if index is not None else after[2])
            if not low <= ring < high:
                raise invalid("The provided Exclusive start key does not map to the provided "
                              "segment")
        store = self.store

        def fetch(position: Row | None, n: int) -> list[Row]:
            stmt = _scan_statement(index is not None, position is not None)
            params: dict[str, Any] = {"uid": table.uid, "low": low, "high": high, "n": n}
            if index is not None:
                params["ix"] = index.number
            if position is not None:
                ipk = position[4]
                params.update(a_pk=position[2], a_sk=position[3], a_ipk=ipk or b"",
                              a_isk=position[5] or b"", a_hk=keycodec.partition_hash(
                                  ipk if index is not None and ipk is not None else position[2]))
            return store.rows(stmt, params)
        return read_page(fetch, shape, req.get("Limit"), after).answer(shape, req)


def _index(table: Table, req: dict[str, Any]) -> Index | None:
    name = req.get("IndexName")
    if name is None:
        return None
    index = table.indexes.get(name)
    if index is None:
        raise invalid(f"The table does not have the specified index: {name}")
    if req.get("ConsistentRead") and index.is_global:
        raise invalid("Consistent reads are not supported on global secondary indexes")
    return index


def _segment(req: dict[str, Any]) -> tuple[int, int]:
    segment, total = req.get("Segment"), req.get("TotalSegments")
    if segment is None and total is None:
        return 0, 1
    if total is None:
        raise invalid("The TotalSegments parameter is required but was not present in the "
                      "request when Segment parameter is present")
    if segment is None:
        raise invalid("The Segment parameter is required but was not present in the request "
                      "when parameter TotalSegments is present")
    if segment >= total:
        raise invalid("The Segment parameter is zero-based and must be less than parameter "
                      f"TotalSegments: Segment: {segment} is not less than TotalSegments: "
                      f"{total}")
    return int(segment), int(total)


# ------------------------------------------------------------------------------------------
# Key conditions.


def key_range(condition: Condition, key: KeySchema) -> KeyRange:
    """The partition key and sort key bounds a KeyConditionExpression asks for; AWS's errors
    for what a key condition may not be."""
    found: dict[str, tuple[str, list[dict[str, Any]]]] = {}
    for part in _conjuncts(condition):
        name, op, values = _key_part(part)
        if name in found:
            raise invalid("KeyConditionExpressions must only contain one condition per key")
        if name not in key.names:
            raise invalid("Query key condition not supported")
        kind = key.hash_type if name == key.hash_name else key.range_type
        if any(kind_of(v) != kind for v in values):
            raise invalid("One or more parameter values were invalid: Condition parameter type "
                          "does not match schema type")
        if name == key.hash_name and op != "=":
            raise invalid("Query key condition not supported")
        if op == "begins_with" and kind == "N":
            raise invalid("Invalid KeyConditionExpression: Incorrect operand type for operator "
                          "or function; operator or function: begins_with, operand type: N")
        found[name] = (op, values)
    if key.hash_name not in found:
        raise invalid(f"Query condition missed key schema element: {key.hash_name}")
    pk = keycodec.encode(key.hash_type, found[key.hash_name][1][0][key.hash_type])
    if key.range_name not in found:
        return KeyRange(pk)
    assert key.range_type is not None and key.range_name is not None
    op, values = found[key.range_name]
    raw = [keycodec.encode(key.range_type, v[key.range_type]) for v in values]
    if op == "=":
        return KeyRange(pk, (raw[0], True), (raw[0], True))
    if op in ("<", "<="):
        return KeyRange(pk, None, (raw[0], op == "<="))
    if op in (">", ">="):
        return KeyRange(pk, (raw[0], op == ">="), None)
    if op == "BETWEEN":
        if raw[0] > raw[1]:
            raise invalid("Invalid KeyConditionExpression: The BETWEEN operator requires upper "
                          "bound to be greater than or equal to lower bound")
        return KeyRange(pk, (raw[0], True), (raw[1], True))
    end = keycodec.prefix_end(raw[0])      # begins_with
    return KeyRange(pk, (raw[0], True), (end, False) if end is not None else None)


def _conjuncts(condition: Condition) -> list[Condition]:
    if isinstance(condition, And):
        return _conjuncts(condition.left) + _conjuncts(condition.right)
    return [condition]


def _key_part(part: Condition) -> tuple[str, str, list[dict[str, Any]]]:
    """(attribute, operator, values) of one key condition."""
    if isinstance(part, (Or, Not, In)):
        word = {Or: "OR", Not: "NOT", In: "IN"}[type(part)]
        raise invalid("Invalid KeyConditionExpression: Invalid operator used in "
                      f"KeyConditionExpression: {word}")
    if isinstance(part, Compare):
        if part.op == "<>":
            raise invalid("Invalid KeyConditionExpression: Invalid operator used in "
                          "KeyConditionExpression: <>")
        left, right, op = part.left, part.right, part.op
        if isinstance(left, Value) and isinstance(right, Path):
            left, right, op = right, left, _FLIP[op]
        return _attribute(left), op, [_value(right)]
    if isinstance(part, Between):
        return _attribute(part.operand), "BETWEEN", [_value(part.low), _value(part.high)]
    assert isinstance(part, Function)
    if part.name != "begins_with":
        raise invalid("Invalid KeyConditionExpression: Invalid operator used in "
                      f"KeyConditionExpression: {part.name}")
    return _attribute(part.args[0]), "begins_with", [_value(part.args[1])]


def _attribute(operand: Any) -> str:
    if not isinstance(operand, Path) or len(operand.steps) != 1:
        raise invalid("Query key condition not supported")
    return str(operand.steps[0])


def _value(operand: Any) -> dict[str, Any]:
    if not isinstance(operand, Value):
        raise invalid("Query key condition not supported")
    return operand.value


def _paths(condition: Any) -> list[Path]:
    """Every document path a condition reads."""
    if isinstance(condition, Path):
        return [condition]
    if isinstance(condition, Size):
        return [condition.path]
    if isinstance(condition, Value):
        return []
    if isinstance(condition, (And, Or)):
        return _paths(condition.left) + _paths(condition.right)
    if isinstance(condition, Not):
        return _paths(condition.condition)
    if isinstance(condition, Compare):
        return _paths(condition.left) + _paths(condition.right)
    if isinstance(condition, Between):
        return [p for o in (condition.operand, condition.low, condition.high)
                for p in _paths(o)]
    if isinstance(condition, In):
        return [p for o in (condition.operand, *condition.choices) for p in _paths(o)]
    assert isinstance(condition, Function)
    return [p for o in condition.args for p in _paths(o)]


# ------------------------------------------------------------------------------------------
# Statements, built once per shape (so the store can keep them prepared).


@lru_cache(maxsize=None)
def _query_statement(on_index: bool, lower_inclusive: bool, has_lower: bool,
                     upper_inclusive: bool, has_upper: bool, forward: bool,
                     has_after: bool) -> sa.Select[Any]:
    if on_index:
        sort = entries.c.isk
        stmt = (sa.select(items.c.item, items.c.size, entries.c.pk, entries.c.sk,
                          entries.c.ipk, entries.c.isk).select_from(_JOIN)
                .where(entries.c.table_uid == sa.bindparam("uid"),
                       entries.c.index_no == sa.bindparam("ix"),
                       entries.c.hk == sa.bindparam("hk"), entries.c.ipk == sa.bindparam("pk")))
        order = [entries.c.isk, entries.c.pk, entries.c.sk]
        position = sa.tuple_(entries.c.isk, entries.c.pk, entries.c.sk)
        after = sa.tuple_(sa.bindparam("a_isk"), sa.bindparam("a_pk"), sa.bindparam("a_sk"))
    else:
        sort = items.c.sk
        stmt = (sa.select(items.c.item, items.c.size, items.c.pk, items.c.sk,
                          sa.null(), sa.null())
                .where(items.c.table_uid == sa.bindparam("uid"),
                       items.c.hk == sa.bindparam("hk"), items.c.pk == sa.bindparam("pk")))
        order = [items.c.sk]
        position, after = items.c.sk, sa.bindparam("a_sk")
    if has_lower:
        stmt = stmt.where(sort >= sa.bindparam("lo") if lower_inclusive
                          else sort > sa.bindparam("lo"))
    if has_upper:
        stmt = stmt.where(sort <= sa.bindparam("hi") if upper_inclusive
                          else sort < sa.bindparam("hi"))
    if has_after:
        stmt = stmt.where(position > after if forward else position < after)
    ordered = order if forward else [c.desc() for c in order]
    return stmt.order_by(*ordered).limit(sa.bindparam("n"))


@lru_cache(maxsize=None)
def _scan_statement(on_index: bool, has_after: bool) -> sa.Select[Any]:
    if on_index:
        stmt = (sa.select(items.c.item, items.c.size, entries.c.pk, entries.c.sk,
                          entries.c.ipk, entries.c.isk).select_from(_JOIN)
                .where(entries.c.table_uid == sa.bindparam("uid"),
                       entries.c.index_no == sa.bindparam("ix"),
                       entries.c.hk >= sa.bindparam("low"), entries.c.hk < sa.bindparam("high")))
        order = [entries.c.hk, entries.c.ipk, entries.c.isk, entries.c.pk, entries.c.sk]
        after = [sa.bindparam(n) for n in ("a_hk", "a_ipk", "a_isk", "a_pk", "a_sk")]
    else:
        stmt = (sa.select(items.c.item, items.c.size, items.c.pk, items.c.sk,
                          sa.null(), sa.null())
                .where(items.c.table_uid == sa.bindparam("uid"),
                       items.c.hk >= sa.bindparam("low"), items.c.hk < sa.bindparam("high")))
        order = [items.c.hk, items.c.pk, items.c.sk]
        after = [sa.bindparam(n) for n in ("a_hk", "a_pk", "a_sk")]
    if has_after:
        stmt = stmt.where(sa.tuple_(*order) > sa.tuple_(*after))
    return stmt.order_by(*order).limit(sa.bindparam("n"))
