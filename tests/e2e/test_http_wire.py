"""The HTTP wire as a client sees it, on raw sockets. berth holds a response's head to send it
with the body (api/http.py): nothing that needs a head alone may wait for a body that never
comes (HEAD answers, `100 Continue` before a request body, a closing connection)."""
from __future__ import annotations

import socket

from berth_process import BerthProcess

BODY = b'{"logGroupNamePrefix": "x"}'


def _connect(berth: BerthProcess) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", berth.port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _request(target: str = "Logs_20140328.DescribeLogGroups", extra: str = "") -> bytes:
    return (f"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Amz-Target: {target}\r\n"
            f"Content-Type: application/x-amz-json-1.1\r\nContent-Length: {len(BODY)}\r\n"
            f"{extra}\r\n").encode()


def _response(sock: socket.socket) -> tuple[bytes, bytes]:
    """(head, body) of one response, read by Content-Length."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed mid-head: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length:"))
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, "connection closed mid-body"
        body += chunk
    return head, body


def test_a_response_arrives_in_one_piece(berth: BerthProcess) -> None:
    with _connect(berth) as sock:
        for _ in range(3):      # keep-alive: each response of the connection
            sock.sendall(_request() + BODY)
            head, body = _response(sock)
            assert head.startswith(b"HTTP/1.1 403")     # unsigned: MissingAuthenticationToken
            assert b"MissingAuthenticationToken" in body


def test_100_continue_is_sent_before_the_body_arrives(berth: BerthProcess) -> None:
    with _connect(berth) as sock:
        sock.sendall(_request(extra="Expect: 100-continue\r\n"))
        interim = sock.recv(65536)
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(BODY)
        head, body = _response(sock)
        assert head.startswith(b"HTTP/1.1 403") and b"MissingAuthenticationToken" in body


def test_a_head_request_gets_its_head(berth: BerthProcess) -> None:
    with _connect(berth) as sock:
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
        head, _ = _response(sock)
        assert head.startswith(b"HTTP/1.1 403")


def test_a_closing_response_is_flushed_before_the_close(berth: BerthProcess) -> None:
    with _connect(berth) as sock:
        sock.sendall(_request(extra="Connection: close\r\n") + BODY)
        head, body = _response(sock)
        assert head.startswith(b"HTTP/1.1 403") and b"MissingAuthenticationToken" in body
        assert sock.recv(1) == b""      # then the server closes
