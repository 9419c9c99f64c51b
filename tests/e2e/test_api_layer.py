"""The generic API layer against a real server: auth, routing, malformed input, CORS."""
from __future__ import annotations

import datetime as dt
import json
from unittest import mock

import botocore.exceptions
import httpx
import pytest
from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from berth_process import ACCESS_KEY, SECRET_KEY, BerthProcess

TARGET = "Logs_20140328.DescribeLogGroups"


def signed(berth: BerthProcess, body: bytes, target: str = TARGET,
           secret: str = SECRET_KEY, key: str = ACCESS_KEY,
           when: dt.datetime | None = None, content_type: str = "application/x-amz-json-1.1"
           ) -> httpx.Response:
    req = AWSRequest("POST", berth.endpoint + "/", data=body,
                     headers={"X-Amz-Target": target, "Content-Type": content_type})
    auth = SigV4Auth(Credentials(key, secret), "logs", "us-east-1")
    if when is None:
        auth.add_auth(req)
    else:
        # botocore reads the clock through this one function; sign as if it were `when`.
        with mock.patch("botocore.auth.get_current_datetime",
                        return_value=when.replace(tzinfo=None)):
            auth.add_auth(req)
    with berth.http() as http:
        return http.post("/", content=body, headers=dict(req.headers.items()))


def assert_aws_error(resp: httpx.Response, status: int, code: str) -> dict:
    assert resp.status_code == status, resp.text
    assert resp.headers["x-amzn-requestid"]
    body = resp.json()
    assert body["__type"] == code
    assert body["message"]
    return body


def test_signed_request_passes_and_carries_request_id(berth: BerthProcess) -> None:
    resp = signed(berth, b"{}")
    assert resp.status_code == 200
    assert "logGroups" in resp.json()
    assert len(resp.headers["x-amzn-requestid"]) == 36


def test_unknown_access_key(berth: BerthProcess) -> None:
    client = berth.client("logs", aws_access_key_id="AKIAUNKNOWN000000000")
    with pytest.raises(botocore.exceptions.ClientError) as err:
        client.describe_log_groups()
    assert err.value.response["Error"]["Code"] == "UnrecognizedClientException"
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_wrong_secret_is_a_bad_signature(berth: BerthProcess) -> None:
    client = berth.client("logs", aws_secret_access_key="not-the-secret")
    with pytest.raises(botocore.exceptions.ClientError) as err:
        client.describe_log_groups()
    assert err.value.response["Error"]["Code"] == "InvalidSignatureException"
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_tampered_body_is_a_bad_signature(berth: BerthProcess) -> None:
    req = AWSRequest("POST", berth.endpoint + "/", data=b"{}",
                     headers={"X-Amz-Target": TARGET,
                              "Content-Type": "application/x-amz-json-1.1"})
    SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "logs", "us-east-1").add_auth(req)
    with berth.http() as http:
        resp = http.post("/", content=b'{"limit": 1}', headers=dict(req.headers.items()))
    assert_aws_error(resp, 403, "InvalidSignatureException")


def test_missing_authentication(berth: BerthProcess) -> None:
    with berth.http() as http:
        resp = http.post("/", content=b"{}", headers={"X-Amz-Target": TARGET})
    assert_aws_error(resp, 403, "MissingAuthenticationTokenException")


def test_malformed_authorization_header(berth: BerthProcess) -> None:
    with berth.http() as http:
        resp = http.post("/", content=b"{}", headers={
            "X-Amz-Target": TARGET, "Authorization": "AWS4-HMAC-SHA256 Credential=x"})
    assert_aws_error(resp, 400, "IncompleteSignature")


@pytest.mark.parametrize("minutes", [-16, 16])
def test_clock_skew_over_15_minutes_is_refused(berth: BerthProcess, minutes: int) -> None:
    when = dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=minutes)
    body = assert_aws_error(signed(berth, b"{}", when=when), 403, "InvalidSignatureException")
    assert body["message"].startswith("Signature expired" if minutes < 0 else
                                      "Signature not yet current")


def test_small_clock_skew_is_accepted(berth: BerthProcess) -> None:
    when = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=10)
    assert signed(berth, b"{}", when=when).status_code == 200


def _presigned_url(berth: BerthProcess, expires: int = 60, secret: str = SECRET_KEY,
                   when: dt.datetime | None = None) -> str:
    """A presigned ListFunctions (a REST GET: no header needed to route it), signed at
    `when` (default: now)."""
    req = AWSRequest("GET", berth.endpoint + "/2015-03-31/functions/", headers={})
    auth = SigV4QueryAuth(Credentials(ACCESS_KEY, secret), "lambda", "us-east-1",
                          expires=expires)
    when = when or dt.datetime.now(dt.timezone.utc)
    # botocore reads the clock through this one function; sign as if it were `when`.
    with mock.patch("botocore.auth.get_current_datetime",
                    return_value=when.replace(tzinfo=None)):
        auth.add_auth(req)
    return req.prepare().url


def test_presigned_request_is_verified(berth: BerthProcess) -> None:
    with httpx.Client(timeout=10) as http:
        good = http.get(_presigned_url(berth))
        bad = http.get(_presigned_url(berth, secret="wrong"))
    assert good.status_code == 200, good.text
    assert good.json()["Functions"] == []
    assert bad.status_code == 403 and bad.headers["x-amzn-errortype"] == \
        "InvalidSignatureException"


def test_expired_presigned_request(berth: BerthProcess) -> None:
    url = _presigned_url(berth, expires=60,
                         when=dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=90))
    with httpx.Client(timeout=10) as http:
        resp = http.get(url)
    assert resp.status_code == 403 and resp.json()["message"] == "Request has expired"
    assert resp.headers["x-amzn-errortype"] == "AccessDeniedException"


def test_malformed_json(berth: BerthProcess) -> None:
    assert_aws_error(signed(berth, b"{not json"), 400, "SerializationException")
    assert_aws_error(signed(berth, b"[1, 2]"), 400, "SerializationException")


def test_wrong_type_is_a_serialization_error(berth: BerthProcess) -> None:
    body = json.dumps({"limit": "ten"}).encode()
    assert_aws_error(signed(berth, body), 400, "SerializationException")


def test_out_of_range_is_the_services_validation_error(berth: BerthProcess) -> None:
    resp = signed(berth, json.dumps({"limit": 51}).encode())
    body = assert_aws_error(resp, 400, "InvalidParameterException")
    assert "less than or equal to 50" in body["message"]
    resp = signed(berth, json.dumps({"limit": 0, "logGroupNamePrefix": ""}).encode())
    body = assert_aws_error(resp, 400, "InvalidParameterException")
    assert body["message"].startswith("3 validation errors detected")  # min, length, pattern


def test_missing_required_member(berth: BerthProcess) -> None:
    resp = signed(berth, b"{}", target="Logs_20140328.CreateLogGroup")
    body = assert_aws_error(resp, 400, "InvalidParameterException")
    assert "'logGroupName' failed to satisfy constraint: Member must not be null" in \
        body["message"]


def test_unknown_operation(berth: BerthProcess) -> None:
    assert_aws_error(signed(berth, b"{}", target="Logs_20140328.NoSuchThing"), 400,
                     "UnknownOperationException")
    assert_aws_error(signed(berth, b"{}", target="Nope_1.DescribeLogGroups"), 400,
                     "UnknownOperationException")


def test_oversized_body_is_a_clear_4xx(berth: BerthProcess) -> None:
    big = b'{"logGroupNamePrefix": "' + b"a" * (6 * 1024 * 1024) + b'"}'
    resp = signed(berth, big)
    assert_aws_error(resp, 413, "RequestEntityTooLargeException")


def test_cors_preflight_and_exposed_headers(berth: BerthProcess) -> None:
    with berth.http() as http:
        pre = http.options("/", headers={
            "Origin": "http://console.example", "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type,x-amz-date,"
                                              "x-amz-target,x-amz-user-agent"})
    assert pre.status_code == 200
    allowed = pre.headers["access-control-allow-headers"].lower()
    for name in ("authorization", "content-type", "x-amz-date", "x-amz-target"):
        assert name in allowed
    assert pre.headers["access-control-allow-origin"] == "http://console.example"
    assert "POST" in pre.headers["access-control-allow-methods"]
    req = AWSRequest("POST", berth.endpoint + "/", data=b"{}",
                     headers={"X-Amz-Target": TARGET, "Origin": "http://console.example",
                              "Content-Type": "application/x-amz-json-1.1"})
    SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "logs", "us-east-1").add_auth(req)
    with berth.http() as http:
        resp = http.post("/", content=b"{}", headers=dict(req.headers.items()))
    assert resp.status_code == 200
    assert resp.headers["access-control-allow-origin"] == "http://console.example"
    assert "x-amzn-RequestId" in resp.headers["access-control-expose-headers"]


def test_garbage_requests_never_answer_5xx(berth: BerthProcess) -> None:
    cases = [
        ("GET", "/", {}, b""),
        ("POST", "/", {"X-Amz-Target": ""}, b"{}"),
        ("PUT", "/anything/at/all", {}, b"\x00\xff"),
        ("POST", "/", {"X-Amz-Target": TARGET, "Authorization": "garbage"}, b"{}"),
        ("POST", "/", {"X-Amz-Target": TARGET,
                       "Authorization": "AWS4-HMAC-SHA256 Credential=a/b/c/d/aws4_request, "
                                        "SignedHeaders=host, Signature=00"}, b"{}"),
        ("POST", "/", {"X-Amz-Target": TARGET, "X-Amz-Date": "yesterday",
                       "Authorization": f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/20260101/"
                                        "us-east-1/logs/aws4_request, SignedHeaders=host;"
                                        "x-amz-date, Signature=00"}, b"{}"),
    ]
    with berth.http() as http:
        for method, path, headers, body in cases:
            resp = http.request(method, path, headers=headers, content=body)
            assert 400 <= resp.status_code < 500, (method, path, resp.status_code, resp.text)
            assert resp.json()["__type"]
            assert resp.headers["x-amzn-requestid"]
    for body in (b"\xff\xfe", b"null", b'{"limit": null}', b'{"logGroupNamePrefix": 5}',
                 b'{"limit": 1.5}', b'{"limit": true}'):
        resp = signed(berth, body)
        assert resp.status_code in (200, 400), (body, resp.text)


def test_aws_cli_works_unmodified(berth: BerthProcess) -> None:
    berth.aws_cli("logs", "create-log-group", "--log-group-name", "/cli/group")
    out = json.loads(berth.aws_cli("logs", "describe-log-groups",
                                   "--log-group-name-prefix", "/cli/").stdout)
    assert [g["logGroupName"] for g in out["logGroups"]] == ["/cli/group"]
    failed = berth.aws_cli("logs", "create-log-group", "--log-group-name", "/cli/group",
                           check=False)
    assert failed.returncode != 0
    assert "ResourceAlreadyExistsException" in failed.stderr


def test_regions_are_separate(berth: BerthProcess) -> None:
    berth.client("logs", region="eu-west-1").create_log_group(logGroupName="/only/in/eu")
    eu = berth.client("logs", region="eu-west-1").describe_log_groups(
        logGroupNamePrefix="/only/")
    us = berth.client("logs").describe_log_groups(logGroupNamePrefix="/only/")
    assert [g["logGroupName"] for g in eu["logGroups"]] == ["/only/in/eu"]
    assert eu["logGroups"][0]["arn"].startswith("arn:aws:logs:eu-west-1:000000000000:")
    assert us["logGroups"] == []
