"""What a subscription filter hands a Lambda function: the matching events of a batch in
AWS's awslogs payload, split to fit an asynchronous invocation."""
from __future__ import annotations

import base64
import gzip
import json
import random
import string

from berth.logs.subscription_payload import LogEvent, lambda_payloads, matching


def decoded(payload: bytes) -> dict:
    event = json.loads(payload)
    assert list(event) == ["awslogs"] and list(event["awslogs"]) == ["data"]
    return json.loads(gzip.decompress(base64.b64decode(event["awslogs"]["data"])))


EVENTS = [LogEvent(7, 1_700_000_000_000, "GET /a 200"),
          LogEvent(8, 1_700_000_000_001, "GET /b 500"),
          LogEvent(9, 1_700_000_000_002, '{"level": "ERROR", "code": 500}')]


def test_the_payload_is_a_gzipped_base64_data_message() -> None:
    (payload,) = lambda_payloads("000000000000", "/app/web", "web-1", "errors", EVENTS)
    message = decoded(payload)
    assert message == {
        "messageType": "DATA_MESSAGE", "owner": "000000000000", "logGroup": "/app/web",
        "logStream": "web-1", "subscriptionFilters": ["errors"],
        "logEvents": [{"id": f"{7:056d}", "timestamp": 1_700_000_000_000,
                       "message": "GET /a 200"},
                      {"id": f"{8:056d}", "timestamp": 1_700_000_000_001,
                       "message": "GET /b 500"},
                      {"id": f"{9:056d}", "timestamp": 1_700_000_000_002,
                       "message": '{"level": "ERROR", "code": 500}'}]}
    assert list(message) == ["messageType", "owner", "logGroup", "logStream",
                             "subscriptionFilters", "logEvents"]


def test_only_matching_events_are_delivered_and_none_means_no_delivery() -> None:
    assert [e.id for e in matching("500", EVENTS)] == [8, 9]
    assert [e.id for e in matching("{ $.level = \"ERROR\" }", EVENTS)] == [9]
    assert [e.id for e in matching("", EVENTS)] == [7, 8, 9]
    assert lambda_payloads("000000000000", "/g", "s", "f", []) == []


def test_a_large_batch_is_split_into_payloads_that_fit() -> None:
    rng = random.Random(1)      # incompressible messages, so the split is needed
    events = [LogEvent(i, 1_700_000_000_000 + i,
                       "".join(rng.choices(string.ascii_letters, k=1000)))
              for i in range(1000)]
    payloads = lambda_payloads("000000000000", "/g", "s", "f", events)
    assert len(payloads) >= 4     # ~1 MB of letters: gzip keeps ~75%, base64 adds a third
    assert all(len(p) <= 262_144 for p in payloads)
    carried = [e["id"] for p in payloads for e in decoded(p)["logEvents"]]
    assert carried == [f"{i:056d}" for i in range(1000)]    # all, once, in order
