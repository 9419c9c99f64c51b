"""Raw HTTP/1.1 on sockets, for tests that need what HTTP clients hide: a request sent in
parts or never finished, the answer to a body not yet sent, how the connection ends."""
from __future__ import annotations

import datetime as dt
import select
import socket
import time
from pathlib import Path
from urllib.parse import urlsplit

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from berth_process import ACCESS_KEY, SECRET_KEY


def connect(port: int, timeout: float = 10) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def request_head(method: str, target: str, headers: dict[str, str]) -> bytes:
    """A request line and header block (Host first if given)."""
    lines = [f"{method} {target} HTTP/1.1"] + [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def signed_headers(endpoint: str, method: str, target: str, body: bytes, service: str,
                   headers: dict[str, str] | None = None, key: str = ACCESS_KEY,
                   secret: str = SECRET_KEY, region: str = "us-east-1") -> dict[str, str]:
    """The headers botocore's SigV4Auth signs for this request, Host and Content-Length
    included, ready to send as they are."""
    req = AWSRequest(method, endpoint + target, data=body, headers=dict(headers or {}))
    SigV4Auth(Credentials(key, secret), service, region).add_auth(req)
    return {"Host": urlsplit(endpoint).netloc, **dict(req.headers.items()),
            "Content-Length": str(len(body))}


def read_response(sock: socket.socket) -> tuple[bytes, bytes]:
    """(head, body) of one response, read by Content-Length."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed mid-head: {data!r}"
        data += chunk
    top, _, body = data.partition(b"\r\n\r\n")
    length = int(header(top, "content-length") or 0)
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, "connection closed mid-body"
        body += chunk
    return top, body


def header(top: bytes, name: str) -> str | None:
    """A header's value in a response head, or None."""
    for line in top.split(b"\r\n")[1:]:
        key, _, value = line.partition(b":")
        if key.strip().lower() == name.encode():
            return value.strip().decode("latin-1")
    return None


def closed_by_peer(sock: socket.socket, within: float = 10) -> bool:
    """Whether the server ends the connection (an orderly end, not a reset) within `within`
    seconds; what it sends meanwhile is dropped."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            if sock.recv(65536) == b"":
                return True
        except socket.timeout:
            return False
    return False


def forged_auth(service: str, key: str = "AKIAFORGEDKEY0000000",
                when: dt.datetime | None = None) -> dict[str, str]:
    """X-Amz-Date and an Authorization with a made-up signature (and by default a made-up
    key), well formed and scoped to `service`."""
    stamp = (when or dt.datetime.now(dt.timezone.utc)).strftime("%Y%m%dT%H%M%SZ")
    return {"X-Amz-Date": stamp,
            "Authorization": f"AWS4-HMAC-SHA256 Credential={key}/{stamp[:8]}/us-east-1/"
                             f"{service}/aws4_request, SignedHeaders=host;x-amz-date, "
                             f"Signature={'0' * 64}"}


def post_forged_body(port: int, target: str, size: int, deadline: float) -> bytes:
    """POST a `size`-byte body with a made-up signature as fast as the server takes it,
    stopping when the answer comes (or at `deadline`, time.monotonic()); the answer's status
    line."""
    headers = {"Host": f"127.0.0.1:{port}", "Content-Type": "application/json",
               "Content-Length": str(size), **forged_auth("lambda")}
    chunk = b"\0" * (1024 * 1024)
    with connect(port, timeout=30) as sock:
        sock.sendall(request_head("POST", target, headers))
        sent = 0
        while sent < size and time.monotonic() < deadline:
            readable, writable, _ = select.select([sock], [sock], [], 1.0)
            if readable:
                break           # the answer: no need to send the rest
            if writable:
                try:
                    sent += sock.send(chunk[:size - sent])
                except (BrokenPipeError, ConnectionResetError):
                    break
        top, _ = read_response(sock)
        return top.split(b"\r\n", 1)[0]


def vm_kb(pid: int, field: str) -> int:
    """A process's VmRSS, VmHWM, ... in kB, from /proc/PID/status."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/{pid}/status")
