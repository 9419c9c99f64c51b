"""Responses leave in one write: the transport wrapper of api/http.py, over a transport that
records what reaches the socket."""
from __future__ import annotations

from typing import Any

from berth.api.http import _OneWriteResponses

HEAD = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n"


class Recorder:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str) -> Any:
        return ("127.0.0.1", 1) if name == "peername" else None


def test_the_head_leaves_with_the_body() -> None:
    sock = Recorder()
    wire = _OneWriteResponses(sock)  # type: ignore[arg-type]
    wire.write(HEAD)
    assert sock.writes == []
    wire.write(b"{}")
    assert sock.writes == [HEAD + b"{}"]
    wire.write(HEAD)          # the next response on the connection, the same way
    wire.write(b"[]")
    assert sock.writes == [HEAD + b"{}", HEAD + b"[]"]


def test_a_head_with_no_body_leaves_when_the_response_ends_or_the_connection_closes() -> None:
    sock = Recorder()
    wire = _OneWriteResponses(sock)  # type: ignore[arg-type]
    wire.write(HEAD)
    wire.flush()              # what the protocol does when a response completes
    assert sock.writes == [HEAD]
    wire.write(HEAD)
    wire.close()
    assert sock.writes == [HEAD, HEAD] and sock.closed


def test_interim_responses_and_other_bytes_pass_at_once() -> None:
    sock = Recorder()
    wire = _OneWriteResponses(sock)  # type: ignore[arg-type]
    wire.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    wire.write(b"5\r\nhello\r\n")
    assert sock.writes == [b"HTTP/1.1 100 Continue\r\n\r\n", b"5\r\nhello\r\n"]
    assert wire.get_extra_info("peername") == ("127.0.0.1", 1)
