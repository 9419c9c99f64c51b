"""The event stream encoding, read back by botocore's own decoder and parser."""
from __future__ import annotations

from botocore.eventstream import EventStream, EventStreamBuffer
from botocore.parsers import EventStreamJSONParser

from berth.api.eventstream import event, exception, message
from berth.api.models import service_model


def test_messages_decode_with_botocore() -> None:
    buf = EventStreamBuffer()
    buf.add_data(message([("a", "b"), (":message-type", "event")], b"payload"))
    (decoded,) = list(buf)
    assert decoded.headers == {"a": "b", ":message-type": "event"}
    assert decoded.payload == b"payload"


def test_live_tail_events_parse_as_the_sdk_parses_them() -> None:
    op = service_model("logs").operation_model("StartLiveTail")
    shape = op.output_shape.members["responseStream"]
    raw = [event("sessionStart", {"requestId": "r", "sessionId": "s",
                                  "logGroupIdentifiers": ["g"]}),
           event("sessionUpdate", {"sessionMetadata": {"sampled": False}, "sessionResults": [
               {"logStreamName": "s1", "logGroupIdentifier": "g", "message": "hi",
                "timestamp": 1, "ingestionTime": 2}]})]

    class Body:
        def stream(self):  # what botocore reads an event stream from
            yield from raw
    stream = EventStream(Body(), shape, EventStreamJSONParser(), "StartLiveTail")
    events = list(stream)
    assert events[0] == {"sessionStart": {"requestId": "r", "sessionId": "s",
                                          "logGroupIdentifiers": ["g"]}}
    assert events[1]["sessionUpdate"]["sessionResults"][0]["message"] == "hi"


def test_an_exception_ends_the_stream_as_an_error() -> None:
    import pytest
    from botocore.exceptions import EventStreamError
    op = service_model("logs").operation_model("StartLiveTail")
    shape = op.output_shape.members["responseStream"]

    class Body:
        def stream(self):
            yield exception("SessionTimeoutException", "Session timed out")
    with pytest.raises(EventStreamError) as err:
        list(EventStream(Body(), shape, EventStreamJSONParser(), "StartLiveTail"))
    assert err.value.response["Error"]["Code"] == "SessionTimeoutException"
