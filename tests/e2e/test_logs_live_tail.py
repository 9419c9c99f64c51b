"""StartLiveTail against a real server with boto3: the event stream's sessionStart, then the
new events of the group (through the filter pattern and stream names) in sessionUpdates, and
the session ending when the client closes the stream.

botocore sends StartLiveTail to `stream-<host>` unless host prefixes are off: pointed at a
local endpoint, clients turn them off (Config(inject_host_prefix=False), or
AWS_DISABLE_HOST_PREFIX_INJECTION=true)."""
from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import pytest
from berth_process import BerthProcess, error_of
from botocore.config import Config


@pytest.fixture(scope="module")
def tail_client(berth: BerthProcess) -> Any:
    return berth.client("logs", config=Config(inject_host_prefix=False,
                                              retries={"max_attempts": 1},
                                              read_timeout=30))


def test_new_events_arrive_in_session_updates(logs: Any, tail_client: Any) -> None:
    group = "/tail/" + uuid.uuid4().hex[:8]
    logs.create_log_group(logGroupName=group)
    for stream in ("web-1", "worker"):
        logs.create_log_stream(logGroupName=group, logStreamName=stream)
    logs.put_log_events(logGroupName=group, logStreamName="web-1", logEvents=[
        {"timestamp": int(time.time() * 1000), "message": "ERROR before the session"}])
    response = tail_client.start_live_tail(logGroupIdentifiers=[group],
                                           logStreamNamePrefixes=["web"],
                                           logEventFilterPattern="ERROR")
    stream = response["responseStream"]
    events = iter(stream)
    first = next(events)
    assert set(first) == {"sessionStart"}
    start = first["sessionStart"]
    assert start["logGroupIdentifiers"] == [group]
    assert start["logStreamNamePrefixes"] == ["web"]
    assert start["logEventFilterPattern"] == "ERROR"
    assert start["sessionId"] and start["requestId"]
    now = int(time.time() * 1000)
    logs.put_log_events(logGroupName=group, logStreamName="web-1", logEvents=[
        {"timestamp": now, "message": "ERROR one"}, {"timestamp": now + 1, "message": "INFO"},
        {"timestamp": now + 2, "message": "ERROR two"}])
    logs.put_log_events(logGroupName=group, logStreamName="worker", logEvents=[
        {"timestamp": now + 3, "message": "ERROR elsewhere"}])
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + 20
    while len(seen) < 2 and time.monotonic() < deadline:
        update = next(events)["sessionUpdate"]
        assert update["sessionMetadata"] == {"sampled": False}
        seen += update["sessionResults"]
    stream.close()
    assert [(e["message"], e["logStreamName"], e["logGroupIdentifier"]) for e in seen] == [
        ("ERROR one", "web-1", group), ("ERROR two", "web-1", group)]
    assert seen[0]["timestamp"] == now and seen[0]["ingestionTime"] >= now - 60_000


def test_a_session_streams_until_the_client_leaves(berth: BerthProcess, logs: Any,
                                                   tail_client: Any) -> None:
    group = "/tail/" + uuid.uuid4().hex[:8]
    logs.create_log_group(logGroupName=group)
    arn = f"arn:aws:logs:us-east-1:000000000000:log-group:{group}"
    updates = []
    stream = tail_client.start_live_tail(logGroupIdentifiers=[arn])["responseStream"]

    def read() -> None:
        for event in stream:
            updates.append(event)
            if len(updates) >= 3:
                return
    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(30)
    assert not reader.is_alive()
    assert "sessionStart" in updates[0]
    assert all(u["sessionUpdate"]["sessionResults"] == [] for u in updates[1:])
    stream.close()
    # The server is still answering after the client went away.
    assert logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"]


def test_live_tail_refuses_what_aws_refuses(tail_client: Any, logs: Any) -> None:
    assert error_of(tail_client.start_live_tail,
                    logGroupIdentifiers=["/no/such/" + uuid.uuid4().hex])[
        "Code"] == "ResourceNotFoundException"
    group = "/tail/" + uuid.uuid4().hex[:8]
    logs.create_log_group(logGroupName=group)
    assert error_of(tail_client.start_live_tail, logGroupIdentifiers=[group],
                    logStreamNames=["a"], logStreamNamePrefixes=["b"])[
        "Code"] == "InvalidParameterException"
    assert error_of(tail_client.start_live_tail, logGroupIdentifiers=[group],
                    logEventFilterPattern="{ $.x = ")["Code"] == "InvalidParameterException"
