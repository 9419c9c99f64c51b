"""TransactWriteItems and TransactGetItems.

Every item of a TransactWriteItems is read and checked, then all changes commit in one
transaction, or none does: a failed condition (or an update that cannot apply to the item it
found) cancels the whole transaction with one reason per item, as DynamoDB reports them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from ..api.app import RequestContext, quick_write
from ..api.errors import ServiceError
from ..state.store import Store
from . import attributes, capacity, requests
from .catalog import Catalog, ItemKey, Table, item_key, request_key
from .errors import invalid
from .expressions import apply, evaluate, parse_update, project
from .expressions.syntax import Condition, Update
from .storage import Change, check_index_keys, commit, read_for_write, read_on, retrying

_KINDS = ("ConditionCheck", "Put", "Delete", "Update")


@dataclass
class _Planned:
    kind: str
    table: Table
    key: ItemKey
    condition: Condition | None
    item: attributes.Item | None = None     # Put
    update: Update | None = None            # Update
    return_old: bool = False


class Transactions:
    store: Store
    catalog: Catalog

    @quick_write
    def transact_write_items(self, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
        planned = [self._plan(ctx, entry) for entry in req["TransactItems"]]
        seen: set[tuple[int, bytes, bytes]] = set()
        for p in planned:
            ident = (p.table.uid, p.key.pk, p.key.sk)
            if ident in seen:
                raise invalid("Transaction request cannot include multiple operations on one "
                              "item")
            seen.add(ident)

        def work(conn: Any) -> dict[str, float]:
            order = sorted(range(len(planned)), key=lambda i: (
                planned[i].table.uid, planned[i].key.hk, planned[i].key.pk, planned[i].key.sk))
            found: dict[int, attributes.Item | None] = {}
            for i in order:     # one lock order for every transaction (PostgreSQL)
                found[i] = read_for_write(self.store, conn, planned[i].table, planned[i].key)
            reasons: list[dict[str, Any]] = []
            changes: list[Change] = []
            units: dict[str, float] = {}
            for i, p in enumerate(planned):
                old = found[i]
                try:
                    new = _outcome(p, old)
                except ServiceError as exc:
                    reasons.append({"Code": "ValidationError", "Message": exc.message})
                    continue
                if new is _FAILED:
                    reason = {"Code": "ConditionalCheckFailed",
                              "Message": "The conditional request failed"}
                    if p.return_old and old is not None:
                        reason["Item"] = old
                    reasons.append(reason)
                    continue
                reasons.append({"Code": "None"})
                # Transactional writes cost twice what plain ones do (reads: a check).
                units[p.table.name] = units.get(p.table.name, 0.0) + 2 * (
                    capacity.read_units(attributes.item_size(old) if old else 0, True)
                    if p.kind == "ConditionCheck" else capacity.write_units(
                        *(attributes.item_size(x) for x in (old, new) if x)))
                if p.kind != "ConditionCheck":
                    changes.append(Change(p.table, p.key, old, new))  # type: ignore[arg-type]
            if any(r["Code"] != "None" for r in reasons):
                codes = ", ".join(r["Code"] for r in reasons)
                raise ServiceError(
                    "TransactionCanceledException",
                    f"Transaction cancelled, please refer cancellation reasons for specific "
                    f"reasons [{codes}]", CancellationReasons=reasons)
            commit(self.store, conn, changes, ctx.region)
            return units
        return capacity.report_many(req, retrying(self.store, work), write=True)

    def _plan(self, ctx: RequestContext, entry: dict[str, Any]) -> _Planned:
        given = [k for k in _KINDS if k in entry]
        if len(given) != 1:
            raise invalid("TransactItems can only contain one of Check, Put, Update or Delete")
        kind = given[0]
        spec = entry[kind]
        ph = requests.placeholders(spec)
        update = parse_update(spec["UpdateExpression"], ph) if kind == "Update" else None
        condition = requests.condition(spec, ph)
        ph.check_all_used()
        if kind == "ConditionCheck" and condition is None:
            raise invalid("1 validation error detected: Value null at "
                          "'transactItems.1.member.conditionCheck.conditionExpression' failed "
                          "to satisfy constraint: Member must not be null")
        table = self.catalog.get(ctx.region, spec["TableName"])
        item = None
        if kind == "Put":
            item = attributes.ingest_item(spec["Item"])
            key = item_key(table, item)
            check_index_keys(table, item)
            requests.check_size(item)
        else:
            key = request_key(table, attributes.ingest_item(spec["Key"]))
        requests.check_keys_untouched(update, table)
        return _Planned(kind, table, key, condition, item, update,
                        requests.return_on_failure(spec))

    def transact_get_items(self, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
        wanted = []
        for entry in req["TransactItems"]:
            spec = entry["Get"]
            ph = requests.placeholders(spec)
            paths = requests.projection(spec, ph)
            ph.check_all_used()
            table = self.catalog.get(ctx.region, spec["TableName"])
            wanted.append((table, request_key(table, attributes.ingest_item(spec["Key"])),
                           paths))
        responses = []
        units: dict[str, float] = {}
        # One consistent view of every item: a write transaction on SQLite (writers wait),
        # a repeatable-read snapshot on PostgreSQL.
        with self.store.write() as conn:
            if not self.store.is_sqlite:
                conn.execute(sa.text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"))
            for table, key, paths in wanted:
                item = read_on(conn, table, key)
                units[table.name] = units.get(table.name, 0.0) + 2 * capacity.read_units(
                    attributes.item_size(item) if item else 0, True)
                if item is None:
                    responses.append({})
                    continue
                responses.append({"Item": project(item, paths) if paths else item})
        return {"Responses": responses, **capacity.report_many(req, units, write=False)}


class _Failed:
    pass


_FAILED: Any = _Failed()


def _outcome(p: _Planned, old: attributes.Item | None) -> Any:
    """The item after this part of the transaction (None: deleted), or _FAILED."""
    if p.condition is not None and not evaluate(p.condition, old or {}):
        return _FAILED
    if p.kind == "ConditionCheck":
        return old
    if p.kind == "Put":
        return p.item
    if p.kind == "Delete":
        return None
    base = old if old is not None else dict(p.key.attributes)
    new = apply(p.update, base) if p.update is not None else base
    requests.check_size(new, updating=True)
    check_index_keys(p.table, new)
    return new
