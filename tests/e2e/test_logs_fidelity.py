"""CloudWatch Logs answers as AWS recorded them, through the wire with boto3: validation
wording, mutually exclusive parameters, limits, and the fields AWS returns."""
from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest
from berth_process import BerthProcess, error_of

TRANSFORM = {"metricName": "metric", "metricNamespace": "namespace", "metricValue": "1"}


@pytest.fixture
def group(logs: Any) -> str:
    name = "/fidelity/" + uuid.uuid4().hex[:8]
    logs.create_log_group(logGroupName=name)
    return name


def test_names_past_512_characters_get_aws_sentence(logs: Any, group: str) -> None:
    sentence = {"Code": "InvalidParameterException",
                "Message": "Invalid LogGroup or LogStream, both must have length less than or "
                           "equal to 512."}
    assert error_of(logs.create_log_group, logGroupName="X" * 513) == sentence
    assert error_of(logs.delete_metric_filter, logGroupName="X" * 513,
                    filterName="valid-filter") == sentence
    assert error_of(logs.create_log_stream, logGroupName=group,
                    logStreamName="s" * 513) == sentence


def test_other_constraints_quote_the_whole_value(logs: Any, group: str) -> None:
    err = error_of(logs.put_metric_filter, logGroupName=group, filterName="X" * 513,
                   filterPattern="pattern", metricTransformations=[TRANSFORM])
    assert err == {"Code": "InvalidParameterException",
                   "Message": f"1 validation error detected: Value '{'X' * 513}' at "
                              "'filterName' failed to satisfy constraint: Member must have "
                              "length less than or equal to 512"}
    err = error_of(logs.put_metric_filter, logGroupName=group, filterName="f",
                   filterPattern="X" * 1025, metricTransformations=[TRANSFORM])
    assert err["Message"] == (f"1 validation error detected: Value '{'X' * 1025}' at "
                              "'filterPattern' failed to satisfy constraint: Member must have "
                              "length less than or equal to 1024")
    err = error_of(logs.describe_metric_filters, metricName="X" * 256,
                   metricNamespace="valid")
    assert err["Message"].endswith("at 'metricName' failed to satisfy constraint: Member must "
                                   "have length less than or equal to 255")
    err = error_of(logs.get_log_events, logGroupName=group, logStreamName="s", limit=10001)
    assert err == {"Code": "InvalidParameterException",
                   "Message": "1 validation error detected: Value '10001' at 'limit' failed "
                              "to satisfy constraint: Member must have value less than or "
                              "equal to 10000"}


def test_a_list_of_structures_is_quoted_as_aws_prints_it(logs: Any, group: str) -> None:
    two = [{"metricName": f"metric{i}", "metricNamespace": f"namespace{i}",
            "metricValue": "1"} for i in (1, 2)]
    err = error_of(logs.put_metric_filter, logGroupName=group, filterName="f",
                   filterPattern="pattern", metricTransformations=two)
    assert err["Message"].startswith(
        "1 validation error detected: Value '[MetricTransformation(metricName=metric1, "
        "metricNamespace=namespace1, metricValue=1, defaultValue=null")
    assert err["Message"].endswith("]' at 'metricTransformations' failed to satisfy "
                                   "constraint: Member must have length less than or equal "
                                   "to 1")


def test_a_metric_namespace_as_cloudwatch_takes_it(logs: Any, group: str) -> None:
    namespace = "A.B-c_d/1#2:metricNamespace"
    logs.put_metric_filter(logGroupName=group, filterName="special",
                           filterPattern="filterPattern", metricTransformations=[
                               {"metricNamespace": namespace, "metricName": "metricName",
                                "metricValue": "1"}])
    found = logs.describe_metric_filters(metricName="metricName", metricNamespace=namespace)
    assert [f["filterName"] for f in found["metricFilters"]] == ["special"]
    (g,) = logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"]
    assert g["metricFilterCount"] == 1


def test_mutually_exclusive_parameters(logs: Any, group: str) -> None:
    assert error_of(logs.describe_log_groups, logGroupNamePrefix="a",
                    logGroupNamePattern="b") == {
        "Code": "InvalidParameterException",
        "Message": "LogGroup name prefix and LogGroup name pattern are mutually exclusive "
                   "parameters."}
    arn = f"arn:aws:logs:us-east-1:000000000000:log-group:{group}"
    assert error_of(logs.describe_log_streams, logGroupName=group,
                    logGroupIdentifier=arn) == {
        "Code": "ValidationException",
        "Message": "LogGroup name and LogGroup ARN are mutually exclusive parameters."}


def test_log_groups_carry_aws_fields(logs: Any, group: str) -> None:
    (g,) = logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"]
    assert set(g) == {"logGroupName", "creationTime", "metricFilterCount", "arn",
                      "logGroupArn", "storedBytes", "logGroupClass",
                      "deletionProtectionEnabled"}
    assert g["deletionProtectionEnabled"] is False and g["logGroupClass"] == "STANDARD"
    (p,) = logs.describe_log_groups(logGroupNamePattern=group.split("/")[-1])["logGroups"]
    assert set(p) == {"logGroupName", "creationTime", "metricFilterCount", "arn",
                      "logGroupArn", "logGroupClass"}
    listed = logs.list_log_groups(logGroupNamePattern=group.split("/")[-1])["logGroups"]
    assert listed == [{"logGroupName": group, "logGroupArn": g["logGroupArn"],
                       "logGroupClass": "STANDARD"}]


def test_resource_policies_limits_and_messages(logs: Any) -> None:
    doc = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Sid": "Route53LogsToCloudWatchLogs", "Effect": "Allow",
         "Principal": {"Service": ["route53.amazonaws.com"]},
         "Action": "logs:PutLogEvents", "Resource": "log_arn"}]})
    prefix = "limit-" + uuid.uuid4().hex[:6]
    try:
        for i in range(10):
            logs.put_resource_policy(policyName=f"{prefix}-{i}", policyDocument=doc)
        assert error_of(logs.put_resource_policy, policyName=f"{prefix}-too-many",
                        policyDocument=doc) == {"Code": "LimitExceededException",
                                                "Message": "Resource limit exceeded."}
        out = logs.put_resource_policy(policyName=f"{prefix}-1", policyDocument='{"a": 1}')
        assert out["resourcePolicy"]["policyDocument"] == '{"a": 1}'
    finally:
        for i in range(10):
            logs.delete_resource_policy(policyName=f"{prefix}-{i}")
    assert error_of(logs.delete_resource_policy, policyName="non-existent") == {
        "Code": "ResourceNotFoundException",
        "Message": "Policy with name [non-existent] does not exist."}


def test_export_tasks_have_no_bucket_to_go_to(logs: Any, group: str) -> None:
    now = int(time.time() * 1000)
    assert error_of(logs.create_export_task, logGroupName=group, fromTime=now - 1000,
                    to=now, destination="no-such-bucket") == {
        "Code": "InvalidParameterException",
        "Message": "The given bucket does not exist. Please make sure the bucket is valid."}
    assert error_of(logs.create_export_task, logGroupName="/none", fromTime=0, to=1,
                    destination="b")["Code"] == "ResourceNotFoundException"
    assert logs.describe_export_tasks()["exportTasks"] == []
    assert error_of(logs.cancel_export_task, taskId="t") == {
        "Code": "ResourceNotFoundException",
        "Message": "The specified export task does not exist."}


def test_metric_filters_with_the_aws_cli(berth: BerthProcess, group: str) -> None:
    berth.aws_cli("logs", "put-metric-filter", "--log-group-name", group, "--filter-name",
                  "cli", "--filter-pattern", "ERROR", "--metric-transformations",
                  "metricName=Errors,metricNamespace=App/Web:prod,metricValue=1")
    out = json.loads(berth.aws_cli("logs", "describe-metric-filters", "--log-group-name",
                                   group).stdout)
    assert out["metricFilters"][0]["metricTransformations"] == [
        {"metricName": "Errors", "metricNamespace": "App/Web:prod", "metricValue": "1"}]
    tested = json.loads(berth.aws_cli("logs", "test-metric-filter", "--filter-pattern",
                                      "[a, b]", "--log-event-messages", "x y", "z").stdout)
    assert tested["matches"] == [{"eventNumber": 1, "eventMessage": "x y",
                                  "extractedValues": {"$a": "x", "$b": "y"}}]
