"""Log streams, group deletion and tags against a real server, through boto3 and the AWS CLI."""
from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest

from berth_process import BerthProcess, error_of

ACCOUNT = "000000000000"


def unique(prefix: str = "/test/") -> str:
    return prefix + uuid.uuid4().hex[:12]


@pytest.fixture
def group(logs: Any) -> str:
    name = unique()
    logs.create_log_group(logGroupName=name)
    return name


def put(logs: Any, group: str, stream: str, *messages: str, ts: int | None = None) -> None:
    now = ts or int(time.time() * 1000)
    logs.put_log_events(logGroupName=group, logStreamName=stream,
                        logEvents=[{"timestamp": now, "message": m} for m in messages])


def test_create_and_describe_stream(logs: Any, group: str) -> None:
    before = int(time.time() * 1000)
    logs.create_log_stream(logGroupName=group, logStreamName="app/1")
    [stream] = logs.describe_log_streams(logGroupName=group)["logStreams"]
    assert stream["logStreamName"] == "app/1"
    assert before - 1000 <= stream["creationTime"] <= int(time.time() * 1000) + 1000
    assert stream["arn"] == f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:{group}:log-stream:app/1"
    assert stream["storedBytes"] == 0
    # A stream without events has no event times and no sequence token yet.
    for absent in ("firstEventTimestamp", "lastEventTimestamp", "lastIngestionTime",
                   "uploadSequenceToken"):
        assert absent not in stream


def test_stream_fields_follow_its_events(logs: Any, group: str) -> None:
    logs.create_log_stream(logGroupName=group, logStreamName="s")
    now = int(time.time() * 1000)
    first = logs.put_log_events(logGroupName=group, logStreamName="s", logEvents=[
        {"timestamp": now - 5000, "message": "héllo"}, {"timestamp": now - 4000, "message": "b"}])
    second = logs.put_log_events(logGroupName=group, logStreamName="s", sequenceToken="ignored",
                                 logEvents=[{"timestamp": now - 9000, "message": "early"}])
    assert first["nextSequenceToken"] != second["nextSequenceToken"]
    assert "rejectedLogEventsInfo" not in first
    [stream] = logs.describe_log_streams(logGroupName=group)["logStreams"]
    assert stream["firstEventTimestamp"] == now - 9000
    assert stream["lastEventTimestamp"] == now - 4000
    assert abs(stream["lastIngestionTime"] - now) < 10_000
    assert stream["uploadSequenceToken"] == second["nextSequenceToken"]
    assert stream["storedBytes"] == len("héllo".encode()) + 1 + 5
    [grp] = logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"]
    assert grp["storedBytes"] == stream["storedBytes"]


def test_stream_errors(logs: Any, group: str) -> None:
    logs.create_log_stream(logGroupName=group, logStreamName="s")
    err = error_of(logs.create_log_stream, logGroupName=group, logStreamName="s")
    assert err["Code"] == "ResourceAlreadyExistsException"
    err = error_of(logs.create_log_stream, logGroupName=group + "-nope", logStreamName="s")
    assert (err["Code"], err["Message"]) == ("ResourceNotFoundException",
                                             "The specified log group does not exist.")
    err = error_of(logs.delete_log_stream, logGroupName=group, logStreamName="nope")
    assert (err["Code"], err["Message"]) == ("ResourceNotFoundException",
                                             "The specified log stream does not exist.")
    err = error_of(logs.describe_log_streams, logGroupName=group + "-nope")
    assert err["Code"] == "ResourceNotFoundException"
    err = error_of(logs.create_log_stream, logGroupName=group, logStreamName="a:b")
    assert err["Code"] == "InvalidParameterException"


def test_delete_stream_removes_its_events(logs: Any, group: str) -> None:
    for name in ("keep", "drop"):
        logs.create_log_stream(logGroupName=group, logStreamName=name)
        put(logs, group, name, f"{name} 1", f"{name} 2")
    logs.delete_log_stream(logGroupName=group, logStreamName="drop")
    names = [s["logStreamName"] for s in logs.describe_log_streams(logGroupName=group)
             ["logStreams"]]
    assert names == ["keep"]
    assert [e["message"] for e in logs.filter_log_events(logGroupName=group)["events"]] == [
        "keep 1", "keep 2"]
    # A stream created again under the same name starts empty.
    logs.create_log_stream(logGroupName=group, logStreamName="drop")
    got = logs.get_log_events(logGroupName=group, logStreamName="drop")
    assert got["events"] == []


def test_describe_by_name_prefix_descending_and_pages(berth: BerthProcess, logs: Any,
                                                      group: str) -> None:
    names = [f"web/{i:02d}" for i in range(12)] + ["worker/1", "worker/2", "web"]
    for name in names:
        logs.create_log_stream(logGroupName=group, logStreamName=name)
    listed = [s["logStreamName"] for s in logs.describe_log_streams(logGroupName=group)
              ["logStreams"]]
    assert listed == sorted(names)
    desc = [s["logStreamName"] for s in logs.describe_log_streams(
        logGroupName=group, descending=True)["logStreams"]]
    assert desc == sorted(names, reverse=True)
    web = [s["logStreamName"] for s in logs.describe_log_streams(
        logGroupName=group, logStreamNamePrefix="web/")["logStreams"]]
    assert web == [f"web/{i:02d}" for i in range(12)]
    paginator = logs.get_paginator("describe_log_streams")
    pages = list(paginator.paginate(logGroupName=group, logStreamNamePrefix="web",
                                    descending=True, PaginationConfig={"PageSize": 5}))
    assert [len(p["logStreams"]) for p in pages] == [5, 5, 3]
    assert [s["logStreamName"] for p in pages for s in p["logStreams"]] == sorted(
        [n for n in names if n.startswith("web")], reverse=True)


def test_describe_by_last_event_time(logs: Any, group: str) -> None:
    now = int(time.time() * 1000)
    for i, name in enumerate(["c", "a", "d", "b"]):
        logs.create_log_stream(logGroupName=group, logStreamName=name)
        put(logs, group, name, "x", ts=now - 10_000 + [3, 1, 4, 2][i] * 1000)
    logs.create_log_stream(logGroupName=group, logStreamName="empty")
    newest_first = [s["logStreamName"] for s in logs.describe_log_streams(
        logGroupName=group, orderBy="LastEventTime", descending=True)["logStreams"]]
    assert newest_first == ["d", "c", "b", "a", "empty"]
    paginator = logs.get_paginator("describe_log_streams")
    oldest_first = [s["logStreamName"] for p in paginator.paginate(
        logGroupName=group, orderBy="LastEventTime", PaginationConfig={"PageSize": 2})
        for s in p["logStreams"]]
    assert oldest_first == ["empty", "a", "b", "c", "d"]
    err = error_of(logs.describe_log_streams, logGroupName=group, orderBy="LastEventTime",
                   logStreamNamePrefix="a")
    assert (err["Code"], err["Message"]) == (
        "InvalidParameterException", "Cannot order by LastEventTime with a logStreamNamePrefix.")


def test_describe_limits_and_identifiers(logs: Any, group: str) -> None:
    for i in range(3):
        logs.create_log_stream(logGroupName=group, logStreamName=f"s{i}")
    page = logs.describe_log_streams(logGroupName=group, limit=2)
    assert len(page["logStreams"]) == 2 and page["nextToken"]
    rest = logs.describe_log_streams(logGroupName=group, limit=2, nextToken=page["nextToken"])
    assert [s["logStreamName"] for s in rest["logStreams"]] == ["s2"]
    assert "nextToken" not in rest
    assert error_of(logs.describe_log_streams, logGroupName=group, limit=51)["Code"] == \
        "InvalidParameterException"
    assert error_of(logs.describe_log_streams, logGroupName=group, nextToken="garbage!")[
        "Code"] == "InvalidParameterException"
    arn = f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:{group}"
    for ident in (group, arn):
        got = logs.describe_log_streams(logGroupIdentifier=ident)["logStreams"]
        assert [s["logStreamName"] for s in got] == ["s0", "s1", "s2"]
    # The model's pattern for identifiers has no '*': the ':*' form of the ARN is refused.
    assert error_of(logs.describe_log_streams, logGroupIdentifier=arn + ":*")["Code"] == \
        "InvalidParameterException"
    # AWS (recorded): a ValidationException, not its usual InvalidParameterException.
    err = error_of(logs.describe_log_streams, logGroupName=group, logGroupIdentifier=arn)
    assert err == {"Code": "ValidationException", "Message": "LogGroup name and LogGroup ARN "
                   "are mutually exclusive parameters."}
    assert error_of(logs.describe_log_streams)["Code"] == "InvalidParameterException"
    other_region = f"arn:aws:logs:eu-west-1:{ACCOUNT}:log-group:{group}"
    assert error_of(logs.describe_log_streams, logGroupIdentifier=other_region)["Code"] == \
        "ResourceNotFoundException"


def test_streams_are_kept_per_region(berth: BerthProcess, group: str) -> None:
    other = berth.client("logs", region="eu-west-1")
    assert error_of(other.create_log_stream, logGroupName=group, logStreamName="s")["Code"] \
        == "ResourceNotFoundException"


def test_delete_group_deletes_streams_and_events(logs: Any, group: str) -> None:
    for name in ("a", "b"):
        logs.create_log_stream(logGroupName=group, logStreamName=name)
        put(logs, group, name, "one", "two")
    logs.delete_log_group(logGroupName=group)
    assert logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"] == []
    # Created again, the group holds nothing of the old one.
    logs.create_log_group(logGroupName=group)
    assert logs.describe_log_streams(logGroupName=group)["logStreams"] == []
    assert logs.filter_log_events(logGroupName=group)["events"] == []
    logs.create_log_stream(logGroupName=group, logStreamName="a")
    assert logs.get_log_events(logGroupName=group, logStreamName="a")["events"] == []


# ----------------------------------------------------------------------------- tags


def test_tags_by_arn(logs: Any) -> None:
    name = unique()
    logs.create_log_group(logGroupName=name, tags={"team": "core"})
    arn = f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:{name}"
    assert logs.list_tags_for_resource(resourceArn=arn)["tags"] == {"team": "core"}
    logs.tag_resource(resourceArn=arn, tags={"env": "dev", "team": "platform"})
    assert logs.list_tags_for_resource(resourceArn=arn)["tags"] == {
        "team": "platform", "env": "dev"}
    # As on AWS, the resourceArn pattern has no '*': the ':*' form is a validation error.
    assert error_of(logs.list_tags_for_resource, resourceArn=arn + ":*")["Code"] == \
        "InvalidParameterException"
    logs.untag_resource(resourceArn=arn, tagKeys=["team", "absent"])
    assert logs.list_tags_for_resource(resourceArn=arn)["tags"] == {"env": "dev"}
    for missing in (f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:{name}-nope",
                    f"arn:aws:logs:us-east-1:111111111111:log-group:{name}",
                    f"arn:aws:logs:us-east-1:{ACCOUNT}:destination:{name}",
                    "arn:aws:s3:::bucket"):
        assert error_of(logs.list_tags_for_resource, resourceArn=missing)["Code"] == \
            "ResourceNotFoundException"
        assert error_of(logs.tag_resource, resourceArn=missing, tags={"a": "b"})["Code"] == \
            "ResourceNotFoundException"


def test_tag_limit(logs: Any, group: str) -> None:
    arn = f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:{group}"
    logs.tag_resource(resourceArn=arn, tags={f"k{i}": "v" for i in range(50)})
    err = error_of(logs.tag_resource, resourceArn=arn, tags={"one-more": "v"})
    assert err["Code"] == "TooManyTagsException"
    logs.tag_resource(resourceArn=arn, tags={"k0": "replaced"})  # an update is no new tag
    assert len(logs.list_tags_for_resource(resourceArn=arn)["tags"]) == 50


def test_legacy_log_group_tag_operations(logs: Any, group: str) -> None:
    logs.tag_log_group(logGroupName=group, tags={"a": "1", "b": "2"})
    assert logs.list_tags_log_group(logGroupName=group)["tags"] == {"a": "1", "b": "2"}
    logs.untag_log_group(logGroupName=group, tags=["a"])
    assert logs.list_tags_log_group(logGroupName=group)["tags"] == {"b": "2"}
    for call, extra in ((logs.tag_log_group, {"tags": {"a": "1"}}),
                        (logs.untag_log_group, {"tags": ["a"]}),
                        (logs.list_tags_log_group, {})):
        assert error_of(call, logGroupName=group + "-nope", **extra)["Code"] == \
            "ResourceNotFoundException"


# ------------------------------------------------------------------------- AWS CLI


def test_streams_and_tags_through_the_aws_cli(berth: BerthProcess) -> None:
    name = unique()
    berth.aws_cli("logs", "create-log-group", "--log-group-name", name, "--tags", "a=1")
    berth.aws_cli("logs", "create-log-stream", "--log-group-name", name,
                  "--log-stream-name", "cli")
    out = json.loads(berth.aws_cli("logs", "describe-log-streams", "--log-group-name",
                                   name).stdout)
    assert [s["logStreamName"] for s in out["logStreams"]] == ["cli"]
    berth.aws_cli("logs", "tag-log-group", "--log-group-name", name, "--tags", "b=2")
    tags = json.loads(berth.aws_cli("logs", "list-tags-log-group", "--log-group-name",
                                    name).stdout)["tags"]
    assert tags == {"a": "1", "b": "2"}
    failed = berth.aws_cli("logs", "create-log-stream", "--log-group-name", name,
                           "--log-stream-name", "cli", check=False)
    assert failed.returncode != 0
    assert "ResourceAlreadyExistsException" in failed.stderr
    berth.aws_cli("logs", "delete-log-stream", "--log-group-name", name,
                  "--log-stream-name", "cli")
    out = json.loads(berth.aws_cli("logs", "describe-log-streams", "--log-group-name",
                                   name).stdout)
    assert out["logStreams"] == []
