"""Helpers shared by the DynamoDB end-to-end modules (their fixtures are in conftest.py)."""
from __future__ import annotations

import uuid
from typing import Any


def new_name(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def make_table(ddb: Any, hash_key: tuple[str, str] = ("pk", "S"),
               range_key: tuple[str, str] | None = None, **extra: Any) -> str:
    """A new PAY_PER_REQUEST table; its name."""
    name = extra.pop("TableName", None) or new_name()
    schema = [{"AttributeName": hash_key[0], "KeyType": "HASH"}]
    definitions = {hash_key[0]: hash_key[1]}
    if range_key:
        schema.append({"AttributeName": range_key[0], "KeyType": "RANGE"})
        definitions[range_key[0]] = range_key[1]
    definitions.update(extra.pop("more_definitions", {}))
    ddb.create_table(TableName=name, KeySchema=schema, BillingMode="PAY_PER_REQUEST",
                     AttributeDefinitions=[{"AttributeName": k, "AttributeType": v}
                                           for k, v in definitions.items()], **extra)
    return name


def read_stream(streams: Any, stream_arn: str, iterator_type: str = "TRIM_HORIZON",
                **kw: Any) -> list[dict[str, Any]]:
    """Every record of a stream's shard from the given position to its current end."""
    shard = streams.describe_stream(StreamArn=stream_arn)["StreamDescription"]["Shards"][0]
    iterator = streams.get_shard_iterator(StreamArn=stream_arn, ShardId=shard["ShardId"],
                                          ShardIteratorType=iterator_type, **kw)["ShardIterator"]
    records: list[dict[str, Any]] = []
    for _ in range(1000):
        page = streams.get_records(ShardIterator=iterator)
        records += page["Records"]
        iterator = page.get("NextShardIterator")
        if not page["Records"] or iterator is None:
            return records
    raise AssertionError("stream did not end")


