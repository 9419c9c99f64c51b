"""A lean HTTP/1.1 client for the Lambda Runtime API on one kept-alive connection.

http.client parses headers with the email package, which costs more than the rest of a warm
invocation; the Runtime API always answers with Content-Length, so a few lines suffice.
"""
from __future__ import annotations

import socket
from typing import Dict, Optional, Tuple

Response = Tuple[int, Dict[str, str], bytes]


class RuntimeApiError(Exception):
    pass


class RuntimeClient:
    def __init__(self, address: str) -> None:
        host, _, port = address.rpartition(":")
        self.address = (host or "127.0.0.1", int(port))
        self.sock: Optional[socket.socket] = None
        self.buf = b""

    def _connect(self) -> socket.socket:
        try:
            # An IPv4 literal connects without getaddrinfo, whose first call in a process
            # loads the resolver's modules (~3 ms of a cold start).
            socket.inet_aton(self.address[0])
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                sock.connect(self.address)
            except BaseException:
                sock.close()
                raise
        except OSError:
            sock = socket.create_connection(self.address)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock, self.buf = sock, b""
        return sock

    def request(self, method: str, path: str, body: bytes = b"",
                headers: Optional[Dict[str, str]] = None) -> Response:
        head = "%s %s HTTP/1.1\r\nHost: runtime\r\nContent-Length: %d\r\n" % (
            method, path, len(body))
        if headers:
            head += "".join("%s: %s\r\n" % (k, v) for k, v in headers.items())
        data = (head + "\r\n").encode("latin-1") + body
        sock = self.sock or self._connect()
        try:
            sock.sendall(data)
            return self._read_response()
        except (ConnectionError, RuntimeApiError):
            # The worker may have closed an idle connection: one fresh attempt.
            self.close()
            self._connect().sendall(data)
            return self._read_response()

    def _read_response(self) -> Response:
        assert self.sock is not None
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end >= 0:
                break
            chunk = self.sock.recv(65536)
            if not chunk:
                raise RuntimeApiError("connection closed by the Runtime API")
            self.buf += chunk
        lines = self.buf[:end].decode("latin-1").split("\r\n")
        rest = self.buf[end + 4:]
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        while len(rest) < length:
            chunk = self.sock.recv(max(65536, length - len(rest)))
            if not chunk:
                raise RuntimeApiError("connection closed by the Runtime API")
            rest += chunk
        body, self.buf = rest[:length], rest[length:]
        return status, headers, body

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    # The Runtime API itself.

    def next(self) -> Tuple[Dict[str, str], bytes]:
        status, headers, body = self.request("GET", "/2018-06-01/runtime/invocation/next")
        if status != 200:
            raise RuntimeApiError("next invocation failed: %d %r" % (status, body[:200]))
        return headers, body

    def respond(self, request_id: str, body: bytes) -> int:
        return self.request("POST", "/2018-06-01/runtime/invocation/%s/response" % request_id,
                            body, {"Content-Type": "application/json"})[0]

    def error(self, request_id: str, body: bytes, error_type: str) -> int:
        return self.request("POST", "/2018-06-01/runtime/invocation/%s/error" % request_id,
                            body, {"Lambda-Runtime-Function-Error-Type": error_type,
                                   "Content-Type": "application/json"})[0]

    def init_error(self, body: bytes, error_type: str) -> int:
        return self.request("POST", "/2018-06-01/runtime/init/error", body,
                            {"Lambda-Runtime-Function-Error-Type": error_type,
                             "Content-Type": "application/json"})[0]
