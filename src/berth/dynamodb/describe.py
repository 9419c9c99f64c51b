"""TableDescription, as DescribeTable (and Create/Update/DeleteTable) show a table."""
from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from ..state.store import Store
from .catalog import Table
from .schema import dynamodb_index_entries, dynamodb_items, dynamodb_streams

_COUNTS = (sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(dynamodb_items.c.size), 0))
           .where(dynamodb_items.c.table_uid == sa.bindparam("uid")))
_INDEX_COUNTS = (sa.select(dynamodb_index_entries.c.index_no, sa.func.count(),
                           sa.func.coalesce(sa.func.sum(dynamodb_items.c.size), 0))
                 .select_from(dynamodb_index_entries.join(dynamodb_items, sa.and_(
                     dynamodb_items.c.table_uid == dynamodb_index_entries.c.table_uid,
                     dynamodb_items.c.hk == dynamodb_index_entries.c.thk,
                     dynamodb_items.c.pk == dynamodb_index_entries.c.pk,
                     dynamodb_items.c.sk == dynamodb_index_entries.c.sk)))
                 .where(dynamodb_index_entries.c.table_uid == sa.bindparam("uid"))
                 .group_by(dynamodb_index_entries.c.index_no))
_LATEST_STREAM = (sa.select(dynamodb_streams.c.arn, dynamodb_streams.c.label,
                            dynamodb_streams.c.view_type, dynamodb_streams.c.disabled)
                  .where(dynamodb_streams.c.table_uid == sa.bindparam("uid"))
                  .order_by(dynamodb_streams.c.id.desc()).limit(1))


def table_arn(region: str, account: str, name: str) -> str:
    return f"arn:aws:dynamodb:{region}:{account}:table/{name}"


def describe(store: Store, table: Table, account: str, status: str = "ACTIVE",
             index_status: dict[str, str] | None = None, counted: bool = True) -> dict[str, Any]:
    spec = table.spec
    arn = table_arn(table.region, account, table.name)
    counts: dict[int, tuple[int, int]] = {}
    items, size = 0, 0
    latest = None
    with store.read() as conn:
        if counted:
            items, size = conn.execute(_COUNTS, {"uid": table.uid}).one()
            if table.indexes:
                counts = {n: (c, s) for n, c, s in conn.execute(
                    _INDEX_COUNTS, {"uid": table.uid})}
        latest = conn.execute(_LATEST_STREAM, {"uid": table.uid}).first()
    out: dict[str, Any] = {
        "AttributeDefinitions": spec["AttributeDefinitions"],
        "TableName": table.name,
        "KeySchema": spec["KeySchema"],
        "TableStatus": status,
        "CreationDateTime": table.created,
        "ProvisionedThroughput": _throughput(spec),
        "TableSizeBytes": int(size),
        "ItemCount": int(items),
        "TableArn": arn,
        "TableId": spec["TableId"],
    }
    if spec["BillingMode"] == "PAY_PER_REQUEST" or spec.get("BillingModeGiven"):
        summary: dict[str, Any] = {"BillingMode": spec["BillingMode"]}
        if spec.get("PayPerRequestSince"):
            summary["LastUpdateToPayPerRequestDateTime"] = spec["PayPerRequestSince"]
        out["BillingModeSummary"] = summary
    for kind in ("LocalSecondaryIndexes", "GlobalSecondaryIndexes"):
        if not spec.get(kind):
            continue
        shown = []
        for index in spec[kind]:
            count, bytes_ = counts.get(index["IndexNo"], (0, 0))
            entry: dict[str, Any] = {
                "IndexName": index["IndexName"], "KeySchema": index["KeySchema"],
                "Projection": index["Projection"]}
            if kind == "GlobalSecondaryIndexes":
                entry["IndexStatus"] = (index_status or {}).get(index["IndexName"], "ACTIVE")
                entry["ProvisionedThroughput"] = _throughput(
                    {"BillingMode": spec["BillingMode"],
                     "ProvisionedThroughput": index.get("ProvisionedThroughput")})
            entry.update({"IndexSizeBytes": int(bytes_), "ItemCount": int(count),
                          "IndexArn": f"{arn}/index/{index['IndexName']}"})
            shown.append(entry)
        out[kind] = shown
    if latest is not None:
        stream_arn, label, view_type, disabled = latest
        if disabled is None:
            out["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": view_type}
        out["LatestStreamLabel"] = label
        out["LatestStreamArn"] = stream_arn
    if spec.get("SSESpecification", {}).get("Enabled"):
        sse = spec["SSESpecification"]
        out["SSEDescription"] = {
            "Status": "ENABLED", "SSEType": sse.get("SSEType", "KMS"),
            "KMSMasterKeyArn": sse.get("KMSMasterKeyId") or
            f"arn:aws:kms:{table.region}:{account}:key/berth-managed"}
    if spec.get("TableClass", "STANDARD") != "STANDARD":
        out["TableClassSummary"] = {"TableClass": spec["TableClass"]}
    out["DeletionProtectionEnabled"] = spec.get("DeletionProtectionEnabled", False)
    return out


def _throughput(spec: dict[str, Any]) -> dict[str, Any]:
    given = spec.get("ProvisionedThroughput") or {}
    if spec["BillingMode"] == "PAY_PER_REQUEST":
        given = {}
    return {"NumberOfDecreasesToday": 0,
            "ReadCapacityUnits": given.get("ReadCapacityUnits", 0),
            "WriteCapacityUnits": given.get("WriteCapacityUnits", 0)}
