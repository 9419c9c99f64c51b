"""Input validation against real service models: the wording and order of AWS's messages,
member paths through lists, maps and nested structures, and wire-to-Python conversions."""
from __future__ import annotations

from typing import Any

import pytest

from berth.api.errors import ServiceError
from berth.api.models import service_model
from berth.api.validation import Amendments, validate
from berth.logs.constraints import AMENDMENTS as LOGS


def check(service: str, operation: str, params: dict[str, Any],
          code: str = "InvalidParameterException",
          amendments: Amendments | None = None) -> dict[str, Any]:
    shape = service_model(service).operation_model(operation).input_shape
    return validate(shape, params, code, amendments)


def error(service: str, operation: str, params: dict[str, Any],
          code: str = "InvalidParameterException",
          amendments: Amendments | None = None) -> tuple[str, str]:
    with pytest.raises(ServiceError) as info:
        check(service, operation, params, code, amendments)
    return info.value.code, info.value.message


def test_valid_input_is_returned_converted_without_unknown_members() -> None:
    out = check("logs", "GetLogEvents", {"logGroupName": "/g", "logStreamName": "s",
                                         "startTime": 5.0, "startFromHead": True,
                                         "notInTheModel": 1, "limit": None})
    assert out == {"logGroupName": "/g", "logStreamName": "s", "startTime": 5,
                   "startFromHead": True}
    assert type(out["startTime"]) is int
    assert check("lambda", "Invoke", {"FunctionName": "f", "Payload": "e30="},
                 "ValidationException")["Payload"] == b"{}"


def test_violations_are_reported_together_in_order_with_list_paths() -> None:
    code, message = error("logs", "PutLogEvents", {
        "logGroupName": "g", "logStreamName": "s",
        "logEvents": [{"timestamp": 1, "message": "a"}, {"timestamp": -1}]})
    assert code == "InvalidParameterException"
    assert message == (
        "2 validation errors detected: "
        "Value null at 'logEvents.2.member.message' failed to satisfy constraint: "
        "Member must not be null; "
        "Value '-1' at 'logEvents.2.member.timestamp' failed to satisfy constraint: "
        "Member must have value greater than or equal to 0")


def test_a_maps_broken_keys_are_reported_once_at_the_map() -> None:
    # AWS Lambda's answer: the map's path, its sensitive value left out, and the broken key
    # constraints in brackets.
    code, message = error("lambda", "UpdateFunctionConfiguration", {
        "FunctionName": "f", "Environment": {"Variables": {"1bad": "v", "2bad": "w"}},
        "Timeout": 0, "MemorySize": 99_999}, "ValidationException")
    assert code == "ValidationException"
    assert message.startswith(
        "3 validation errors detected: Value at 'environment.variables' failed to satisfy "
        "constraint: Map keys must satisfy constraint: [Member must satisfy regular "
        "expression pattern: [a-zA-Z]([a-zA-Z0-9_])+]; ")
    assert message.endswith(
        "; Value '0' at 'timeout' failed to satisfy constraint: Member must have value "
        "greater than or equal to 1; Value '99999' at 'memorySize' failed to satisfy "
        "constraint: Member must have value less than or equal to 32768")


def test_a_wrong_type_anywhere_is_a_serialization_error_naming_the_member() -> None:
    assert error("ecs", "RunTask", {
        "taskDefinition": "t",
        "overrides": {"containerOverrides": [
            {"name": "c", "environment": [{"name": "A", "value": 3}]}]}}) == (
        "SerializationException", ("Cannot deserialize overrides.containerOverrides.1.member"
                                   ".environment.1.member.value: expected a string"))
    assert error("lambda", "UpdateFunctionConfiguration", {
        "FunctionName": "f", "Environment": {"Variables": {"k": 5}}},
        "ValidationException") == (
        "SerializationException",
        "Cannot deserialize environment.variables.value: expected a string")
    assert error("lambda", "Invoke", {"FunctionName": "f", "Payload": "!!"},
                 "ValidationException") == (
        "SerializationException", "Cannot deserialize payload: expected base64-encoded data")
    assert error("logs", "GetLogEvents", {"logGroupName": "g", "logStreamName": "s",
                                          "startFromHead": "yes"}) == (
        "SerializationException", "Cannot deserialize startFromHead: expected a boolean")


def test_a_type_error_wins_over_violations_found_before_it() -> None:
    code, _ = error("logs", "PutLogEvents", {"logGroupName": "", "logStreamName": "s",
                                             "logEvents": [{"timestamp": "x",
                                                            "message": "m"}]})
    assert code == "SerializationException"


def test_values_are_quoted_whole_as_aws_quotes_them() -> None:
    # Recorded from AWS: the whole 1,025-character pattern is quoted.
    _, message = error("logs", "DescribeMetricFilters", {"filterNamePrefix": "X" * 513})
    assert message == (f"1 validation error detected: Value '{'X' * 513}' at "
                       "'filterNamePrefix' failed to satisfy constraint: Member must have "
                       "length less than or equal to 512")
    # ... but a huge one is cut short.
    _, message = error("logs", "TestMetricFilter", {"filterPattern": "x",
                                                    "logEventMessages": ["m" * 200] * 51})
    shown = "[" + ", ".join(["m" * 200] * 51)
    assert f"Value '{shown[:8192]}...' at 'logEventMessages'" in message


def test_structures_in_a_list_are_quoted_as_java_prints_them() -> None:
    # AWS: "Value '[MetricTransformation(metricName=metric1, metricNamespace=namespace1,
    # metricValue=1, defaultValue=null, ...), ...]' at 'metricTransformations'"
    two = [{"metricName": f"metric{i}", "metricNamespace": f"namespace{i}",
            "metricValue": "1"} for i in (1, 2)]
    _, message = error("logs", "PutMetricFilter", {
        "logGroupName": "g", "filterName": "f", "filterPattern": "p",
        "metricTransformations": two})
    assert message.startswith(
        "1 validation error detected: Value '[MetricTransformation(metricName=metric1, "
        "metricNamespace=namespace1, metricValue=1, defaultValue=null, ")
    assert message.endswith("' at 'metricTransformations' failed to satisfy constraint: "
                            "Member must have length less than or equal to 1")


def test_sensitive_members_and_blobs_are_not_quoted() -> None:
    _, message = error("ecs", "RegisterTaskDefinition", {
        "family": "f", "containerDefinitions": [{"name": "c", "repositoryCredentials": {}}]})
    assert message == ("1 validation error detected: Value null at 'containerDefinitions.1."
                       "member.repositoryCredentials.credentialsParameter' failed to satisfy "
                       "constraint: Member must not be null")
    _, message = error("lambda", "PublishLayerVersion", {
        "LayerName": "l", "Content": {"ZipFile": b""}, "CompatibleRuntimes": ["x"] * 16},
        "ValidationException")
    assert "Value '[x, x, x" in message
    _, message = error("lambda", "CreateFunction", {
        "FunctionName": "f", "Role": "arn:aws:iam::000000000000:role/r",
        "Code": {"ZipFile": b""}, "KMSKeyArn": "", "Environment": {"Variables": {"A": "v"}},
        "Description": "d" * 300}, "ValidationException")
    assert "Value 'ddd" in message


def test_amended_shapes_answer_with_aws_wording() -> None:
    # Any group or stream name past 512 characters: AWS's own sentence, alone.
    for op, params in (("CreateLogGroup", {"logGroupName": "X" * 513}),
                       ("DeleteMetricFilter", {"logGroupName": "X" * 513, "filterName": "f"}),
                       ("CreateLogStream", {"logGroupName": "g", "logStreamName": "s" * 513})):
        assert error("logs", op, params, amendments=LOGS) == (
            "InvalidParameterException",
            "Invalid LogGroup or LogStream, both must have length less than or equal to 512.")
    # A metric namespace as CloudWatch takes it, ':' included.
    transformation = {"metricName": "m", "metricValue": "1",
                      "metricNamespace": "A.B-c_d/1#2:metricNamespace"}
    params = {"logGroupName": "g", "filterName": "f", "filterPattern": "p",
              "metricTransformations": [transformation]}
    check("logs", "PutMetricFilter", params, amendments=LOGS)
    assert "at 'metricTransformations.1.member.metricNamespace'" in error(
        "logs", "PutMetricFilter", params)[1]       # the model alone refuses it
    _, message = error("logs", "PutMetricFilter", {
        **params, "metricTransformations": [{**transformation, "metricNamespace": "a*b"}]},
        amendments=LOGS)
    assert "at 'metricTransformations.1.member.metricNamespace'" in message
    # Unamended, the same shapes keep the model's rules and wording.
    assert error("logs", "CreateLogGroup", {"logGroupName": "X" * 513})[1].startswith(
        "1 validation error detected: Value 'XXX")
