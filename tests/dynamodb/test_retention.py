"""What time takes away, with the clock moved forward in-process on a real store: stream
records after 24 hours (TrimmedDataAccessException for positions before them), streams of
deleted tables a day later, shard iterators after 15 minutes, and the rows of deleted tables."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Iterator

import pytest
import sqlalchemy as sa

from berth.api.app import RequestContext
from berth.api.errors import ServiceError
from berth.config import Settings
from berth.dynamodb import streams_api
from berth.dynamodb.purge import purge_deleted_tables, trim_streams
from berth.dynamodb.schema import dynamodb_items
from berth.dynamodb.service import DynamoDBService
from berth.dynamodb.streams_api import DynamoDBStreamsService
from berth.state.store import Store

DAY = 24 * 3600


def ctx() -> RequestContext:
    return RequestContext("r", "us-east-1", "000000000000", "dynamodb", "op", "AKIA", "")


@pytest.fixture
def services(tmp_path: Path) -> Iterator[tuple[DynamoDBService, DynamoDBStreamsService, Store]]:
    store = Store(f"sqlite:///{tmp_path / 'berth.db'}")
    settings = Settings(data_dir=tmp_path)
    ddb, streams = DynamoDBService(store, settings), DynamoDBStreamsService(store, settings)
    store.create_all()
    yield ddb, streams, store
    store.dispose()


def _table(ddb: DynamoDBService) -> str:
    ddb.create_table(ctx(), {
        "TableName": "tbl", "KeySchema": [{"AttributeName": "k", "KeyType": "HASH"}],
        "AttributeDefinitions": [{"AttributeName": "k", "AttributeType": "S"}],
        "BillingMode": "PAY_PER_REQUEST",
        "StreamSpecification": {"StreamEnabled": True, "StreamViewType": "KEYS_ONLY"}})
    return ddb.describe_table(ctx(), {"TableName": "tbl"})["Table"]["LatestStreamArn"]


def _put(ddb: DynamoDBService, key: str) -> None:
    ddb.put_item(ctx(), {"TableName": "tbl", "Item": {"k": {"S": key}}})


def _iterator(streams: DynamoDBStreamsService, arn: str, kind: str, **kw: Any) -> str:
    shard = streams.describe_stream(ctx(), {"StreamArn": arn})["StreamDescription"]["Shards"][0]
    return streams.get_shard_iterator(ctx(), {"StreamArn": arn, "ShardId": shard["ShardId"],
                                              "ShardIteratorType": kind, **kw})["ShardIterator"]


def test_records_older_than_a_day_are_trimmed(services: Any) -> None:
    ddb, streams, store = services
    arn = _table(ddb)
    for key in "abc":
        _put(ddb, key)
    old = _iterator(streams, arn, "TRIM_HORIZON")
    first = streams.get_records(ctx(), {"ShardIterator": old})["Records"][0]
    assert trim_streams(store, time.time() + DAY - 60) == 0     # not yet a day old
    assert trim_streams(store, time.time() + DAY + 1) == 3
    _put(ddb, "d")
    with pytest.raises(ServiceError) as err:
        streams.get_records(ctx(), {"ShardIterator": old})
    assert err.value.code == "TrimmedDataAccessException"
    with pytest.raises(ServiceError) as err:
        _iterator(streams, arn, "AT_SEQUENCE_NUMBER",
                  SequenceNumber=first["dynamodb"]["SequenceNumber"])
    assert err.value.code == "TrimmedDataAccessException"
    fresh = streams.get_records(ctx(), {"ShardIterator": _iterator(streams, arn,
                                                                   "TRIM_HORIZON")})
    assert [r["dynamodb"]["Keys"]["k"]["S"] for r in fresh["Records"]] == ["d"]


def test_a_deleted_tables_stream_goes_a_day_later(services: Any) -> None:
    ddb, streams, store = services
    arn = _table(ddb)
    _put(ddb, "a")
    ddb.delete_table(ctx(), {"TableName": "tbl"})
    assert streams.list_streams(ctx(), {})["Streams"][0]["StreamArn"] == arn
    trim_streams(store, time.time() + DAY + 1)
    with pytest.raises(ServiceError) as err:
        streams.describe_stream(ctx(), {"StreamArn": arn})
    assert err.value.code == "ResourceNotFoundException"
    assert streams.list_streams(ctx(), {})["Streams"] == []


def test_shard_iterators_expire_after_15_minutes(services: Any,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    ddb, streams, _ = services
    arn = _table(ddb)
    iterator = _iterator(streams, arn, "LATEST")
    later = time.time() + 15 * 60 + 1
    monkeypatch.setattr(streams_api.time, "time", lambda: later)
    with pytest.raises(ServiceError) as err:
        streams.get_records(ctx(), {"ShardIterator": iterator})
    assert err.value.code == "ExpiredIteratorException"
    with pytest.raises(ServiceError) as err:
        streams.get_records(ctx(), {"ShardIterator": "garbage"})
    assert err.value.code == "ValidationException"


def test_a_deleted_tables_rows_are_purged_and_a_new_table_starts_empty(services: Any) -> None:
    ddb, _, store = services
    _table(ddb)
    for i in range(2500):
        _put(ddb, f"k{i}")
    ddb.delete_table(ctx(), {"TableName": "tbl"})
    _table(ddb)     # the same name again: a new table, none of the old items
    assert ddb.scan(ctx(), {"TableName": "tbl"})["Count"] == 0

    def rows() -> int:
        with store.read() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(dynamodb_items)).scalar()
    assert rows() == 2500
    assert purge_deleted_tables(store, time.time()) == 0        # not yet due
    assert purge_deleted_tables(store, time.time() + 60) == 2500
    assert rows() == 0
