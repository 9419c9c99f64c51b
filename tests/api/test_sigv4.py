"""berth's SigV4 verifier against botocore's signer, the reference, on varied requests."""
from __future__ import annotations

import datetime as dt
import hashlib
from unittest import mock
from urllib.parse import urlsplit

import pytest
from botocore.auth import S3SigV4QueryAuth, SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from berth.api import sigv4
from berth.api.errors import ServiceError

KEYS = {"AKIDEXAMPLE": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"}
CREDS = Credentials("AKIDEXAMPLE", KEYS["AKIDEXAMPLE"])

CASES = [
    ("POST", "/", "", {"X-Amz-Target": "Logs_20140328.DescribeLogGroups"}, b"{}"),
    ("GET", "/2015-03-31/functions/", "MaxItems=5&Marker=abc", {}, b""),
    ("GET", "/2015-03-31/functions/my-fn/aliases", "FunctionVersion=%24LATEST", {}, b""),
    ("POST", "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A000000000000%3Afunction%3Af"
             "/invocations", "Qualifier=v1", {"X-Amz-Invocation-Type": "Event"}, b'{"k": 1}'),
    ("PUT", "/a/b%20c/./d", "z=1&a=2&a=1&empty=", {"X-Custom": "  spaced   value  "},
     "üñí".encode()),
    ("DELETE", "/2017-03-31/tags/x", "tagKeys=a&tagKeys=b%2Fc", {}, b""),
]


def _headers(req: AWSRequest) -> dict[str, str]:
    out = {k.lower(): v for k, v in req.headers.items()}
    out["host"] = urlsplit(req.url).netloc
    return out


@pytest.mark.parametrize("method,path,query,extra,body", CASES)
def test_header_signatures_from_botocore_verify(method: str, path: str, query: str,
                                               extra: dict[str, str], body: bytes) -> None:
    url = "http://127.0.0.1:4750" + path + ("?" + query if query else "")
    req = AWSRequest(method, url, headers=dict(extra), data=body)
    SigV4Auth(CREDS, "lambda", "eu-west-1").add_auth(req)
    parts = urlsplit(url)
    ident = sigv4.verify(method, parts.path, parts.query, _headers(req), body, KEYS.get)
    assert (ident.access_key, ident.region, ident.service) == \
        ("AKIDEXAMPLE", "eu-west-1", "lambda")
    with pytest.raises(ServiceError) as err:
        sigv4.verify(method, parts.path, parts.query, _headers(req), body + b" ", KEYS.get)
    assert err.value.code == "InvalidSignatureException"


@pytest.mark.parametrize("method,path,query,extra,body",
                         [c for c in CASES if not c[4]])  # presigned URLs carry no body
def test_presigned_urls_from_botocore_verify(method: str, path: str, query: str,
                                            extra: dict[str, str], body: bytes) -> None:
    url = "http://127.0.0.1:4750" + path + ("?" + query if query else "")
    req = AWSRequest(method, url, data=body)
    SigV4QueryAuth(CREDS, "lambda", "us-east-1", expires=300).add_auth(req)
    parts = urlsplit(req.prepare().url)
    headers = {"host": parts.netloc}
    assert sigv4.verify(method, parts.path, parts.query, headers, body, KEYS.get).region == \
        "us-east-1"
    tampered = parts.query.replace("X-Amz-Expires=300", "X-Amz-Expires=301")
    with pytest.raises(ServiceError) as err:
        sigv4.verify(method, parts.path, tampered, headers, body, KEYS.get)
    assert err.value.code == "InvalidSignatureException"


def test_signing_key_matches_the_documented_example() -> None:
    # The AWS documentation's worked example of deriving a signing key.
    key = sigv4.signing_key("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "20120215",
                            "us-east-1", "iam")
    assert key.hex() == "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d"


def test_clock_skew_boundaries() -> None:
    now = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.timezone.utc)
    for minutes, ok in ((14, True), (-14, True), (16, False), (-16, False)):
        req = AWSRequest("POST", "http://h/", data=b"{}")
        with mock.patch("botocore.auth.get_current_datetime",
                        return_value=(now + dt.timedelta(minutes=minutes)).replace(tzinfo=None)):
            SigV4Auth(CREDS, "logs", "us-east-1").add_auth(req)
        headers = _headers(req)
        if ok:
            sigv4.verify("POST", "/", "", headers, b"{}", KEYS.get, now=now)
        else:
            with pytest.raises(ServiceError) as err:
                sigv4.verify("POST", "/", "", headers, b"{}", KEYS.get, now=now)
            assert err.value.code == "InvalidSignatureException"


# ---------------------------------------------------------------- the body and the headers


def _signed(body: bytes, service: str = "logs", declare: str | None = None) -> dict[str, str]:
    """Headers botocore signs; `declare` is an X-Amz-Content-SHA256 to sign with (botocore
    then signs that value as the payload hash, as S3 clients do)."""
    extra = {"X-Amz-Content-SHA256": declare} if declare is not None else {}
    req = AWSRequest("POST", "http://127.0.0.1:4750/", data=body,
                     headers={"X-Amz-Target": "Logs_20140328.CreateLogGroup", **extra})
    SigV4Auth(CREDS, service, "us-east-1").add_auth(req)
    return _headers(req)


def _error(call, *args, **kwargs) -> ServiceError:  # type: ignore[no-untyped-def]
    with pytest.raises(ServiceError) as err:
        call(*args, **kwargs)
    return err.value


def test_a_declared_payload_hash_must_be_the_hash_of_the_body_received() -> None:
    victim = b'{"logGroupName":"/innocent"}'
    # The replay of issue 10: the victim's headers, its body's hash declared (unsigned),
    # another body.
    headers = {**_signed(victim), "x-amz-content-sha256": hashlib.sha256(victim).hexdigest()}
    sigv4.verify("POST", "/", "", headers, victim, KEYS.get)
    err = _error(sigv4.verify, "POST", "/", "", headers, b'{"logGroupName":"/attacker"}',
                 KEYS.get)
    assert (err.code, err.status) == ("InvalidSignatureException", 403)
    assert err.message.startswith("The request signature we calculated does not match")
    # Without the header the signature covers the body all the same.
    plain = _signed(victim)
    assert "x-amz-content-sha256" not in plain
    assert _error(sigv4.verify, "POST", "/", "", plain, b"{}", KEYS.get).code == \
        "InvalidSignatureException"
    # A declared value that is no hash at all is refused from the headers alone.
    for junk in ("", "abc", "A" * 64, "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"):
        err = _error(sigv4.check, "POST", "/", "", {**plain, "x-amz-content-sha256": junk},
                     KEYS.get)
        assert err.code == "InvalidSignatureException", junk


def test_unsigned_payload_is_refused_unless_the_service_opts_in() -> None:
    body = b'{"logGroupName":"/g"}'
    headers = _signed(body, declare=sigv4.UNSIGNED_PAYLOAD)
    assert "x-amz-content-sha256" in headers["authorization"]
    err = _error(sigv4.check, "POST", "/", "", headers, KEYS.get)     # no body needed
    assert err.code == "InvalidSignatureException"
    s3_like = sigv4.PayloadPolicy(frozenset({sigv4.UNSIGNED_PAYLOAD}))
    assert sigv4.verify("POST", "/", "", headers, b"anything", KEYS.get,
                        policy=s3_like).access_key == "AKIDEXAMPLE"
    with pytest.raises(ValueError):     # no aws-chunked reader: nobody may accept these yet
        sigv4.PayloadPolicy(frozenset({"STREAMING-AWS4-HMAC-SHA256-PAYLOAD"}))


def test_presigned_urls_sign_the_body_unless_the_service_opts_in() -> None:
    url = "http://127.0.0.1:4750/2015-03-31/functions/"
    s3_style = AWSRequest("GET", url)
    S3SigV4QueryAuth(CREDS, "lambda", "us-east-1", expires=300).add_auth(s3_style)
    parts = urlsplit(s3_style.prepare().url)
    headers = {"host": parts.netloc}
    err = _error(sigv4.verify, "GET", parts.path, parts.query, headers, b"", KEYS.get)
    assert err.code == "InvalidSignatureException"
    s3_like = sigv4.PayloadPolicy(frozenset({sigv4.UNSIGNED_PAYLOAD}))
    sigv4.verify("GET", parts.path, parts.query, headers, b"", KEYS.get, policy=s3_like)


def _presigned(expires: str, when: dt.datetime) -> str:
    day = when.strftime("%Y%m%d")
    return (f"X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F{day}%2F"
            f"us-east-1%2Flambda%2Faws4_request&X-Amz-Date={when.strftime('%Y%m%dT%H%M%SZ')}"
            f"&X-Amz-Expires={expires}&X-Amz-SignedHeaders=host&X-Amz-Signature={'0' * 64}")


@pytest.mark.parametrize("expires,signed_ago,code,message", [
    ("100000000000000000", 0, "IncompleteSignature", "X-Amz-Expires must be less than a week"),
    ("604801", 0, "IncompleteSignature", "X-Amz-Expires must be less than a week"),
    ("1000000000", 30 * 86400, "IncompleteSignature", "X-Amz-Expires must be less than a week"),
    ("-5", 0, "IncompleteSignature", "X-Amz-Expires must be non-negative"),
    ("1e3", 0, "IncompleteSignature", "X-Amz-Expires should be a number"),
    ("604800", 604801, "AccessDeniedException", "Request has expired"),
    ("0", 1, "AccessDeniedException", "Request has expired"),
])
def test_presigned_expiry_is_at_most_a_week(expires: str, signed_ago: int, code: str,
                                            message: str) -> None:
    now = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.timezone.utc)
    query = _presigned(expires, now - dt.timedelta(seconds=signed_ago))
    err = _error(sigv4.check, "GET", "/", query, {"host": "h"}, KEYS.get, now=now)
    assert (err.code, err.status) == (code, 400 if code == "IncompleteSignature" else 403)
    assert err.message.startswith(message), err.message
    # A week is allowed: the same checks pass and only the signature (zeros) is wrong.
    week = _presigned("604800", now - dt.timedelta(days=6))
    pending = sigv4.check("GET", "/", week, {"host": "h"}, KEYS.get, now=now)
    assert _error(pending.verify, hashlib.sha256(b"").hexdigest()).code == \
        "InvalidSignatureException"


def test_dates_far_away_are_refused_not_crashed_on() -> None:
    now = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.timezone.utc)
    query = _presigned("3600", now).replace("20260101T120000Z", "99991231T235959Z") \
        .replace("%2F20260101%2F", "%2F99991231%2F")
    err = _error(sigv4.check, "GET", "/", query, {"host": "h"}, KEYS.get, now=now)
    assert (err.code, err.message) == ("AccessDeniedException", "Request is not valid yet")
    headers = {"host": "h", "x-amz-date": "99991231T235959Z",
               "authorization": "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/99991231/us-east-1/"
                                "logs/aws4_request, SignedHeaders=host;x-amz-date, Signature=0"}
    err = _error(sigv4.check, "POST", "/", "", headers, KEYS.get, now=now)
    assert err.code == "InvalidSignatureException"
    assert err.message.startswith("Signature not yet current: 99991231T235959Z")
    for bad in ("00000101T000000Z", "20261332T000000Z", "2026-01-01T00:00:00Z", "２０２６"):
        err = _error(sigv4.check, "POST", "/", "", {**headers, "x-amz-date": bad}, KEYS.get)
        assert err.code == "IncompleteSignature", bad


def test_the_credential_scope_names_the_service_and_the_date() -> None:
    headers = _signed(b"{}", service="ecs")
    err = _error(sigv4.check, "POST", "/", "", headers, KEYS.get, service="logs")
    assert err.message == "Credential should be scoped to correct service: 'logs'. "
    sigv4.check("POST", "/", "", headers, KEYS.get, service="ecs")
    auth = headers["authorization"]
    day = headers["x-amz-date"][:8]
    other = auth.replace(f"/{day}/", "/20000101/")
    err = _error(sigv4.check, "POST", "/", "", {**headers, "authorization": other}, KEYS.get)
    assert err.message.startswith("Date in Credential scope does not match")
