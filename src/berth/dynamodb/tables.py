"""CreateTable, DescribeTable, ListTables, UpdateTable, DeleteTable.

A table is usable as soon as CreateTable returns: the answer says CREATING, as DynamoDB's does,
and the first DescribeTable already says ACTIVE, which is what the SDKs' `table_exists`
waiters poll for. DeleteTable likewise answers DELETING and the table is gone at once; its
items are purged in the background (`purge`).
"""
from __future__ import annotations

import time
import uuid
from typing import Any

import orjson
import sqlalchemy as sa

from ..api.app import RequestContext, quick_read
from ..api.errors import ServiceError
from ..state.store import Store
from . import streams, table_spec
from .catalog import Catalog, Table, index_entry, row_to_change, table_name, table_of
from .describe import describe
from .errors import in_use, invalid, table_not_found
from .schema import dynamodb_index_entries, dynamodb_items, dynamodb_purges, dynamodb_streams, \
    dynamodb_tables

# How long a deleted table's rows wait before the purge removes them: writes that found the
# table just before it went have long finished by then.
PURGE_DELAY = 5.0


class Tables:
    store: Store
    catalog: Catalog

    def create_table(self, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
        now = time.time()
        spec = table_spec.create_spec(req, str(uuid.uuid4()), now)
        stream_spec = req.get("StreamSpecification")
        if stream_spec:
            table_spec.check_stream_specification(stream_spec)
        tags = {t["Key"]: t["Value"] for t in req.get("Tags") or ()}
        name = table_name(req["TableName"], ctx.region)
        with self.store.write() as conn:
            if conn.execute(sa.select(dynamodb_tables.c.uid).where(
                    dynamodb_tables.c.region == ctx.region,
                    dynamodb_tables.c.name == name)).first() is not None:
                raise in_use(f"Table already exists: {name}")
            uid = int(conn.execute(dynamodb_tables.insert().values(
                region=ctx.region, name=name, created=now, spec=spec, tags=tags,
                version=1)).inserted_primary_key[0])
            if stream_spec and stream_spec.get("StreamEnabled"):
                stream_id = streams.create(
                    conn, region=ctx.region, account=ctx.account_id, table_name=name,
                    table_uid=uid, view_type=stream_spec["StreamViewType"],
                    key_schema=spec["KeySchema"], now=now)
                conn.execute(dynamodb_tables.update().where(dynamodb_tables.c.uid == uid)
                             .values(stream_id=stream_id))
        table = self._table(ctx, name)
        return {"TableDescription": describe(
            self.store, table, ctx.account_id, status="CREATING", counted=False,
            index_status={n: "CREATING" for n in table.indexes})}

    @quick_read
    def describe_table(self, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
        return {"Table": describe(self.store, self._table(ctx, req["TableName"]),
                                  ctx.account_id)}

    @quick_read
    def list_tables(self, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
        limit = req.get("Limit", 100)
        stmt = (sa.select(dynamodb_tables.c.name).where(dynamodb_tables.c.region == ctx.region)
                .order_by(dynamodb_tables.c.name).limit(limit + 1))
        if req.get("ExclusiveStartTableName"):
            stmt = stmt.where(dynamodb_tables.c.name > req["ExclusiveStartTableName"])
        with self.store.read() as conn:
            names = [row[0] for row in conn.execute(stmt)]
        out: dict[str, Any] = {"TableNames": names[:limit]}
        if len(names) > limit:
            out["LastEvaluatedTableName"] = names[limit - 1]
        return out

    def delete_table(self, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
        table = self._table(ctx, req["TableName"])
        if table.spec.get("DeletionProtectionEnabled"):
            raise invalid("Resource cannot be deleted as it is currently protected against "
                          "deletion. Disable deletion protection first.")
        shown = describe(self.store, table, ctx.account_id, status="DELETING")
        now = time.time()
        with self.store.write() as conn:
            gone = conn.execute(dynamodb_tables.delete().where(
                dynamodb_tables.c.uid == table.uid)).rowcount
            if not gone:
                raise table_not_found(table.name)
            if table.stream is not None:
                streams.disable(conn, table.stream.id, now)
            conn.execute(dynamodb_purges.insert().values(table_uid=table.uid,
                                                         due=now + PURGE_DELAY))
        return {"TableDescription": shown}

    def update_table(self, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
        name = table_name(req["TableName"], ctx.region)
        changes = [k for k in ("BillingMode", "ProvisionedThroughput",
                               "GlobalSecondaryIndexUpdates", "StreamSpecification",
                               "SSESpecification", "TableClass", "DeletionProtectionEnabled",
                               "ReplicaUpdates", "OnDemandThroughput") if k in req]
        if not changes:
            raise invalid("At least one of ProvisionedThroughput, BillingMode, "
                          "UpdateStreamEnabled, GlobalSecondaryIndexUpdates or "
                          "SSESpecification or ReplicaUpdates is required")
        now = time.time()
        created_indexes: list[str] = []
        with self.store.write() as conn:
            row = row_to_change(conn, ctx.region, name)
            spec = orjson.loads(orjson.dumps(row["spec"]))
            values: dict[str, Any] = {}
            _update_billing(spec, req, now)
            if "TableClass" in req:
                spec["TableClass"] = req["TableClass"]
            if "DeletionProtectionEnabled" in req:
                spec["DeletionProtectionEnabled"] = req["DeletionProtectionEnabled"]
            if "SSESpecification" in req:
                spec["SSESpecification"] = req["SSESpecification"]
            if req.get("GlobalSecondaryIndexUpdates"):
                created_indexes = _update_indexes(spec, req)
            if "StreamSpecification" in req:
                values["stream_id"] = _update_stream(conn, ctx, row, req["StreamSpecification"],
                                                     now)
            values["spec"] = spec
            conn.execute(dynamodb_tables.update().where(dynamodb_tables.c.uid == row["uid"])
                         .values(version=dynamodb_tables.c.version + 1, **values))
            new_row = conn.execute(sa.select(dynamodb_tables, dynamodb_streams.c.view_type,
                                             dynamodb_streams.c.arn)
                                   .select_from(dynamodb_tables.outerjoin(
                                       dynamodb_streams,
                                       dynamodb_streams.c.id == dynamodb_tables.c.stream_id))
                                   .where(dynamodb_tables.c.uid == row["uid"])).mappings().one()
            table = table_of(new_row)
            dropped = {i["IndexNo"] for kind in ("GlobalSecondaryIndexes",)
                       for i in row["spec"].get(kind, ())} - {
                index.number for index in table.indexes.values()}
            for number in dropped:
                conn.execute(dynamodb_index_entries.delete().where(
                    dynamodb_index_entries.c.table_uid == table.uid,
                    dynamodb_index_entries.c.index_no == number))
            for index_name in created_indexes:
                _backfill(conn, table, index_name)
        status = {n: "CREATING" for n in created_indexes}
        return {"TableDescription": describe(self.store, table, ctx.account_id,
                                             status="UPDATING", index_status=status)}

    def _table(self, ctx: RequestContext, name: str) -> Table:
        table = self.catalog.find(ctx.region, name)
        if table is None:
            raise table_not_found(table_name(name))
        return table


def _update_billing(spec: dict[str, Any], req: dict[str, Any], now: float) -> None:
    mode = req.get("BillingMode", spec["BillingMode"])
    throughput = req.get("ProvisionedThroughput")
    if "BillingMode" in req:
        if mode == "PROVISIONED" and throughput is None and spec["BillingMode"] != mode:
            table_spec.check_billing(mode, None)
        if mode == "PAY_PER_REQUEST":
            table_spec.check_billing(mode, throughput)
            if spec["BillingMode"] != mode:
                spec["PayPerRequestSince"] = now
            spec.pop("ProvisionedThroughput", None)
        spec["BillingMode"] = mode
        spec["BillingModeGiven"] = True
    if throughput is not None:
        if mode == "PAY_PER_REQUEST":
            table_spec.check_billing(mode, throughput)
        spec["ProvisionedThroughput"] = throughput


def _update_indexes(spec: dict[str, Any], req: dict[str, Any]) -> list[str]:
    """Apply GlobalSecondaryIndexUpdates to the spec; the names of the indexes created."""
    updates = req["GlobalSecondaryIndexUpdates"]
    if sum(1 for u in updates if "Create" in u or "Delete" in u) > 1:
        raise invalid("One or more parameter values were invalid: Only 1 online index can be "
                      "created or deleted simultaneously per table")
    gsis = spec.setdefault("GlobalSecondaryIndexes", [])
    names = {i["IndexName"] for i in gsis} | {
        i["IndexName"] for i in spec.get("LocalSecondaryIndexes", ())}
    created = []
    for update in updates:
        if "Create" in update:
            index = update["Create"]
            if index["IndexName"] in names:
                raise invalid("One or more parameter values were invalid: Duplicate index "
                              f"name: {index['IndexName']}")
            table_spec.check_index(index, is_global=True, table_key=spec["KeySchema"],
                                   mode=spec["BillingMode"])
            definitions = {d["AttributeName"]: d for d in spec["AttributeDefinitions"]}
            for d in req.get("AttributeDefinitions") or ():
                known = definitions.get(d["AttributeName"])
                if known is not None and known["AttributeType"] != d["AttributeType"]:
                    raise invalid("One or more parameter values were invalid: Cannot change "
                                  f"the type of attribute {d['AttributeName']}")
                definitions[d["AttributeName"]] = d
            gsis.append({**index, "IndexNo": spec["NextIndexNo"]})
            spec["NextIndexNo"] += 1
            used = table_spec.key_names(spec)
            spec["AttributeDefinitions"] = [d for n, d in definitions.items() if n in used]
            table_spec.check_definitions(spec["AttributeDefinitions"], used)
            created.append(index["IndexName"])
        elif "Delete" in update:
            target = update["Delete"]["IndexName"]
            if not any(i["IndexName"] == target for i in gsis):
                raise _index_not_found(target)
            gsis[:] = [i for i in gsis if i["IndexName"] != target]
            used = table_spec.key_names(spec)
            spec["AttributeDefinitions"] = [d for d in spec["AttributeDefinitions"]
                                            if d["AttributeName"] in used]
        elif "Update" in update:
            target = update["Update"]["IndexName"]
            found = next((i for i in gsis if i["IndexName"] == target), None)
            if found is None:
                raise _index_not_found(target)
            if "ProvisionedThroughput" in update["Update"]:
                found["ProvisionedThroughput"] = update["Update"]["ProvisionedThroughput"]
    if not gsis:
        del spec["GlobalSecondaryIndexes"]
    return created


def _index_not_found(name: str) -> Exception:
    return ServiceError("ResourceNotFoundException",
                        f"Requested resource not found: Index: {name} not found")


def _update_stream(conn: Any, ctx: RequestContext, row: Any, spec: dict[str, Any],
                   now: float) -> int | None:
    table_spec.check_stream_specification(spec)
    current = row["stream_id"]
    if spec.get("StreamEnabled"):
        if current is not None:
            arn = conn.execute(sa.select(dynamodb_streams.c.arn).where(
                dynamodb_streams.c.id == current)).scalar_one()
            raise in_use(f"Table {row['name']} already has an enabled stream: {arn}")
        return streams.create(conn, region=ctx.region, account=ctx.account_id,
                              table_name=row["name"], table_uid=row["uid"],
                              view_type=spec["StreamViewType"],
                              key_schema=row["spec"]["KeySchema"], now=now)
    if current is None:
        raise invalid("Table already has no stream enabled")
    streams.disable(conn, current, now)
    return None


def _backfill(conn: Any, table: Table, index_name: str) -> None:
    """Index the table's existing items (those with well-typed index keys)."""
    index = table.indexes[index_name]
    rows = conn.execute(sa.select(dynamodb_items.c.hk, dynamodb_items.c.pk, dynamodb_items.c.sk,
                                  dynamodb_items.c.item)
                        .where(dynamodb_items.c.table_uid == table.uid))
    entries = []
    for hk, pk, sk, body in rows:
        try:
            entry = index_entry(index, orjson.loads(body))
        except ServiceError:
            continue    # DynamoDB reports such items as index violations; they stay out
        if entry is not None:
            entries.append({"table_uid": table.uid, "index_no": index.number, "hk": entry[0],
                            "ipk": entry[1], "isk": entry[2], "pk": pk, "sk": sk, "thk": hk})
        if len(entries) >= 1000:
            conn.execute(dynamodb_index_entries.insert(), entries)
            entries = []
    if entries:
        conn.execute(dynamodb_index_entries.insert(), entries)
