"""PutItem, GetItem, UpdateItem, DeleteItem through boto3's client and resource APIs:
conditions, update expressions, return values, projections, AWS's type rules and limits, and
conditional writes racing each other."""
from __future__ import annotations

import threading
from decimal import Decimal
from typing import Any

import pytest
from boto3.dynamodb.conditions import Attr

from berth_process import error_of
from dynamodb_support import make_table


@pytest.fixture(scope="module")
def table(ddb: Any) -> str:
    return make_table(ddb, ("pk", "S"), ("sk", "N"))


def key(pk: str, sk: int | str) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"N": str(sk)}}


def test_put_get_delete_round_trip_every_type(ddb: Any, table: str) -> None:
    item = {**key("types", 1), "s": {"S": "héllo"}, "n": {"N": "-012.500"},
            "b": {"B": b"\x00\x01\xff"}, "t": {"BOOL": True}, "z": {"NULL": True},
            "ss": {"SS": ["b", "a"]}, "ns": {"NS": ["1", "2.50"]},
            "bs": {"BS": [b"x", b"y"]}, "l": {"L": [{"S": "x"}, {"N": "1E+2"}, {"L": []}]},
            "m": {"M": {"kids": {"M": {"deep": {"S": ""}}}, "e": {"M": {}}}}, "e": {"S": ""}}
    assert "Attributes" not in ddb.put_item(TableName=table, Item=item)
    got = ddb.get_item(TableName=table, Key=key("types", 1))["Item"]
    assert got["n"] == {"N": "-12.5"}                  # the value, in DynamoDB's text
    assert got["l"]["L"][1] == {"N": "100"}
    assert got["b"] == {"B": b"\x00\x01\xff"}
    assert sorted(got["ss"]["SS"]) == ["a", "b"] and sorted(got["ns"]["NS"]) == ["1", "2.5"]
    assert sorted(got["bs"]["BS"]) == [b"x", b"y"]
    assert got["m"] == item["m"] and got["e"] == {"S": ""} and got["z"] == {"NULL": True}
    old = ddb.delete_item(TableName=table, Key=key("types", 1), ReturnValues="ALL_OLD")
    assert old["Attributes"]["s"] == {"S": "héllo"}
    assert "Item" not in ddb.get_item(TableName=table, Key=key("types", 1))


def test_projection_and_attribute_names(ddb: Any, table: str) -> None:
    ddb.put_item(TableName=table, Item={**key("proj", 1), "data": {"M": {
        "a": {"L": [{"S": "0"}, {"S": "1"}, {"S": "2"}]}, "b": {"S": "x"}}}, "size": {"N": "3"}})
    got = ddb.get_item(TableName=table, Key=key("proj", 1),
                       ProjectionExpression="#d.a[2], #d.a[0], #s",
                       ExpressionAttributeNames={"#d": "data", "#s": "size"})["Item"]
    assert got == {"data": {"M": {"a": {"L": [{"S": "0"}, {"S": "2"}]}}}, "size": {"N": "3"}}
    err = error_of(ddb.get_item, TableName=table, Key=key("proj", 1),
                   ProjectionExpression="data.a")
    assert err["Message"] == ("Invalid ProjectionExpression: Attribute name is a reserved "
                              "keyword; reserved keyword: data")
    err = error_of(ddb.get_item, TableName=table, Key=key("proj", 1),
                   ProjectionExpression="#d", ExpressionAttributeNames={"#d": "x", "#e": "y"})
    assert err["Message"] == ("Value provided in ExpressionAttributeNames unused in "
                              "expressions: keys: {#e}")


def test_conditions_and_return_values(ddb: Any, table: str) -> None:
    k = key("cond", 1)
    ddb.put_item(TableName=table, Item={**k, "v": {"N": "1"}},
                 ConditionExpression="attribute_not_exists(pk)")
    err = error_of(ddb.put_item, TableName=table, Item={**k, "v": {"N": "2"}},
                   ConditionExpression="attribute_not_exists(pk)",
                   ReturnValuesOnConditionCheckFailure="ALL_OLD")
    assert err == {"Code": "ConditionalCheckFailedException",
                   "Message": "The conditional request failed"}
    with pytest.raises(ddb.exceptions.ConditionalCheckFailedException) as failed:
        ddb.delete_item(TableName=table, Key=k, ConditionExpression="v > :n",
                        ExpressionAttributeValues={":n": {"N": "5"}},
                        ReturnValuesOnConditionCheckFailure="ALL_OLD")
    assert failed.value.response["Item"] == {**k, "v": {"N": "1"}}
    out = ddb.put_item(TableName=table, Item={**k, "v": {"N": "2"}}, ReturnValues="ALL_OLD",
                       ConditionExpression="v = :one", ExpressionAttributeValues={
                           ":one": {"N": "1.0"}})
    assert out["Attributes"]["v"] == {"N": "1"}
    err = error_of(ddb.put_item, TableName=table, Item=k, ReturnValues="ALL_NEW")
    assert err["Message"] == "ReturnValues can only be ALL_OLD or NONE"


def test_update_expressions(ddb: Any, table: str) -> None:
    k = key("upd", 1)
    out = ddb.update_item(
        TableName=table, Key=k, ReturnValues="ALL_NEW",
        UpdateExpression="SET n = if_not_exists(n, :zero) + :one, l = list_append(:l, :l), "
                         "m = :m ADD tags :t, c :one",
        ExpressionAttributeValues={":zero": {"N": "0"}, ":one": {"N": "1"},
                                   ":l": {"L": [{"S": "a"}]}, ":t": {"SS": ["x", "y"]},
                                   ":m": {"M": {"kids": {"L": [{"N": "1"}]}}}})["Attributes"]
    assert out["n"] == {"N": "1"} and out["c"] == {"N": "1"}
    assert out["l"] == {"L": [{"S": "a"}, {"S": "a"}]}
    out = ddb.update_item(
        TableName=table, Key=k, ReturnValues="UPDATED_NEW",
        UpdateExpression="SET m.kids[0] = :v, n = n - :half REMOVE l[0] DELETE tags :x",
        ExpressionAttributeValues={":v": {"N": "2"}, ":half": {"N": "0.5"},
                                   ":x": {"SS": ["x"]}})["Attributes"]
    # Only what the update named, as it is now (l[0] was removed: nothing to show there).
    assert out == {"n": {"N": "0.5"}, "tags": {"SS": ["y"]},
                   "m": {"M": {"kids": {"L": [{"N": "2"}]}}}}
    ddb.update_item(TableName=table, Key=k, UpdateExpression="SET m.kids[5] = :v",
                    ExpressionAttributeValues={":v": {"S": "appended"}})
    got = ddb.get_item(TableName=table, Key=k)["Item"]
    assert got["m"]["M"]["kids"]["L"] == [{"N": "2"}, {"S": "appended"}]
    assert got["l"] == {"L": [{"S": "a"}]} and got["tags"] == {"SS": ["y"]}
    old = ddb.update_item(TableName=table, Key=k, UpdateExpression="DELETE tags :y",
                          ExpressionAttributeValues={":y": {"SS": ["y"]}},
                          ReturnValues="UPDATED_OLD")["Attributes"]
    assert old == {"tags": {"SS": ["y"]}}
    assert "tags" not in ddb.get_item(TableName=table, Key=k)["Item"]   # an emptied set goes


@pytest.mark.parametrize("expression, values, message", [
    ("SET pk = :v", {":v": {"S": "x"}}, "One or more parameter values were invalid: Cannot "
     "update attribute pk. This attribute is part of the key"),
    ("SET a = absent + :v", {":v": {"N": "1"}}, "The provided expression refers to an "
     "attribute that does not exist in the item"),
    ("SET a = :v + :v", {":v": {"S": "x"}}, "Invalid UpdateExpression: Incorrect operand type "
     "for operator or function; operator or function: +, operand type: S"),
    ("SET m.x = :v", {":v": {"N": "1"}}, "The document path provided in the update expression "
     "is invalid for update"),
    ("ADD s :v", {":v": {"N": "1"}}, "An operand in the update expression has an incorrect "
     "data type"),
])
def test_update_errors(ddb: Any, table: str, expression: str, values: dict[str, Any],
                       message: str) -> None:
    ddb.put_item(TableName=table, Item={**key("upd-err", 1), "s": {"S": "text"}})
    err = error_of(ddb.update_item, TableName=table, Key=key("upd-err", 1),
                   UpdateExpression=expression, ExpressionAttributeValues=values)
    assert err == {"Code": "ValidationException", "Message": message}


def test_update_creates_a_missing_item(ddb: Any, table: str) -> None:
    ddb.update_item(TableName=table, Key=key("fresh", 7))
    assert ddb.get_item(TableName=table, Key=key("fresh", 7))["Item"] == key("fresh", 7)


@pytest.mark.parametrize("item, message", [
    ({"sk": {"N": "1"}}, "One or more parameter values were invalid: Missing the key pk in the "
                         "item"),
    ({"pk": {"N": "1"}, "sk": {"N": "1"}}, "One or more parameter values were invalid: Type "
                                            "mismatch for key pk expected: S actual: N"),
    ({"pk": {"S": ""}, "sk": {"N": "1"}}, "One or more parameter values are not valid. The "
     "AttributeValue for a key attribute cannot contain an empty string value. Key: pk"),
    ({"pk": {"S": "x" * 2049}, "sk": {"N": "1"}}, "One or more parameter values were invalid: "
     "Size of hashkey has exceeded the maximum size limit of2048 bytes"),
    ({"pk": {"S": "x"}, "sk": {"N": "1"}, "s": {"SS": []}}, "One or more parameter values were "
     "invalid: An string set  may not be empty"),
    ({"pk": {"S": "x"}, "sk": {"N": "1E126"}}, "Number overflow. Attempting to store a number "
     "with magnitude larger than supported range"),
    ({"pk": {"S": "x"}, "sk": {"N": "1"}, "big": {"S": "x" * (400 * 1024)}},
     "Item size has exceeded the maximum allowed size"),
])
def test_put_refusals(ddb: Any, table: str, item: dict[str, Any], message: str) -> None:
    assert error_of(ddb.put_item, TableName=table, Item=item) == {
        "Code": "ValidationException", "Message": message}


def test_key_errors_and_missing_table(ddb: Any, table: str) -> None:
    for bad in ({"pk": {"S": "x"}}, {**key("x", 1), "other": {"S": "y"}},
                {"pk": {"S": "x"}, "sk": {"S": "1"}}):
        assert error_of(ddb.get_item, TableName=table, Key=bad)["Message"] == \
            "The provided key element does not match the schema"
    assert error_of(ddb.get_item, TableName="missing-table", Key=key("x", 1)) == {
        "Code": "ResourceNotFoundException", "Message": "Requested resource not found"}


def test_largest_item_fits(ddb: Any, table: str) -> None:
    room = 400 * 1024 - len("pk") - 3 - len("sk") - 2 - len("big")
    ddb.put_item(TableName=table, Item={**key("big", 1), "big": {"S": "y" * room}})
    assert len(ddb.get_item(TableName=table, Key=key("big", 1))["Item"]["big"]["S"]) == room


def test_table_arn_as_table_name(ddb: Any, table: str) -> None:
    arn = ddb.describe_table(TableName=table)["Table"]["TableArn"]
    ddb.put_item(TableName=arn, Item=key("arn", 1))
    assert ddb.get_item(TableName=arn, Key=key("arn", 1))["Item"] == key("arn", 1)


def test_resource_api(ddb_resource: Any, ddb: Any, table: str) -> None:
    t = ddb_resource.Table(table)
    t.put_item(Item={"pk": "res", "sk": 1, "price": Decimal("9.99"), "tags": {"a", "b"},
                     "nested": {"list": [1, "two", None, True]}})
    got = t.get_item(Key={"pk": "res", "sk": 1})["Item"]
    assert got["price"] == Decimal("9.99") and got["tags"] == {"a", "b"}
    assert got["nested"] == {"list": [Decimal(1), "two", None, True]}
    t.update_item(Key={"pk": "res", "sk": 1}, UpdateExpression="SET price = price + :x",
                  ExpressionAttributeValues={":x": 1})
    assert t.get_item(Key={"pk": "res", "sk": 1})["Item"]["price"] == Decimal("10.99")
    with pytest.raises(ddb.exceptions.ConditionalCheckFailedException):
        t.put_item(Item={"pk": "res", "sk": 1}, ConditionExpression=Attr("price").lt(5))
    with t.batch_writer() as batch:
        for i in range(30):
            batch.put_item(Item={"pk": "batch", "sk": i, "v": i * i})
    from boto3.dynamodb.conditions import Key
    found = t.query(KeyConditionExpression=Key("pk").eq("batch") & Key("sk").between(10, 12))
    assert [i["v"] for i in found["Items"]] == [100, 121, 144]


def test_racing_conditional_puts_let_one_win(ddb_server: Any, table: str) -> None:
    """Conditional creates of one item from many threads: exactly one succeeds (on PostgreSQL
    the losers wait on the row or lose the insert race and are retried)."""
    wins, losses = [], []

    def attempt(i: int) -> None:
        client = ddb_server.client("dynamodb")
        try:
            client.put_item(TableName=table, Item={**key("race", 1), "by": {"N": str(i)}},
                            ConditionExpression="attribute_not_exists(pk)")
            wins.append(i)
        except client.exceptions.ConditionalCheckFailedException:
            losses.append(i)
    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(wins) == 1 and len(losses) == 11


def test_racing_increments_lose_nothing(ddb_server: Any, table: str) -> None:
    def add(n: int) -> None:
        client = ddb_server.client("dynamodb")
        for _ in range(n):
            client.update_item(TableName=table, Key=key("counter", 1),
                               UpdateExpression="ADD c :one",
                               ExpressionAttributeValues={":one": {"N": "1"}})
    threads = [threading.Thread(target=add, args=(25,)) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    client = ddb_server.client("dynamodb")
    assert client.get_item(TableName=table, Key=key("counter", 1))["Item"]["c"] == {"N": "150"}


def test_consumed_capacity_when_asked(ddb: Any, table: str) -> None:
    k = key("cap", 1)
    body = "x" * (3 * 1024 - 20)       # a 3 KB item: 3 write units, 1 read unit
    out = ddb.put_item(TableName=table, Item={**k, "b": {"S": body}},
                       ReturnConsumedCapacity="TOTAL")
    assert out["ConsumedCapacity"] == {"TableName": table, "CapacityUnits": 3.0,
                                       "WriteCapacityUnits": 3.0}
    got = ddb.get_item(TableName=table, Key=k, ReturnConsumedCapacity="TOTAL")
    assert got["ConsumedCapacity"]["CapacityUnits"] == 0.5     # eventually consistent
    got = ddb.get_item(TableName=table, Key=k, ConsistentRead=True,
                       ReturnConsumedCapacity="INDEXES")
    assert got["ConsumedCapacity"]["CapacityUnits"] == 1.0
    assert got["ConsumedCapacity"]["Table"]["CapacityUnits"] == 1.0
    assert "ConsumedCapacity" not in ddb.get_item(TableName=table, Key=k)
    out = ddb.transact_write_items(ReturnConsumedCapacity="TOTAL", TransactItems=[
        {"Delete": {"TableName": table, "Key": k}}])
    assert out["ConsumedCapacity"] == [{"TableName": table, "CapacityUnits": 6.0,
                                        "WriteCapacityUnits": 6.0}]
