"""Issue 10's attacks on the API layer, against a real server: a signature that must cover
the body, requests refused before their bodies are read, memory that unauthenticated bodies
cannot take, a bound on the bodies in flight, presigned URLs at most a week old."""
from __future__ import annotations

import datetime as dt
import hashlib
import http.client
import json
import socket
import threading
import time
from pathlib import Path
from typing import Any, Iterator
from unittest import mock

import httpx
import pytest
from botocore.auth import S3SigV4QueryAuth, SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from berth_process import ACCESS_KEY, SECRET_KEY, BerthProcess
from wire import (closed_by_peer, connect, forged_auth, header, post_forged_body, read_response,
                  request_head, signed_headers, vm_kb)

MB = 1024 * 1024
LOGS_JSON = "application/x-amz-json-1.1"
INVOKE_PATH = "/2015-03-31/functions/x/invocations"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _amz(when: dt.datetime) -> str:
    return when.strftime("%Y%m%dT%H%M%SZ")


def _server_log_has_no_traceback(berth: BerthProcess) -> None:
    text = berth.log_path.read_text(errors="replace")
    assert "Traceback" not in text and "Exception in ASGI application" not in text, text[-3000:]


# ------------------------------------------------------------- the signature covers the body


def test_a_captured_logs_request_replayed_with_another_body_is_refused(
        berth: BerthProcess) -> None:
    victim = b'{"logGroupName":"/innocent"}'
    req = AWSRequest("POST", berth.endpoint + "/", data=victim, headers={
        "X-Amz-Target": "Logs_20140328.CreateLogGroup", "Content-Type": LOGS_JSON})
    SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "logs", "us-east-1").add_auth(req)
    captured = dict(req.headers)
    captured["X-Amz-Content-SHA256"] = hashlib.sha256(victim).hexdigest()
    conn = http.client.HTTPConnection("127.0.0.1", berth.port, timeout=10)
    try:
        conn.request("POST", "/", body=b'{"logGroupName":"/attacker"}', headers=captured)
        resp = conn.getresponse()
        answer = json.loads(resp.read())
        assert resp.status == 403 and answer["__type"] == "InvalidSignatureException", answer
    finally:
        conn.close()
    logs = berth.client("logs")
    assert logs.describe_log_groups(logGroupNamePrefix="/attacker")["logGroups"] == []
    # The victim's own request, as signed, still passes.
    with berth.http() as client:
        assert client.post("/", content=victim, headers=captured).status_code == 200
    assert [g["logGroupName"] for g in logs.describe_log_groups(
        logGroupNamePrefix="/innocent")["logGroups"]] == ["/innocent"]


def test_an_unsigned_payload_is_refused(berth: BerthProcess) -> None:
    body = b'{"logGroupName":"/unsigned"}'
    req = AWSRequest("POST", berth.endpoint + "/", data=body, headers={
        "X-Amz-Target": "Logs_20140328.CreateLogGroup", "Content-Type": LOGS_JSON,
        "X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"})        # botocore signs it as the hash
    SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "logs", "us-east-1").add_auth(req)
    with berth.http() as client:
        resp = client.post("/", content=body, headers=dict(req.headers))
    assert resp.status_code == 403 and resp.json()["__type"] == "InvalidSignatureException"
    assert berth.client("logs").describe_log_groups(
        logGroupNamePrefix="/unsigned")["logGroups"] == []


def test_presigned_urls_of_services_other_than_s3_sign_the_body(berth: BerthProcess) -> None:
    url = berth.endpoint + "/2015-03-31/functions/"
    creds = Credentials(ACCESS_KEY, SECRET_KEY)
    signed_body, unsigned = AWSRequest("GET", url), AWSRequest("GET", url)
    SigV4QueryAuth(creds, "lambda", "us-east-1", expires=300).add_auth(signed_body)
    S3SigV4QueryAuth(creds, "lambda", "us-east-1", expires=300).add_auth(unsigned)
    with httpx.Client(timeout=10) as client:
        assert client.get(signed_body.prepare().url).status_code == 200
        resp = client.get(unsigned.prepare().url)
    assert resp.status_code == 403
    assert resp.headers["x-amzn-errortype"] == "InvalidSignatureException"


# ------------------------------------------------------------------ presigned URL limits


def _presigned_list(berth: BerthProcess, expires: int, when: dt.datetime) -> str:
    req = AWSRequest("GET", berth.endpoint + "/2015-03-31/functions/")
    auth = SigV4QueryAuth(Credentials(ACCESS_KEY, SECRET_KEY), "lambda", "us-east-1",
                          expires=expires)
    with mock.patch("botocore.auth.get_current_datetime",
                    return_value=when.replace(tzinfo=None)):
        auth.add_auth(req)
    return req.prepare().url


def test_presigned_urls_live_a_week_at_most_and_odd_values_are_4xx(
        fresh_berth: BerthProcess) -> None:
    week = "X-Amz-Expires must be less than a week (in seconds); that is, the given " \
           "X-Amz-Expires must be less than 604800 seconds"
    cases = [
        (_presigned_list(fresh_berth, 10**17, _now()), 400, week),
        (_presigned_list(fresh_berth, 10**9, _now() - dt.timedelta(days=30)), 400, week),
        (_presigned_list(fresh_berth, 604801, _now()), 400, week),
        (_presigned_list(fresh_berth, 3600, _now()).replace(
            f"X-Amz-Date={_amz(_now())[:9]}", "X-Amz-Date=99991231T"), 403, None),
        (_presigned_list(fresh_berth, 604800, _now() - dt.timedelta(days=8)), 403,
         "Request has expired"),
    ]
    with httpx.Client(timeout=10) as client:
        for url, status, message in cases:
            resp = client.get(url)
            assert resp.status_code == status, (url, resp.text)
            assert resp.headers["x-amzn-errortype"] in (
                "IncompleteSignature", "AccessDeniedException", "InvalidSignatureException")
            if message:
                assert resp.json()["message"] == message
        # Six days old and signed for a week: still good.
        assert client.get(_presigned_list(fresh_berth, 604800, _now() - dt.timedelta(
            days=6))).status_code == 200
    with fresh_berth.http() as client:
        far = client.post("/", content=b"{}", headers={
            "X-Amz-Target": "Logs_20140328.DescribeLogGroups", "X-Amz-Date": "99991231T235959Z",
            "Authorization": f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/99991231/us-east-1/"
                             "logs/aws4_request, SignedHeaders=host;x-amz-date, Signature=00"})
        assert far.status_code == 403
        assert far.json()["message"].startswith("Signature not yet current")
    _server_log_has_no_traceback(fresh_berth)


# ------------------------------------------------------- refused before the body is read


HEADER_REFUSALS = {
    "no authorization": ({}, 403, "MissingAuthenticationTokenException"),
    "malformed authorization": ({"Authorization": "AWS4-HMAC-SHA256 Credential=x"}, 400,
                                "IncompleteSignature"),
    "unknown access key": (forged_auth("lambda"), 403, "UnrecognizedClientException"),
    "skewed clock": (forged_auth("lambda", ACCESS_KEY, _now() - dt.timedelta(hours=1)), 403,
                     "InvalidSignatureException"),
    "signed for another service": (forged_auth("logs", ACCESS_KEY), 403,
                                   "InvalidSignatureException"),
    "unsigned payload": ({**forged_auth("lambda", ACCESS_KEY),
                          "X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"}, 403,
                         "InvalidSignatureException"),
}


@pytest.mark.parametrize("case", sorted(HEADER_REFUSALS))
def test_what_the_headers_refuse_is_refused_before_the_body_is_sent(
        berth: BerthProcess, case: str) -> None:
    extra, status, code = HEADER_REFUSALS[case]
    headers = {"Host": f"127.0.0.1:{berth.port}", "Content-Type": "application/json",
               "Content-Length": str(50 * MB), **extra}
    with connect(berth.port) as sock:
        sock.sendall(request_head("POST", INVOKE_PATH, headers))     # and not a byte more
        top, body = read_response(sock)
        assert top.startswith(f"HTTP/1.1 {status}".encode()), (top, body)
        assert header(top, "x-amzn-errortype") == code
        assert header(top, "connection") == "close"
        assert closed_by_peer(sock)


def test_an_unknown_operation_is_refused_before_its_body(berth: BerthProcess) -> None:
    for target in ("Logs_20140328.NoSuchThing", "Nope_1.Anything"):
        headers = {"Host": f"127.0.0.1:{berth.port}", "X-Amz-Target": target,
                   "Content-Type": LOGS_JSON, "Content-Length": str(50 * MB),
                   **forged_auth("logs", ACCESS_KEY)}
        with connect(berth.port) as sock:
            sock.sendall(request_head("POST", "/", headers))
            top, body = read_response(sock)
            assert top.startswith(b"HTTP/1.1 400") and b"UnknownOperationException" in body


def test_unauthenticated_bodies_do_not_grow_the_server(fresh_berth: BerthProcess) -> None:
    """Issue 10: 8 parallel 75 MB POSTs with a made-up Authorization took the server's RSS
    from 97 to 734 MB. Now each is refused from its headers; the peak RSS (VmHWM, reset
    first) may grow by less than 100 MB."""
    assert fresh_berth.proc is not None
    pid = fresh_berth.proc.pid
    Path(f"/proc/{pid}/clear_refs").write_text("5")      # VmHWM := the current RSS
    before = vm_kb(pid, "VmRSS")
    deadline = time.monotonic() + 120
    answers: list[bytes] = []

    def one() -> None:
        answers.append(post_forged_body(fresh_berth.port, INVOKE_PATH, 75 * MB, deadline))

    threads = [threading.Thread(target=one) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(max(1.0, deadline - time.monotonic()))
    assert answers == [b"HTTP/1.1 403 Forbidden"] * 8
    growth_mb = (vm_kb(pid, "VmHWM") - before) / 1024
    assert growth_mb < 100, f"RSS grew by {growth_mb:.0f} MB"
    _server_log_has_no_traceback(fresh_berth)


# --------------------------------------------------------------- the bound on bodies in flight


@pytest.fixture
def small_budget(tmp_path: Path) -> Iterator[BerthProcess]:
    """A server that holds at most 1 MiB of request bodies at once."""
    proc = BerthProcess(tmp_path / "data", env={"BERTH_API_BODY_MEMORY_MB": "1"}).start()
    yield proc
    proc.stop()


def _put_events_request(berth: BerthProcess, size: int) -> tuple[dict[str, str], bytes]:
    body = json.dumps({"logGroupName": "/budget", "logStreamName": "s", "logEvents": [
        {"timestamp": 1, "message": "x" * size}]}).encode()
    return signed_headers(berth.endpoint, "POST", "/", body, "logs", {
        "X-Amz-Target": "Logs_20140328.PutLogEvents", "Content-Type": LOGS_JSON}), body


def _start(sock: socket.socket, headers: dict[str, str]) -> bytes:
    """Send a request's head asking for 100 Continue: the first answer (100 Continue once
    the server reads the body, after it took the body's share of the budget)."""
    sock.sendall(request_head("POST", "/", {**headers, "Expect": "100-continue"}))
    return sock.recv(65536)


def test_bodies_in_flight_are_bounded_and_past_the_bound_throttled(
        small_budget: BerthProcess) -> None:
    headers, body = _put_events_request(small_budget, 600 * 1024)
    with connect(small_budget.port) as first, connect(small_budget.port) as second:
        assert _start(first, headers) == b"HTTP/1.1 100 Continue\r\n\r\n"
        # The first body holds 600 KiB of the 1 MiB: a second one does not fit.
        answer = _start(second, headers)
        assert answer.startswith(b"HTTP/1.1 400") and b'"ThrottlingException"' in answer
        first.sendall(body)
        top, out = read_response(first)
        assert top.startswith(b"HTTP/1.1 400") and b"Throttling" not in out, (top, out)
    with connect(small_budget.port) as again:   # the budget is free again
        assert _start(again, headers) == b"HTTP/1.1 100 Continue\r\n\r\n"
        again.sendall(body)
        top, out = read_response(again)
        assert top.startswith(b"HTTP/1.1 400") and b"Throttling" not in out, (top, out)
    # Lambda's throttling error is its own: 429 TooManyRequestsException.
    big = b"{" + b" " * (2 * MB) + b"}"
    lam = signed_headers(small_budget.endpoint, "POST", "/2015-03-31/functions", big, "lambda",
                         {"Content-Type": "application/json"})
    with connect(small_budget.port) as sock:
        sock.sendall(request_head("POST", "/2015-03-31/functions", lam))
        top, out = read_response(sock)
    assert top.startswith(b"HTTP/1.1 429"), top
    answer: dict[str, Any] = json.loads(out)
    assert header(top, "x-amzn-errortype") == "TooManyRequestsException"
    assert answer["Reason"] == "CallerRateLimitExceeded"
