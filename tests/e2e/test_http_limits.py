"""Slow and absent clients on raw sockets: headers that trickle are cut off, connections past
the cap are refused at once, a stalled body times out, and a client that hangs up mid-body
leaves no traceback. Servers run with small limits (BERTH_HTTP_*) so the tests stay short;
every loop is bounded in count and time."""
from __future__ import annotations

import selectors
import time
from pathlib import Path
from typing import Iterator

import pytest

from berth_process import BerthProcess
from wire import closed_by_peer, connect, header, read_response, request_head, signed_headers

TARGET = "Logs_20140328.DescribeLogGroups"
BODY = b'{"logGroupNamePrefix": "x"}'
CAP = 30


@pytest.fixture
def limited(tmp_path: Path) -> Iterator[BerthProcess]:
    proc = BerthProcess(tmp_path / "data", env={
        "BERTH_HTTP_HEADER_TIMEOUT": "1", "BERTH_HTTP_BODY_TIMEOUT": "1",
        "BERTH_HTTP_MAX_CONNECTIONS": str(CAP)}).start()
    yield proc
    proc.stop()


def _signed(berth: BerthProcess, body: bytes = BODY) -> dict[str, str]:
    return signed_headers(berth.endpoint, "POST", "/", body, "logs", {
        "X-Amz-Target": TARGET, "Content-Type": "application/x-amz-json-1.1"})


def _no_traceback(berth: BerthProcess) -> None:
    text = berth.log_path.read_text(errors="replace")
    assert "Traceback" not in text and "Exception in ASGI" not in text, text[-3000:]


def test_headers_that_trickle_are_cut_off(limited: BerthProcess) -> None:
    """Issue 10: 1,000 connections trickling a header line every 10 s stayed open as long
    as they trickled. Here 25 connections send a line every 0.3 s; the server (header
    timeout 1 s) must end each of them well before the 12 s the test would go on for."""
    count = 25
    socks = [connect(limited.port) for _ in range(count)]
    began = time.monotonic()
    ended_after: dict[int, float] = {}
    selector = selectors.DefaultSelector()
    try:
        for i, sock in enumerate(socks):
            sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\n")
            sock.setblocking(False)
            selector.register(sock, selectors.EVENT_READ, i)
        for line in range(40):                          # at most 40 lines, 12 s
            if len(ended_after) == count or time.monotonic() - began > 12:
                break
            for i, sock in enumerate(socks):
                if i in ended_after:
                    continue
                try:
                    sock.send(f"X-Slow-{line}: v\r\n".encode())
                except OSError:
                    ended_after[i] = time.monotonic() - began
            for key, _ in selector.select(timeout=0.3):
                try:
                    data = key.fileobj.recv(65536)  # type: ignore[union-attr]
                except OSError:
                    data = b""
                if not data:
                    ended_after.setdefault(key.data, time.monotonic() - began)
                    selector.unregister(key.fileobj)
    finally:
        selector.close()
        for sock in socks:
            sock.close()
    assert len(ended_after) == count, f"{count - len(ended_after)} still open after 12 s"
    assert max(ended_after.values()) < 8, sorted(ended_after.values())


def test_connections_past_the_cap_are_answered_503_at_once(tmp_path: Path) -> None:
    proc = BerthProcess(tmp_path / "data", env={"BERTH_HTTP_MAX_CONNECTIONS": str(CAP),
                                                "BERTH_HTTP_HEADER_TIMEOUT": "60"}).start()
    held = [connect(proc.port) for _ in range(CAP)]
    try:
        with connect(proc.port) as extra:
            top, body = read_response(extra)
            assert top.startswith(b"HTTP/1.1 503")
            assert header(top, "x-amzn-errortype") == "ServiceUnavailableException"
            assert closed_by_peer(extra)
        for sock in held[:5]:
            sock.close()
        # Room again once the server has seen them go: a new connection is served.
        deadline = time.monotonic() + 20
        while True:
            with connect(proc.port) as sock:
                sock.sendall(request_head("POST", "/", {"Host": "x", "X-Amz-Target": TARGET,
                                                        "Content-Length": "0"}))
                top, _ = read_response(sock)
            if top.startswith(b"HTTP/1.1 403"):
                break
            assert top.startswith(b"HTTP/1.1 503") and time.monotonic() < deadline, top
            time.sleep(0.1)
        # The connections held all along still work.
        held[-1].sendall(request_head("POST", "/", _signed(proc)) + BODY)
        assert read_response(held[-1])[0].startswith(b"HTTP/1.1 200")
    finally:
        for sock in held:
            sock.close()
        proc.stop()
    _no_traceback(proc)


def test_a_body_that_stalls_is_answered_request_timeout(limited: BerthProcess) -> None:
    with connect(limited.port) as sock:
        sock.sendall(request_head("POST", "/", _signed(limited)) + BODY[:5])
        began = time.monotonic()
        top, body = read_response(sock)
        assert time.monotonic() - began < 8
        assert top.startswith(b"HTTP/1.1 400") and b'"RequestTimeout"' in body, (top, body)
        assert header(top, "connection") == "close"
        assert closed_by_peer(sock)


def test_a_client_gone_mid_body_leaves_no_traceback(limited: BerthProcess) -> None:
    big = b'{"logGroupNamePrefix": "' + b"x" * 200_000 + b'"}'
    for cut in (0, 10, 100_000):
        with connect(limited.port) as sock:
            sock.sendall(request_head("POST", "/", {**_signed(limited, big),
                                                    "Expect": "100-continue"}))
            # 100 Continue: the server now reads the body, and the client goes mid-way.
            assert sock.recv(65536) == b"HTTP/1.1 100 Continue\r\n\r\n"
            sock.sendall(big[:cut])
    # The server went on: a whole request is answered, and nothing was logged.
    with connect(limited.port) as sock:
        sock.sendall(request_head("POST", "/", _signed(limited)) + BODY)
        assert read_response(sock)[0].startswith(b"HTTP/1.1 200")
    _no_traceback(limited)
