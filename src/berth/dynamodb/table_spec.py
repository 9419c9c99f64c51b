"""CreateTable's and UpdateTable's inputs checked as DynamoDB checks them, and the stored spec
of a table (what DescribeTable shows that berth does not derive)."""
from __future__ import annotations

from typing import Any

from .errors import invalid

MAX_GSIS = 20
MAX_LSIS = 5
MAX_PROJECTED = 100


def check_key_schema(elements: list[dict[str, str]], where: str = "") -> None:
    """One HASH element first, then at most one RANGE element."""
    if elements[0]["KeyType"] != "HASH":
        raise invalid(f"Invalid KeySchema{where}: The first KeySchemaElement is not a HASH key "
                      "type")
    if len(elements) == 2:
        if elements[1]["KeyType"] != "RANGE":
            raise invalid(f"Invalid KeySchema{where}: The second KeySchemaElement is not a "
                          "RANGE key type")
        if elements[0]["AttributeName"] == elements[1]["AttributeName"]:
            raise invalid("Both the Hash Key and the Range Key element in the KeySchema have "
                          "the same name")


def check_billing(mode: str, throughput: dict[str, int] | None, what: str = "") -> None:
    if mode == "PROVISIONED" and throughput is None:
        raise invalid("One or more parameter values were invalid: ReadCapacityUnits and "
                      "WriteCapacityUnits must both be specified when BillingMode is "
                      f"PROVISIONED{what}")
    if mode == "PAY_PER_REQUEST" and throughput is not None:
        raise invalid("One or more parameter values were invalid: Neither ReadCapacityUnits "
                      "nor WriteCapacityUnits can be specified when BillingMode is "
                      f"PAY_PER_REQUEST{what}")


def check_projection(projection: dict[str, Any], index: str) -> dict[str, Any]:
    kind = projection.get("ProjectionType")
    non_key = projection.get("NonKeyAttributes")
    if kind is None:
        raise invalid("One or more parameter values were invalid: Unknown ProjectionType: null")
    if kind == "INCLUDE":
        if not non_key:
            raise invalid("One or more parameter values were invalid: NonKeyAttributes must "
                          f"not be empty for index: {index}")
        if len(set(non_key)) != len(non_key):
            raise invalid("One or more parameter values were invalid: Duplicate "
                          f"NonKeyAttributes for index: {index}")
    elif non_key is not None:
        raise invalid("One or more parameter values were invalid: ProjectionType is "
                      f"{kind}, but NonKeyAttributes is specified")
    return projection


def check_index(index: dict[str, Any], *, is_global: bool, table_key: list[dict[str, str]],
                mode: str) -> None:
    name = index["IndexName"]
    check_key_schema(index["KeySchema"])
    check_projection(index["Projection"], name)
    if is_global:
        if mode == "PROVISIONED" and index.get("ProvisionedThroughput") is None:
            raise invalid("One or more parameter values were invalid: ProvisionedThroughput "
                          f"must be specified for index: {name}")
        if mode == "PAY_PER_REQUEST" and index.get("ProvisionedThroughput") is not None:
            raise invalid("One or more parameter values were invalid: ProvisionedThroughput "
                          "should not be specified for index: "
                          f"{name} when BillingMode is PAY_PER_REQUEST")
        return
    if len(table_key) < 2:
        raise invalid("One or more parameter values were invalid: Table KeySchema does not have "
                      "a range key, which is required when specifying a LocalSecondaryIndex")
    if len(index["KeySchema"]) < 2:
        raise invalid("One or more parameter values were invalid: Index KeySchema does not "
                      f"have a range key for index: {name}")
    if index["KeySchema"][0]["AttributeName"] != table_key[0]["AttributeName"]:
        raise invalid("One or more parameter values were invalid: Index KeySchema does not "
                      f"have the same leading hash key as table KeySchema for index: {name}. "
                      f"index hash key: {index['KeySchema'][0]['AttributeName']}, table hash "
                      f"key: {table_key[0]['AttributeName']}")


def check_definitions(definitions: list[dict[str, str]], key_names: set[str]) -> None:
    """Every key attribute defined, and nothing else."""
    defined = [d["AttributeName"] for d in definitions]
    if len(set(defined)) != len(defined):
        raise invalid("Cannot have two attributes with the same name")
    missing = sorted(key_names - set(defined))
    if missing:
        raise invalid("One or more parameter values were invalid: Some index key attributes "
                      f"are not defined in AttributeDefinitions. Keys: [{', '.join(missing)}], "
                      f"AttributeDefinitions: [{', '.join(defined)}]")
    if set(defined) - key_names:
        raise invalid("One or more parameter values were invalid: Number of attributes in "
                      "KeySchema does not exactly match number of attributes defined in "
                      "AttributeDefinitions")


def key_names(spec: dict[str, Any]) -> set[str]:
    names = {e["AttributeName"] for e in spec["KeySchema"]}
    for kind in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
        for index in spec.get(kind, ()):
            names |= {e["AttributeName"] for e in index["KeySchema"]}
    return names


def create_spec(req: dict[str, Any], table_id: str, now: float) -> dict[str, Any]:
    """The spec of a new table, after checking the request as CreateTable does."""
    key = req["KeySchema"]
    check_key_schema(key)
    mode = req.get("BillingMode", "PROVISIONED")
    check_billing(mode, req.get("ProvisionedThroughput"))
    gsis = req.get("GlobalSecondaryIndexes") or []
    lsis = req.get("LocalSecondaryIndexes") or []
    if len(gsis) > MAX_GSIS:
        raise invalid("One or more parameter values were invalid: GlobalSecondaryIndex count "
                      f"exceeds the per-table limit of {MAX_GSIS}")
    if len(lsis) > MAX_LSIS:
        raise invalid("One or more parameter values were invalid: LocalSecondaryIndex count "
                      f"exceeds the per-table limit of {MAX_LSIS}")
    names: set[str] = set()
    for index in [*gsis, *lsis]:
        if index["IndexName"] in names:
            raise invalid("One or more parameter values were invalid: Duplicate index name: "
                          f"{index['IndexName']}")
        names.add(index["IndexName"])
    for index in gsis:
        check_index(index, is_global=True, table_key=key, mode=mode)
    for index in lsis:
        check_index(index, is_global=False, table_key=key, mode=mode)
    spec: dict[str, Any] = {
        "AttributeDefinitions": req["AttributeDefinitions"],
        "KeySchema": key,
        "BillingMode": mode,
        "BillingModeGiven": "BillingMode" in req,
        "TableId": table_id,
        "TableClass": req.get("TableClass", "STANDARD"),
        "DeletionProtectionEnabled": bool(req.get("DeletionProtectionEnabled", False)),
    }
    if mode == "PROVISIONED":
        spec["ProvisionedThroughput"] = req["ProvisionedThroughput"]
    else:
        spec["PayPerRequestSince"] = now
    number = 0
    for kind, indexes in (("GlobalSecondaryIndexes", gsis), ("LocalSecondaryIndexes", lsis)):
        if indexes:
            spec[kind] = []
            for index in indexes:
                number += 1
                spec[kind].append({**index, "IndexNo": number})
    spec["NextIndexNo"] = number + 1
    if req.get("SSESpecification"):
        spec["SSESpecification"] = req["SSESpecification"]
    check_definitions(spec["AttributeDefinitions"], key_names(spec))
    return spec


def check_stream_specification(stream: dict[str, Any]) -> None:
    if stream.get("StreamEnabled") and not stream.get("StreamViewType"):
        raise invalid("One or more parameter values were invalid: StreamViewType must be "
                      "specified when StreamEnabled is true")
    if not stream.get("StreamEnabled") and stream.get("StreamViewType"):
        raise invalid("One or more parameter values were invalid: StreamViewType can not be "
                      "specified when StreamEnabled is false")
