"""berth's SigV4 verifier against botocore's signer, the reference, on varied requests."""
from __future__ import annotations

import datetime as dt
from unittest import mock
from urllib.parse import urlsplit

import pytest
from botocore.auth import SigV4Auth, SigV4QueryAuth
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
