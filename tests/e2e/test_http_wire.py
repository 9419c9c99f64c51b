"""The HTTP wire as a client sees it, on raw sockets. berth holds a response's head to send it
with the body (api/http.py): nothing that needs a head alone may wait for a body that never
comes (HEAD answers, `100 Continue` before a request body, a closing connection)."""
from __future__ import annotations

from berth_process import BerthProcess
from wire import closed_by_peer, connect, header, read_response, request_head, signed_headers

BODY = b'{"logGroupNamePrefix": "x"}'
TARGET = "Logs_20140328.DescribeLogGroups"


def _request(target: str = TARGET, extra: str = "") -> bytes:
    return (f"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Amz-Target: {target}\r\n"
            f"Content-Type: application/x-amz-json-1.1\r\nContent-Length: {len(BODY)}\r\n"
            f"{extra}\r\n").encode()


def test_a_response_arrives_in_one_piece(berth: BerthProcess) -> None:
    with connect(berth.port) as sock:
        for _ in range(3):      # keep-alive: each response of the connection
            sock.sendall(_request() + BODY)
            head, body = read_response(sock)
            assert head.startswith(b"HTTP/1.1 403")     # unsigned: MissingAuthenticationToken
            assert b"MissingAuthenticationToken" in body


def test_100_continue_is_sent_before_the_body_arrives(berth: BerthProcess) -> None:
    headers = signed_headers(berth.endpoint, "POST", "/", BODY, "logs", {
        "X-Amz-Target": TARGET, "Content-Type": "application/x-amz-json-1.1"})
    with connect(berth.port) as sock:
        sock.sendall(request_head("POST", "/", {**headers, "Expect": "100-continue"}))
        interim = sock.recv(65536)
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(BODY)
        top, body = read_response(sock)
        assert top.startswith(b"HTTP/1.1 200") and b"logGroups" in body


def test_a_request_refused_from_its_headers_gets_no_100_continue(berth: BerthProcess) -> None:
    """Unsigned: the answer needs no body, so the client is not asked for it, and the
    connection ends (the body it may still send is no request)."""
    with connect(berth.port) as sock:
        sock.sendall(_request(extra="Expect: 100-continue\r\n"))
        top, body = read_response(sock)
        assert top.startswith(b"HTTP/1.1 403") and b"MissingAuthenticationToken" in body
        assert header(top, "connection") == "close"
        assert closed_by_peer(sock)


def test_a_head_request_gets_its_head(berth: BerthProcess) -> None:
    with connect(berth.port) as sock:
        sock.sendall(b"HEAD /console/ HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        sock.settimeout(10)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            assert chunk, data
            data += chunk
        assert data.startswith(b"HTTP/1.1 ")
        # And the connection goes on: the next request on it is answered.
        sock.sendall(_request() + BODY)
        head, _ = read_response(sock)
        assert head.startswith(b"HTTP/1.1 403")


def test_a_closing_response_is_flushed_before_the_close(berth: BerthProcess) -> None:
    with connect(berth.port) as sock:
        sock.sendall(_request(extra="Connection: close\r\n") + BODY)
        head, body = read_response(sock)
        assert head.startswith(b"HTTP/1.1 403") and b"MissingAuthenticationToken" in body
        assert sock.recv(1) == b""      # then the server closes
