"""DynamoDB tables through boto3: create (keys, indexes, billing, streams, tags), the status the
SDK waiters poll, describe, list, update (indexes, billing, streams), TTL, tags, delete, and
AWS's errors for each."""
from __future__ import annotations

from typing import Any

import pytest

from berth_process import error_of
from dynamodb_support import make_table, new_name

KEYS = [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}]
DEFS = [{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "N"}]


def test_create_describe_list_delete_with_waiters(ddb: Any) -> None:
    name = new_name()
    created = ddb.create_table(
        TableName=name, KeySchema=KEYS,
        AttributeDefinitions=DEFS + [{"AttributeName": "g", "AttributeType": "S"},
                                     {"AttributeName": "l", "AttributeType": "B"}],
        ProvisionedThroughput={"ReadCapacityUnits": 5, "WriteCapacityUnits": 7},
        GlobalSecondaryIndexes=[{
            "IndexName": "by-g", "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
            "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["x"]},
            "ProvisionedThroughput": {"ReadCapacityUnits": 1, "WriteCapacityUnits": 1}}],
        LocalSecondaryIndexes=[{
            "IndexName": "by-l", "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"},
                                               {"AttributeName": "l", "KeyType": "RANGE"}],
            "Projection": {"ProjectionType": "KEYS_ONLY"}}],
        Tags=[{"Key": "team", "Value": "core"}])["TableDescription"]
    assert created["TableStatus"] == "CREATING"
    assert created["GlobalSecondaryIndexes"][0]["IndexStatus"] == "CREATING"
    ddb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1,
                                                                      "MaxAttempts": 5})
    table = ddb.describe_table(TableName=name)["Table"]
    assert table["TableStatus"] == "ACTIVE"
    assert table["TableArn"] == f"arn:aws:dynamodb:us-east-1:000000000000:table/{name}"
    assert table["KeySchema"] == KEYS
    assert table["ProvisionedThroughput"]["ReadCapacityUnits"] == 5
    assert table["ProvisionedThroughput"]["WriteCapacityUnits"] == 7
    assert table["ItemCount"] == 0 and table["TableSizeBytes"] == 0
    gsi, = table["GlobalSecondaryIndexes"]
    assert gsi["IndexStatus"] == "ACTIVE"
    assert gsi["IndexArn"] == table["TableArn"] + "/index/by-g"
    assert gsi["Projection"] == {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["x"]}
    lsi, = table["LocalSecondaryIndexes"]
    assert lsi["IndexName"] == "by-l"
    assert "StreamSpecification" not in table
    assert name in ddb.list_tables()["TableNames"]
    assert ddb.list_tags_of_resource(ResourceArn=table["TableArn"])["Tags"] == [
        {"Key": "team", "Value": "core"}]
    deleted = ddb.delete_table(TableName=name)["TableDescription"]
    assert deleted["TableStatus"] == "DELETING"
    ddb.get_waiter("table_not_exists").wait(TableName=name, WaiterConfig={"Delay": 1,
                                                                          "MaxAttempts": 5})
    assert name not in ddb.list_tables()["TableNames"]


def test_item_count_and_pay_per_request_summary(ddb: Any) -> None:
    name = make_table(ddb, ("pk", "S"))
    for i in range(3):
        ddb.put_item(TableName=name, Item={"pk": {"S": f"k{i}"}, "v": {"S": "abc"}})
    table = ddb.describe_table(TableName=name)["Table"]
    assert table["ItemCount"] == 3
    assert table["TableSizeBytes"] == 3 * (len("pk") + 2 + len("v") + 3)
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert table["ProvisionedThroughput"]["ReadCapacityUnits"] == 0


def test_list_tables_pages(ddb: Any) -> None:
    prefix = new_name("list")
    names = sorted(make_table(ddb, TableName=f"{prefix}-{i}") for i in range(5))
    seen, start = [], None
    for _ in range(20):
        page = ddb.list_tables(Limit=2, **({"ExclusiveStartTableName": start} if start else {}))
        seen += page["TableNames"]
        start = page.get("LastEvaluatedTableName")
        if start is None:
            break
    assert [n for n in seen if n.startswith(prefix)] == names
    assert seen == sorted(seen)


def test_table_errors(ddb: Any) -> None:
    name = make_table(ddb)
    err = error_of(ddb.create_table, TableName=name, KeySchema=KEYS[:1],
                   AttributeDefinitions=DEFS[:1], BillingMode="PAY_PER_REQUEST")
    assert err == {"Code": "ResourceInUseException", "Message": f"Table already exists: {name}"}
    err = error_of(ddb.describe_table, TableName="nope-" + name)
    assert err["Code"] == "ResourceNotFoundException"
    assert err["Message"] == f"Requested resource not found: Table: nope-{name} not found"
    assert error_of(ddb.delete_table, TableName="nope-" + name)["Code"] == \
        "ResourceNotFoundException"
    err = error_of(ddb.create_table, TableName=new_name(), KeySchema=KEYS,
                   AttributeDefinitions=DEFS[:1], BillingMode="PAY_PER_REQUEST")
    assert err["Message"] == ("One or more parameter values were invalid: Some index key "
                              "attributes are not defined in AttributeDefinitions. Keys: [sk], "
                              "AttributeDefinitions: [pk]")
    err = error_of(ddb.create_table, TableName=new_name(), KeySchema=KEYS[:1],
                   AttributeDefinitions=DEFS, BillingMode="PAY_PER_REQUEST")
    assert "Number of attributes in KeySchema does not exactly match" in err["Message"]
    err = error_of(ddb.create_table, TableName=new_name(), KeySchema=KEYS[:1],
                   AttributeDefinitions=DEFS[:1])
    assert err["Message"] == ("One or more parameter values were invalid: ReadCapacityUnits "
                              "and WriteCapacityUnits must both be specified when BillingMode "
                              "is PROVISIONED")
    err = error_of(ddb.create_table, TableName=new_name(), KeySchema=list(reversed(KEYS)),
                   AttributeDefinitions=DEFS, BillingMode="PAY_PER_REQUEST")
    assert err["Message"] == ("Invalid KeySchema: The first KeySchemaElement is not a HASH key "
                              "type")
    err = error_of(ddb.create_table, TableName=new_name(), KeySchema=KEYS[:1],
                   AttributeDefinitions=DEFS, BillingMode="PAY_PER_REQUEST",
                   LocalSecondaryIndexes=[{"IndexName": "lsi", "KeySchema": KEYS,
                                           "Projection": {"ProjectionType": "ALL"}}])
    assert "Table KeySchema does not have a range key" in err["Message"]
    err = error_of(ddb.create_table, TableName="a", KeySchema=KEYS[:1],
                   AttributeDefinitions=DEFS[:1], BillingMode="PAY_PER_REQUEST")
    assert err["Code"] == "ValidationException"
    assert err["Message"] == ("1 validation error detected: Value 'a' at 'tableName' failed to "
                              "satisfy constraint: Member must have length greater than or "
                              "equal to 3")


def test_update_table_adds_and_drops_an_index_over_existing_items(ddb: Any) -> None:
    name = make_table(ddb, ("pk", "S"))
    for i in range(4):
        ddb.put_item(TableName=name, Item={"pk": {"S": f"k{i}"}, "c": {"S": "red" if i % 2
                                                                       else "blue"}})
    ddb.put_item(TableName=name, Item={"pk": {"S": "wrong"}, "c": {"N": "1"}})
    out = ddb.update_table(TableName=name, AttributeDefinitions=[
        {"AttributeName": "c", "AttributeType": "S"}], GlobalSecondaryIndexUpdates=[{"Create": {
            "IndexName": "by-colour", "KeySchema": [{"AttributeName": "c", "KeyType": "HASH"}],
            "Projection": {"ProjectionType": "ALL"}}}])["TableDescription"]
    assert out["TableStatus"] == "UPDATING"
    assert out["GlobalSecondaryIndexes"][0]["IndexStatus"] == "CREATING"
    found = ddb.query(TableName=name, IndexName="by-colour", KeyConditionExpression="c = :c",
                      ExpressionAttributeValues={":c": {"S": "red"}})["Items"]
    assert sorted(i["pk"]["S"] for i in found) == ["k1", "k3"]
    err = error_of(ddb.put_item, TableName=name, Item={"pk": {"S": "x"}, "c": {"N": "2"}})
    assert err["Message"] == ("One or more parameter values were invalid: Type mismatch for "
                              "Index Key c Expected: S Actual: N IndexName: by-colour")
    ddb.update_table(TableName=name, GlobalSecondaryIndexUpdates=[
        {"Delete": {"IndexName": "by-colour"}}])
    table = ddb.describe_table(TableName=name)["Table"]
    assert "GlobalSecondaryIndexes" not in table
    assert table["AttributeDefinitions"] == [{"AttributeName": "pk", "AttributeType": "S"}]
    err = error_of(ddb.query, TableName=name, IndexName="by-colour",
                   KeyConditionExpression="c = :c", ExpressionAttributeValues={":c": {"S": "r"}})
    assert err["Message"] == "The table does not have the specified index: by-colour"


def test_update_table_billing_and_protection(ddb: Any) -> None:
    name = make_table(ddb)
    ddb.update_table(TableName=name, BillingMode="PROVISIONED", ProvisionedThroughput={
        "ReadCapacityUnits": 3, "WriteCapacityUnits": 4}, DeletionProtectionEnabled=True)
    table = ddb.describe_table(TableName=name)["Table"]
    assert table["BillingModeSummary"]["BillingMode"] == "PROVISIONED"
    assert table["ProvisionedThroughput"]["WriteCapacityUnits"] == 4
    assert table["DeletionProtectionEnabled"] is True
    err = error_of(ddb.delete_table, TableName=name)
    assert "protected against deletion" in err["Message"]
    ddb.update_table(TableName=name, DeletionProtectionEnabled=False)
    ddb.delete_table(TableName=name)
    assert error_of(ddb.update_table, TableName=name, BillingMode="PAY_PER_REQUEST")["Code"] \
        == "ResourceNotFoundException"


def test_time_to_live_settings(ddb: Any) -> None:
    name = make_table(ddb)
    assert ddb.describe_time_to_live(TableName=name)["TimeToLiveDescription"] == {
        "TimeToLiveStatus": "DISABLED"}
    spec = {"Enabled": True, "AttributeName": "expires"}
    assert ddb.update_time_to_live(TableName=name, TimeToLiveSpecification=spec)[
        "TimeToLiveSpecification"] == spec
    assert ddb.describe_time_to_live(TableName=name)["TimeToLiveDescription"] == {
        "TimeToLiveStatus": "ENABLED", "AttributeName": "expires"}
    assert error_of(ddb.update_time_to_live, TableName=name, TimeToLiveSpecification=spec)[
        "Message"] == "TimeToLive is already enabled"
    ddb.update_time_to_live(TableName=name, TimeToLiveSpecification={
        "Enabled": False, "AttributeName": "expires"})
    assert ddb.describe_time_to_live(TableName=name)["TimeToLiveDescription"][
        "TimeToLiveStatus"] == "DISABLED"


def test_tags(ddb: Any) -> None:
    name = make_table(ddb)
    arn = ddb.describe_table(TableName=name)["Table"]["TableArn"]
    ddb.tag_resource(ResourceArn=arn, Tags=[{"Key": "a", "Value": "1"}, {"Key": "b",
                                                                          "Value": "2"}])
    ddb.untag_resource(ResourceArn=arn, TagKeys=["a"])
    assert ddb.list_tags_of_resource(ResourceArn=arn)["Tags"] == [{"Key": "b", "Value": "2"}]
    err = error_of(ddb.list_tags_of_resource, ResourceArn=arn + "x")
    assert err["Code"] == "ResourceNotFoundException"


def test_streams_on_tables(ddb: Any) -> None:
    name = make_table(ddb, StreamSpecification={"StreamEnabled": True,
                                                "StreamViewType": "KEYS_ONLY"})
    table = ddb.describe_table(TableName=name)["Table"]
    assert table["StreamSpecification"] == {"StreamEnabled": True,
                                            "StreamViewType": "KEYS_ONLY"}
    first = table["LatestStreamArn"]
    assert first == f"{table['TableArn']}/stream/{table['LatestStreamLabel']}"
    err = error_of(ddb.update_table, TableName=name, StreamSpecification={
        "StreamEnabled": True, "StreamViewType": "NEW_IMAGE"})
    assert err["Code"] == "ResourceInUseException"
    ddb.update_table(TableName=name, StreamSpecification={"StreamEnabled": False})
    table = ddb.describe_table(TableName=name)["Table"]
    assert "StreamSpecification" not in table
    assert table["LatestStreamArn"] == first
    ddb.update_table(TableName=name, StreamSpecification={"StreamEnabled": True,
                                                          "StreamViewType": "NEW_IMAGE"})
    assert ddb.describe_table(TableName=name)["Table"]["LatestStreamArn"] != first


@pytest.mark.parametrize("body, code", [
    (b"{not json", "SerializationException"),
    (b'{"TableName": 5}', "SerializationException"),
])
def test_malformed_requests(ddb_server: Any, body: bytes, code: str) -> None:
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    from berth_process import ACCESS_KEY, SECRET_KEY
    req = AWSRequest("POST", ddb_server.endpoint + "/", data=body, headers={
        "X-Amz-Target": "DynamoDB_20120810.DescribeTable",
        "Content-Type": "application/x-amz-json-1.0"})
    SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "dynamodb", "us-east-1").add_auth(req)
    with ddb_server.http() as http:
        resp = http.post("/", content=body, headers=dict(req.headers.items()))
    assert resp.status_code == 400
    assert resp.headers["content-type"] == "application/x-amz-json-1.0"
    assert resp.json()["__type"] == code
