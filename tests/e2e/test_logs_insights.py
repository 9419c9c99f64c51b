"""Logs Insights queries against a real server, with boto3 and the AWS CLI: StartQuery,
GetQueryResults (polled as clients poll), StopQuery, DescribeQueries, GetLogRecord,
GetLogGroupFields, and the errors AWS answers."""
from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest
from berth_process import BerthProcess, error_of

EVENTS = [{"level": "INFO", "path": "/", "ms": 12},
          {"level": "ERROR", "path": "/pay", "ms": 900},
          {"level": "INFO", "path": "/pay", "ms": 40},
          {"level": "WARN", "path": "/", "ms": 300},
          {"level": "ERROR", "path": "/login", "ms": 700}]


@pytest.fixture(scope="module")
def app(logs: Any) -> tuple[str, int]:
    """A group with two streams of JSON events a second apart, and a plain-text stream."""
    group = "/insights/" + uuid.uuid4().hex[:8]
    logs.create_log_group(logGroupName=group)
    base = int(time.time() * 1000) - 60_000
    for stream, events in (("a", EVENTS[0::2]), ("b", EVENTS[1::2])):
        logs.create_log_stream(logGroupName=group, logStreamName=stream)
        offset = 0 if stream == "a" else 1
        logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=[
            {"timestamp": base + (2 * i + offset) * 1000, "message": json.dumps(e)}
            for i, e in enumerate(events)])
    logs.create_log_stream(logGroupName=group, logStreamName="text")
    logs.put_log_events(logGroupName=group, logStreamName="text", logEvents=[
        {"timestamp": base + 10_000, "message": "user=alice action=login took 15ms"}])
    return group, base


def query(logs: Any, group: str, text: str, **kw: Any) -> dict[str, Any]:
    now = int(time.time())
    qid = logs.start_query(logGroupName=group, startTime=now - 3600, endTime=now + 60,
                           queryString=text, **kw)["queryId"]
    deadline = time.monotonic() + 20
    while True:
        out = logs.get_query_results(queryId=qid)
        if out["status"] not in ("Scheduled", "Running") or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert out["status"] == "Complete", out
    return {**out, "queryId": qid}


def table(out: dict[str, Any]) -> list[dict[str, str]]:
    return [{f["field"]: f["value"] for f in row if f["field"] != "@ptr"}
            for row in out["results"]]


def test_fields_filter_sort_limit(logs: Any, app: tuple[str, int]) -> None:
    group, _ = app
    out = query(logs, group, "fields path, ms | filter level = 'ERROR' | sort ms desc")
    assert table(out) == [{"path": "/pay", "ms": "900"}, {"path": "/login", "ms": "700"}]
    assert out["statistics"]["recordsMatched"] == 2.0
    assert out["statistics"]["recordsScanned"] == 6.0
    assert out["statistics"]["bytesScanned"] > 0
    assert all(row[-1]["field"] == "@ptr" for row in out["results"])
    newest = query(logs, group, "fields @timestamp, @logStream | limit 2")
    assert [r["@logStream"] for r in table(newest)] == ["text", "a"]     # newest first


def test_stats_by_group_and_by_time_bins(logs: Any, app: tuple[str, int]) -> None:
    group, base = app
    out = query(logs, group, "filter ispresent(level) | stats count(*) as n, avg(ms) as mean, "
                             "max(ms) by level")
    assert table(out) == [{"level": "ERROR", "n": "2", "mean": "800", "max(ms)": "900"},
                          {"level": "INFO", "n": "2", "mean": "26", "max(ms)": "40"},
                          {"level": "WARN", "n": "1", "mean": "300", "max(ms)": "300"}]
    assert not any(f["field"] == "@ptr" for row in out["results"] for f in row)
    out = query(logs, group, "stats count(*) as n by bin(1h)")
    (row,) = table(out)
    assert row["n"] == "6" and row["bin(1h)"].endswith(":00:00.000")


def test_parse_and_functions(logs: Any, app: tuple[str, int]) -> None:
    group, _ = app
    out = query(logs, group, 'parse @message "user=* action=* took *ms" as user, action, took '
                             "| filter ispresent(user) | fields toupper(user) as who, "
                             "took * 2 as double")
    assert table(out) == [{"who": "ALICE", "double": "30"}]
    out = query(logs, group, "filter path like /^\\/p/ | stats count_distinct(level) as kinds")
    assert table(out) == [{"kinds": "2"}]


def test_get_log_record_and_group_fields(logs: Any, app: tuple[str, int]) -> None:
    group, _ = app
    out = query(logs, group, "filter ms = 900 | fields @message")
    ptr = out["results"][0][-1]["value"]
    record = logs.get_log_record(logRecordPointer=ptr)["logRecord"]
    assert record["@message"] == json.dumps(EVENTS[1]) and record["ms"] == "900"
    assert record["@logStream"] == "b" and record["@log"] == f"000000000000:{group}"
    fields = {f["name"]: f["percent"]
              for f in logs.get_log_group_fields(logGroupName=group)["logGroupFields"]}
    assert fields["@message"] == 100 and fields["@timestamp"] == 100
    assert fields["level"] == 83 and fields["ms"] == 83    # 5 of the 6 events


def test_describe_and_stop_queries(logs: Any, app: tuple[str, int]) -> None:
    group, _ = app
    done = query(logs, group, "fields @message | limit 1")
    listed = {q["queryId"]: q for q in logs.describe_queries(logGroupName=group)["queries"]}
    assert listed[done["queryId"]]["status"] == "Complete"
    assert listed[done["queryId"]]["queryLanguage"] == "CWLI"
    assert listed[done["queryId"]]["queryString"].startswith(f'SOURCE "{group}" START=')
    assert listed[done["queryId"]]["queryString"].endswith(" | fields @message | limit 1")
    assert logs.stop_query(queryId=done["queryId"])["success"] is False
    complete = logs.describe_queries(logGroupName=group, status="Complete")["queries"]
    assert done["queryId"] in {q["queryId"] for q in complete}


def test_errors_are_aws_shaped(logs: Any, app: tuple[str, int]) -> None:
    group, _ = app
    now = int(time.time())
    err = error_of(logs.start_query, logGroupName=group, startTime=now - 60, endTime=now,
                   queryString="fields a | nonsense")
    assert err["Code"] == "MalformedQueryException"
    err = error_of(logs.start_query, logGroupName="/missing/" + uuid.uuid4().hex,
                   startTime=now - 60, endTime=now, queryString="fields @message")
    assert err["Code"] == "ResourceNotFoundException"
    assert "does not exist for account ID '000000000000'" in err["Message"]
    err = error_of(logs.start_query, startTime=now - 60, endTime=now,
                   queryString="fields @message")
    assert err["Code"] == "InvalidParameterException"
    assert error_of(logs.get_query_results, queryId="no-such-query")["Code"] == \
        "ResourceNotFoundException"


def test_queries_with_the_aws_cli(berth: BerthProcess, app: tuple[str, int]) -> None:
    group, _ = app
    now = int(time.time())
    started = json.loads(berth.aws_cli(
        "logs", "start-query", "--log-group-name", group, "--start-time", str(now - 3600),
        "--end-time", str(now + 60), "--query-string",
        "filter level = 'ERROR' | stats count(*) as n").stdout)
    deadline = time.monotonic() + 20
    while True:
        out = json.loads(berth.aws_cli("logs", "get-query-results", "--query-id",
                                       started["queryId"]).stdout)
        if out["status"] == "Complete" or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert out["results"] == [[{"field": "n", "value": "2"}]]
    defined = json.loads(berth.aws_cli(
        "logs", "put-query-definition", "--name", "errors", "--query-string",
        "filter level = 'ERROR'", "--log-group-names", group).stdout)
    listed = json.loads(berth.aws_cli("logs", "describe-query-definitions").stdout)
    assert defined["queryDefinitionId"] in {d["queryDefinitionId"]
                                            for d in listed["queryDefinitions"]}
