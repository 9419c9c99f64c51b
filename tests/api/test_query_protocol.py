"""The query protocol against botocore: its serializer's forms parse back to the input, and
its parser reads berth's XML answers and errors."""
from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from botocore.parsers import create_parser
from botocore.serialize import create_serializer

from berth.api import query
from berth.api.errors import ServiceError
from berth.api.models import service_model


def _form(service: str, operation: str, params: dict[str, Any]) -> list[tuple[str, str]]:
    op = service_model(service).operation_model(operation)
    body = create_serializer("query").serialize_to_request(params, op)["body"]
    return [(k, str(v)) for k, v in body.items()]


@pytest.mark.parametrize("service,operation,params", [
    ("sts", "AssumeRole", {
        "RoleArn": "arn:aws:iam::000000000000:role/app", "RoleSessionName": "s-1",
        "DurationSeconds": 900, "Tags": [{"Key": "a", "Value": "b"}, {"Key": "c", "Value": ""}],
        "PolicyArns": [{"arn": "arn:aws:iam::aws:policy/ReadOnly"}],
        "TransitiveTagKeys": ["a"]}),
    ("sts", "GetSessionToken", {"DurationSeconds": 3600}),
    ("sns", "Publish", {"TopicArn": "arn:aws:sns:us-east-1:000000000000:t", "Message": "m&=ü",
                        "MessageAttributes": {"k": {"DataType": "String", "StringValue": "v"},
                                              "n": {"DataType": "Binary",
                                                    "BinaryValue": b"\x00\x01"}}}),
    ("iam", "CreateRole", {"RoleName": "r", "AssumeRolePolicyDocument": "{}",
                           "Tags": []}),
])
def test_botocore_forms_parse_back_to_their_input(service: str, operation: str,
                                                  params: dict[str, Any]) -> None:
    op = service_model(service).operation_model(operation)
    pairs = _form(service, operation, params)
    assert query.action_of(pairs) == operation
    assert query.parse(op.input_shape, pairs, "ValidationError") == params


def test_a_word_where_a_number_belongs_is_a_validation_error() -> None:
    op = service_model("sts").operation_model("GetSessionToken")
    with pytest.raises(ServiceError) as err:
        query.parse(op.input_shape, [("DurationSeconds", "soon")], "ValidationError")
    assert err.value.code == "ValidationError"
    assert "'durationSeconds'" in err.value.message and "type integer" in err.value.message


def test_answers_and_errors_read_back_with_botocore() -> None:
    model = service_model("iam")
    op = model.operation_model("ListRoles")
    created = dt.datetime(2024, 5, 1, 12, 30, 15, 250000, tzinfo=dt.timezone.utc)
    result = {"Roles": [{"Path": "/", "RoleName": "a<b>", "RoleId": "AROA1", "Arn": "arn:x",
                         "CreateDate": created, "Tags": [{"Key": "k", "Value": "&v"}]}],
              "IsTruncated": False}
    body = query.serialize(model, op, result, "rid-1")
    parser = create_parser("query")
    parsed = parser.parse({"body": body, "headers": {}, "status_code": 200}, op.output_shape)
    assert parsed["ResponseMetadata"]["RequestId"] == "rid-1"
    role = parsed["Roles"][0]
    assert role["RoleName"] == "a<b>" and role["Tags"] == [{"Key": "k", "Value": "&v"}]
    assert role["CreateDate"] == created
    assert parsed["IsTruncated"] is False
    error = query.error_body(model.metadata["xmlNamespace"], "NoSuchEntity", "Role <x> gone",
                             404, "rid-2")
    parsed = parser.parse({"body": error, "headers": {}, "status_code": 404}, op.output_shape)
    assert parsed["Error"] == {"Type": "Sender", "Code": "NoSuchEntity",
                               "Message": "Role <x> gone"}
    assert parsed["ResponseMetadata"]["RequestId"] == "rid-2"


def test_wire_codes_follow_the_model_and_the_query_names_of_auth_errors() -> None:
    sts = service_model("sts")
    assert query.wire_code(sts, "MalformedPolicyDocumentException") == "MalformedPolicyDocument"
    assert query.wire_code(sts, "UnrecognizedClientException") == "InvalidClientTokenId"
    assert query.wire_code(sts, "ExpiredTokenException") == "ExpiredToken"
    assert query.wire_code(sts, "ValidationError") == "ValidationError"
