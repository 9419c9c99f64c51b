"""What a subscription filter delivers to a Lambda function: the events of one PutLogEvents
batch its pattern matches, in AWS's payload.

The function receives `{"awslogs": {"data": <base64 of gzip of a DATA_MESSAGE>}}`, where the
DATA_MESSAGE is `{"messageType", "owner", "logGroup", "logStream", "subscriptionFilters",
"logEvents": [{"id", "timestamp", "message"}]}`. A batch whose payload would pass the
asynchronous invocation limit is split into several deliveries. Pure: no I/O.
"""
from __future__ import annotations

import base64
import gzip
import json
from dataclasses import dataclass
from typing import Sequence

from .cursor import event_id
from .patterns import compile_pattern

# An asynchronous invocation's payload limit (lambda_.async_queue.ASYNC_PAYLOAD).
MAX_PAYLOAD = 262_144


@dataclass(frozen=True)
class LogEvent:
    id: int
    timestamp: int
    message: str


def matching(pattern: str, events: Sequence[LogEvent]) -> list[LogEvent]:
    """The events a filter pattern matches (an empty pattern matches all)."""
    match = compile_pattern(pattern)
    return [e for e in events if match(e.message)]


def data_message(owner: str, group: str, stream: str, filter_name: str,
                 events: Sequence[LogEvent]) -> dict[str, object]:
    return {"messageType": "DATA_MESSAGE", "owner": owner, "logGroup": group,
            "logStream": stream, "subscriptionFilters": [filter_name],
            "logEvents": [{"id": event_id(e.id), "timestamp": e.timestamp,
                           "message": e.message} for e in events]}


def lambda_payloads(owner: str, group: str, stream: str, filter_name: str,
                    events: Sequence[LogEvent], limit: int = MAX_PAYLOAD) -> list[bytes]:
    """The Lambda event(s) carrying `events`, each at most `limit` bytes: the batch is halved
    until its parts fit (one event alone is sent however large: the queue refuses nothing
    that PutLogEvents accepted)."""
    if not events:
        return []
    message = json.dumps(data_message(owner, group, stream, filter_name, events),
                         separators=(",", ":")).encode()
    data = base64.b64encode(gzip.compress(message, compresslevel=6)).decode()
    payload = json.dumps({"awslogs": {"data": data}}).encode()
    if len(payload) <= limit or len(events) == 1:
        return [payload]
    half = len(events) // 2
    return (lambda_payloads(owner, group, stream, filter_name, events[:half], limit)
            + lambda_payloads(owner, group, stream, filter_name, events[half:], limit))

