"""Query and Scan through boto3: every key condition, DynamoDB's sort order for N, S and B
sort keys, direction, Limit and pagination, filters, Select, projections, global and local
secondary indexes, and parallel scan segments."""
from __future__ import annotations

import base64
from decimal import Decimal
from typing import Any

import pytest

from berth_process import error_of
from dynamodb_support import make_table

NUMBERS = ["-1E+10", "-5.5", "-5", "-0.001", "0", "1E-5", "0.5", "2", "10", "10.5", "99",
           "1E+100"]
STRINGS = ["", "A", "B", "a", "aa", "ab", "b", "é", "z", "~", "😀"]
BINARIES = [b"\x00", b"\x00\x00", b"\x01", b"\x7f", b"\x80", b"\xff", b"\xff\x00"]


def _query(ddb: Any, table: str, expression: str, values: dict[str, Any],
           **kw: Any) -> list[dict[str, Any]]:
    return ddb.query(TableName=table, KeyConditionExpression=expression,
                     ExpressionAttributeValues=values, **kw)["Items"]


@pytest.fixture(scope="module")
def numbers_table(ddb: Any) -> str:
    name = make_table(ddb, ("pk", "S"), ("sk", "N"))
    for n in reversed(NUMBERS):
        ddb.put_item(TableName=name, Item={"pk": {"S": "p"}, "sk": {"N": n}, "v": {"N": n}})
    ddb.put_item(TableName=name, Item={"pk": {"S": "other"}, "sk": {"N": "3"}})
    return name


def test_number_sort_keys_order_numerically(ddb: Any, numbers_table: str) -> None:
    found = _query(ddb, numbers_table, "pk = :p", {":p": {"S": "p"}})
    assert [Decimal(i["sk"]["N"]) for i in found] == sorted(Decimal(n) for n in NUMBERS)
    backwards = _query(ddb, numbers_table, "pk = :p", {":p": {"S": "p"}},
                       ScanIndexForward=False)
    assert backwards == list(reversed(found))


@pytest.mark.parametrize("condition, values, expected", [
    ("sk = :a", {":a": "10"}, ["10"]),
    ("sk < :a", {":a": "0"}, ["-1E+10", "-5.5", "-5", "-0.001"]),
    ("sk <= :a", {":a": "0"}, ["-1E+10", "-5.5", "-5", "-0.001", "0"]),
    ("sk > :a", {":a": "10"}, ["10.5", "99", "1E+100"]),
    ("sk >= :a", {":a": "10"}, ["10", "10.5", "99", "1E+100"]),
    ("sk BETWEEN :a AND :b", {":a": "-5", ":b": "0.5"}, ["-5", "-0.001", "0", "1E-5", "0.5"]),
    (":a <= sk", {":a": "99"}, ["99", "1E+100"]),
])
def test_key_conditions_on_numbers(ddb: Any, numbers_table: str, condition: str,
                                   values: dict[str, str], expected: list[str]) -> None:
    found = _query(ddb, numbers_table, f"pk = :p AND {condition}",
                   {":p": {"S": "p"}, **{k: {"N": v} for k, v in values.items()}})
    assert [Decimal(i["sk"]["N"]) for i in found] == [Decimal(e) for e in expected]


def test_string_and_binary_sort_keys_order_bytewise(ddb: Any) -> None:
    strings = make_table(ddb, ("pk", "S"), ("sk", "S"))
    for s in STRINGS[1:]:
        ddb.put_item(TableName=strings, Item={"pk": {"S": "p"}, "sk": {"S": s}})
    found = _query(ddb, strings, "pk = :p", {":p": {"S": "p"}})
    assert [i["sk"]["S"] for i in found] == sorted(STRINGS[1:], key=lambda s: s.encode())
    found = _query(ddb, strings, "pk = :p AND begins_with(sk, :a)", {":p": {"S": "p"},
                                                                   ":a": {"S": "a"}})
    assert [i["sk"]["S"] for i in found] == ["a", "aa", "ab"]
    binaries = make_table(ddb, ("pk", "S"), ("sk", "B"))
    for b in BINARIES:
        ddb.put_item(TableName=binaries, Item={"pk": {"S": "p"}, "sk": {"B": b}})
    found = _query(ddb, binaries, "pk = :p", {":p": {"S": "p"}})
    assert [i["sk"]["B"] for i in found] == sorted(BINARIES)
    found = _query(ddb, binaries, "pk = :p AND begins_with(sk, :x)",
                   {":p": {"S": "p"}, ":x": {"B": b"\xff"}})
    assert [i["sk"]["B"] for i in found] == [b"\xff", b"\xff\x00"]
    found = _query(ddb, binaries, "pk = :p AND begins_with(sk, :x)",
                   {":p": {"S": "p"}, ":x": {"B": b"\x00"}})
    assert [i["sk"]["B"] for i in found] == [b"\x00", b"\x00\x00"]


def test_pages_with_limit_in_both_directions(ddb: Any, numbers_table: str) -> None:
    for forward in (True, False):
        seen: list[str] = []
        start = None
        for _ in range(20):
            page = ddb.query(TableName=numbers_table, KeyConditionExpression="pk = :p",
                             ExpressionAttributeValues={":p": {"S": "p"}}, Limit=5,
                             ScanIndexForward=forward,
                             **({"ExclusiveStartKey": start} if start else {}))
            assert page["Count"] == len(page["Items"]) <= 5
            seen += [i["sk"]["N"] for i in page["Items"]]
            start = page.get("LastEvaluatedKey")
            if start is None:
                break
            assert set(start) == {"pk", "sk"}
        ordered = sorted(NUMBERS, key=Decimal)
        assert [Decimal(s) for s in seen] == [Decimal(n) for n in (
            ordered if forward else reversed(ordered))]


def test_filter_select_and_projection(ddb: Any, numbers_table: str) -> None:
    page = ddb.query(TableName=numbers_table, KeyConditionExpression="pk = :p",
                     FilterExpression="v > :z", ExpressionAttributeValues={
                         ":p": {"S": "p"}, ":z": {"N": "0"}}, Limit=6)
    assert page["ScannedCount"] == 6      # Limit counts what was read, before the filter
    assert [i["v"]["N"] for i in page["Items"]] == ["0.00001"]
    assert "LastEvaluatedKey" in page
    page = ddb.query(TableName=numbers_table, KeyConditionExpression="pk = :p",
                     ExpressionAttributeValues={":p": {"S": "p"}}, Select="COUNT")
    assert page["Count"] == len(NUMBERS) and "Items" not in page
    items = ddb.query(TableName=numbers_table, KeyConditionExpression="pk = :p AND sk = :s",
                      ExpressionAttributeValues={":p": {"S": "p"}, ":s": {"N": "2"}},
                      ProjectionExpression="v")["Items"]
    assert items == [{"v": {"N": "2"}}]
    err = error_of(ddb.query, TableName=numbers_table, KeyConditionExpression="pk = :p",
                   FilterExpression="sk > :z", ExpressionAttributeValues={
                       ":p": {"S": "p"}, ":z": {"N": "0"}})
    assert err["Message"] == ("Filter Expression can only contain non-primary key attributes: "
                              "Primary key attribute: sk")


@pytest.mark.parametrize("condition, values, message", [
    ("sk = :s", {":s": {"N": "1"}}, "Query condition missed key schema element: pk"),
    ("pk = :p OR sk = :s", {":p": {"S": "p"}, ":s": {"N": "1"}},
     "Invalid KeyConditionExpression: Invalid operator used in KeyConditionExpression: OR"),
    ("pk < :p", {":p": {"S": "p"}}, "Query key condition not supported"),
    ("pk = :p AND sk = :s", {":p": {"S": "p"}, ":s": {"S": "1"}},
     "One or more parameter values were invalid: Condition parameter type does not match "
     "schema type"),
    ("pk = :p AND begins_with(sk, :s)", {":p": {"S": "p"}, ":s": {"N": "1"}},
     "Invalid KeyConditionExpression: Incorrect operand type for operator or function; "
     "operator or function: begins_with, operand type: N"),
    ("pk = :p AND pk = :p", {":p": {"S": "p"}},
     "KeyConditionExpressions must only contain one condition per key"),
    ("pk = :p AND v = :s", {":p": {"S": "p"}, ":s": {"N": "1"}},
     "Query key condition not supported"),
])
def test_key_condition_errors(ddb: Any, numbers_table: str, condition: str,
                              values: dict[str, Any], message: str) -> None:
    err = error_of(ddb.query, TableName=numbers_table, KeyConditionExpression=condition,
                   ExpressionAttributeValues=values)
    assert err == {"Code": "ValidationException", "Message": message}


@pytest.fixture(scope="module")
def indexed(ddb: Any) -> str:
    name = make_table(
        ddb, ("pk", "S"), ("sk", "N"), more_definitions={"g": "S", "score": "N", "rank": "N"},
        GlobalSecondaryIndexes=[{
            "IndexName": "by-g", "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"},
                                               {"AttributeName": "score", "KeyType": "RANGE"}],
            "Projection": {"ProjectionType": "KEYS_ONLY"}}],
        LocalSecondaryIndexes=[{
            "IndexName": "by-rank", "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"},
                                                  {"AttributeName": "rank", "KeyType": "RANGE"}],
            "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["note"]}}])
    for i in range(10):
        item = {"pk": {"S": "p"}, "sk": {"N": str(i)}, "rank": {"N": str(100 - i)},
                "note": {"S": f"n{i}"}, "secret": {"S": "s"}}
        if i % 3:   # sparse: a third of the items are not in the global index
            item.update(g={"S": "even" if i % 2 == 0 else "odd"}, score={"N": str(i % 4)})
        ddb.put_item(TableName=name, Item=item)
    return name


def test_global_index_query_is_sparse_projected_and_paged(ddb: Any, indexed: str) -> None:
    items = _query(ddb, indexed, "g = :g", {":g": {"S": "odd"}}, IndexName="by-g")
    assert [(i["score"]["N"], i["sk"]["N"]) for i in items] == [
        ("1", "1"), ("1", "5"), ("3", "7")]
    assert set(items[0]) == {"pk", "sk", "g", "score"}      # KEYS_ONLY
    page = ddb.query(TableName=indexed, IndexName="by-g", KeyConditionExpression="g = :g",
                     ExpressionAttributeValues={":g": {"S": "odd"}}, Limit=2)
    assert set(page["LastEvaluatedKey"]) == {"pk", "sk", "g", "score"}
    rest = ddb.query(TableName=indexed, IndexName="by-g", KeyConditionExpression="g = :g",
                     ExpressionAttributeValues={":g": {"S": "odd"}},
                     ExclusiveStartKey=page["LastEvaluatedKey"])["Items"]
    assert [i["sk"]["N"] for i in page["Items"] + rest] == ["1", "5", "7"]
    err = error_of(ddb.query, TableName=indexed, IndexName="by-g",
                   KeyConditionExpression="g = :g", ExpressionAttributeValues={
                       ":g": {"S": "odd"}}, ConsistentRead=True)
    assert err["Message"] == "Consistent reads are not supported on global secondary indexes"
    # The index follows its items: moving an item's index key moves its entry.
    ddb.update_item(TableName=indexed, Key={"pk": {"S": "p"}, "sk": {"N": "5"}},
                    UpdateExpression="SET g = :e", ExpressionAttributeValues={":e": {"S": "even"}})
    ddb.delete_item(TableName=indexed, Key={"pk": {"S": "p"}, "sk": {"N": "7"}})
    items = _query(ddb, indexed, "g = :g", {":g": {"S": "odd"}}, IndexName="by-g")
    assert [i["sk"]["N"] for i in items] == ["1"]


def test_local_index_query(ddb: Any, indexed: str) -> None:
    items = _query(ddb, indexed, "pk = :p AND #r > :r", {":p": {"S": "p"}, ":r": {"N": "95"}},
                   IndexName="by-rank", ExpressionAttributeNames={"#r": "rank"})
    assert [i["rank"]["N"] for i in items] == ["96", "97", "98", "99", "100"]
    assert set(items[0]) == {"pk", "sk", "rank", "note"}    # INCLUDE
    items = _query(ddb, indexed, "pk = :p AND #r > :r", {":p": {"S": "p"}, ":r": {"N": "98"}},
                   IndexName="by-rank", ExpressionAttributeNames={"#r": "rank"},
                   Select="ALL_ATTRIBUTES")
    assert items[0]["secret"] == {"S": "s"}     # local indexes fetch the rest from the table


def test_scan_pages_and_parallel_segments(ddb: Any) -> None:
    name = make_table(ddb, ("pk", "S"), ("sk", "N"))
    with ddb_batch(ddb, name) as put:
        for i in range(120):
            put({"pk": {"S": f"p{i % 17}"}, "sk": {"N": str(i)}, "odd": {"BOOL": i % 2 == 1}})
    seen = _scan_all(ddb, name, Limit=13)
    assert sorted(int(i["sk"]["N"]) for i in seen) == list(range(120))
    parts = [_scan_all(ddb, name, Segment=s, TotalSegments=4) for s in range(4)]
    assert sorted(int(i["sk"]["N"]) for p in parts for i in p) == list(range(120))
    assert all(parts)
    odd = _scan_all(ddb, name, FilterExpression="odd = :t",
                    ExpressionAttributeValues={":t": {"BOOL": True}})
    assert sorted(int(i["sk"]["N"]) for i in odd) == list(range(1, 120, 2))
    err = error_of(ddb.scan, TableName=name, Segment=4, TotalSegments=4)
    assert "Segment: 4 is not less than TotalSegments: 4" in err["Message"]


def test_big_items_page_at_one_megabyte(ddb: Any) -> None:
    name = make_table(ddb, ("pk", "S"), ("sk", "N"))
    blob = base64.b64encode(b"x" * 150_000).decode()
    for i in range(10):
        ddb.put_item(TableName=name, Item={"pk": {"S": "p"}, "sk": {"N": str(i)},
                                           "b": {"S": blob}})
    page = ddb.query(TableName=name, KeyConditionExpression="pk = :p",
                     ExpressionAttributeValues={":p": {"S": "p"}})
    assert 0 < page["Count"] < 10 and "LastEvaluatedKey" in page
    rest = ddb.query(TableName=name, KeyConditionExpression="pk = :p",
                     ExpressionAttributeValues={":p": {"S": "p"}},
                     ExclusiveStartKey=page["LastEvaluatedKey"])
    assert page["Count"] + rest["Count"] == 10


def _scan_all(ddb: Any, table: str, **kw: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    start = None
    for _ in range(1000):
        page = ddb.scan(TableName=table, **kw, **({"ExclusiveStartKey": start} if start else {}))
        out += page["Items"]
        start = page.get("LastEvaluatedKey")
        if start is None:
            return out
    raise AssertionError("scan did not end")


class ddb_batch:
    """Puts in BatchWriteItem calls of 25."""

    def __init__(self, ddb: Any, table: str) -> None:
        self.ddb, self.table, self.items = ddb, table, []

    def __enter__(self) -> Any:
        return self.items.append

    def __exit__(self, *_: Any) -> None:
        for i in range(0, len(self.items), 25):
            self.ddb.batch_write_item(RequestItems={self.table: [
                {"PutRequest": {"Item": item}} for item in self.items[i:i + 25]]})
