"""The DynamoDB Streams provider (`dynamodbstreams`): ListStreams, DescribeStream,
GetShardIterator, GetRecords.

A shard iterator is the stream's ARN and an opaque token (as AWS's look: `ARN|1|...`) that
says where reading resumes: after a sequence number. It expires 15 minutes after it was
handed out. Sequence numbers of a stream are consecutive, so a position below the oldest
record still held means records were trimmed in between (TrimmedDataAccessException).
"""
from __future__ import annotations

import base64
import binascii
import time
from typing import Any

import orjson

from ..api.app import RequestContext, quick_read
from ..api.errors import ServiceError
from ..config import Settings
from ..state.store import Store
from . import streams
from .errors import invalid
from .paging import PAGE_BYTES
from .streams import StreamRow, sequence_number

ITERATOR_LIFETIME = 15 * 60
MAX_RECORDS = 1000


def _not_found(what: str) -> ServiceError:
    return ServiceError("ResourceNotFoundException", f"Requested resource not found: {what}")


class DynamoDBStreamsService:
    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings

    @quick_read
    def list_streams(self, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
        found = streams.listed(self.store, ctx.region, req.get("TableName"), time.time())
        start = req.get("ExclusiveStartStreamArn")
        if start is not None:
            arns = [s.arn for s in found]
            found = found[arns.index(start) + 1:] if start in arns else []
        limit = req.get("Limit", 100)
        out: dict[str, Any] = {"Streams": [
            {"StreamArn": s.arn, "TableName": s.table_name, "StreamLabel": s.label}
            for s in found[:limit]]}
        if len(found) > limit:
            out["LastEvaluatedStreamArn"] = found[limit - 1].arn
        return out

    @quick_read
    def describe_stream(self, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
        stream = self._stream(req["StreamArn"])
        first, _ = streams.bounds(self.store, stream.id)
        shard: dict[str, Any] = {"ShardId": stream.shard_id, "SequenceNumberRange": {
            "StartingSequenceNumber": sequence_number(first or stream.last_seq + 1)}}
        if stream.disabled is not None:
            shard["SequenceNumberRange"]["EndingSequenceNumber"] = sequence_number(
                max(stream.last_seq, first or 0))
        shards = [shard]
        if req.get("ExclusiveStartShardId") == stream.shard_id:
            shards = []
        return {"StreamDescription": {
            "StreamArn": stream.arn, "StreamLabel": stream.label,
            "StreamStatus": stream.status, "StreamViewType": stream.view_type,
            "CreationRequestDateTime": stream.created, "TableName": stream.table_name,
            "KeySchema": stream.key_schema, "Shards": shards}}

    @quick_read
    def get_shard_iterator(self, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
        stream = self._stream(req["StreamArn"])
        if req["ShardId"] != stream.shard_id:
            raise _not_found(f"Shard does not exist: {req['ShardId']}")
        kind = req["ShardIteratorType"]
        first, _ = streams.bounds(self.store, stream.id)
        if kind == "TRIM_HORIZON":
            after = first - 1 if first is not None else stream.last_seq
        elif kind == "LATEST":
            after = stream.last_seq
        else:
            given = req.get("SequenceNumber")
            seq = streams.parse_sequence_number(given) if given is not None else None
            if seq is None:
                raise invalid("1 validation error detected: Value null at 'sequenceNumber' "
                              "failed to satisfy constraint: Member must not be null"
                              if given is None else f"Invalid SequenceNumber: {given}")
            if seq > stream.last_seq:
                raise invalid(f"Invalid SequenceNumber: {given} is beyond the end of shard "
                              f"{stream.shard_id}")
            after = seq - 1 if kind == "AT_SEQUENCE_NUMBER" else seq
            oldest = first if first is not None else stream.last_seq + 1
            if after < oldest - 1:
                raise _trimmed()
        return {"ShardIterator": _iterator(stream, after)}

    @quick_read
    def get_records(self, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
        arn, stream_id, after, issued = _parse_iterator(req["ShardIterator"])
        now = time.time()
        if now - issued > ITERATOR_LIFETIME:
            raise ServiceError("ExpiredIteratorException",
                               "Iterator expired. The iterator was created at time "
                               f"{_stamp(issued)} while right now it is {_stamp(now)} which "
                               f"is further in the future than the tolerated delay of "
                               f"{ITERATOR_LIFETIME * 1000} milliseconds.")
        stream = self._stream(arn)
        if stream.id != stream_id:
            raise invalid("Invalid ShardIterator")
        limit = req.get("Limit", MAX_RECORDS)
        found = streams.records_after(self.store, stream, after, limit)
        if found and found[0][0] > after + 1:
            raise _trimmed()
        if not found and after < stream.last_seq:
            raise _trimmed()    # what it pointed at is gone, and nothing after it remains
        records, size = [], 0
        for seq, record in found:
            records.append(record)
            after = seq
            size += record["dynamodb"]["SizeBytes"]
            if size >= PAGE_BYTES:
                break
        out: dict[str, Any] = {"Records": records}
        if stream.disabled is None or after < stream.last_seq:
            out["NextShardIterator"] = _iterator(stream, after)
        return out

    def _stream(self, arn: str) -> StreamRow:
        stream = streams.find(self.store, arn)
        if stream is None or (stream.disabled is not None
                              and stream.disabled < time.time() - streams.RETENTION):
            raise _not_found(f"Stream: {arn} not found")
        return stream


def _trimmed() -> ServiceError:
    return ServiceError("TrimmedDataAccessException",
                        "The operation attempted to read past the oldest stream record in a "
                        "shard.")


def _iterator(stream: StreamRow, after: int) -> str:
    token = orjson.dumps([stream.id, after, round(time.time(), 3)])
    return f"{stream.arn}|1|{base64.b64encode(token).decode()}"


def _parse_iterator(text: str) -> tuple[str, int, int, float]:
    arn, _, rest = text.partition("|1|")
    try:
        stream_id, after, issued = orjson.loads(base64.b64decode(rest, validate=True))
        return arn, int(stream_id), int(after), float(issued)
    except (binascii.Error, ValueError, TypeError, orjson.JSONDecodeError):
        raise invalid("Invalid ShardIterator") from None


def _stamp(when: float) -> str:
    return time.strftime("%a %b %d %H:%M:%S UTC %Y", time.gmtime(when))
