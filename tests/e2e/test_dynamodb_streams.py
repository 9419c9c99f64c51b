"""DynamoDB Streams through boto3: records exactly as AWS shapes them for every view type,
one record per change in the change's transaction, per-item order (also with two servers on one
PostgreSQL database), shard iterators of every type, streams outliving their table, and TTL
deletions as REMOVE records by the service."""
from __future__ import annotations

import os
import re
import threading
import time
from pathlib import Path
from typing import Any, Iterator
from unittest import mock

import pytest

from berth_process import BerthProcess, error_of
from dynamodb_support import make_table, read_stream


def streamed_table(ddb: Any, view: str, **kw: Any) -> tuple[str, str]:
    name = make_table(ddb, ("pk", "S"), ("sk", "N"), StreamSpecification={
        "StreamEnabled": True, "StreamViewType": view}, **kw)
    return name, ddb.describe_table(TableName=name)["Table"]["LatestStreamArn"]


def _key(pk: str, sk: int) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"N": str(sk)}}


@pytest.mark.parametrize("view", ["KEYS_ONLY", "NEW_IMAGE", "OLD_IMAGE", "NEW_AND_OLD_IMAGES"])
def test_records_of_each_view_type(ddb: Any, ddb_streams: Any, view: str) -> None:
    name, arn = streamed_table(ddb, view)
    k = _key("a", 1)
    before = int(time.time())
    ddb.put_item(TableName=name, Item={**k, "v": {"S": "one"}})
    ddb.update_item(TableName=name, Key=k, UpdateExpression="SET v = :v",
                    ExpressionAttributeValues={":v": {"S": "two"}})
    ddb.delete_item(TableName=name, Key=k)
    records = read_stream(ddb_streams, arn)
    assert [r["eventName"] for r in records] == ["INSERT", "MODIFY", "REMOVE"]
    images = {"INSERT": (None, {**k, "v": {"S": "one"}}),
              "MODIFY": ({**k, "v": {"S": "one"}}, {**k, "v": {"S": "two"}}),
              "REMOVE": ({**k, "v": {"S": "two"}}, None)}
    sequence = []
    for record in records:
        assert re.fullmatch(r"[0-9a-f]{32}", record["eventID"])
        assert record["eventVersion"] == "1.1"
        assert record["eventSource"] == "aws:dynamodb"
        assert record["awsRegion"] == "us-east-1"
        body = record["dynamodb"]
        assert body["Keys"] == k
        assert body["StreamViewType"] == view
        assert body["ApproximateCreationDateTime"].timestamp() >= before
        old, new = images[record["eventName"]]
        assert body.get("NewImage") == (new if view in ("NEW_IMAGE", "NEW_AND_OLD_IMAGES")
                                        else None)
        assert body.get("OldImage") == (old if view in ("OLD_IMAGE", "NEW_AND_OLD_IMAGES")
                                        else None)
        # Keys (pk "a": 3 bytes, sk 1: 4) and the images the view carries.
        expected = 7 + sum(7 + 1 + len(i["v"]["S"]) for i in (body.get("NewImage"),
                                                              body.get("OldImage")) if i)
        assert body["SizeBytes"] == expected
        assert "userIdentity" not in record
        sequence.append(int(body["SequenceNumber"]))
        assert len(body["SequenceNumber"]) >= 21
    assert sequence == sorted(sequence) and len(set(sequence)) == 3


def test_size_bytes_as_the_developer_guide_counts(ddb: Any, ddb_streams: Any) -> None:
    name = make_table(ddb, ("Id", "N"), StreamSpecification={
        "StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"})
    arn = ddb.describe_table(TableName=name)["Table"]["LatestStreamArn"]
    ddb.put_item(TableName=name, Item={"Id": {"N": "101"}, "Message": {"S": "New item!"}})
    ddb.put_item(TableName=name, Item={"Id": {"N": "101"},
                                       "Message": {"S": "This item has changed"}})
    ddb.delete_item(TableName=name, Key={"Id": {"N": "101"}})
    sizes = [r["dynamodb"]["SizeBytes"] for r in read_stream(ddb_streams, arn)]
    assert sizes == [26, 59, 38]        # the guide's example stream


def test_no_record_for_writes_that_change_nothing(ddb: Any, ddb_streams: Any) -> None:
    name, arn = streamed_table(ddb, "NEW_IMAGE")
    item = {**_key("same", 1), "s": {"SS": ["a", "b"]}}
    ddb.put_item(TableName=name, Item=item)
    ddb.put_item(TableName=name, Item={**item, "s": {"SS": ["b", "a"]}})    # the same item
    ddb.update_item(TableName=name, Key=_key("same", 1), UpdateExpression="SET s = s")
    ddb.delete_item(TableName=name, Key=_key("absent", 1))
    assert [r["eventName"] for r in read_stream(ddb_streams, arn)] == ["INSERT"]


def test_batches_and_transactions_stream_every_change(ddb: Any, ddb_streams: Any) -> None:
    name, arn = streamed_table(ddb, "KEYS_ONLY")
    ddb.batch_write_item(RequestItems={name: [{"PutRequest": {"Item": _key("b", i)}}
                                              for i in range(5)]})
    ddb.transact_write_items(TransactItems=[
        {"Delete": {"TableName": name, "Key": _key("b", 0)}},
        {"Put": {"TableName": name, "Item": _key("b", 9)}}])
    with pytest.raises(ddb.exceptions.TransactionCanceledException):
        ddb.transact_write_items(TransactItems=[
            {"Put": {"TableName": name, "Item": _key("b", 10)}},
            {"ConditionCheck": {"TableName": name, "Key": _key("b", 1),
                                "ConditionExpression": "attribute_not_exists(pk)"}}])
    records = read_stream(ddb_streams, arn)
    assert [(r["eventName"], r["dynamodb"]["Keys"]["sk"]["N"]) for r in records] == [
        ("INSERT", str(i)) for i in range(5)] + [("REMOVE", "0"), ("INSERT", "9")]


def test_shard_iterator_types(ddb: Any, ddb_streams: Any) -> None:
    name, arn = streamed_table(ddb, "KEYS_ONLY")
    for i in range(4):
        ddb.put_item(TableName=name, Item=_key("it", i))
    records = read_stream(ddb_streams, arn)
    second = records[1]["dynamodb"]["SequenceNumber"]
    at = read_stream(ddb_streams, arn, "AT_SEQUENCE_NUMBER", SequenceNumber=second)
    after = read_stream(ddb_streams, arn, "AFTER_SEQUENCE_NUMBER", SequenceNumber=second)
    assert [r["eventID"] for r in at] == [r["eventID"] for r in records[1:]]
    assert [r["eventID"] for r in after] == [r["eventID"] for r in records[2:]]
    shard = ddb_streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]
    latest = ddb_streams.get_shard_iterator(StreamArn=arn, ShardId=shard["ShardId"],
                                            ShardIteratorType="LATEST")["ShardIterator"]
    assert ddb_streams.get_records(ShardIterator=latest)["Records"] == []
    ddb.put_item(TableName=name, Item=_key("it", 99))
    page = ddb_streams.get_records(ShardIterator=latest)
    assert [r["dynamodb"]["Keys"]["sk"]["N"] for r in page["Records"]] == ["99"]
    limited = ddb_streams.get_records(ShardIterator=ddb_streams.get_shard_iterator(
        StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON")[
        "ShardIterator"], Limit=2)
    assert len(limited["Records"]) == 2 and limited["NextShardIterator"]
    err = error_of(ddb_streams.get_shard_iterator, StreamArn=arn, ShardId="shardId-00000000000000000000-00000000",
                   ShardIteratorType="LATEST")
    assert err["Code"] == "ResourceNotFoundException"
    err = error_of(ddb_streams.describe_stream, StreamArn=arn + "x")
    assert err["Code"] == "ResourceNotFoundException"


def test_describe_and_list_streams_outlive_the_table(ddb: Any, ddb_streams: Any) -> None:
    name, arn = streamed_table(ddb, "NEW_IMAGE")
    ddb.put_item(TableName=name, Item=_key("x", 1))
    listed = ddb_streams.list_streams(TableName=name)["Streams"]
    assert listed == [{"StreamArn": arn, "TableName": name,
                       "StreamLabel": arn.rsplit("/", 1)[1]}]
    description = ddb_streams.describe_stream(StreamArn=arn)["StreamDescription"]
    assert description["StreamStatus"] == "ENABLED"
    assert description["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"},
                                        {"AttributeName": "sk", "KeyType": "RANGE"}]
    shard, = description["Shards"]
    assert re.fullmatch(r"shardId-\d{20}-[0-9a-f]{8}", shard["ShardId"])
    assert "EndingSequenceNumber" not in shard["SequenceNumberRange"]
    ddb.delete_table(TableName=name)
    description = ddb_streams.describe_stream(StreamArn=arn)["StreamDescription"]
    assert description["StreamStatus"] == "DISABLED"
    assert "EndingSequenceNumber" in description["Shards"][0]["SequenceNumberRange"]
    records = read_stream(ddb_streams, arn)     # still readable, and its shard has ended
    assert [r["eventName"] for r in records] == ["INSERT"]
    shard_id = description["Shards"][0]["ShardId"]
    iterator = ddb_streams.get_shard_iterator(StreamArn=arn, ShardId=shard_id,
                                              ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    page = ddb_streams.get_records(ShardIterator=iterator)
    assert "NextShardIterator" not in page


def test_per_item_order_under_concurrent_writers(ddb_server: BerthProcess, ddb: Any,
                                                 ddb_streams: Any) -> None:
    name, arn = streamed_table(ddb, "NEW_IMAGE")
    _race_counters([ddb_server.client], name)
    _check_per_item_order(ddb, ddb_streams, name, arn)


def _race_counters(makers: list[Any], name: str, writers: int = 4,
                   writes: int = 30) -> None:
    """Threads increment three shared counters (each through one of `makers`' clients)."""
    failures: list[BaseException] = []

    def run(w: int) -> None:
        client = makers[w % len(makers)]("dynamodb")
        try:
            for i in range(writes):
                client.update_item(TableName=name, Key=_key("ctr", i % 3),
                                   UpdateExpression="ADD n :one SET writer = :w",
                                   ExpressionAttributeValues={":one": {"N": "1"},
                                                              ":w": {"N": str(w)}})
        except BaseException as exc:    # reported by the test, not lost in the thread
            failures.append(exc)
    threads = [threading.Thread(target=run, args=(w,)) for w in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not failures, failures


def _check_per_item_order(ddb: Any, streams: Any, name: str, arn: str) -> None:
    records = read_stream(streams, arn)
    sequence = [int(r["dynamodb"]["SequenceNumber"]) for r in records]
    assert sequence == list(range(sequence[0], sequence[0] + len(sequence)))    # no gaps
    last: dict[str, int] = {}
    for record in records:
        k = record["dynamodb"]["Keys"]["sk"]["N"]
        n = int(record["dynamodb"]["NewImage"]["n"]["N"])
        assert n == last.get(k, 0) + 1      # each item's changes, in order, none missing
        last[k] = n
    for k, n in last.items():
        item = ddb.get_item(TableName=name, Key=_key("ctr", int(k)))["Item"]
        assert int(item["n"]["N"]) == n


def test_two_servers_on_one_postgresql_keep_per_item_order(postgres_url: str,
                                                           tmp_path: Path) -> None:
    from postgres import private_database
    with private_database(postgres_url, "ddbpair") as url:
        servers = [BerthProcess(tmp_path / f"d{i}", database_url=url).start() for i in range(2)]
        try:
            one = servers[0].client("dynamodb")
            name, arn = streamed_table(one, "NEW_IMAGE")
            _race_counters([s.client for s in servers], name, writers=6, writes=20)
            _check_per_item_order(one, servers[1].client("dynamodbstreams"), name, arn)
        finally:
            for s in servers:
                s.stop()


@pytest.fixture
def fast_sweeps(tmp_path: Path) -> Iterator[BerthProcess]:
    with mock.patch.dict(os.environ, {"BERTH_DYNAMODB_SWEEP_INTERVAL": "0.2"}):
        proc = BerthProcess(tmp_path / "data").start()
    yield proc
    proc.stop()


def test_ttl_deletes_expired_items_with_a_service_record(fast_sweeps: BerthProcess) -> None:
    ddb, streams = fast_sweeps.client("dynamodb"), fast_sweeps.client("dynamodbstreams")
    name, arn = streamed_table(ddb, "NEW_AND_OLD_IMAGES")
    now = int(time.time())
    ddb.put_item(TableName=name, Item={**_key("ttl", 1), "exp": {"N": str(now - 10)}})
    ddb.put_item(TableName=name, Item={**_key("ttl", 2), "exp": {"N": str(now + 3600)}})
    ddb.put_item(TableName=name, Item={**_key("ttl", 3), "exp": {"S": "not a number"}})
    ddb.put_item(TableName=name, Item={**_key("ttl", 4),
                                       "exp": {"N": str(now - 6 * 365 * 86400)}})
    ddb.update_time_to_live(TableName=name, TimeToLiveSpecification={
        "Enabled": True, "AttributeName": "exp"})
    ddb.put_item(TableName=name, Item={**_key("ttl", 5), "exp": {"N": str(now - 1)}})
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        left = {i["sk"]["N"] for i in ddb.scan(TableName=name)["Items"]}
        if left == {"2", "3", "4"}:
            break
        time.sleep(0.1)
    assert left == {"2", "3", "4"}
    removes = [r for r in read_stream(streams, arn) if r["eventName"] == "REMOVE"]
    assert sorted(r["dynamodb"]["Keys"]["sk"]["N"] for r in removes) == ["1", "5"]
    for record in removes:
        assert record["userIdentity"] == {"Type": "Service",
                                          "PrincipalId": "dynamodb.amazonaws.com"}
        assert record["dynamodb"]["OldImage"]["exp"]["N"]
