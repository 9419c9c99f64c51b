"""FilterLogEvents against a real server: across streams, in time order, through patterns."""
from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest

from berth_process import BerthProcess, error_of


@pytest.fixture(scope="module")
def app(logs: Any) -> tuple[str, int]:
    """A group with three streams whose events interleave in time."""
    group = "/filter/" + uuid.uuid4().hex[:12]
    logs.create_log_group(logGroupName=group)
    base = int(time.time() * 1000) - 60_000
    lines = {
        "web-1": [(0, "GET /index 200 12ms"), (3, "GET /login 500 80ms"),
                  (6, '{"level": "ERROR", "status": 503, "user": {"id": 7}}')],
        "web-2": [(1, "GET /about 200 5ms"), (4, "POST /login 302 40ms"),
                  (7, '{"level": "INFO", "status": 200, "user": {"id": 8}}')],
        "worker": [(2, "job 1 started"), (5, "job 1 ERROR timeout"), (8, "job 2 started")],
    }
    for stream, events in lines.items():
        logs.create_log_stream(logGroupName=group, logStreamName=stream)
        logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=[
            {"timestamp": base + t * 1000, "message": m} for t, m in events])
    return group, base


def found(logs: Any, group: str, **kw: Any) -> list[tuple[str, str]]:
    paginator = logs.get_paginator("filter_log_events")
    return [(e["logStreamName"], e["message"])
            for page in paginator.paginate(logGroupName=group, **kw) for e in page["events"]]


def test_events_interleave_in_time_order(logs: Any, app: tuple[str, int]) -> None:
    group, base = app
    page = logs.filter_log_events(logGroupName=group)
    assert [e["timestamp"] for e in page["events"]] == [base + i * 1000 for i in range(9)]
    assert [e["logStreamName"] for e in page["events"]] == ["web-1", "web-2", "worker"] * 3
    ids = [e["eventId"] for e in page["events"]]
    assert len(set(ids)) == 9
    assert all(abs(e["ingestionTime"] - time.time() * 1000) < 120_000 for e in page["events"])
    assert "nextToken" not in page


def test_stream_and_time_filters(logs: Any, app: tuple[str, int]) -> None:
    group, base = app
    assert [m for s, m in found(logs, group, logStreamNames=["worker"])] == [
        "job 1 started", "job 1 ERROR timeout", "job 2 started"]
    assert {s for s, _ in found(logs, group, logStreamNamePrefix="web")} == {"web-1", "web-2"}
    assert found(logs, group, logStreamNames=["absent"]) == []
    # Both ends of the window are inclusive.
    window = found(logs, group, startTime=base + 3000, endTime=base + 5000)
    assert [m for _, m in window] == ["GET /login 500 80ms", "POST /login 302 40ms",
                                     "job 1 ERROR timeout"]
    err = error_of(logs.filter_log_events, logGroupName=group, logStreamNames=["web-1"],
                   logStreamNamePrefix="web")
    assert err["Code"] == "InvalidParameterException"


@pytest.mark.parametrize("pattern, expected", [
    ("ERROR", ["job 1 ERROR timeout",
               '{"level": "ERROR", "status": 503, "user": {"id": 7}}']),
    ("ERROR job", ["job 1 ERROR timeout"]),
    ('"GET /login"', ["GET /login 500 80ms"]),
    ("GET -200", ["GET /login 500 80ms"]),
    ("?started ?timeout", ["job 1 started", "job 1 ERROR timeout", "job 2 started"]),
    ('{ $.level = "ERROR" }', ['{"level": "ERROR", "status": 503, "user": {"id": 7}}']),
    ("{ $.status >= 200 && $.user.id = 8 }",
     ['{"level": "INFO", "status": 200, "user": {"id": 8}}']),
    ("[verb, path, status=5*, latency]", ["GET /login 500 80ms"]),
    ("[verb=POST, ...]", ["POST /login 302 40ms"]),
    ("nothing-matches-this", []),
    ("", None),
])
def test_filter_patterns(logs: Any, app: tuple[str, int], pattern: str,
                         expected: list[str] | None) -> None:
    group, _ = app
    got = [m for _, m in found(logs, group, filterPattern=pattern)]
    if expected is None:
        assert len(got) == 9
    else:
        assert got == expected


@pytest.mark.parametrize("pattern", ['"unterminated', "{ $.a = }", "[a, b=]", "%[%"])
def test_invalid_pattern(logs: Any, app: tuple[str, int], pattern: str) -> None:
    err = error_of(logs.filter_log_events, logGroupName=app[0], filterPattern=pattern)
    assert err["Code"] == "InvalidParameterException"


def test_pagination_with_limit_and_pattern(logs: Any, app: tuple[str, int]) -> None:
    group, _ = app
    paginator = logs.get_paginator("filter_log_events")
    pages = list(paginator.paginate(logGroupName=group, PaginationConfig={"PageSize": 2}))
    assert [len(p["events"]) for p in pages] == [2, 2, 2, 2, 1]
    assert "nextToken" not in pages[-1]
    gets = [e["message"] for p in paginator.paginate(
        logGroupName=group, filterPattern="GET", PaginationConfig={"PageSize": 1})
        for e in p["events"]]
    assert gets == ["GET /index 200 12ms", "GET /about 200 5ms", "GET /login 500 80ms"]
    # MaxItems stops mid-way and hands back a resume token that continues where it stopped.
    first = paginator.paginate(logGroupName=group,
                               PaginationConfig={"PageSize": 3, "MaxItems": 4}).build_full_result()
    assert len(first["events"]) == 4
    rest = paginator.paginate(logGroupName=group, PaginationConfig={
        "PageSize": 3, "StartingToken": first["NextToken"]}).build_full_result()
    assert [e["eventId"] for e in first["events"] + rest["events"]] == [
        e["eventId"] for e in logs.filter_log_events(logGroupName=group)["events"]]


def test_identifiers_and_errors(logs: Any, app: tuple[str, int]) -> None:
    group, _ = app
    arn = f"arn:aws:logs:us-east-1:000000000000:log-group:{group}"
    assert len(logs.filter_log_events(logGroupIdentifier=arn)["events"]) == 9
    assert error_of(logs.filter_log_events, logGroupName=group + "-nope")["Code"] == \
        "ResourceNotFoundException"
    assert error_of(logs.filter_log_events, logGroupName=group, nextToken="not-a-token")[
        "Code"] == "InvalidParameterException"
    assert error_of(logs.filter_log_events, logGroupName=group, limit=10_001)["Code"] == \
        "InvalidParameterException"


def test_filter_through_the_aws_cli(berth: BerthProcess, app: tuple[str, int]) -> None:
    out = berth.aws_cli("logs", "filter-log-events", "--log-group-name", app[0],
                        "--filter-pattern", '{ $.status = 503 }')
    events = json.loads(out.stdout)["events"]
    assert [e["logStreamName"] for e in events] == ["web-1"]
    # The CLI paginates on its own; --page-size only changes how many requests it takes.
    out = berth.aws_cli("logs", "filter-log-events", "--log-group-name", app[0],
                        "--page-size", "2")
    assert len(json.loads(out.stdout)["events"]) == 9
