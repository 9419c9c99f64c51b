"""BatchGetItem, BatchWriteItem, TransactWriteItems and TransactGetItems through boto3."""
from __future__ import annotations

from typing import Any

import pytest

from berth_process import error_of
from dynamodb_support import make_table


@pytest.fixture(scope="module")
def tables(ddb: Any) -> tuple[str, str]:
    return make_table(ddb, ("pk", "S")), make_table(ddb, ("id", "N"))


def test_batch_write_then_get_across_tables(ddb: Any, tables: tuple[str, str]) -> None:
    a, b = tables
    out = ddb.batch_write_item(RequestItems={
        a: [{"PutRequest": {"Item": {"pk": {"S": f"k{i}"}, "v": {"N": str(i)}}}}
            for i in range(15)],
        b: [{"PutRequest": {"Item": {"id": {"N": str(i)}}}} for i in range(10)]})
    assert out["UnprocessedItems"] == {}
    ddb.batch_write_item(RequestItems={a: [{"DeleteRequest": {"Key": {"pk": {"S": "k0"}}}}]})
    got = ddb.batch_get_item(RequestItems={
        a: {"Keys": [{"pk": {"S": f"k{i}"}} for i in range(3)], "ProjectionExpression": "v"},
        b: {"Keys": [{"id": {"N": "9"}}, {"id": {"N": "99"}}]}})
    assert sorted(i["v"]["N"] for i in got["Responses"][a]) == ["1", "2"]
    assert got["Responses"][b] == [{"id": {"N": "9"}}]
    assert got["UnprocessedKeys"] == {}


def test_batch_limits_and_duplicates(ddb: Any, tables: tuple[str, str]) -> None:
    a, b = tables
    err = error_of(ddb.batch_get_item, RequestItems={
        a: {"Keys": [{"pk": {"S": str(i)}} for i in range(60)]},
        b: {"Keys": [{"id": {"N": str(i)}} for i in range(41)]}})
    assert err["Message"] == "Too many items requested for the BatchGetItem call"
    err = error_of(ddb.batch_write_item, RequestItems={
        a: [{"PutRequest": {"Item": {"pk": {"S": str(i)}}}} for i in range(20)],
        b: [{"PutRequest": {"Item": {"id": {"N": str(i)}}}} for i in range(6)]})
    assert err["Message"] == "Too many items requested for the BatchWriteItem call"
    err = error_of(ddb.batch_get_item, RequestItems={a: {"Keys": [{"pk": {"S": "x"}}] * 2}})
    assert err["Message"] == "Provided list of item keys contains duplicates"
    err = error_of(ddb.batch_write_item, RequestItems={a: [
        {"PutRequest": {"Item": {"pk": {"S": "x"}}}},
        {"DeleteRequest": {"Key": {"pk": {"S": "x"}}}}]})
    assert err["Message"] == "Provided list of item keys contains duplicates"
    err = error_of(ddb.batch_write_item, RequestItems={"no-such-table": [
        {"PutRequest": {"Item": {"pk": {"S": "x"}}}}]})
    assert err["Code"] == "ResourceNotFoundException"


def test_transact_write_commits_all(ddb: Any, tables: tuple[str, str]) -> None:
    a, b = tables
    ddb.put_item(TableName=a, Item={"pk": {"S": "acct1"}, "bal": {"N": "100"}})
    ddb.put_item(TableName=a, Item={"pk": {"S": "acct2"}, "bal": {"N": "0"}})
    ddb.transact_write_items(TransactItems=[
        {"Update": {"TableName": a, "Key": {"pk": {"S": "acct1"}},
                    "UpdateExpression": "SET bal = bal - :x", "ConditionExpression": "bal >= :x",
                    "ExpressionAttributeValues": {":x": {"N": "30"}}}},
        {"Update": {"TableName": a, "Key": {"pk": {"S": "acct2"}},
                    "UpdateExpression": "SET bal = bal + :x",
                    "ExpressionAttributeValues": {":x": {"N": "30"}}}},
        {"Put": {"TableName": b, "Item": {"id": {"N": "500"}, "what": {"S": "transfer"}}}},
        {"ConditionCheck": {"TableName": b, "Key": {"id": {"N": "1"}},
                            "ConditionExpression": "attribute_exists(id)"}}])
    got = ddb.transact_get_items(TransactItems=[
        {"Get": {"TableName": a, "Key": {"pk": {"S": "acct1"}}}},
        {"Get": {"TableName": a, "Key": {"pk": {"S": "acct2"}}, "ProjectionExpression": "bal"}},
        {"Get": {"TableName": b, "Key": {"id": {"N": "404"}}}}])["Responses"]
    assert got[0]["Item"]["bal"] == {"N": "70"}
    assert got[1]["Item"] == {"bal": {"N": "30"}}
    assert got[2] == {}


def test_transact_write_cancels_all_with_reasons(ddb: Any, tables: tuple[str, str]) -> None:
    a, b = tables
    ddb.put_item(TableName=a, Item={"pk": {"S": "t1"}, "n": {"N": "1"}})
    with pytest.raises(ddb.exceptions.TransactionCanceledException) as err:
        ddb.transact_write_items(TransactItems=[
            {"Put": {"TableName": a, "Item": {"pk": {"S": "t2"}}}},
            {"Delete": {"TableName": a, "Key": {"pk": {"S": "t1"}},
                        "ConditionExpression": "n = :two",
                        "ExpressionAttributeValues": {":two": {"N": "2"}},
                        "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}},
            {"Update": {"TableName": b, "Key": {"id": {"N": "7"}},
                        "UpdateExpression": "SET c = absent + :one",
                        "ExpressionAttributeValues": {":one": {"N": "1"}}}}])
    response = err.value.response
    assert response["Error"]["Message"] == (
        "Transaction cancelled, please refer cancellation reasons for specific reasons "
        "[None, ConditionalCheckFailed, ValidationError]")
    reasons = response["CancellationReasons"]
    assert reasons[0] == {"Code": "None"}
    assert reasons[1] == {"Code": "ConditionalCheckFailed",
                          "Message": "The conditional request failed",
                          "Item": {"pk": {"S": "t1"}, "n": {"N": "1"}}}
    assert reasons[2]["Code"] == "ValidationError"
    assert "Item" not in ddb.get_item(TableName=a, Key={"pk": {"S": "t2"}})   # nothing applied
    assert ddb.get_item(TableName=a, Key={"pk": {"S": "t1"}})["Item"]["n"] == {"N": "1"}
    err2 = error_of(ddb.transact_write_items, TransactItems=[
        {"Put": {"TableName": a, "Item": {"pk": {"S": "same"}}}},
        {"Delete": {"TableName": a, "Key": {"pk": {"S": "same"}}}}])
    assert err2["Message"] == ("Transaction request cannot include multiple operations on one "
                               "item")
