"""Subscription filters against a real `berth up`: log events put into a group arrive at a real
Lambda function in AWS's payload (`awslogs.data`: base64 of gzip of a DATA_MESSAGE), only the
ones the filter pattern matches, once each; and PutSubscriptionFilter refuses what AWS
refuses. The function decodes its event and logs it, so the test reads what it received from
the function's own log group."""
from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest
from berth_process import BerthProcess, error_of
from function_logs import logged, wait_for
from lambda_packages import create_python, python_zip

ACCOUNT, REGION = "000000000000", "us-east-1"

RECEIVER = '''
import base64, gzip, json

def handler(event, context):
    data = json.loads(gzip.decompress(base64.b64decode(event["awslogs"]["data"])))
    print("AWSLOGS " + json.dumps({"keys": sorted(event), "data": data}))
'''


@pytest.fixture(scope="module")
def lam(berth_up: BerthProcess) -> Any:
    return berth_up.client("lambda")


@pytest.fixture(scope="module")
def logs(berth_up: BerthProcess) -> Any:
    return berth_up.client("logs")


def receiver(lam: Any) -> tuple[str, str]:
    name = "recv" + uuid.uuid4().hex[:8]
    arn = create_python(lam, name, Code={"ZipFile": python_zip(RECEIVER)},
                        Timeout=30)["FunctionArn"]
    return name, arn


def group_with_stream(logs: Any) -> tuple[str, str]:
    group, stream = "/app/" + uuid.uuid4().hex[:8], "web-1"
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName=stream)
    return group, stream


def received(logs: Any, function: str) -> list[dict[str, Any]]:
    """Every payload the function logged, decoded."""
    return [line for _, line in logged(logs, function, "AWSLOGS")]


def test_matching_events_reach_the_function_in_awslogs_payload(lam: Any, logs: Any) -> None:
    function, arn = receiver(lam)
    group, stream = group_with_stream(logs)
    assert logs.put_subscription_filter(logGroupName=group, filterName="errors",
                                        filterPattern="ERROR", destinationArn=arn
                                        )["ResponseMetadata"]["HTTPStatusCode"] == 200
    (described,) = logs.describe_subscription_filters(logGroupName=group)["subscriptionFilters"]
    assert described == {"filterName": "errors", "logGroupName": group, "filterPattern": "ERROR",
                         "destinationArn": arn, "distribution": "ByLogStream",
                         "creationTime": described["creationTime"],
                         "applyOnTransformedLogs": False}
    now = int(time.time() * 1000)
    logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=[
        {"timestamp": now, "message": "INFO all fine"},
        {"timestamp": now + 1, "message": "ERROR disk full"},
        {"timestamp": now + 2, "message": "ERROR disk still full"}])
    got = wait_for(lambda: received(logs, function), lambda got: len(got) >= 1)
    assert len(got) == 1
    assert got[0]["keys"] == ["awslogs"]
    data = got[0]["data"]
    assert {k: v for k, v in data.items() if k != "logEvents"} == {
        "messageType": "DATA_MESSAGE", "owner": ACCOUNT, "logGroup": group,
        "logStream": stream, "subscriptionFilters": ["errors"]}
    assert [(e["timestamp"], e["message"]) for e in data["logEvents"]] == [
        (now + 1, "ERROR disk full"), (now + 2, "ERROR disk still full")]
    # The ids are the events' own: FilterLogEvents shows the same ones.
    stored = {e["message"]: e["eventId"]
              for e in logs.filter_log_events(logGroupName=group)["events"]}
    assert [e["id"] for e in data["logEvents"]] == [stored["ERROR disk full"],
                                                    stored["ERROR disk still full"]]
    assert all(len(e["id"]) == 56 and e["id"].isdigit() for e in data["logEvents"])
    # A batch that matches nothing delivers nothing; the next match arrives once.
    logs.put_log_events(logGroupName=group, logStreamName=stream,
                        logEvents=[{"timestamp": now + 3, "message": "INFO quiet"}])
    logs.put_log_events(logGroupName=group, logStreamName=stream,
                        logEvents=[{"timestamp": now + 4, "message": "ERROR again"}])
    got = wait_for(lambda: received(logs, function), lambda got: len(got) >= 2)
    assert [[e["message"] for e in p["data"]["logEvents"]] for p in got] == [
        ["ERROR disk full", "ERROR disk still full"], ["ERROR again"]]


def test_two_filters_each_deliver_under_their_own_name(lam: Any, logs: Any) -> None:
    (f1, arn1), (f2, arn2) = receiver(lam), receiver(lam)
    group, stream = group_with_stream(logs)
    logs.put_subscription_filter(logGroupName=group, filterName="all", filterPattern="",
                                 destinationArn=arn1)
    logs.put_subscription_filter(logGroupName=group, filterName="json-errors",
                                 filterPattern='{ $.level = "ERROR" }', destinationArn=arn2)
    now = int(time.time() * 1000)
    logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=[
        {"timestamp": now, "message": json.dumps({"level": "INFO"})},
        {"timestamp": now + 1, "message": json.dumps({"level": "ERROR", "code": 7})}])
    all_events = wait_for(lambda: received(logs, f1), lambda got: len(got) >= 1)
    errors = wait_for(lambda: received(logs, f2), lambda got: len(got) >= 1)
    assert all_events[0]["data"]["subscriptionFilters"] == ["all"]
    assert len(all_events[0]["data"]["logEvents"]) == 2
    assert errors[0]["data"]["subscriptionFilters"] == ["json-errors"]
    assert [json.loads(e["message"]) for e in errors[0]["data"]["logEvents"]] == [
        {"level": "ERROR", "code": 7}]
    # A third filter is over AWS's limit of two; replacing one by name is not.
    assert error_of(logs.put_subscription_filter, logGroupName=group, filterName="third",
                    filterPattern="", destinationArn=arn1) == {
        "Code": "LimitExceededException", "Message": "Resource limit exceeded."}
    logs.put_subscription_filter(logGroupName=group, filterName="all", filterPattern="[]",
                                 destinationArn=arn1)
    logs.delete_subscription_filter(logGroupName=group, filterName="all")
    assert [f["filterName"] for f in logs.describe_subscription_filters(
        logGroupName=group)["subscriptionFilters"]] == ["json-errors"]
    assert error_of(logs.delete_subscription_filter, logGroupName=group,
                    filterName="all") == {
        "Code": "ResourceNotFoundException",
        "Message": "The specified subscription filter does not exist."}


def test_put_subscription_filter_refuses_what_aws_refuses(lam: Any, logs: Any) -> None:
    _, arn = receiver(lam)
    group, _ = group_with_stream(logs)
    base = {"logGroupName": group, "filterName": "f", "filterPattern": ""}
    other_account = "arn:aws:lambda:us-east-1:123456789012:function:test"
    assert error_of(logs.put_subscription_filter, **base, destinationArn=other_account) == {
        "Code": "AccessDeniedException",
        "Message": "Cross-account lambda invocation passing is not allowed. You must use "
                   "DestinationPolicies to create cross account lambda triggers."}
    missing = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:not-there"
    assert error_of(logs.put_subscription_filter, **base, destinationArn=missing)[
        "Code"] == "InvalidParameterException"
    kinesis = f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/s"
    assert error_of(logs.put_subscription_filter, **base, destinationArn=kinesis) == {
        "Code": "InvalidParameterException",
        "Message": "destinationArn for vendor kinesis cannot be used without roleArn"}
    assert error_of(logs.put_subscription_filter, **base, destinationArn=kinesis,
                    roleArn=f"arn:aws:iam::{ACCOUNT}:role/r")["Code"] == \
        "InvalidParameterException"
    assert error_of(logs.put_subscription_filter, **{**base, "logGroupName": "/not/there"},
                    destinationArn=arn) == {
        "Code": "ResourceNotFoundException",
        "Message": "The specified log group does not exist."}
    assert error_of(logs.describe_subscription_filters, logGroupName="/not/there")[
        "Code"] == "ResourceNotFoundException"
    assert logs.describe_subscription_filters(logGroupName=group)["subscriptionFilters"] == []


def test_subscription_filters_with_the_aws_cli(berth_up: BerthProcess, lam: Any,
                                              logs: Any) -> None:
    up = berth_up
    function, arn = receiver(lam)
    group, stream = group_with_stream(logs)
    up.aws_cli("logs", "put-subscription-filter", "--log-group-name", group, "--filter-name",
               "cli", "--filter-pattern", "", "--destination-arn", arn)
    out = json.loads(up.aws_cli("logs", "describe-subscription-filters", "--log-group-name",
                                group).stdout)
    assert [f["filterName"] for f in out["subscriptionFilters"]] == ["cli"]
    now = int(time.time() * 1000)
    up.aws_cli("logs", "put-log-events", "--log-group-name", group, "--log-stream-name",
               stream, "--log-events", f"timestamp={now},message=hello-from-cli")
    got = wait_for(lambda: received(logs, function), lambda got: len(got) >= 1)
    assert [e["message"] for e in got[0]["data"]["logEvents"]] == ["hello-from-cli"]
