"""Input validation against real service models: the wording and order of AWS's messages,
member paths through lists, maps and nested structures, and wire-to-Python conversions."""
from __future__ import annotations

from typing import Any

import pytest

from berth.api.errors import ServiceError
from berth.api.models import service_model
from berth.api.validation import validate


def check(service: str, operation: str, params: dict[str, Any],
          code: str = "InvalidParameterException") -> dict[str, Any]:
    shape = service_model(service).operation_model(operation).input_shape
    return validate(shape, params, code)


def error(service: str, operation: str, params: dict[str, Any],
          code: str = "InvalidParameterException") -> tuple[str, str]:
    with pytest.raises(ServiceError) as info:
        check(service, operation, params, code)
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


def test_map_keys_and_values_have_their_own_paths() -> None:
    code, message = error("lambda", "UpdateFunctionConfiguration", {
        "FunctionName": "f", "Environment": {"Variables": {"1bad": "v"}},
        "Timeout": 0, "MemorySize": 99_999}, "ValidationException")
    assert code == "ValidationException"
    assert message.startswith("3 validation errors detected: Value '1bad' at "
                              "'environment.variables.key' failed to satisfy constraint: "
                              "Member must satisfy regular expression pattern: ")
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


def test_long_values_are_cut_short_in_messages() -> None:
    _, message = error("logs", "CreateLogGroup", {"logGroupName": "x" * 600})
    assert f"Value '{'x' * 256}...' at 'logGroupName'" in message
